"""Random valid payloads of the application, identity_provider and hris templates (seeded).

`pair(template, seed)` gives two payloads A and B that share much (each entity of B is A's
with probability one half, else drawn again, possibly absent), so that B is A with a random mix
of additions, removals, changed fields, tags, resources and assignments.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

TAGS = [{"key": "env", "value": "prod"}, {"key": "env", "value": "dev"},
        {"key": "pii", "value": ""}, {"key": "team", "value": "core"}]
APP = "Acme Portal"


def _some(rng: random.Random, items: list[Any], low: int = 0) -> list[Any]:
    chosen = [i for i in items if rng.random() < 0.5]
    return chosen or items[:low]


def _optional(rng: random.Random, entity: dict[str, Any], name: str, value: Any) -> None:
    if rng.random() < 0.5:
        entity[name] = value


def _tags(rng: random.Random, entity: dict[str, Any]) -> None:
    if rng.random() < 0.5:
        entity["tags"] = _some(rng, TAGS)


# -- application ------------------------------------------------------------------------------


def _user(rng: random.Random, i: int) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    user: dict[str, Any] = {"name": f"user{i}", "id": f"u{i}",
                            "is_active": rng.random() < 0.5,
                            "groups": _some(rng, [f"g{n}" for n in range(4)])}
    _optional(rng, user, "email", f"user{i}@acme.test")
    _optional(rng, user, "identities", [f"user{i}@acme.test"])
    _optional(rng, user, "custom_properties", {"title": rng.choice(["Eng", "Ops", "Mgr"])})
    _tags(rng, user)
    return user


def _group(rng: random.Random, i: int) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    group: dict[str, Any] = {"name": f"group {i}", "id": f"g{i}"}
    _optional(rng, group, "identities", [f"group{i}@acme.test"])
    _tags(rng, group)
    return group


def _role(rng: random.Random, i: int) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    role: dict[str, Any] = {"name": f"Role {i}", "id": f"r{i}",
                            "permissions": _some(rng, ["admin", "read", "write"], 1)}
    _tags(rng, role)
    return role


def _resource(rng: random.Random, i: int) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    resource: dict[str, Any] = {"id": f"repo{i}", "name": f"repo {i}", "resource_type": "repo"}
    _optional(rng, resource, "description", rng.choice(["backend", "frontend"]))
    _optional(rng, resource, "custom_properties", {"visibility": rng.choice(["private", "public"])})
    branches = [{"id": f"b{n}", "name": f"branch {n}", "resource_type": "branch"}
                for n in range(3) if rng.random() < 0.5]
    for branch in branches:
        _tags(rng, branch)
    if branches or rng.random() < 0.3:
        resource["sub_resources"] = branches
    _tags(rng, resource)
    return resource


def _grants(rng: random.Random, i: int) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    kind = "local_user" if i < 6 else "local_group"
    identity = f"u{i}" if kind == "local_user" else f"g{i - 6}"
    roles = []
    for r in _some(rng, [f"r{n}" for n in range(4)], 1):
        assignment: dict[str, Any] = {"application": APP, "role": r}
        if rng.random() < 0.4:
            assignment["apply_to_application"] = True
        else:
            assignment["apply_to_application"] = False
            assignment["resources"] = _some(
                rng, ["repo0", "repo1", "repo1.b0", "repo2", "repo2.b1", "repo0.b2"], 1)
        _optional(rng, assignment, "custom_properties", {"granted_on": "2024-01-0"
                                                         f"{rng.randint(1, 9)}T00:00:00Z"})
        roles.append(assignment)
    entry: dict[str, Any] = {"identity": identity, "identity_type": kind, "role_assignments": roles}
    permissions = []
    for p in _some(rng, ["read", "write"]):
        if rng.random() < 0.5:
            permissions.append({"application": APP, "permission": p, "apply_to_application": True})
        else:
            permissions.append({"application": APP, "resources": _some(rng, ["repo0", "repo1"], 1),
                                "permission": p})
    if permissions:
        entry["application_permissions"] = permissions
    return entry


def _permission(rng: random.Random, name: str) -> dict[str, Any]:
    return {"name": name,
            "permission_type": _some(rng, ["DataRead", "DataWrite", "MetadataRead"], 1),
            "apply_to_sub_resources": rng.random() < 0.5, "resource_types": []}


def _resource_paths(resources: list[dict[str, Any]]) -> set[str]:
    paths = set()
    for r in resources:
        paths.add(r["id"])
        paths.update(f"{r['id']}.{b['id']}" for b in r.get("sub_resources", []))
    return paths


def _fix_application(payload: dict[str, Any]) -> dict[str, Any]:
    """Drop references to entities the payload does not have (Veza refuses them)."""
    app = payload["applications"][0]
    users = {u["id"] for u in app["local_users"]}
    groups = {g["id"] for g in app["local_groups"]}
    roles = {r["id"] for r in app["local_roles"]}
    paths = _resource_paths(app["resources"])
    for user in app["local_users"]:
        user["groups"] = [g for g in user["groups"] if g in groups]
    entries = []
    for entry in payload["identity_to_permissions"]:
        known = users if entry["identity_type"] == "local_user" else groups
        if entry["identity"] not in known:
            continue
        kept = []
        for ra in entry["role_assignments"]:
            if ra["role"] not in roles:
                continue
            if "resources" in ra:
                ra["resources"] = [r for r in ra["resources"] if r in paths]
                if not ra["resources"]:
                    continue
            kept.append(ra)
        entry["role_assignments"] = kept
        for ap in entry.get("application_permissions", []):
            if "resources" in ap:
                ap["resources"] = [r for r in ap["resources"] if r in paths] or ["__gone__"]
        if "application_permissions" in entry:
            entry["application_permissions"] = [
                ap for ap in entry["application_permissions"]
                if ap.get("resources") != ["__gone__"]]
            if not entry["application_permissions"]:
                del entry["application_permissions"]
        if kept:
            entries.append(entry)
    payload["identity_to_permissions"] = entries
    return payload


APPLICATION_HEADER = {
    "custom_property_definition": {"applications": [{
        "application_type": "AcmePortal", "application_properties": {},
        "local_user_properties": {"title": "STRING"},
        "role_assignment_properties": {"granted_on": "TIMESTAMP"},
        "resources": [{"resource_type": "repo", "properties": {"visibility": "STRING"}}]}]},
}


def _application(draw: Callable[[str, int, Callable[..., Any]], Any]) -> dict[str, Any]:
    app = {"name": APP, "application_type": "AcmePortal", "description": "portal",
           "local_users": [u for i in range(6) if (u := draw("user", i, _user))],
           "local_groups": [g for i in range(4) if (g := draw("group", i, _group))],
           "local_roles": [r for i in range(4) if (r := draw("role", i, _role))],
           "resources": [r for i in range(4) if (r := draw("resource", i, _resource))],
           "local_access_creds": [], "local_agents": [], "local_models": [], "tags": [],
           "custom_properties": {}}
    payload = {**copy.deepcopy(APPLICATION_HEADER), "applications": [app],
               "permissions": [draw("permission", i, lambda rng, n: _permission(
                   rng, ["admin", "read", "write"][n])) for i in range(3)],
               "identity_to_permissions": [e for i in range(10)
                                           if (e := draw("grants", i, _grants))]}
    return _fix_application(payload)


# -- identity provider ------------------------------------------------------------------------


def _idp_user(rng: random.Random, i: int) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    user: dict[str, Any] = {"name": f"user{i}", "email": f"user{i}@example.com",
                            "identity": f"user{i}", "is_active": rng.random() < 0.5,
                            "identity_type": "HUMAN"}
    _optional(rng, user, "full_name", rng.choice(["Ann Lee", "Bo Chen", "Cy Diaz"]))
    _optional(rng, user, "is_guest", rng.random() < 0.5)
    _optional(rng, user, "manager_id", f"user{rng.randint(0, 7)}")
    _optional(rng, user, "custom_properties", {"email_domain": rng.choice(["a.com", "b.com"])})
    _optional(rng, user, "groups", [{"identity": f"group{n}"} for n in range(3)
                                    if rng.random() < 0.5])
    _tags(rng, user)
    return user


def _idp_group(rng: random.Random, i: int) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    group: dict[str, Any] = {"name": f"Group {i}", "identity": f"group{i}"}
    _optional(rng, group, "is_security_group", rng.random() < 0.5)
    _tags(rng, group)
    return group


def _identity_provider(draw: Callable[[str, int, Callable[..., Any]], Any]) -> dict[str, Any]:
    users = [u for i in range(8) if (u := draw("user", i, _idp_user))]
    groups = [g for i in range(3) if (g := draw("group", i, _idp_group))]
    names = {u["identity"] for u in users}
    known = {g["identity"] for g in groups}
    for user in users:
        if user.get("manager_id") not in names:
            user.pop("manager_id", None)
        if "groups" in user:
            user["groups"] = [g for g in user["groups"] if g["identity"] in known]
    domain: dict[str, Any] = draw("domain", 0, lambda rng, _i: {
        "name": "example.com", "tags": _some(rng, TAGS), "custom_properties": {}})
    return {"custom_property_definition": {
        "domain_properties": {}, "user_properties": {"email_domain": "STRING"},
        "group_properties": {}, "app_properties": {}, "app_assignment_properties": {}},
        "name": "Custom IdP", "idp_type": "custom_idp", "domains": [domain],
        "users": users, "groups": groups, "apps": []}


# -- hris -------------------------------------------------------------------------------------


def _employee(rng: random.Random, i: int) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    employee: dict[str, Any] = {
        "id": f"{100000 + i}", "name": f"Person {i}", "employee_number": f"{100000 + i}",
        "first_name": "Person", "last_name": f"N{i}", "is_active": rng.random() < 0.5,
        "employment_status": rng.choice(["ACTIVE", "TERMINATED"])}
    _optional(rng, employee, "email", f"p{i}@acme.example.com")
    _optional(rng, employee, "job_title", rng.choice(["Engineer", "Manager"]))
    _optional(rng, employee, "custom_properties", {"remote": rng.random() < 0.5})
    employee["groups"] = [{"id": f"G{n}"} for n in range(3) if rng.random() < 0.5]
    return employee


def _hris_group(rng: random.Random, i: int) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    return {"id": f"G{i}", "name": rng.choice([f"Group {i}", f"Team {i}"]),
            "group_type": rng.choice(["Department", "Team"])}


def _hris(draw: Callable[[str, int, Callable[..., Any]], Any]) -> dict[str, Any]:
    employees = [e for i in range(8) if (e := draw("employee", i, _employee))]
    groups = [g for i in range(3) if (g := draw("group", i, _hris_group))]
    known = {g["id"] for g in groups}
    for employee in employees:
        employee["groups"] = [g for g in employee["groups"] if g["id"] in known]
    return {"name": "Acme Workday", "hris_type": "workday", "custom_property_definition": {
        "system_properties": {}, "employee_properties": {"remote": "BOOLEAN"},
        "group_properties": {}},
        "system": {"id": "Acme Workday", "name": "Acme Workday",
                   "url": "https://wd.example.com", "idp_providers": ["okta"]},
        "employees": employees, "groups": groups}


BUILDERS = {"application": _application, "identity_provider": _identity_provider,
            "hris": _hris}


def pair(template: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two related random payloads of `template` (see the module docstring)."""
    rng = random.Random(seed)
    drawn: dict[tuple[str, int], Any] = {}

    def draw_a(kind: str, i: int, make: Callable[..., Any]) -> Any:
        drawn[(kind, i)] = make(rng, i)
        return copy.deepcopy(drawn[(kind, i)])

    def draw_b(kind: str, i: int, make: Callable[..., Any]) -> Any:
        if rng.random() < 0.5:
            return copy.deepcopy(drawn.get((kind, i)))
        return make(rng, i)

    build = BUILDERS[template]
    return build(draw_a), build(draw_b)
