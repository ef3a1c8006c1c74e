"""The emulator's semantic checks of a payload: custom properties, references, soft warnings.

Called by `validate.validate_payload` after the structural checks passed. Each template has one
checker in `CHECKERS`; a checker appends hard errors (`Violation`) and warnings (text) to a
`ValidationResult`. Warnings reuse Veza's wording ("Cannot find identity by names ...",
"Role is missing permission ...") so scripts that grep for them behave the same.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from .validate import ValidationResult, Violation

__all__ = ["CHECKERS", "check_semantics"]

_PROPERTY_CHECK: dict[str, Callable[[Any], bool]] = {
    "BOOLEAN": lambda v: isinstance(v, bool),
    "NUMBER": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "STRING": lambda v: isinstance(v, str),
    "STRING_LIST": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    "TIMESTAMP": lambda v: isinstance(v, str),
}


def _lower(values: Iterable[Any]) -> set[str]:
    return {str(v).lower() for v in values if v is not None}


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _defs(value: Any) -> dict[str, str]:
    """A property-definition map with lowercased names."""
    return {str(k).lower(): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _check_properties(
    result: ValidationResult, entity: Mapping[str, Any], defs: Mapping[str, str], path: str,
    what: str,
) -> None:
    """Undefined custom properties are errors; values of the wrong type are warnings."""
    props = entity.get("custom_properties")
    if not isinstance(props, dict):
        return
    for name, value in props.items():
        declared = defs.get(str(name).lower())
        if declared is None:
            result.errors.append(Violation(
                f"{path}.custom_properties.{name}",
                f"custom property `{name}` of {what} is not defined in custom_property_definition",
            ))
        elif value is not None and not _PROPERTY_CHECK.get(declared, lambda v: True)(value):
            result.warnings.append(
                f"Property `{name}` of {what} is declared {declared} but has value {value!r}"
            )


def _unresolved(result: ValidationResult, names: Iterable[Any], known: Collection[str],
                what: str) -> None:
    missing = [str(n) for n in names if n and str(n).lower() not in known]
    if missing:
        quoted = ", ".join(f'"{m}"' for m in missing)
        result.warnings.append(f"Cannot find identity by names [{quoted}] for {what}")


# -- application ------------------------------------------------------------------------------

_APP_KINDS = {
    "local_users": ("local_user_properties", "local user"),
    "local_groups": ("local_group_properties", "local group"),
    "local_roles": ("local_role_properties", "local role"),
    "local_access_creds": ("local_access_creds_properties", "access credential"),
    "local_agents": ("local_agent_properties", "local agent"),
    "local_models": ("local_model_properties", "local model"),
}


def _key(entity: Mapping[str, Any]) -> str:
    return str(entity.get("id") or entity.get("name") or "")


def _resource_keys(resources: Any, prefix: str = "") -> Iterable[str]:
    for r in _items(resources):
        key = f"{prefix}{_key(r)}"
        yield key
        yield from _resource_keys(r.get("sub_resources"), f"{key}.")


def _check_resources(result: ValidationResult, resources: Any, defs: Mapping[str, Any],
                     path: str) -> None:
    for i, r in enumerate(_items(resources)):
        here = f"{path}[{i}]"
        rtype = str(r.get("resource_type", ""))
        _check_properties(result, r, defs.get(rtype.lower(), {}), here,
                          f'resource "{_key(r)}" ({rtype})')
        _check_resources(result, r.get("sub_resources"), defs, f"{here}.sub_resources")


def _app_definitions(payload: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Definitions per application_type (lowercased): property maps and resource maps."""
    cpd = payload.get("custom_property_definition")
    found: dict[str, dict[str, Any]] = {}
    for d in _items(cpd.get("applications") if isinstance(cpd, dict) else None):
        entry: dict[str, dict[str, Any]] = {
            k: _defs(v) for k, v in d.items() if k.endswith("_properties")}
        entry["resources"] = {str(r.get("resource_type", "")).lower(): _defs(r.get("properties"))
                              for r in _items(d.get("resources"))}
        found[str(d.get("application_type", "")).lower()] = entry
    return found


def _check_application_entities(
    result: ValidationResult, app: Mapping[str, Any], index: int, defs: Mapping[str, Any],
    known: Collection[str],
) -> None:
    path = f"applications[{index}]"
    _check_properties(result, app, defs.get("application_properties", {}), path,
                      f'application "{app.get("name")}"')
    for kind, (def_key, label) in _APP_KINDS.items():
        for i, entity in enumerate(_items(app.get(kind))):
            what = f'{label} "{entity.get("name") or entity.get("id")}"'
            _check_properties(result, entity, defs.get(def_key, {}), f"{path}.{kind}[{i}]", what)
            if kind in ("local_users", "local_groups"):
                _unresolved(result, entity.get("identities") or [], known, what)
    _check_resources(result, app.get("resources"), defs.get("resources", {}),
                     f"{path}.resources")


def _check_roles(result: ValidationResult, apps: list[dict[str, Any]],
                 permissions: set[str]) -> None:
    for app in apps:
        for role in _items(app.get("local_roles")):
            listed = [p for p in role.get("permissions") or [] if isinstance(p, str)]
            if not listed and not role.get("roles"):
                result.warnings.append(
                    f'Role is missing permission: role "{_key(role)}" of application '
                    f'"{app.get("name")}" has no permissions')
            for perm in listed:
                if perm.lower() not in permissions:
                    result.warnings.append(
                        f'Role is missing permission: role "{_key(role)}" lists permission '
                        f'"{perm}", which is not defined in permissions')


def _check_grants(
    result: ValidationResult, payload: Mapping[str, Any], apps: list[dict[str, Any]],
    defs: Mapping[str, Mapping[str, Any]], known: Collection[str],
) -> None:
    """identity_to_permissions: roles and permissions must exist; resources and IdP names warn."""
    roles = {a.get("name"): _lower(k for r in _items(a.get("local_roles"))
                                   for k in (r.get("id"), r.get("name"))) for a in apps}
    resources = {a.get("name"): set(_resource_keys(a.get("resources"))) for a in apps}
    types = {a.get("name"): str(a.get("application_type", "")).lower() for a in apps}
    permissions = _lower(p.get("name") for p in _items(payload.get("permissions")))
    for i, entry in enumerate(_items(payload.get("identity_to_permissions"))):
        path, who = f"identity_to_permissions[{i}]", entry.get("identity")
        if entry.get("identity_type") == "idp":
            _unresolved(result, [who], known, f'idp identity "{who}"')
        for j, grant in enumerate(_items(entry.get("application_permissions"))):
            if str(grant.get("permission", "")).lower() not in permissions:
                result.errors.append(Violation(
                    f"{path}.application_permissions[{j}].permission",
                    "Can't connect identity to permission as permission not found: "
                    f"{grant.get('permission')}"))
            _missing_resources(result, grant, resources, who)
        for j, grant in enumerate(_items(entry.get("role_assignments"))):
            app = grant.get("application")
            if str(grant.get("role", "")).lower() not in roles.get(app, set()):
                result.errors.append(Violation(
                    f"{path}.role_assignments[{j}].role",
                    f"Can't connect identity to role as role not found: {grant.get('role')}"))
            _missing_resources(result, grant, resources, who)
            rdefs = defs.get(types.get(app, ""), {}).get("role_assignment_properties", {})
            _check_properties(result, grant, rdefs, f"{path}.role_assignments[{j}]",
                              f'the role assignment of "{who}"')


def _missing_resources(result: ValidationResult, grant: Mapping[str, Any],
                       resources: Mapping[Any, set[str]], who: Any) -> None:
    known = resources.get(grant.get("application"), set())
    for key in grant.get("resources") or []:
        if key not in known:
            result.warnings.append(
                f'Cannot find resource "{key}" of application "{grant.get("application")}" '
                f'granted to "{who}"')


def check_application(result: ValidationResult, payload: Mapping[str, Any],
                      known: Collection[str]) -> None:
    """Custom application payload: properties, references, warnings."""
    apps = _items(payload.get("applications"))
    defs = _app_definitions(payload)
    for index, app in enumerate(apps):
        app_defs = defs.get(str(app.get("application_type", "")).lower(), {})
        _check_application_entities(result, app, index, app_defs, known)
    _check_roles(result, apps, _lower(p.get("name") for p in _items(payload.get("permissions"))))
    _check_grants(result, payload, apps, defs, known)


# -- identity provider and HRIS ---------------------------------------------------------------


def check_identity_provider(result: ValidationResult, payload: Mapping[str, Any],
                            known: Collection[str]) -> None:
    """Custom IdP payload: properties, group and manager references, source identities."""
    cpd = payload.get("custom_property_definition")
    cpd = cpd if isinstance(cpd, dict) else {}
    users, groups = _items(payload.get("users")), _items(payload.get("groups"))
    group_ids = _lower(g.get("identity") or g.get("name") for g in groups)
    user_ids = _lower(u.get("identity") or u.get("name") for u in users)
    for kind, def_key, label in (("domains", "domain_properties", "domain"),
                                 ("users", "user_properties", "user"),
                                 ("groups", "group_properties", "group"),
                                 ("apps", "app_properties", "app")):
        for i, entity in enumerate(_items(payload.get(kind))):
            what = f'{label} "{entity.get("identity") or entity.get("name") or entity.get("id")}"'
            path = f"{kind}[{i}]"
            _check_properties(result, entity, _defs(cpd.get(def_key)), path, what)
            for j, asg in enumerate(_items(entity.get("app_assignments"))):
                _check_properties(result, asg, _defs(cpd.get("app_assignment_properties")),
                                  f"{path}.app_assignments[{j}]", f"app assignment of {what}")
            for ref in _items(entity.get("groups")):
                if str(ref.get("identity", "")).lower() not in group_ids:
                    result.warnings.append(f'Cannot find group "{ref.get("identity")}" of {what}')
            source = entity.get("source_identity")
            if isinstance(source, dict):
                _unresolved(result, [source.get("identity")], known, what)
            manager = entity.get("manager_id")
            if manager and str(manager).lower() not in user_ids:
                result.warnings.append(f'Cannot find manager "{manager}" of {what}')


def check_hris(result: ValidationResult, payload: Mapping[str, Any],
               known: Collection[str]) -> None:
    """HRIS payload: properties, and manager, group, department and cost-center references."""
    cpd = payload.get("custom_property_definition")
    cpd = cpd if isinstance(cpd, dict) else {}
    employees, groups = _items(payload.get("employees")), _items(payload.get("groups"))
    employee_ids, group_ids = _lower(e.get("id") for e in employees), _lower(
        g.get("id") for g in groups)
    for i, group in enumerate(groups):
        _check_properties(result, group, _defs(cpd.get("group_properties")), f"groups[{i}]",
                          f'group "{group.get("id")}"')
    for i, emp in enumerate(employees):
        what = f'employee "{emp.get("id")}"'
        _check_properties(result, emp, _defs(cpd.get("employee_properties")),
                          f"employees[{i}]", what)
        for ref in _items(emp.get("managers")):
            if str(ref.get("id", "")).lower() not in employee_ids:
                result.warnings.append(f'Cannot find manager "{ref.get("id")}" of {what}')
        refs = [*_items(emp.get("groups")), *_items([emp.get("department")]),
                *_items([emp.get("cost_center")])]
        for ref in refs:
            if str(ref.get("id", "")).lower() not in group_ids:
                result.warnings.append(f'Cannot find group "{ref.get("id")}" of {what}')


CHECKERS: dict[str, Callable[[ValidationResult, Mapping[str, Any], Collection[str]], None]] = {
    "application": check_application,
    "identity_provider": check_identity_provider,
    "hris": check_hris,
}


def check_semantics(result: ValidationResult, template: str, payload: Mapping[str, Any],
                    known_identities: Collection[str]) -> None:
    """Run the template's checker (templates without one are accepted as they are)."""
    checker = CHECKERS.get(template)
    if checker is not None:
        checker(result, payload, known_identities)
