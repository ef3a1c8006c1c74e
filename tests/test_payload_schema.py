"""The OAA payload schemas and their compiled validator, against jsonschema and oaaclient."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from typing import Any

import jsonschema
import pytest

from oaamap.payload_schema import (
    TEMPLATES,
    PayloadValidator,
    SchemaValidator,
    Violation,
    load_payload_schema,
)

oaa = pytest.importorskip("oaaclient.templates")

Payload = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Payloads built with oaaclient 1.2.0 (REFERENCE.md samples 2.4, 3 and 4.1, extended so that every
# entity kind and field appears at least once)


def _define_app_properties(app: Any) -> None:
    pd, t = app.property_definitions, oaa.OAAPropertyType
    pd.define_application_property("region", t.STRING)
    pd.define_local_user_property("employee_num", t.NUMBER)
    pd.define_local_group_property("group_kind", t.STRING)
    pd.define_local_role_property("builtin", t.BOOLEAN)
    pd.define_role_assignment_property("granted_by", t.STRING)
    pd.define_access_cred_property("scopes", t.STRING_LIST)
    pd.define_local_agent_property("tier", t.STRING)
    pd.define_local_model_property("context_window", t.NUMBER)
    pd.define_resource_property("repo", "visibility", t.STRING)
    pd.define_resource_property("branch", "last_commit", t.TIMESTAMP)


def _app_resources(app: Any) -> tuple[Any, Any, Any, Any]:
    owner = oaa.OAAOwnerType.OktaUser
    repo = app.add_resource("repo1", "repo", description="Repo 1", unique_id="repo1")
    repo.add_resource_connection("arn:aws:iam::123:role/x", "AwsIamRole")
    repo.set_property("visibility", "private")
    repo.add_tag("lang", "python")
    repo.add_owner("owner@example.com", owner)
    main = repo.add_sub_resource("main", "branch")
    main.set_property("last_commit", "2024-02-02T00:00:00Z")
    folder = main.add_sub_resource("dir", "folder", unique_id="dir-1")
    bare = app.add_resource("bare", "thing")
    return repo, main, folder, bare


def _app_identities(app: Any) -> tuple[Any, Any, Any, Any]:
    owner = oaa.OAAOwnerType.OktaUser
    cred = app.add_access_cred("cred1", "CI token")
    cred.created_at, cred.expires_at = "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"
    cred.last_used_at, cred.can_expire = "2024-06-01T00:00:00Z", True
    cred.set_property("scopes", ["repo", "read:org"])
    cred.add_tag("kind", "pat")
    cred.add_owner("owner@example.com", owner)
    alice = app.add_local_user("alice", identities=["alice@example.com"], groups=["devs"],
                               unique_id="u1")
    alice.email, alice.is_active = "alice@example.com", True
    alice.user_type = oaa.LocalUserType.Human
    alice.created_at, alice.last_login_at = "2023-01-01T00:00:00Z", "2024-01-01T00:00:00Z"
    alice.deactivated_at = "2024-05-01T00:00:00Z"
    alice.password_last_changed_at = "2023-06-01T00:00:00Z"
    alice.add_tag("team", "core")
    alice.set_property("employee_num", 42)
    alice.add_access_cred("cred1")
    alice.add_owner("boss@example.com", owner, is_primary=True)
    svc = app.add_local_user("svc", unique_id="u2")
    svc.is_active, svc.user_type = False, oaa.LocalUserType.ServiceAccount
    devs = app.add_local_group("devs", identities=["devs@example.com"], unique_id="devs")
    devs.created_at = "2023-01-01T00:00:00Z"
    devs.add_group("all")
    devs.set_property("group_kind", "team")
    devs.add_tag("scope", "eng")
    devs.add_owner("owner@example.com", owner)
    app.add_local_group("all", unique_id="all").add_role("Viewer")
    return alice, svc, devs, cred


def _app_roles_and_ai(app: Any) -> Any:
    maintainer = app.add_local_role("Maintainer", ["read", "push", "READ"], unique_id="Maintainer")
    maintainer.add_role("Viewer")
    maintainer.add_tag("tier", "2")
    maintainer.set_property("builtin", True)
    maintainer.add_owner("owner@example.com", oaa.OAAOwnerType.OktaUser)
    app.add_local_role("Viewer", ["read"])
    agent = app.add_agent("support_bot", unique_id="ag1", ai_platform="bedrock",
                          ai_agent_publisher="acme")
    agent.is_active, agent.created_at = True, "2024-03-01T00:00:00Z"
    agent.add_group("devs")
    agent.add_access_cred("cred1")
    agent.add_model("m1")
    agent.set_property("tier", "gold")
    agent.add_tag("kind", "chat")
    agent.add_owner("owner@example.com", oaa.OAAOwnerType.OktaUser)
    model = app.add_model("gpt4", unique_id="m1", ai_platform="openai", ai_model_publisher="OpenAI",
                          ai_model_family="gpt", ai_model_series="4")
    model.created_at = "2024-01-01T00:00:00Z"
    model.set_property("context_window", 128000)
    model.add_tag("family", "gpt")
    model.add_owner("owner@example.com", oaa.OAAOwnerType.OktaUser)
    return agent


def build_application() -> Payload:
    """REFERENCE 2.4 rebuilt with the SDK, plus agents, models, ids, owners and every field."""
    P = oaa.OAAPermission
    app = oaa.CustomApplication("Demo App", application_type="demo", description="demo description")
    _define_app_properties(app)
    app.set_property("region", "us-east")
    app.add_tag("env", "prod")
    app.add_tag("flagonly")
    app.add_owner("owner@example.com", oaa.OAAOwnerType.OktaUser, is_primary=True)
    app.add_custom_permission("read", [P.DataRead, P.MetadataRead])
    app.add_custom_permission("admin", [P.DataRead, P.DataWrite, P.MetadataWrite],
                              apply_to_sub_resources=True)
    app.add_custom_permission("push", [P.DataWrite], resource_types=["repo"])
    app.add_custom_permission("other", [P.NonData, P.Uncategorized])
    repo, main, folder, bare = _app_resources(app)
    alice, svc, devs, cred = _app_identities(app)
    agent = _app_roles_and_ai(app)
    alice.add_permission("read", apply_to_application=True)
    alice.add_permission("push", resources=[repo, main])
    alice.add_permission("read", resources=[folder])
    alice.add_role("Maintainer", resources=[repo], assignment_properties={"granted_by": "bob"})
    alice.add_role("Viewer", apply_to_application=True)
    svc.add_role("Viewer", resources=[bare])
    devs.add_role("Maintainer", apply_to_application=True)
    app.add_idp_identity("carol@example.com").add_permission("admin", resources=[repo])
    cred.add_role("Viewer", apply_to_application=True)
    agent.add_role("Viewer", apply_to_application=True)
    return app.get_payload()


def build_identity_provider() -> Payload:
    """REFERENCE section 3 sample rebuilt with the SDK, plus tags on groups and apps."""
    t = oaa.OAAPropertyType
    idp = oaa.CustomIdPProvider("My IdP", idp_type="ldap", domain="example.com",
                                description="not serialized")
    pd = idp.property_definitions
    pd.define_domain_property("forest", t.STRING)
    pd.define_user_property("badge", t.NUMBER)
    pd.define_group_property("dn", t.STRING)
    pd.define_app_property("sso_kind", t.STRING)
    pd.define_app_assignment_property("granted", t.TIMESTAMP)
    idp.domain.add_tag("site", "hq")
    idp.domain.set_property("forest", "corp")
    alice = idp.add_user("alice", full_name="Alice A", email="alice@example.com", identity="0001")
    alice.department, alice.is_active, alice.is_guest, alice.manager_id = "R&D", True, False, "0002"
    alice.add_groups(["g-eng", "All"])
    alice.add_assumed_role_arns(["arn:aws:iam::123456789012:role/admin"])
    alice.set_source_identity("alice@okta.example.com", oaa.IdPProviderType.ANY)
    alice.add_tag("tier", "gold")
    alice.set_property("badge", 1001)
    alice.add_app_assignment("asg-1", "alice-wiki", "app1",
                             assignment_properties={"granted": "2024-01-01T00:00:00Z"})
    alice.identity_type = oaa.IdPUserIdentityType.Human
    idp.add_user("svc-bot").identity_type = oaa.IdPUserIdentityType.NonHuman
    eng = idp.add_group("Engineering", full_name="Engineering Team", identity="g-eng")
    eng.is_security_group = True
    eng.add_assumed_role_arns(["arn:aws:iam::123456789012:role/eng"])
    eng.add_groups(["All"])
    eng.set_source_identity("eng@example.com", oaa.IdPProviderType.OKTA)
    eng.set_property("dn", "cn=eng")
    eng.add_tag("kind", "team")
    eng.add_app_assignment("asg-g1", "eng-wiki", "app1")
    idp.add_group("All")
    wiki = idp.add_app("app1", "Wiki")
    wiki.description = "Internal wiki"
    wiki.add_assumed_role_arns(["arn:aws:iam::123456789012:role/wiki"])
    wiki.set_property("sso_kind", "saml")
    wiki.add_tag("sso", "saml")
    idp.add_app("app2", "Bare")
    return idp.get_payload()


def build_hris() -> Payload:
    """REFERENCE 4.1 sample rebuilt with the SDK, plus every optional employee field."""
    t = oaa.OAAPropertyType
    hris = oaa.HRISProvider("Acme HR", "acmehr", "https://hr.example.com")
    pd = hris.property_definitions
    pd.define_system_property("region", t.STRING)
    pd.define_employee_property("badge", t.NUMBER)
    pd.define_group_property("code", t.STRING)
    hris.system.add_idp_type(oaa.IdPProviderType.OKTA)
    hris.system.add_idp_type(oaa.IdPProviderType.AZURE_AD)
    hris.add_employee("e2", "Bob Boss", "2", "Bob", "Boss", True, "ACTIVE")
    e = hris.add_employee("e1", "Alice Smith", "1", "Alice", "Smith", False, "TERMINATED")
    e.company, e.preferred_name, e.display_full_name = "Acme", "Ali", "Alice Smith"
    e.canonical_name, e.username, e.email = "smith.alice", "asmith", "alice@example.com"
    e.idp_id, e.personal_email = "00u123", "alice@home.example"
    e.home_location, e.work_location, e.primary_time_zone = "Paris", "Remote", "Europe/Paris"
    e.start_date, e.termination_date = "2020-01-01T00:00:00Z", "2024-01-01T00:00:00Z"
    e.job_title, e.employment_types = "Engineer", ["FULL_TIME"]
    e.set_property("badge", 7)
    e.add_group("d1")
    e.add_manager("e2")
    e.department, e.cost_center = "d1", "cc1"
    hris.add_group("d1", "Engineering", "Department").set_property("code", "ENG")
    hris.add_group("cc1", "CC 100", "Cost Center")
    return hris.get_payload()


BUILDERS: dict[str, Callable[[], Payload]] = {
    "application": build_application,
    "identity_provider": build_identity_provider,
    "hris": build_hris,
}


# ---------------------------------------------------------------------------------------------
# Helpers


def _wire(payload: Payload) -> Payload:
    """The payload as Veza receives it (enums become plain strings)."""
    return json.loads(json.dumps(payload))


@pytest.fixture(scope="module")
def payloads() -> dict[str, Payload]:
    return {template: _wire(build()) for template, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def validators() -> dict[str, PayloadValidator]:
    return {template: PayloadValidator(template) for template in TEMPLATES}


@pytest.fixture(scope="module")
def references() -> dict[str, jsonschema.Draft202012Validator]:
    return {t: jsonschema.Draft202012Validator(load_payload_schema(t)) for t in TEMPLATES}


def _pointer(path: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _reference_pointers(reference: jsonschema.Draft202012Validator, instance: Any) -> set[str]:
    return {_pointer(e.absolute_path) for e in reference.iter_errors(instance)}


def _walk(payload: Payload, pointer: str) -> Any:
    node: Any = payload
    for part in pointer.split("/")[1:]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


# ---------------------------------------------------------------------------------------------
# (b) The schemas themselves


@pytest.mark.parametrize("template", TEMPLATES)
def test_schema_is_valid_draft_2020_12(template: str) -> None:
    schema = load_payload_schema(template)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"]


EXPECTED_DEFS = {
    "application": {"application", "local_user", "local_group", "local_role", "local_access_cred",
                    "local_agent", "local_model", "resource", "permission",
                    "identity_to_permission", "application_permission", "role_assignment", "tag",
                    "owner", "property_definitions"},
    "identity_provider": {"idp_user", "idp_group", "idp_app", "app_assignment", "domain", "tag",
                          "property_definitions", "source_identity"},
    "hris": {"system", "employee", "hris_group", "property_definitions"},
}


@pytest.mark.parametrize("template", TEMPLATES)
def test_schema_defs_are_named_and_closed(template: str) -> None:
    schema = load_payload_schema(template)
    assert EXPECTED_DEFS[template] <= set(schema["$defs"])

    def objects(node: Any) -> Iterable[dict[str, Any]]:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    for obj in objects(schema):
        assert obj["additionalProperties"] is False
        assert set(obj["required"]) <= set(obj["properties"])


def test_unknown_template_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown OAA template 'secret_store'"):
        load_payload_schema("secret_store")


# ---------------------------------------------------------------------------------------------
# (a) Valid SDK payloads


@pytest.mark.parametrize("template", TEMPLATES)
def test_sdk_payload_is_valid(template: str, payloads: dict[str, Payload],
                              validators: dict[str, PayloadValidator],
                              references: dict[str, jsonschema.Draft202012Validator]) -> None:
    payload = payloads[template]
    assert list(validators[template].errors(payload)) == []
    assert validators[template].is_valid(payload)
    assert list(references[template].iter_errors(payload)) == []


@pytest.mark.parametrize("template", TEMPLATES)
def test_sdk_payload_with_enum_members_is_valid(template: str,
                                                validators: dict[str, PayloadValidator]) -> None:
    # get_payload() holds str-subclass enums, not plain strings, before serialization.
    assert list(validators[template].errors(BUILDERS[template]())) == []


def test_sample_exercises_every_entity_kind(payloads: dict[str, Payload]) -> None:
    app = payloads["application"]["applications"][0]
    for key in ("local_users", "local_groups", "local_roles", "local_access_creds",
                "local_agents", "local_models", "owners", "tags", "resources"):
        assert app[key], key
    assert app["resources"][0]["sub_resources"][0]["sub_resources"][0]["id"] == "dir-1"
    kinds = {e["identity_type"] for e in payloads["application"]["identity_to_permissions"]}
    assert kinds == {"local_user", "local_group", "idp", "local_access_creds", "local_agent"}
    assert payloads["identity_provider"]["users"][0]["source_identity"]["provider_type"] == "any"
    employee = payloads["hris"]["employees"][1]
    assert employee["managers"] == [{"id": "e2"}] and employee["department"] == {"id": "d1"}


# ---------------------------------------------------------------------------------------------
# (a) Mutations: the compiled validator agrees with jsonschema on validity and pointers

Mutation = Callable[[Payload], None]
APP = "/applications/0"


def _set(pointer: str, value: Any) -> Mutation:
    def mutate(p: Payload) -> None:
        parent, key = pointer.rsplit("/", 1)
        node = _walk(p, parent)
        node[int(key) if isinstance(node, list) else key] = value
    return mutate


def _delete(pointer: str) -> Mutation:
    def mutate(p: Payload) -> None:
        parent, key = pointer.rsplit("/", 1)
        del _walk(p, parent)[key]
    return mutate


def _append(pointer: str, value: Any) -> Mutation:
    return lambda p: _walk(p, pointer).append(value)


DEFS = "/custom_property_definition/applications/0"
SUB2 = f"{APP}/resources/0/sub_resources/0/sub_resources/0"

# (template, mutation, valid?, pointers of the violations, a message fragment)
MUTATIONS: dict[str, tuple[str, Mutation, bool, set[str], str]] = {
    "unknown-top-level": ("application", _set("/extra", 1), False, {""}, "unknown key `extra`"),
    "unknown-in-app": ("application", _set(f"{APP}/foo", "x"), False, {APP}, "unknown key `foo`"),
    "unknown-in-user": ("application", _set(f"{APP}/local_users/0/is_admin", True), False,
                        {f"{APP}/local_users/0"}, "unknown key `is_admin`"),
    "unknown-in-sub-sub-resource": ("application", _set(f"{SUB2}/parent", "main"), False, {SUB2},
                                    "unknown key `parent`"),
    "unknown-in-role-assignment": ("application",
                                   _set("/identity_to_permissions/0/role_assignments/0/x", 1),
                                   False, {"/identity_to_permissions/0/role_assignments/0"},
                                   "unknown key `x`"),
    "missing-local-agents": ("application", _delete(f"{APP}/local_agents"), False, {APP},
                             "missing required key `local_agents`"),
    "missing-sub-resource-type": ("application", _delete(f"{SUB2}/resource_type"), False, {SUB2},
                                  "missing required key `resource_type`"),
    "missing-tag-value": ("application", _delete(f"{APP}/tags/1/value"), False, {f"{APP}/tags/1"},
                          "missing required key `value`"),
    "identities-not-list": ("application", _set(f"{APP}/local_users/0/identities", "a@b.c"), False,
                            {f"{APP}/local_users/0/identities"}, "expected array, got string"),
    "int-as-bool": ("application", _set(f"{APP}/local_users/0/is_active", 1), False,
                    {f"{APP}/local_users/0/is_active"}, "expected boolean, got number"),
    "zero-as-bool": ("application", _set("/permissions/0/apply_to_sub_resources", 0), False,
                     {"/permissions/0/apply_to_sub_resources"}, "expected boolean, got number"),
    "string-as-bool": ("application", _set(f"{APP}/owners/0/primary", "yes"), False,
                       {f"{APP}/owners/0/primary"}, "expected boolean, got string"),
    "name-too-long": ("application", _set(f"{APP}/local_users/0/name", "x" * 600), False,
                      {f"{APP}/local_users/0/name"}, "is longer than 512 characters (600)"),
    "description-too-long": ("application", _set(f"{APP}/resources/0/description", "d" * 4097),
                             False, {f"{APP}/resources/0/description"},
                             "longer than 4096 characters (4097)"),
    "bad-canonical-permission": ("application",
                                 _set("/permissions/0/permission_type/1", "DataReed"), False,
                                 {"/permissions/0/permission_type/1"},
                                 "`DataReed` is not one of `DataRead`"),
    "bad-identity-type": ("application", _set("/identity_to_permissions/0/identity_type",
                                              "local_role"), False,
                          {"/identity_to_permissions/0/identity_type"}, "is not one of"),
    "bad-user-type": ("application", _set(f"{APP}/local_users/1/user_type", "robot"), False,
                      {f"{APP}/local_users/1/user_type"}, "`robot` is not one of `human`"),
    "bad-tag-key": ("application", _set(f"{APP}/local_users/0/tags/0/key", "team-name"), False,
                    {f"{APP}/local_users/0/tags/0/key"}, "`team-name` does not match"),
    "bad-tag-value": ("application", _set(f"{APP}/tags/0/value", "a/b"), False,
                      {f"{APP}/tags/0/value"}, "`a/b` does not match"),
    "bad-property-name": ("application", _set(f"{DEFS}/local_user_properties/employee-num",
                                              "NUMBER"), False,
                          {f"{DEFS}/local_user_properties"},
                          "property name `employee-num` does not match"),
    "bad-property-type": ("application", _set(f"{DEFS}/local_user_properties/employee_num",
                                              "INTEGER"), False,
                          {f"{DEFS}/local_user_properties/employee_num"}, "is not one of"),
    # null is a valid value (the SDK sends set_property(name, None) as null); an object is not.
    "object-property-value": ("application", _set(f"{APP}/custom_properties/region", {"a": 1}),
                              False, {f"{APP}/custom_properties/region"},
                              "expected string or number or boolean or array or null, got "
                              "object"),
    "non-string-list-item": ("application",
                             _set(f"{APP}/local_access_creds/0/custom_properties/scopes", ["a", 1]),
                             False, {f"{APP}/local_access_creds/0/custom_properties/scopes/1"},
                             "expected string, got number"),
    "bad-key-escaped": ("application",
                        lambda p: p["applications"][0]["custom_properties"].update({"a~b/c": {}}),
                        False,
                        {f"{APP}/custom_properties", f"{APP}/custom_properties/a~0b~1c"},
                        "property name `a~b/c`"),
    "description-number": ("application", _set(f"{APP}/description", 3), False,
                           {f"{APP}/description"}, "expected string or null, got number"),
    "no-applications": ("application", _set("/applications", []), False, {"/applications"},
                        "expected at least 1 item(s), got 0"),
    "two-bad-users": ("application", lambda p: [u.pop("name") for u in
                                                p["applications"][0]["local_users"]], False,
                      {f"{APP}/local_users/0", f"{APP}/local_users/1"},
                      "missing required key `name`"),
    # Values the schema deliberately accepts, like the SDK.
    "ok-null-description": ("application", _set(f"{APP}/description", None), True, set(), ""),
    "ok-bool-in-number-property": ("application",
                                   _set(f"{APP}/local_users/0/custom_properties/employee_num",
                                        True), True, set(), ""),
    "ok-unicode-tag-key": ("application",
                           _append(f"{APP}/tags", {"key": "lettér123_", "value": ""}), True,
                           set(), ""),
    "ok-trailing-newline-name": ("application", _set(f"{DEFS}/application_properties/ok\n",
                                                     "STRING"), True, set(), ""),
    "ok-float-property": ("application", _set(f"{APP}/custom_properties/region", 1.5), True, set(),
                          ""),
    "idp-unknown-in-source-identity": ("identity_provider",
                                       _set("/users/0/source_identity/extra", 1), False,
                                       {"/users/0/source_identity"}, "unknown key `extra`"),
    "idp-bad-provider-type": ("identity_provider", _set("/groups/0/source_identity/provider_type",
                                                        "ldap"), False,
                              {"/groups/0/source_identity/provider_type"}, "is not one of"),
    "idp-two-domains": ("identity_provider", lambda p: p["domains"].append(p["domains"][0]), False,
                        {"/domains"}, "expected at most 1 item(s), got 2"),
    "idp-lowercase-identity-type": ("identity_provider", _set("/users/1/identity_type", "human"),
                                    False, {"/users/1/identity_type"}, "is not one of `HUMAN`"),
    "idp-app-without-description": ("identity_provider", _delete("/apps/1/description"), False,
                                    {"/apps/1"}, "missing required key `description`"),
    "idp-assignment-without-properties": ("identity_provider",
                                          _delete("/groups/0/app_assignments/0/custom_properties"),
                                          False, {"/groups/0/app_assignments/0"},
                                          "missing required key `custom_properties`"),
    "idp-group-ref-as-string": ("identity_provider", _set("/users/0/groups/1", "All"), False,
                                {"/users/0/groups/1"}, "expected object, got string"),
    "idp-bad-definition-name": ("identity_provider",
                                _set("/custom_property_definition/user_properties/badge2",
                                     "NUMBER"), False,
                                {"/custom_property_definition/user_properties"}, "`badge2`"),
    "hris-missing-is-active": ("hris", _delete("/employees/0/is_active"), False, {"/employees/0"},
                               "missing required key `is_active`"),
    "hris-empty-first-name": ("hris", _set("/employees/1/first_name", ""), False,
                              {"/employees/1/first_name"}, "must not be empty"),
    "hris-string-is-active": ("hris", _set("/employees/0/is_active", "true"), False,
                              {"/employees/0/is_active"}, "expected boolean, got string"),
    "hris-bad-idp-provider": ("hris", _append("/system/idp_providers", "ping"), False,
                              {"/system/idp_providers/2"}, "`ping` is not one of"),
    "hris-department-as-string": ("hris", _set("/employees/1/department", "d1"), False,
                                  {"/employees/1/department"}, "expected object, got string"),
    "hris-number-employee-number": ("hris", _set("/employees/0/employee_number", 2), False,
                                    {"/employees/0/employee_number"},
                                    "expected string, got number"),
    "hris-unknown-system-key": ("hris", _set("/system/custom_properties", {}), False, {"/system"},
                                "unknown key `custom_properties`"),
}


@pytest.mark.parametrize("case", MUTATIONS, ids=list(MUTATIONS))
def test_mutation_agrees_with_jsonschema(case: str, payloads: dict[str, Payload],
                                         validators: dict[str, PayloadValidator],
                                         references: dict[str, jsonschema.Draft202012Validator]
                                         ) -> None:
    template, mutate, valid, pointers, fragment = MUTATIONS[case]
    payload = copy.deepcopy(payloads[template])
    mutate(payload)
    violations = list(validators[template].errors(payload))
    assert validators[template].is_valid(payload) is valid
    assert (not violations) is valid
    assert {v.pointer for v in violations} == pointers
    assert _reference_pointers(references[template], payload) == pointers
    assert not violations or any(fragment in v.message for v in violations), violations


# ---------------------------------------------------------------------------------------------
# Fragments, messages and the compiler's contract


def test_fragment_pointers_are_prefixed(validators: dict[str, PayloadValidator]) -> None:
    user = {"name": "n" * 513, "groups": "devs", "shoe_size": 44}
    where = f"{APP}/local_users/3"
    violations = list(validators["application"].errors(user, "local_user", where))
    assert violations == [
        Violation(f"{where}/name", f"`{'n' * 59}…` is longer than 512 characters (513)"),
        Violation(f"{where}/groups", "expected array, got string"),
        Violation(where, "unknown key `shoe_size`"),
    ]
    assert validators["application"].is_valid({"name": "alice"}, "local_user")
    assert list(validators["hris"].errors({"id": "x"}, "id_ref", "/e/0/department")) == []


def test_unknown_definition_is_an_error(validators: dict[str, PayloadValidator]) -> None:
    with pytest.raises(ValueError, match="unknown schema definition 'employee'"):
        list(validators["application"].errors({}, "employee"))


def test_recursive_sub_resources_are_checked_at_any_depth(
        validators: dict[str, PayloadValidator]) -> None:
    leaf: dict[str, Any] = {"name": "leaf", "resource_type": "t", "tags": [{"key": "a b"}]}
    node = leaf
    for depth in range(30):
        node = {"name": f"n{depth}", "resource_type": "t", "sub_resources": [node]}
    violations = list(validators["application"].errors(node, "resource"))
    where = "/sub_resources/0" * 30 + "/tags/0"
    assert violations == [Violation(where, "missing required key `value`"),
                          Violation(f"{where}/key", "`a b` does not match `^[\\w\\d_]+$`")]


def test_false_subschema_points_at_the_value() -> None:
    # jsonschema reports a `false` subschema at the parent (it drops the path); we do not.
    violations = list(SchemaValidator({"properties": {"a": False}}).errors({"a": 1}))
    assert violations == [Violation("/a", "no value is allowed here")]


def test_violation_str() -> None:
    assert str(Violation("/a/0", "unknown key `x`")) == "/a/0: unknown key `x`"
    assert str(Violation("", "expected object, got array")) == "/: expected object, got array"


TYPE_CASES: list[tuple[dict[str, Any], Any]] = [
    ({"type": "number"}, True), ({"type": "number"}, 1.5), ({"type": "number"}, 3),
    ({"type": "integer"}, False), ({"type": "integer"}, 2.0), ({"type": "integer"}, 2.5),
    ({"type": "boolean"}, 0), ({"type": "array"}, (1,)), ({"type": "object"}, []),
    ({"enum": [1, "a"]}, True), ({"enum": [1, "a"]}, 1.0), ({"const": False}, 0),
    ({"const": ["a", 1]}, ["a", 1]), ({"const": {"k": [True]}}, {"k": [1]}),
    ({"type": ["string", "null"], "maxLength": 2}, None), ({"type": ["string", "null"]}, 0),
    ({"maxLength": 2}, 12345), ({"minItems": 1}, "x"), ({"items": {"type": "string"}}, [1]),
    ({"anyOf": [{"type": "string"}, {"type": "boolean"}]}, 1),
    ({"anyOf": [{"type": "string"}, {"type": "boolean"}]}, True),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 1),
    ({"oneOf": [{"type": "number"}, {"type": "string"}]}, 1),
    ({"propertyNames": {"maxLength": 1}, "additionalProperties": {"type": "null"}}, {"ab": 1}),
    ({"additionalProperties": False}, {"b": 1}),
]


@pytest.mark.parametrize(("schema", "instance"), TYPE_CASES, ids=[repr(c) for c in TYPE_CASES])
def test_json_schema_semantics_match_jsonschema(schema: dict[str, Any], instance: Any) -> None:
    # Booleans are not numbers, 2.0 is an integer, tuples are not arrays, enum is JSON equality.
    reference = jsonschema.Draft202012Validator(schema)
    ours = SchemaValidator(schema)
    assert ours.is_valid(instance) is reference.is_valid(instance)
    pointers = {v.pointer for v in ours.errors(instance)}
    assert pointers == {_pointer(e.absolute_path) for e in reference.iter_errors(instance)}


@pytest.mark.parametrize("schema", [
    {"type": "string", "format": "email"},
    {"minimum": 0},
    {"$defs": {"unused": {"uniqueItems": True}}},
    {"$ref": "other.json#/$defs/x"},
    {"$ref": "#/$defs/missing"},
    {"prefixItems": [{"type": "string"}]},
    {"type": "text"},
])
def test_unsupported_schema_fails_at_compile_time(schema: dict[str, Any]) -> None:
    with pytest.raises(NotImplementedError):
        SchemaValidator(schema)
