"""Stages 5-7 end to end on small mappings: merging, nulls, the id rule, grants, payload shape."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import write_case

from oaamap.errors import DataErrors, PayloadErrors
from oaamap.pipeline import CompileOptions, compile_mapping

APP = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  rows: {csv: rows.csv}
application: {name: App, type: app}
"""


def compile_app(tmp_path: Path, rules: str, csv: str, **options: Any) -> Any:
    path = write_case(tmp_path, APP + textwrap.dedent(rules), {"rows.csv": csv})
    return compile_mapping(path, options=CompileOptions(**options))


def test_merge_by_case_insensitive_id_unions_lists_keeps_first_scalar(tmp_path: Path) -> None:
    """Repeated rows merge: lists unioned in first-seen order, first non-null scalar kept,
    a later different value is a warning naming both rows."""
    result = compile_app(tmp_path, """\
        groups:
          - {from: rows, name: g}
        users:
          - from: rows
            name: login
            email: email
            groups: "[g]"
        """, "login,email,g\nalice,,eng\nALICE,a@x,ops\nalice,b@x,eng\n")
    users = result.payload["applications"][0]["local_users"]
    assert users == [{"name": "alice", "email": "a@x", "groups": ["eng", "ops"]}]
    assert [str(w) for w in result.warnings] == [
        f"{tmp_path / 'rows.csv'}:4: warning: users `alice`: `email` is `a@x` (from "
        f"{tmp_path / 'rows.csv'}:2) but `b@x` here; the first value is kept"]


def test_strict_makes_conflicts_errors(tmp_path: Path) -> None:
    """--strict: a conflicting value fails the run."""
    with pytest.raises(DataErrors, match="`email` is `a@x`"):
        compile_app(tmp_path, "users:\n  - {from: rows, name: login, email: email}\n",
                    "login,email\nalice,a@x\nalice,b@x\n", strict=True)


def test_null_identifier_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    """A row whose id is null is skipped and counted in the summary, never silently."""
    result = compile_app(tmp_path, "users:\n  - {from: rows, id: uid, name: login}\n",
                         "uid,login\n1,a\n,b\n2,c\n")
    assert [u["id"] for u in result.payload["applications"][0]["local_users"]] == ["1", "2"]
    assert result.entities.skipped == 1


def test_the_id_rule(tmp_path: Path) -> None:
    """If any user, group or role has an id, all are emitted with one (defaulting to the name)."""
    result = compile_app(tmp_path, """\
        roles:
          - {name: viewer}
        groups:
          - {from: rows, name: g}
        users:
          - {from: rows, id: uid, name: login, groups: "[g]"}
        """, "uid,login,g\n7,a,eng\n")
    app = result.payload["applications"][0]
    assert app["local_users"] == [{"name": "a", "groups": ["eng"], "id": "7"}]
    assert app["local_groups"] == [{"name": "eng", "id": "eng"}]
    assert app["local_roles"] == [{"name": "viewer", "id": "viewer"}]


def test_grants_group_like_the_sdk(tmp_path: Path) -> None:
    """identity_to_permissions: app-level first, resource grants grouped per permission,
    roles merged (resources deduplicated, apply_to_application kept), sub-resource paths."""
    result = compile_app(tmp_path, """\
        permissions:
          - {name: read, canonical: [DataRead]}
        roles:
          - {name: admin, permissions: [read]}
        resources:
          - {name: repo, type: repo}
          - {name: main, type: branch, parent: repo}
        users:
          - {from: rows, name: u}
        grants:
          - from: rows
            user: u
            role: role
            resources: "res && [res]"
          - from: rows
            user: u
            permission: "'read'"
            resources: "res && [res]"
        """, "u,role,res\nann,admin,\nann,admin,main\nann,admin,MAIN\nann,admin,repo\n")
    assert result.payload["identity_to_permissions"] == [{
        "identity": "ann", "identity_type": "local_user",
        "application_permissions": [
            {"application": "App", "permission": "read", "apply_to_application": True},
            {"application": "App", "resources": ["repo.main", "repo"], "permission": "read"}],
        "role_assignments": [{"application": "App", "role": "admin",
                              "apply_to_application": True,
                              "resources": ["repo.main", "repo"]}]}]


def test_dangling_references_are_all_reported_with_rows(tmp_path: Path) -> None:
    """Every reference to an entity no rule defines is an error naming its row."""
    with pytest.raises(PayloadErrors) as info:
        compile_app(tmp_path, """\
            users:
              - {from: rows, name: u, groups: "[g]"}
            grants:
              - {from: rows, user: u, role: "'ghost'"}
            """, "u,g\nann,eng\n")
    messages = sorted(str(e) for e in info.value.errors)
    assert messages == [
        f"{tmp_path / 'rows.csv'}:2: error: local_user `ann` is granted role `ghost` that no "
        "`roles` rule defines (at /identity_to_permissions/0)",
        f"{tmp_path / 'rows.csv'}:2: error: users `ann` names groups `eng` but no `groups` rule "
        "defines it (at /applications/0/local_users/0)"]


def test_cycles_in_nested_groups(tmp_path: Path) -> None:
    """Nested groups must not form a cycle."""
    with pytest.raises(PayloadErrors, match="nested groups form a cycle: a -> b -> a"):
        compile_app(tmp_path, "groups:\n  - {from: rows, name: g, groups: '[p]'}\n",
                    "g,p\na,b\nb,a\n")


@pytest.mark.parametrize(("props", "csv", "expected"), [
    ("n: {value: v, type: NUMBER}", "v\n42\n", {"n": 42}),
    ("n: {value: v, type: BOOLEAN}", "v\nyes\n", {"n": True}),
    ("n: {value: v, type: TIMESTAMP}", "v\n2020-01-02\n", {"n": "2020-01-02T00:00:00Z"}),
    ("n: {value: v, type: TIMESTAMP}", "v\n2000-01-01T00:00:00.000Z\n",
     {"n": "2000-01-01T00:00:00.000Z"}),
    ("n: {value: \"split(v, ',')\", type: STRING_LIST}", "v\n\"a,b\"\n", {"n": ["a", "b"]}),
    ("n: v", "v\nx\n", {"n": "x"}),
    ("n: \"to_bool(v)\"", "v\nno\n", {"n": False}),
])
def test_property_types(tmp_path: Path, props: str, csv: str, expected: dict) -> None:
    """Declared types convert CSV text; undeclared types are inferred."""
    result = compile_app(tmp_path, f"users:\n  - from: rows\n    name: \"'u'\"\n"
                                   f"    properties: {{{props}}}\n", csv)
    assert result.payload["applications"][0]["local_users"][0]["custom_properties"] == expected


def test_data_errors_name_row_rule_and_value(tmp_path: Path) -> None:
    """A value that cannot fit its field is a data error with row, rule and record."""
    with pytest.raises(DataErrors) as info:
        compile_app(tmp_path, "users:\n  - {from: rows, name: u, is_active: a}\n",
                    "u,a\nann,yes\n")
    error = info.value.errors[0]
    assert str(error.ref) == f"{tmp_path / 'rows.csv'}:2"
    assert error.render() == (
        f"{tmp_path / 'rows.csv'}:2: error: users[0]: `is_active`: expected a boolean, got a "
        "string `yes`; convert it with to_bool(...)\n"
        f"  rule: a   ({tmp_path / 'mapping.yaml'}:9:38)\n"
        '  record: {"u": "ann", "a": "yes"}')


def test_skip_policy_keeps_going(tmp_path: Path) -> None:
    """--on-data-error=skip: the bad row is skipped with a warning."""
    result = compile_app(tmp_path, "users:\n  - {from: rows, name: u, is_active: a}\n",
                         "u,a\nann,yes\nbob,\n", on_data_error="skip")
    assert [u["name"] for u in result.payload["applications"][0]["local_users"]] == ["bob"]
    assert "row skipped" in str(result.warnings[0])


def test_unknown_field_is_an_error(tmp_path: Path) -> None:
    """A field no record has is a data error naming the available fields (issue 7: it was a
    warning, and the field was silently never sent)."""
    with pytest.raises(DataErrors) as info:
        compile_app(tmp_path, "users:\n  - {from: rows, name: u, email: mail}\n",
                    "u,email\nann,a@x\n")
    text = info.value.render()
    assert "no record of source `rows` has a field `mail`" in text
    assert "the records have: `u`, `email`" in text


def test_each_and_where(tmp_path: Path) -> None:
    """`each` runs once per list element (added to the record); `where` filters."""
    result = compile_app(tmp_path, """\
        groups:
          - from: rows
            where: "active == 'y'"
            each: {g: "split(groups, '|')"}
            name: g
        """, "groups,active\na|b,y\nb|c,n\n")
    assert [g["name"] for g in result.payload["applications"][0]["local_groups"]] == ["a", "b"]


def test_resource_parent_cycles_are_errors(tmp_path: Path) -> None:
    """Resources whose parents form a cycle would vanish from the tree: that is an error."""
    with pytest.raises(PayloadErrors, match="nested resources form a cycle: r3 -> r4 -> r3"):
        compile_app(tmp_path, "resources:\n  - {from: rows, name: n, type: \"'t'\", parent: p}\n",
                    "n,p\nr1,\nr3,r4\nr4,r3\n")


def test_enums_are_matched_case_insensitively_and_emitted_canonically(tmp_path: Path) -> None:
    """`dataread` is Veza's `DataRead` (the SDK's enums only take the canonical spelling)."""
    result = compile_app(tmp_path, "permissions:\n  - {from: rows, name: n, canonical: \"[c]\"}\n",
                         "n,c\nread,dataread\nwrite,DATAWRITE\n")
    assert [p["permission_type"] for p in result.payload["permissions"]] == [["DataRead"],
                                                                             ["DataWrite"]]


def test_grant_rows_without_a_role_are_skipped_and_counted(tmp_path: Path) -> None:
    """A grant row whose role cell is empty grants nothing: skipped and counted."""
    result = compile_app(tmp_path, """\
        roles: [{name: admin}]
        users: [{from: rows, name: who}]
        grants: [{from: rows, user: who, role: role}]
        """, "who,role\nann,admin\nann,\n")
    assert result.entities.skipped == 1
    assert len(result.payload["identity_to_permissions"]) == 1


def test_payload_errors_in_sub_resources_name_their_row(tmp_path: Path) -> None:
    """A schema violation deep in the resource tree points at the sub-resource's own row."""
    with pytest.raises(PayloadErrors) as info:
        compile_app(tmp_path, "resources:\n  - {from: rows, name: n, type: \"'t'\", parent: p, "
                              "tags: [{key: env, value: tag}]}\n",
                    "n,p,tag\nr1,,ok\nr2,r1,bad/value\n")
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'rows.csv'}:3: error: tag value `bad/value` has characters Veza rejects "
        "(letters, digits, spaces and `_ , @ . -` only) (at "
        "/applications/0/resources/0/sub_resources/0/tags/0/value)"]


def test_mixed_inferred_property_types_ask_for_a_declared_type(tmp_path: Path) -> None:
    """Values of several types for one property: declare the type (never coerced silently)."""
    (tmp_path / "m.json").write_text('[{"n": "a", "v": 5}, {"n": "b", "v": "five"}]')
    path = write_case(tmp_path, APP.replace("rows: {csv: rows.csv}", "rows: {json: m.json}")
                      + "users:\n  - {from: rows, name: n, properties: {v: v}}\n", {})
    with pytest.raises(PayloadErrors, match="has values of several types \\(NUMBER, STRING\\)"):
        compile_mapping(path)


def test_constant_lists_are_not_shared_between_entities(tmp_path: Path) -> None:
    """A constant list in a derived rule is merged per entity, never mutated in place."""
    result = compile_app(tmp_path, """\
        groups: [{name: all}, {name: extra}]
        users:
          - {from: rows, name: u, groups: [all]}
          - {from: rows, name: u, groups: "extra_group && [extra_group]"}
        """, "u,extra_group\nann,extra\nbob,\n")
    users = result.payload["applications"][0]["local_users"]
    assert [u["groups"] for u in users] == [["all", "extra"], ["all"]]


def test_lookup_of_a_field_no_record_has_fails_at_the_expression(tmp_path: Path) -> None:
    """A misspelt lookup key field makes every lookup null: a data error naming the mapping line
    (issue 7: it was a warning)."""
    path = write_case(tmp_path, APP.replace("rows: {csv: rows.csv}",
                                            "rows: {csv: rows.csv}\n  d: {csv: d.csv}")
                      + "users:\n  - {from: rows, name: u, email: \"lookup('d', 'cdoe', u).m\"}\n",
                      {"rows.csv": "u\nann\n", "d.csv": "code,m\nann,a@x\n"})
    with pytest.raises(DataErrors) as info:
        compile_mapping(path)
    assert f"{path}:10:34: error: lookup('d', 'cdoe', ...): no record of source `d` has a " \
        "field `cdoe`, so every lookup would be null (the records have: `code`, `m`)" in \
        [str(e) for e in info.value.errors]
