"""Replay oaamap's entity model onto Veza's reference SDK (`oaaclient`), for differential tests.

`replay(entities)` creates, with the SDK's public builder API, the same entities in the same order
as the `EntitySet` describes and returns the SDK's `get_payload()`. The differential suite then
asserts that oaamap's own payload is identical (values, key order and bytes).

This module is test-only: oaamap itself never imports oaaclient. It uses the SDK as a user would:
every entity is created through `add_*` calls and the public attributes the SDK documents; nothing
of the SDK's serialization is reimplemented here.

Choices the entity model leaves open (each is the plain way to write an SDK program):

* Creation order: permissions, roles, groups, users, access creds, resources, then grants. The SDK
  emits each collection in its own insertion order, so the order across sections only matters where
  one call depends on another (a credential's `user`, a sub-resource's parent, a grant's resources).
* Property definitions are made first, in `EntitySet.property_types` order (scope by scope, name by
  name), because the SDK refuses to set a property that is not yet defined.
* Enumerated values (canonical permissions, `user_type`, `identity_type`, `provider_type`,
  `idp_types`) are matched case-insensitively to the SDK's enums, since the SDK only takes its
  enums; the payload therefore carries the enum's spelling.
* A credential's `user` adds the credential to that user with `LocalUser.add_access_cred` after the
  user's own `access_creds` (which are passed as written).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, TypeVar

from oaaclient.templates import (
    CustomApplication,
    CustomIdPProvider,
    CustomResource,
    HRISProvider,
    IdPProviderType,
    IdPUserIdentityType,
    LocalUserType,
    OAAPermission,
    OAAPropertyType,
)

from oaamap.model import Entity, EntitySet, IdentityGrants

__all__ = ["ReplayError", "replay"]

E = TypeVar("E", bound=Enum)


class ReplayError(Exception):
    """The entity model cannot be replayed on the SDK (a dangling reference, an unknown scope)."""


def replay(entities: EntitySet) -> dict[str, Any]:
    """Build the entities of `entities` with oaaclient and return the SDK's payload.

    Args:
        entities: oaamap's entity model of one run (any of the three templates).

    Returns:
        The dict `get_payload()` returns for the SDK object built from the same entities in the same
        order.

    Raises:
        ReplayError: the template is unknown or the model refers to something it does not define.
        oaaclient.templates.OAATemplateException: the SDK itself refuses the model (a duplicate
            id, an invalid tag, an undefined property...); oaamap must refuse it too.
    """
    builders = {
        "application": _replay_application,
        "identity_provider": _replay_idp,
        "hris": _replay_hris,
    }
    try:
        build = builders[entities.template]
    except KeyError:
        raise ReplayError(f"unknown template {entities.template!r}") from None
    return build(entities)


# --------------------------------------------------------------------------------------------------
# helpers


def _enum(enum_cls: type[E], value: Any) -> E:
    """The member of `enum_cls` whose value (or name) equals `value`, case-insensitively."""
    if isinstance(value, enum_cls):
        return value
    text = str(value).lower()
    for member in enum_cls:
        if str(member.value).lower() == text or member.name.lower() == text:
            return member
    raise ReplayError(f"{value!r} is not a {enum_cls.__name__}")


def _section(entities: EntitySet, name: str) -> tuple[Entity, ...]:
    return tuple(entities.sections.get(name, ()))


def _uid(entities: EntitySet, entity: Entity) -> str | None:
    """The `unique_id` to pass to the SDK: only when the section is emitted with ids (id rule)."""
    if entities.uses_ids.get(entity.section):
        return entity.values.get("id") or entity.values["name"]
    return None


def _set_attrs(obj: object, values: Mapping[str, Any], names: Iterable[str]) -> None:
    """Set the SDK object's public attributes for the rule keys present in `values`."""
    for name in names:
        if name in values:
            setattr(obj, name, values[name])


def _tags(obj: Any, entity: Entity) -> None:
    for key, value in entity.tags:
        obj.add_tag(key, value)


def _owners(obj: Any, entity: Entity) -> None:
    for owner in entity.values.get("owners") or ():
        obj.add_owner(owner["external_id"], owner["owner_type"],
                      is_primary=owner.get("primary", False))


def _properties(obj: Any, entity: Entity) -> None:
    for name, value in entity.properties.items():
        obj.set_property(name, value)


def _decorate(obj: Any, entity: Entity) -> None:
    """Tags, owners and custom properties, in the order a connector usually sets them."""
    _tags(obj, entity)
    _owners(obj, entity)
    _properties(obj, entity)


def _property_types(entities: EntitySet) -> Iterable[tuple[str, str, OAAPropertyType]]:
    for scope, definitions in entities.property_types.items():
        for name, type_ in definitions.items():
            yield scope, name, OAAPropertyType[str(type_).upper()]


def _lookup(collection: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return collection[key]
    except KeyError:
        raise ReplayError(f"{what} {key!r} is not defined") from None


# --------------------------------------------------------------------------------------------------
# application

_APP_DEFINE = {
    "application": "define_application_property",
    "users": "define_local_user_property",
    "groups": "define_local_group_property",
    "roles": "define_local_role_property",
    "role_assignments": "define_role_assignment_property",
    "access_creds": "define_access_cred_property",
}
_USER_FIELDS = ("email", "is_active", "created_at", "last_login_at", "deactivated_at",
                "password_last_changed_at")
_CRED_FIELDS = ("is_active", "created_at", "expires_at", "last_used_at", "can_expire")


def _replay_application(entities: EntitySet) -> dict[str, Any]:
    header = entities.header
    app = CustomApplication(name=header.values["name"], application_type=header.values["type"],
                            description=header.values.get("description"))

    definitions = app.property_definitions
    for scope, name, type_ in _property_types(entities):
        if scope.startswith("resources:"):
            definitions.define_resource_property(scope.split(":", 1)[1], name, type_)
        elif scope in _APP_DEFINE:
            getattr(definitions, _APP_DEFINE[scope])(name, type_)
        else:
            raise ReplayError(f"unknown property scope {scope!r} for an application")

    _decorate(app, header)

    for perm in _section(entities, "permissions"):
        values = perm.values
        app.add_custom_permission(
            values["name"],
            [_enum(OAAPermission, c) for c in values.get("canonical") or ()],
            apply_to_sub_resources=bool(values.get("apply_to_sub_resources", False)),
            resource_types=list(values.get("resource_types") or []),
        )

    for entity in _section(entities, "roles"):
        values = entity.values
        role = app.add_local_role(values["name"], list(values.get("permissions") or []),
                                  unique_id=_uid(entities, entity))
        for nested in values.get("roles") or ():
            role.add_role(nested)
        _decorate(role, entity)

    for entity in _section(entities, "groups"):
        values = entity.values
        group = app.add_local_group(values["name"], _list(values.get("identities")),
                                    unique_id=_uid(entities, entity))
        for nested in values.get("groups") or ():
            group.add_group(nested)
        _set_attrs(group, values, ("created_at",))
        _decorate(group, entity)

    for entity in _section(entities, "users"):
        values = entity.values
        user = app.add_local_user(values["name"], identities=_list(values.get("identities")),
                                  groups=_list(values.get("groups")),
                                  unique_id=_uid(entities, entity))
        _set_attrs(user, values, _USER_FIELDS)
        if values.get("user_type") is not None:
            user.user_type = _enum(LocalUserType, values["user_type"])
        for cred_id in values.get("access_creds") or ():
            user.add_access_cred(cred_id)
        _decorate(user, entity)

    for entity in _section(entities, "access_creds"):
        values = entity.values
        cred = app.add_access_cred(values["id"], values["name"])
        _set_attrs(cred, values, _CRED_FIELDS)
        _decorate(cred, entity)
        if values.get("user") is not None:
            _lookup(app.local_users, values["user"], "local user").add_access_cred(values["id"])

    by_key = _replay_resources(app, entities)

    for grants in entities.grants:
        _replay_grants(app, grants, by_key)

    return app.get_payload()


def _list(value: Sequence[str] | None) -> list[str] | None:
    return None if value is None else list(value)


def _replay_resources(app: CustomApplication, entities: EntitySet) -> dict[str, CustomResource]:
    """Create resources (top level in section order, then each parent's children recursively).

    Returns every SDK resource by its payload key (`repo1.main`), exactly and lower-cased.
    """
    resources = _section(entities, "resources")
    children: dict[str, list[Entity]] = {}
    top: list[Entity] = []
    known = {r.key.lower() for r in resources}
    for entity in resources:
        parent = entity.values.get("parent")
        if parent is None:
            top.append(entity)
        elif str(parent).lower() in known:
            children.setdefault(str(parent).lower(), []).append(entity)
        else:
            raise ReplayError(f"resource {entity.key!r} has an unknown parent {parent!r}")

    by_key: dict[str, CustomResource] = {}

    def fill(obj: CustomResource, entity: Entity) -> None:
        by_key.setdefault(obj.resource_key, obj)
        by_key.setdefault(obj.resource_key.lower(), obj)
        for connection in entity.values.get("connections") or ():
            obj.add_resource_connection(connection["id"], connection["node_type"])
        _decorate(obj, entity)
        for child in children.get(entity.key.lower(), ()):
            v = child.values
            sub = obj.add_sub_resource(v["name"], resource_type=v["type"],
                                       description=v.get("description"),
                                       unique_id=_uid(entities, child))
            fill(sub, child)

    for entity in top:
        v = entity.values
        obj = app.add_resource(v["name"], resource_type=v["type"], description=v.get("description"),
                               unique_id=_uid(entities, entity))
        fill(obj, entity)
    placed = {id(obj) for obj in by_key.values()}
    if len(placed) != len(resources):
        raise ReplayError(f"{len(resources) - len(placed)} resources are not reachable from a "
                          "top-level resource (their parents form a cycle)")
    return by_key


def _resources(by_key: Mapping[str, CustomResource], keys: Iterable[str]) -> list[CustomResource]:
    out = []
    for key in keys:
        obj = by_key.get(key) or by_key.get(key.lower())
        if obj is None:
            raise ReplayError(f"grant names an unknown resource key {key!r}")
        out.append(obj)
    return out


def _replay_grants(app: CustomApplication, grants: IdentityGrants,
                   by_key: Mapping[str, CustomResource]) -> None:
    kind = grants.identity_type
    if kind == "local_user":
        identity = _lookup(app.local_users, grants.identity, "local user")
    elif kind == "local_group":
        identity = _lookup(app.local_groups, grants.identity, "local group")
    elif kind == "idp":
        identity = (app.idp_identities[grants.identity] if grants.identity in app.idp_identities
                    else app.add_idp_identity(grants.identity))
    elif kind == "local_access_creds":
        identity = _lookup(app.access_creds, grants.identity, "access credential")
    else:
        raise ReplayError(f"unknown identity type {kind!r}")

    for permission in grants.app_permissions:
        identity.add_permission(permission, apply_to_application=True)
    for permission, keys in grants.resource_permissions:
        identity.add_permission(permission, resources=_resources(by_key, keys))
    for ra in grants.role_assignments:
        identity.add_role(ra.role, resources=_resources(by_key, ra.resources),
                          apply_to_application=ra.apply_to_application,
                          assignment_properties=dict(ra.properties))


# --------------------------------------------------------------------------------------------------
# identity provider

_IDP_DEFINE = {
    "idp": "define_domain_property",
    "users": "define_user_property",
    "groups": "define_group_property",
    "apps": "define_app_property",
    "app_assignments": "define_app_assignment_property",
}


def _replay_idp(entities: EntitySet) -> dict[str, Any]:
    header = entities.header
    idp = CustomIdPProvider(header.values["name"], idp_type=header.values["type"],
                            domain=header.values["domain"],
                            description=header.values.get("description"))
    for scope, name, type_ in _property_types(entities):
        if scope not in _IDP_DEFINE:
            raise ReplayError(f"unknown property scope {scope!r} for an identity provider")
        getattr(idp.property_definitions, _IDP_DEFINE[scope])(name, type_)

    _tags(idp.domain, header)
    _properties(idp.domain, header)

    assignments = _app_assignments(entities)

    for entity in _section(entities, "users"):
        values = entity.values
        user = idp.add_user(values["name"], full_name=values.get("full_name"),
                            email=values.get("email"), identity=values.get("identity"))
        _set_attrs(user, values, ("department", "is_active", "is_guest"))
        if values.get("manager") is not None:
            user.manager_id = values["manager"]
        _idp_principal(user, entity, assignments.get(("user", entity.key.lower()), ()))
        if values.get("identity_type") is not None:
            user.identity_type = _enum(IdPUserIdentityType, values["identity_type"])

    for entity in _section(entities, "groups"):
        values = entity.values
        group = idp.add_group(values["name"], full_name=values.get("full_name"),
                              identity=values.get("identity"))
        _set_attrs(group, values, ("is_security_group",))
        _idp_principal(group, entity, assignments.get(("group", entity.key.lower()), ()))

    for entity in _section(entities, "apps"):
        values = entity.values
        app = idp.add_app(values["id"], values["name"])
        if values.get("description") is not None:
            app.description = values["description"]
        if values.get("assumed_role_arns"):
            app.add_assumed_role_arns(list(values["assumed_role_arns"]))
        _tags(app, entity)
        _properties(app, entity)

    return idp.get_payload()


def _app_assignments(entities: EntitySet) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """App assignments per (user|group, lower-cased key), when the model keeps them as a section.

    When users and groups carry `values["app_assignments"]` those are used instead (see
    `_idp_principal`); the section form is the fallback.
    """
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entity in _section(entities, "app_assignments"):
        values = entity.values
        kind = "user" if values.get("user") is not None else "group"
        out.setdefault((kind, str(values[kind]).lower()), []).append({
            "id": values["id"], "name": values["name"], "app_id": values["app_id"],
            "custom_properties": dict(entity.properties),
        })
    return out


def _idp_principal(obj: Any, entity: Entity,
                   section_assignments: Iterable[Mapping[str, Any]]) -> None:
    """What IdP users and groups share: groups, role ARNs, source identity, tags, props, apps."""
    values = entity.values
    if values.get("groups"):
        obj.add_groups(list(values["groups"]))
    if values.get("assumed_role_arns"):
        obj.add_assumed_role_arns(list(values["assumed_role_arns"]))
    source = values.get("source_identity")
    if source:
        # The SDK has no default provider type; without one, search every IdP (ANY), as the
        # SDK's docstring suggests.
        provider = source.get("provider_type", IdPProviderType.ANY)
        obj.set_source_identity(source["identity"], _enum(IdPProviderType, provider))
    _tags(obj, entity)
    _properties(obj, entity)
    assignments = values.get("app_assignments")
    for assignment in assignments if assignments is not None else section_assignments:
        properties = dict(assignment.get("custom_properties") or {})
        obj.add_app_assignment(assignment["id"], assignment["name"], assignment["app_id"],
                               assignment_properties=properties)


# --------------------------------------------------------------------------------------------------
# hris

_HRIS_DEFINE = {
    "system": "define_system_property",
    "employees": "define_employee_property",
    "groups": "define_group_property",
}
_EMPLOYEE_FIELDS = ("company", "preferred_name", "display_full_name", "canonical_name", "username",
                    "email", "idp_id", "personal_email", "home_location", "work_location",
                    "start_date", "termination_date", "job_title", "primary_time_zone",
                    "department", "cost_center")


def _replay_hris(entities: EntitySet) -> dict[str, Any]:
    header = entities.header
    # HRISProvider requires a url; HRISSystem's own default for "no url" is "".
    url = header.values.get("url")
    system = HRISProvider(header.values["name"], hris_type=header.values["type"],
                          url="" if url is None else url)
    for t in header.values.get("idp_types") or ():
        system.system.add_idp_type(_enum(IdPProviderType, t))
    for scope, name, type_ in _property_types(entities):
        if scope not in _HRIS_DEFINE:
            raise ReplayError(f"unknown property scope {scope!r} for an HRIS")
        getattr(system.property_definitions, _HRIS_DEFINE[scope])(name, type_)

    for entity in _section(entities, "employees"):
        v = entity.values
        employee = system.add_employee(unique_id=v["id"], name=v["name"],
                                       employee_number=v["employee_number"],
                                       first_name=v["first_name"], last_name=v["last_name"],
                                       is_active=v["is_active"],
                                       employment_status=v["employment_status"])
        _set_attrs(employee, v, _EMPLOYEE_FIELDS)
        if v.get("employment_types") is not None:
            employee.employment_types = list(v["employment_types"])
        for group_id in v.get("groups") or ():
            employee.add_group(group_id)
        for manager_id in v.get("managers") or ():
            employee.add_manager(manager_id)
        _properties(employee, entity)

    for entity in _section(entities, "groups"):
        v = entity.values
        group = system.add_group(unique_id=v["id"], name=v["name"], group_type=v["group_type"])
        _properties(group, entity)

    return system.get_payload()
