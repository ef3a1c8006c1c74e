"""The Custom Application payload (template `application`)."""

from __future__ import annotations

from typing import Any

from ..model import Entity, EntitySet, IdentityGrants, resource_tree
from . import (
    Lazy,
    definitions,
    falsy,
    none_list_dict_emptystr,
    owners,
    register_template,
    tags,
)

DEFINITION_SCOPES = (
    ("application_properties", "application"), ("local_user_properties", "users"),
    ("local_group_properties", "groups"), ("local_role_properties", "roles"),
    ("role_assignment_properties", "role_assignments"),
    ("local_access_creds_properties", "access_creds"),
)


def _id(entity: Entity, uses_ids: bool | None) -> str | None:
    return str(entity.values.get("id") or entity.values["name"]) if uses_ids else None


# The SDK's `local_users` keys between `name` and `tags`, in its order (all optional).
_USER_FIELDS = ("email", "identities", "groups", "access_creds", "is_active", "created_at",
                "last_login_at", "deactivated_at", "password_last_changed_at", "user_type")


def user(e: Entity, uses_ids: bool | None) -> dict[str, Any]:
    """A `local_users` entry: the SDK's keys in its order, without None, [] and {} (its
    `none_list_dict`), built key by key rather than filtered (100k users per run)."""
    v = e.values
    item: dict[str, Any] = {"name": v["name"]}
    for key in _USER_FIELDS:
        value = v.get(key)
        if value is not None and value != [] and value != {}:
            item[key] = value
    if e.tags:
        item["tags"] = tags(e)
    if e.properties:
        item["custom_properties"] = e.properties
    if v.get("owners"):
        item["owners"] = owners(e)
    if uses_ids:
        item["id"] = _id(e, uses_ids)
    return item


def group(e: Entity, uses_ids: bool | None) -> dict[str, Any]:
    """A `local_groups` entry."""
    v = e.values
    return falsy({
        "name": v["name"], "identities": v.get("identities"), "created_at": v.get("created_at"),
        "groups": v.get("groups"), "tags": tags(e), "custom_properties": e.properties,
        "owners": owners(e), "id": _id(e, uses_ids)})


def role(e: Entity, uses_ids: bool | None) -> dict[str, Any]:
    """A `local_roles` entry; permissions deduplicated case-insensitively (first spelling)."""
    v = e.values
    first: dict[str, str] = {}
    for permission in v.get("permissions", ()):
        first.setdefault(permission.lower(), permission)  # the first spelling of each
    return none_list_dict_emptystr({
        "name": v["name"], "permissions": list(first.values()), "roles": v.get("roles"),
        "tags": tags(e),
        "custom_properties": e.properties, "owners": owners(e), "id": _id(e, uses_ids)})


def access_cred(e: Entity) -> dict[str, Any]:
    """A `local_access_creds` entry (`is_active` defaults to true, as in the SDK)."""
    v = e.values
    return none_list_dict_emptystr({
        "id": v["id"], "name": v["name"], "is_active": v.get("is_active", True),
        "created_at": v.get("created_at"), "expires_at": v.get("expires_at"),
        "last_used_at": v.get("last_used_at"), "can_expire": v.get("can_expire"),
        "owners": owners(e), "tags": tags(e), "custom_properties": e.properties})


def resource(e: Entity, children: dict[str, list[Entity]], uses_ids: bool | None
             ) -> dict[str, Any]:
    """A `resources` / `sub_resources` entry, its children nested."""
    v = e.values
    subs = [resource(c, children, uses_ids) for c in children.get(e.key.lower(), ())]
    return falsy({
        "id": _id(e, uses_ids), "name": v["name"], "resource_type": v["type"],
        "description": v.get("description"),
        "connections": [{"id": c["id"], "node_type": c.get("node_type")}
                        for c in v.get("connections", ())],
        "sub_resources": subs, "custom_properties": e.properties, "tags": tags(e),
        "owners": owners(e)})


def permission(e: Entity) -> dict[str, Any]:
    """A `permissions` entry."""
    v = e.values
    return {"name": v["name"], "permission_type": list(v["canonical"]),
            "apply_to_sub_resources": bool(v.get("apply_to_sub_resources", False)),
            "resource_types": list(v.get("resource_types", []))}


def identity_entry(g: IdentityGrants, app: str) -> dict[str, Any]:
    """An `identity_to_permissions` entry (one per identity: a million grants make 100k)."""
    identity, identity_type, app_permissions, resource_permissions, assignments, _ = g
    entry: dict[str, Any] = {"identity": identity, "identity_type": identity_type}
    if app_permissions or resource_permissions:
        perms: list[dict[str, Any]] = [
            {"application": app, "permission": p, "apply_to_application": True}
            for p in app_permissions]
        perms += [{"application": app, "resources": list(keys), "permission": p}
                  for p, keys in resource_permissions]
        entry["application_permissions"] = perms
    if assignments:
        roles = []
        for role, apply, resources, properties in assignments:
            assignment: dict[str, Any] = {"application": app, "role": role,
                                          "apply_to_application": bool(apply)}
            if resources:
                # the builder's own list, serialised at once: not copied
                assignment["resources"] = (resources if resources.__class__ is list
                                           else list(resources))
            if properties:
                assignment["custom_properties"] = dict(properties)
            roles.append(assignment)
        entry["role_assignments"] = roles
    return entry


def _definitions(es: EntitySet, app_type: str) -> dict[str, Any]:
    defs: dict[str, Any] = {"application_type": app_type}
    for key, scope in DEFINITION_SCOPES:
        defs[key] = definitions(es.property_types, scope)
    defs["local_agent_properties"] = {}
    defs["local_model_properties"] = {}
    defs["resources"] = [
        {"resource_type": scope.split(":", 1)[1], "properties": dict(props)}
        for scope, props in es.property_types.items() if scope.startswith("resources:")]
    return falsy(defs)




def compile_application(es: EntitySet) -> dict[str, Any]:
    """The Custom Application payload."""
    header = es.header.values
    name, ids = header["name"], es.uses_ids
    roots, children = resource_tree(es.sections.get("resources", ()))
    sections = es.sections
    app: dict[str, Any] = {
        "name": name, "application_type": header["type"],
        "description": header.get("description"),
        "local_users": Lazy(lambda: (user(e, ids.get("users"))
                                     for e in sections.get("users", ())), "local_user"),
        "local_groups": Lazy(lambda: (group(e, ids.get("groups"))
                                      for e in sections.get("groups", ())), "local_group"),
        "local_roles": Lazy(lambda: (role(e, ids.get("roles"))
                                     for e in sections.get("roles", ())), "local_role"),
        "local_access_creds": Lazy(lambda: (access_cred(e)
                                            for e in sections.get("access_creds", ())),
                                   "local_access_cred"),
        "local_agents": [], "local_models": [],
        "tags": tags(es.header), "custom_properties": dict(es.header.properties),
    }
    if header.get("owners"):
        app["owners"] = owners(es.header)
    app["resources"] = Lazy(lambda: (resource(e, children, ids.get("resources"))
                                     for e in roots), "resource")
    return {
        "custom_property_definition": {"applications": [_definitions(es, header["type"])]},
        "applications": [app],
        "permissions": Lazy(lambda: (permission(e) for e in sections.get("permissions", ())),
                            "permission"),
        "identity_to_permissions": Lazy(lambda: (identity_entry(g, name) for g in es.grants),
                                        "identity_to_permission"),
    }


register_template("application", compile_application)
