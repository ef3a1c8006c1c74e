"""Differential tests: oaamap's payload must be exactly what Veza's SDK (oaaclient) builds.

Every golden case (a folder with `mapping.yaml` and `expected.json`, or a catalog case) is compiled
by oaamap; its entity model is then replayed onto the SDK (`sdk_replay.replay`) and the two payloads
must agree in values, key order and serialized bytes.

The replay itself is checked against payloads the SDK produced for the samples of the OAA reference
(`/work/shared/oaa/REFERENCE.md` sections 2.4, 3 and 4.1), built here as hand-made EntitySets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oaamap.model import Entity, EntitySet, IdentityGrants, RoleAssignment

try:  # tests/ as a package (relative imports) or as a plain folder on sys.path
    from .sdk_replay import ReplayError, replay
except ImportError:
    from sdk_replay import ReplayError, replay  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "cases"
EXAMPLES = ROOT / "examples"
CATALOG = ROOT / "mappings"


# --------------------------------------------------------------------------------------------------
# comparison


def first_difference(ours: Any, sdk: Any, path: str = "") -> str | None:
    """The first place two JSON values differ (value, type, or dict key order), or None.

    Args:
        ours: oaamap's value.
        sdk: the SDK's value.
        path: the JSON pointer of the values (for the message).

    Returns:
        A one-line description naming the JSON pointer, or None when they are identical.
    """
    where = path or "/"
    if isinstance(ours, dict) and isinstance(sdk, dict):
        if list(ours) != list(sdk):
            missing = [k for k in sdk if k not in ours]
            extra = [k for k in ours if k not in sdk]
            if missing or extra:
                return f"{where}: keys missing {missing}, unexpected {extra}"
            return f"{where}: key order {list(ours)} but the SDK has {list(sdk)}"
        for key in sdk:
            found = first_difference(ours[key], sdk[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(ours, list) and isinstance(sdk, list):
        for i, (a, b) in enumerate(zip(ours, sdk, strict=False)):
            found = first_difference(a, b, f"{path}/{i}")
            if found:
                return found
        if len(ours) != len(sdk):
            return f"{where}: {len(ours)} items but the SDK has {len(sdk)}"
        return None
    if type(ours) is not type(sdk) or ours != sdk:
        return f"{where}: {json.dumps(ours)} but the SDK has {json.dumps(sdk)}"
    return None


def wire_value(payload: Mapping[str, Any]) -> Any:
    """The SDK's payload as the server reads it: its JSON round trip (enums become strings)."""
    return json.loads(json.dumps(payload))


def assert_same_payload(ours_json: str, sdk_payload: Mapping[str, Any]) -> None:
    """oaamap's serialized payload equals the SDK's payload: values, key order and bytes.

    Args:
        ours_json: oaamap's compact payload (`CompileResult.payload_json()`).
        sdk_payload: the dict the SDK's `get_payload()` returned.
    """
    ours = json.loads(ours_json)
    sdk = wire_value(sdk_payload)
    difference = first_difference(ours, sdk)
    assert difference is None, difference
    assert ours == sdk
    assert json.dumps(ours) == json.dumps(sdk), "key order differs"
    # push_metadata's wire form: compact separators, ensure_ascii, insertion order.
    wire = json.dumps(sdk_payload, separators=(",", ":"))
    assert ours_json == wire, _byte_difference(ours_json, wire)


def _byte_difference(ours: str, sdk: str) -> str:
    i = next((n for n, (a, b) in enumerate(zip(ours, sdk, strict=False)) if a != b),
             min(len(ours), len(sdk)))
    return (f"bytes differ at offset {i}: ours ...{ours[max(0, i - 40):i + 40]!r} vs "
            f"SDK ...{sdk[max(0, i - 40):i + 40]!r}")


# --------------------------------------------------------------------------------------------------
# golden cases


@dataclass(frozen=True)
class GoldenCase:
    """A compiled-and-compared case: the mapping, its `--var` values and its folder."""

    name: str
    mapping: Path
    folder: Path
    variables: Mapping[str, str]


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _variables(folder: Path) -> dict[str, str]:
    found = {**_read_json(folder / "vars.json"), **_read_json(folder / "case.json").get("vars", {})}
    return {str(k): str(v) for k, v in found.items()}


def _excluded(folder: Path) -> bool:
    return (folder / "expected.err").exists() or (folder / "server.py").exists()


def golden_cases() -> list[GoldenCase]:
    """Every golden case: `tests/cases/*/` and `examples/*/` with a mapping and an expected payload.

    A folder's `case.json` may name the mapping (relative to the folder) and its `vars`; a
    `tests/cases/catalog-NAME/` folder without a mapping of its own is the case of the catalog
    mapping `mappings/NAME.yaml`, run with the folder's `vars.json`. Folders with an `expected.err`
    (a failing case) or a `server.py` (an HTTP source needing a server) are not payload cases.
    """
    out: list[GoldenCase] = []
    for base in (CASES, EXAMPLES):
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            if not (folder / "expected.json").exists() or _excluded(folder):
                continue
            mapping = folder / _read_json(folder / "case.json").get("mapping", "mapping.yaml")
            if not mapping.exists() and folder.name.startswith("catalog-"):
                mapping = CATALOG / f"{folder.name.removeprefix('catalog-')}.yaml"
            if not mapping.exists():
                continue
            out.append(GoldenCase(f"{base.name}/{folder.name}", mapping.resolve(), folder,
                                  _variables(folder)))
    return out


@pytest.mark.parametrize("case", golden_cases(), ids=lambda c: c.name)
def test_payload_matches_sdk(case: GoldenCase) -> None:
    """oaamap's payload for a golden case is byte for byte the SDK's payload for its entities."""
    pipeline = pytest.importorskip("oaamap.pipeline")
    result = pipeline.compile_mapping(case.mapping, dict(case.variables),
                                      pipeline.CompileOptions())
    assert_same_payload(result.payload_json(), replay(result.entities))


# --------------------------------------------------------------------------------------------------
# the replay itself, against payloads the SDK produced (REFERENCE.md samples)


def entity(section: str, key: str, values: Mapping[str, Any] | None = None,
           properties: Mapping[str, Any] | None = None,
           tags: Sequence[tuple[str, str]] = ()) -> Entity:
    """A hand-made entity (no provenance)."""
    return Entity(section, key, dict(values or {}), dict(properties or {}), tuple(tags), None, None)


def _many(section: str, *items: tuple[str, dict[str, Any]] | Entity) -> tuple[Entity, ...]:
    return tuple(i if isinstance(i, Entity) else entity(section, i[0], i[1]) for i in items)


APP_SAMPLE = {
    "custom_property_definition": {"applications": [{
        "application_type": "demo", "application_properties": {"region": "STRING"},
        "local_user_properties": {"employee_num": "NUMBER"},
        "local_group_properties": {"group_kind": "STRING"},
        "local_role_properties": {"builtin": "BOOLEAN"},
        "role_assignment_properties": {"granted_by": "STRING"},
        "local_access_creds_properties": {"scopes": "STRING_LIST"},
        "resources": [{"resource_type": "repo", "properties": {"visibility": "STRING"}},
                      {"resource_type": "branch", "properties": {"last_commit": "TIMESTAMP"}}]}]},
    "applications": [{
        "name": "Demo App", "application_type": "demo", "description": "demo description",
        "local_users": [
            {"name": "alice", "email": "alice@example.com", "identities": ["alice@example.com"],
             "groups": ["devs"], "access_creds": ["cred1"], "is_active": True,
             "created_at": "2023-01-01T00:00:00Z", "last_login_at": "2024-01-01T00:00:00Z",
             "user_type": "human", "tags": [{"key": "team", "value": "core"}],
             "custom_properties": {"employee_num": 42}, "id": "u1"},
            {"name": "svc", "is_active": False, "user_type": "service_account", "id": "u2"}],
        "local_groups": [
            {"name": "devs", "identities": ["devs@example.com"],
             "created_at": "2023-01-01T00:00:00Z", "groups": ["all"],
             "custom_properties": {"group_kind": "team"}},
            {"name": "all"}],
        "local_roles": [
            {"name": "Maintainer", "permissions": ["read", "push"], "roles": ["Viewer"],
             "tags": [{"key": "tier", "value": "2"}], "custom_properties": {"builtin": True}},
            {"name": "Viewer", "permissions": ["read"]}],
        "local_access_creds": [
            {"id": "cred1", "name": "CI token", "is_active": True,
             "created_at": "2024-01-01T00:00:00Z", "can_expire": False,
             "custom_properties": {"scopes": ["repo", "read:org"]}}],
        "local_agents": [], "local_models": [],
        "tags": [{"key": "env", "value": "prod"}, {"key": "flagonly", "value": ""}],
        "custom_properties": {"region": "us-east"},
        "owners": [{"external_id": "owner@example.com", "owner_type": "oktauser", "primary": True}],
        "resources": [
            {"name": "repo1", "resource_type": "repo", "description": "Repo 1",
             "connections": [{"id": "arn:aws:iam::123:role/x", "node_type": "AwsIamRole"}],
             "sub_resources": [{
                 "name": "main", "resource_type": "branch",
                 # REFERENCE's sample gives this folder an id while its siblings have none; with
                 # oaamap's id rule a section is emitted all with ids or all without.
                 "sub_resources": [{"name": "dir", "resource_type": "folder"}],
                 "custom_properties": {"last_commit": "2024-02-02T00:00:00Z"}}],
             "custom_properties": {"visibility": "private"},
             "tags": [{"key": "lang", "value": "python"}]},
            {"name": "bare", "resource_type": "thing"}]}],
    "permissions": [
        {"name": "read", "permission_type": ["DataRead", "MetadataRead"],
         "apply_to_sub_resources": False, "resource_types": []},
        {"name": "admin", "permission_type": ["DataRead", "DataWrite", "MetadataWrite"],
         "apply_to_sub_resources": True, "resource_types": []},
        {"name": "push", "permission_type": ["DataWrite"], "apply_to_sub_resources": False,
         "resource_types": ["repo"]}],
    "identity_to_permissions": [
        {"identity": "u1", "identity_type": "local_user", "application_permissions": [
            {"application": "Demo App", "permission": "read", "apply_to_application": True},
            {"application": "Demo App", "resources": ["repo1", "repo1.main"], "permission": "push"},
            {"application": "Demo App", "resources": ["repo1.main.dir"], "permission": "read"}],
         "role_assignments": [
            {"application": "Demo App", "role": "Maintainer", "apply_to_application": False,
             "resources": ["repo1"], "custom_properties": {"granted_by": "bob"}},
            {"application": "Demo App", "role": "Viewer", "apply_to_application": True}]},
        {"identity": "u2", "identity_type": "local_user", "role_assignments": [
            {"application": "Demo App", "role": "Viewer", "apply_to_application": False,
             "resources": ["bare"]}]},
        {"identity": "devs", "identity_type": "local_group", "role_assignments": [
            {"application": "Demo App", "role": "Maintainer", "apply_to_application": True}]},
        {"identity": "carol@example.com", "identity_type": "idp", "application_permissions": [
            {"application": "Demo App", "resources": ["repo1"], "permission": "admin"}]},
        {"identity": "cred1", "identity_type": "local_access_creds", "role_assignments": [
            {"application": "Demo App", "role": "Viewer", "apply_to_application": True}]}],
}


def app_sample_entities() -> EntitySet:
    """REFERENCE 2.4's application as oaamap's entity model."""
    header = entity("application", "", {
        "name": "Demo App", "type": "demo", "description": "demo description",
        "owners": [{"external_id": "owner@example.com", "owner_type": "oktauser", "primary": True}],
    }, {"region": "us-east"}, [("env", "prod"), ("flagonly", "")])
    sections = {
        "permissions": _many(
            "permissions",
            ("read", {"name": "read", "canonical": ["dataread", "MetadataRead"]}),
            ("admin", {"name": "admin", "canonical": ["DataRead", "DataWrite", "MetadataWrite"],
                       "apply_to_sub_resources": True}),
            ("push", {"name": "push", "canonical": ["DataWrite"], "resource_types": ["repo"]})),
        "roles": (
            entity("roles", "Maintainer", {"name": "Maintainer",
                                           "permissions": ["read", "push", "READ"],
                                           "roles": ["Viewer"]},
                   {"builtin": True}, [("tier", "2")]),
            entity("roles", "Viewer", {"name": "Viewer", "permissions": ["read"]})),
        "groups": (
            entity("groups", "devs", {"name": "devs", "identities": ["devs@example.com"],
                                      "created_at": "2023-01-01T00:00:00Z", "groups": ["all"]},
                   {"group_kind": "team"}),
            entity("groups", "all", {"name": "all"})),
        "users": (
            entity("users", "u1", {
                "id": "u1", "name": "alice", "email": "alice@example.com",
                "identities": ["alice@example.com"], "groups": ["devs"], "is_active": True,
                "created_at": "2023-01-01T00:00:00Z", "last_login_at": "2024-01-01T00:00:00Z",
                "user_type": "Human"}, {"employee_num": 42}, [("team", "core")]),
            entity("users", "u2", {"id": "u2", "name": "svc", "is_active": False,
                                   "user_type": "service_account"})),
        "access_creds": (
            entity("access_creds", "cred1", {
                "id": "cred1", "name": "CI token", "user": "U1",
                "created_at": "2024-01-01T00:00:00Z", "can_expire": False},
                {"scopes": ["repo", "read:org"]}),),
        "resources": (
            entity("resources", "repo1", {
                "name": "repo1", "type": "repo", "description": "Repo 1",
                "connections": [{"id": "arn:aws:iam::123:role/x", "node_type": "AwsIamRole"}]},
                {"visibility": "private"}, [("lang", "python")]),
            entity("resources", "main", {"name": "main", "type": "branch", "parent": "REPO1"},
                   {"last_commit": "2024-02-02T00:00:00Z"}),
            entity("resources", "dir", {"name": "dir", "type": "folder", "parent": "main"}),
            entity("resources", "bare", {"name": "bare", "type": "thing"})),
    }
    grants = (
        IdentityGrants("u1", "local_user", ("read",),
                       (("push", ("repo1", "repo1.main")), ("read", ("repo1.main.dir",))),
                       (RoleAssignment("Maintainer", None, ("repo1",), {"granted_by": "bob"}),
                        RoleAssignment("Viewer", True, (), {})), None),
        IdentityGrants("u2", "local_user", (), (),
                       (RoleAssignment("Viewer", None, ("bare",), {}),), None),
        IdentityGrants("devs", "local_group", (), (),
                       (RoleAssignment("Maintainer", True, (), {}),), None),
        IdentityGrants("all", "local_group", (), (),
                       (RoleAssignment("Viewer", None, (), {}),), None),
        IdentityGrants("carol@example.com", "idp", (), (("admin", ("repo1",)),), (), None),
        IdentityGrants("cred1", "local_access_creds", (), (),
                       (RoleAssignment("Viewer", True, (), {}),), None),
    )
    property_types = {
        "application": {"region": "STRING"}, "users": {"employee_num": "NUMBER"},
        "groups": {"group_kind": "STRING"}, "roles": {"builtin": "BOOLEAN"},
        "role_assignments": {"granted_by": "STRING"}, "access_creds": {"scopes": "STRING_LIST"},
        "resources:repo": {"visibility": "STRING"},
        "resources:branch": {"last_commit": "TIMESTAMP"},
    }
    return EntitySet("application", header, sections, grants, property_types,
                     uses_ids={"users": True, "groups": False, "roles": False,
                               "resources": False})


IDP_SAMPLE = {
    "custom_property_definition": {
        "domain_properties": {"forest": "STRING"}, "user_properties": {"badge": "NUMBER"},
        "group_properties": {"dn": "STRING"}, "app_properties": {"sso_kind": "STRING"},
        "app_assignment_properties": {"granted": "TIMESTAMP"}},
    "name": "My IdP", "idp_type": "ldap",
    "domains": [{"name": "example.com", "tags": [{"key": "site", "value": "hq"}],
                 "custom_properties": {"forest": "corp"}}],
    "users": [
        {"name": "alice", "email": "alice@example.com", "identity": "0001", "full_name": "Alice A",
         "department": "R&D", "is_active": True, "is_guest": False, "manager_id": "0002",
         "groups": [{"identity": "g-eng"}, {"identity": "All"}],
         "assumed_role_arns": [{"identity": "arn:aws:iam::123456789012:role/admin"}],
         "source_identity": {"identity": "alice@okta.example.com", "provider_type": "any"},
         "tags": [{"key": "tier", "value": "gold"}], "custom_properties": {"badge": 1001},
         "app_assignments": [{"id": "asg-1", "name": "alice-wiki", "app_id": "app1",
                              "custom_properties": {"granted": "2024-01-01T00:00:00Z"}}],
         "identity_type": "HUMAN"},
        {"name": "svc-bot", "identity": "svc-bot", "identity_type": "NONHUMAN"}],
    "groups": [
        {"name": "Engineering", "identity": "g-eng", "full_name": "Engineering Team",
         "is_security_group": True,
         "assumed_role_arns": [{"identity": "arn:aws:iam::123456789012:role/eng"}],
         "groups": [{"identity": "All"}],
         "source_identity": {"identity": "eng@example.com", "provider_type": "okta"},
         "custom_properties": {"dn": "cn=eng"},
         "app_assignments": [{"id": "asg-g1", "name": "eng-wiki", "app_id": "app1",
                              "custom_properties": {}}]},
        {"name": "All", "identity": "All"}],
    "apps": [
        {"id": "app1", "name": "Wiki", "description": "Internal wiki",
         "assumed_role_arns": [{"identity": "arn:aws:iam::123456789012:role/wiki"}],
         "custom_properties": {"sso_kind": "saml"}, "tags": []},
        {"id": "app2", "name": "Bare", "description": "", "assumed_role_arns": [],
         "custom_properties": {}, "tags": []}],
}


def idp_sample_entities() -> EntitySet:
    """REFERENCE 3's identity provider as oaamap's entity model."""
    header = entity("idp", "", {"name": "My IdP", "type": "ldap", "domain": "example.com",
                                "description": "not serialized"},
                    {"forest": "corp"}, [("site", "hq")])
    sections = {
        "users": (
            entity("users", "0001", {
                "name": "alice", "email": "alice@example.com", "identity": "0001",
                "full_name": "Alice A", "department": "R&D", "is_active": True, "is_guest": False,
                "manager": "0002", "groups": ["g-eng", "All"],
                "assumed_role_arns": ["arn:aws:iam::123456789012:role/admin"],
                "source_identity": {"identity": "alice@okta.example.com", "provider_type": "ANY"},
                "identity_type": "human",
                "app_assignments": [{"id": "asg-1", "name": "alice-wiki", "app_id": "app1",
                                     "custom_properties": {"granted": "2024-01-01T00:00:00Z"}}]},
                {"badge": 1001}, [("tier", "gold")]),
            entity("users", "svc-bot", {"name": "svc-bot", "identity_type": "NONHUMAN"})),
        "groups": (
            entity("groups", "g-eng", {
                "name": "Engineering", "identity": "g-eng", "full_name": "Engineering Team",
                "is_security_group": True, "groups": ["All"],
                "assumed_role_arns": ["arn:aws:iam::123456789012:role/eng"],
                "source_identity": {"identity": "eng@example.com", "provider_type": "okta"}},
                {"dn": "cn=eng"}),
            entity("groups", "All", {"name": "All", "identity": "All"})),
        "apps": (
            entity("apps", "app1", {"id": "app1", "name": "Wiki", "description": "Internal wiki",
                                    "assumed_role_arns": ["arn:aws:iam::123456789012:role/wiki"]},
                   {"sso_kind": "saml"}),
            entity("apps", "app2", {"id": "app2", "name": "Bare"})),
        # the section form of an app assignment (users above carry theirs in their values)
        "app_assignments": (
            entity("app_assignments", "g-eng", {"group": "G-ENG", "id": "asg-g1",
                                                "name": "eng-wiki", "app_id": "app1"}),),
    }
    property_types = {"idp": {"forest": "STRING"}, "users": {"badge": "NUMBER"},
                      "groups": {"dn": "STRING"}, "apps": {"sso_kind": "STRING"},
                      "app_assignments": {"granted": "TIMESTAMP"}}
    return EntitySet("identity_provider", header, sections, (), property_types)


HRIS_SAMPLE = {
    "name": "Acme HR", "hris_type": "acmehr",
    "custom_property_definition": {"system_properties": {"region": "STRING"},
                                   "employee_properties": {"badge": "NUMBER"},
                                   "group_properties": {"code": "STRING"}},
    "system": {"id": "Acme HR", "name": "Acme HR", "url": "https://hr.example.com",
               "idp_providers": ["okta", "azure_ad"]},
    "employees": [
        {"id": "e2", "name": "Bob Boss", "employee_number": "2", "first_name": "Bob",
         "last_name": "Boss", "employment_status": "ACTIVE", "is_active": True},
        {"id": "e1", "name": "Alice Smith", "employee_number": "1", "first_name": "Alice",
         "last_name": "Smith", "email": "alice@example.com", "idp_id": "00u123",
         "employment_status": "TERMINATED", "start_date": "2020-01-01T00:00:00Z",
         "termination_date": "2024-01-01T00:00:00Z", "job_title": "Engineer",
         "employment_types": ["FULL_TIME"], "custom_properties": {"badge": 7}, "is_active": False,
         "groups": [{"id": "d1"}], "managers": [{"id": "e2"}], "department": {"id": "d1"},
         "cost_center": {"id": "cc1"}}],
    "groups": [{"id": "d1", "name": "Engineering", "group_type": "Department",
                "custom_properties": {"code": "ENG"}},
               {"id": "cc1", "name": "CC 100", "group_type": "Cost Center"}],
}


def hris_sample_entities() -> EntitySet:
    """REFERENCE 4.1's HRIS as oaamap's entity model."""
    header = entity("system", "", {"name": "Acme HR", "type": "acmehr",
                                   "url": "https://hr.example.com",
                                   "idp_types": ["OKTA", "azure_ad"]})
    sections = {
        "employees": (
            entity("employees", "e2", {
                "id": "e2", "name": "Bob Boss", "employee_number": "2", "first_name": "Bob",
                "last_name": "Boss", "employment_status": "ACTIVE", "is_active": True}),
            entity("employees", "e1", {
                "id": "e1", "name": "Alice Smith", "employee_number": "1", "first_name": "Alice",
                "last_name": "Smith", "email": "alice@example.com", "idp_id": "00u123",
                "employment_status": "TERMINATED", "start_date": "2020-01-01T00:00:00Z",
                "termination_date": "2024-01-01T00:00:00Z", "job_title": "Engineer",
                "employment_types": ["FULL_TIME"], "is_active": False, "groups": ["d1"],
                "managers": ["e2"], "department": "d1", "cost_center": "cc1"}, {"badge": 7})),
        "groups": (
            entity("groups", "d1", {"id": "d1", "name": "Engineering", "group_type": "Department"},
                   {"code": "ENG"}),
            entity("groups", "cc1", {"id": "cc1", "name": "CC 100", "group_type": "Cost Center"})),
    }
    property_types = {"system": {"region": "STRING"}, "employees": {"badge": "NUMBER"},
                      "groups": {"code": "STRING"}}
    return EntitySet("hris", header, sections, (), property_types)


@pytest.mark.parametrize(("build", "expected"), [
    pytest.param(app_sample_entities, APP_SAMPLE, id="application"),
    pytest.param(idp_sample_entities, IDP_SAMPLE, id="identity_provider"),
    pytest.param(hris_sample_entities, HRIS_SAMPLE, id="hris"),
])
def test_replay_reproduces_reference_sample(build: Any, expected: dict[str, Any]) -> None:
    """The replay turns a hand-made entity model into the SDK payload the reference shows."""
    payload = wire_value(replay(build()))
    assert first_difference(payload, expected) is None, first_difference(payload, expected)
    assert json.dumps(payload) == json.dumps(expected)


EMPTY_APP_WIRE = (
    '{"custom_property_definition":{"applications":[{"application_type":"t"}]},"applications":'
    '[{"name":"Empty","application_type":"t","description":null,"local_users":[],'
    '"local_groups":[],"local_roles":[],"local_access_creds":[],"local_agents":[],'
    '"local_models":[],"tags":[],"custom_properties":{},"resources":[]}],"permissions":[],'
    '"identity_to_permissions":[]}'
)


def test_replay_of_empty_application_is_the_reference_bytes() -> None:
    """An application with nothing in it serializes exactly as REFERENCE 2.4 shows."""
    header = entity("application", "", {"name": "Empty", "type": "t"})
    payload = replay(EntitySet("application", header, {}))
    assert json.dumps(payload, separators=(",", ":")) == EMPTY_APP_WIRE


def test_replay_refuses_resources_in_a_parent_cycle() -> None:
    """Resources that no top-level resource reaches are an error, never silently dropped."""
    header = entity("application", "", {"name": "Cycle", "type": "t"})
    resources = (entity("resources", "a", {"name": "a", "type": "t", "parent": "b"}),
                 entity("resources", "b", {"name": "b", "type": "t", "parent": "a"}),
                 entity("resources", "c", {"name": "c", "type": "t"}))
    with pytest.raises(ReplayError, match="cycle"):
        replay(EntitySet("application", header, {"resources": resources}))
