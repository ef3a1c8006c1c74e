"""Issue 8's entity-level language features: context sources, property definitions and names,
kept nulls and empty strings, inline tables, truncation, headerless CSV and `merge: first`."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import write_case

from oaamap.errors import ContextRecordError, DataErrors, MappingErrors, WarningsAsErrors
from oaamap.evaluate import Evaluation
from oaamap.expressions import ExpressionError, FunctionError, OaamapFunctions, compile_expression
from oaamap.language import PROPERTY_NAME_PATTERN, valid_property_name
from oaamap.pipeline import CompileOptions, compile_mapping, plan_mapping, render_context
from oaamap.rowgen import FALLBACK
from oaamap.schema import mapping_schema

HEAD = """\
oaamap: 1
template: application
provider: P
data_source: D
application: {name: App, type: app}
"""


def compile_case(tmp_path: Path, body: str, files: dict[str, str], head: str = HEAD,
                 **options: Any) -> Any:
    path = write_case(tmp_path, head + textwrap.dedent(body), files)
    return compile_mapping(path, options=CompileOptions(**options))


def mapping_errors(tmp_path: Path, body: str, files: dict[str, str] | None = None,
                   head: str = HEAD) -> list[str]:
    path = write_case(tmp_path, head + textwrap.dedent(body), files or {})
    with pytest.raises(MappingErrors) as info:
        plan_mapping(path)
    return [str(e).replace(str(path), "m.yaml") for e in info.value.errors]


USERS_CSV = "id,login,role,bio\nu1,ann,admin,Grüße\nu2,ben,push,\n"


# -- property names --------------------------------------------------------------------------


def test_property_name_pattern_is_the_sdk_rule_on_every_character() -> None:
    """The schema's pattern accepts exactly the names the SDK's rule (`^[a-z][a-z_]*$` on the
    lower-cased name, `re.match`) accepts, for every one-character name and every character after
    a letter (the Kelvin sign lower-cases to `k`; `$` also matches before a final newline)."""
    pattern = re.compile(PROPERTY_NAME_PATTERN)
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        for name in (char, "a" + char):
            assert (pattern.search(name) is not None) == valid_property_name(name), repr(name)


def test_property_names_keep_their_case(tmp_path: Path) -> None:
    result = compile_case(tmp_path, """\
        sources:
          people: {csv: people.csv}
        users:
          - from: people
            id: id
            name: login
            properties: {NAME: login, Repo_Id: id}
        """, {"people.csv": USERS_CSV})
    user = result.payload["applications"][0]["local_users"][0]
    assert user["custom_properties"] == {"NAME": "ann", "Repo_Id": "u1"}
    defs = result.payload["custom_property_definition"]["applications"][0]
    assert defs["local_user_properties"] == {"NAME": "STRING", "Repo_Id": "STRING"}


def test_property_name_the_sdk_refuses_is_a_mapping_error(tmp_path: Path) -> None:
    errors = mapping_errors(tmp_path, """\
        sources:
          people: {csv: people.csv}
        users:
          - {from: people, id: id, name: login, properties: {team_2: role}}
        """)
    assert "property name `team_2` is invalid" in errors[0]
    assert errors[0].startswith("m.yaml:9:")


# -- property definitions ----------------------------------------------------------------------


def test_declared_definitions_come_first_in_order_even_when_never_set(tmp_path: Path) -> None:
    result = compile_case(tmp_path, """\
        property_definitions:
          users: {Zeta: STRING, level: NUMBER, never_set: BOOLEAN}
          resources:
            repo: {Private: BOOLEAN}
            branch: {protected: BOOLEAN}
        sources:
          people: {csv: people.csv}
        users:
          - from: people
            id: id
            name: login
            properties: {extra: role, zeta: login, level: "'3'"}
        resources:
          - {name: r1, type: repo, properties: {private: true}}
        """, {"people.csv": USERS_CSV})
    defs = result.payload["custom_property_definition"]["applications"][0]
    assert list(defs["local_user_properties"].items()) == [
        ("Zeta", "STRING"), ("level", "NUMBER"), ("never_set", "BOOLEAN"), ("extra", "STRING")]
    assert defs["resources"] == [
        {"resource_type": "repo", "properties": {"Private": "BOOLEAN"}},
        {"resource_type": "branch", "properties": {"protected": "BOOLEAN"}}]
    user = result.payload["applications"][0]["local_users"][0]
    # The declared type converts the value; the name is sent as the rule writes it.
    assert user["custom_properties"] == {"extra": "admin", "zeta": "ann", "level": 3}


def test_definition_mistakes_are_mapping_errors(tmp_path: Path) -> None:
    errors = mapping_errors(tmp_path, """\
        property_definitions:
          users: {level: NUMBER, Level: STRING, since: DATE}
        sources:
          people: {csv: people.csv}
        users:
          - from: people
            id: id
            name: login
            properties: {level: {value: role, type: STRING}}
        """)
    text = "\n".join(errors)
    assert "property `Level` is defined twice (as `level`)" in text
    assert "property type `DATE` is not one of" in text
    assert "property `level` is declared STRING here but NUMBER under `property_definitions:`" \
        in text


def test_definitions_of_another_template_are_refused(tmp_path: Path) -> None:
    errors = mapping_errors(tmp_path, """\
        property_definitions:
          employees: {x: STRING}
        """)
    assert "unexpected key `employees`" in errors[0]


# -- keep_null / keep_empty ----------------------------------------------------------------------


def test_null_and_empty_properties_are_omitted_unless_kept(tmp_path: Path) -> None:
    result = compile_case(tmp_path, """\
        application:
          name: App
          type: app
          properties: {owner: {value: null, keep_null: true}, plan: {value: "", keep_empty: true}}
        sources:
          people: {csv: people.csv, null_values: ["-"]}
        users:
          - from: people
            id: id
            name: login
            properties:
              dropped: bio
              kept_null: {value: "bio == 'x' && bio || `null`", keep_null: true}
              kept_empty: {value: "bio || ''", keep_empty: true}
        groups:
          - from: people
            name: role
            keep_null: true
            keep_empty: true
            properties: {a: "`null`", b: "''", c: {value: "`null`", keep_null: false}}
        """, {"people.csv": USERS_CSV}, head=HEAD.replace("application: {name: App, type: app}\n",
                                                          ""))
    app = result.payload["applications"][0]
    assert app["custom_properties"] == {"owner": None, "plan": ""}
    users = app["local_users"]
    assert users[0]["custom_properties"] == {"dropped": "Grüße", "kept_null": None,
                                             "kept_empty": "Grüße"}
    assert users[1]["custom_properties"] == {"kept_null": None, "kept_empty": ""}
    assert app["local_groups"][0]["custom_properties"] == {"a": None, "b": ""}
    defs = result.payload["custom_property_definition"]["applications"][0]
    assert defs["local_user_properties"]["kept_null"] == "STRING"  # only nulls: STRING


def test_kept_null_is_the_same_on_the_generated_and_generic_paths(tmp_path: Path) -> None:
    path = write_case(tmp_path, HEAD + textwrap.dedent("""\
        sources:
          people: {csv: people.csv}
        users:
          - from: people
            id: id
            name: login
            properties: {bio: {value: bio, keep_null: true}, e: {value: "''", keep_empty: true}}
        """), {"people.csv": USERS_CSV})
    mapping, _ = plan_mapping(path)
    rule = mapping.rules[0]
    records = list(mapping.sources["people"].read(_read_context(mapping)))
    fast = Evaluation("application", render_context(mapping))
    compiled = fast._compile(rule)
    assert compiled.fast is not None
    generic = Evaluation("application", render_context(mapping))
    for record in records:
        row = compiled.fast(record.data, record)
        assert row is not FALLBACK
        slow = generic._row(generic._compile(rule), record, record.data)
        assert slow is not None
        assert (row.values, row.properties) == (slow.values, slow.properties)
    assert [r.properties for r in fast.rows(rule, records)] == [
        {"bio": "Grüße", "e": ""}, {"bio": None, "e": ""}]


def test_keep_null_items_keeps_null_list_elements_on_both_paths(tmp_path: Path) -> None:
    path = write_case(tmp_path, HEAD + textwrap.dedent("""\
        sources:
          people: {json: people.json}
        users:
          - from: people
            id: id
            name: login
            identities: "[email, alt]"
            keep_null_items: [identities]
        """), {"people.json": json.dumps([
            {"id": "1", "login": "a", "email": None, "alt": None},
            {"id": "2", "login": "b", "email": "b@x", "alt": ""},
            {"id": "3", "login": "c", "email": "c@x", "alt": None}])})
    mapping, _ = plan_mapping(path)
    rule = mapping.rules[0]
    records = list(mapping.sources["people"].read(_read_context(mapping)))
    evaluation = Evaluation("application", render_context(mapping))
    compiled = evaluation._compile(rule)
    assert compiled.fast is not None
    for record in records:
        fast = compiled.fast(record.data, record)
        slow = evaluation._row(compiled, record, record.data)
        assert fast is not FALLBACK and slow is not None
        assert fast.values == slow.values
    assert [r.values["identities"] for r in evaluation.rows(rule, records)] == [
        [None], ["b@x"], ["c@x", None]]
    result = compile_mapping(path)
    users = result.payload["applications"][0]["local_users"]
    assert [u["identities"] for u in users] == [[None], ["b@x"], ["c@x", None]]


def test_keep_null_items_names_a_text_list_field(tmp_path: Path) -> None:
    errors = mapping_errors(tmp_path, """\
        sources:
          people: {csv: people.csv}
        users:
          - {from: people, id: id, name: login, keep_null_items: [groups, identities]}
        """)
    assert errors == ["m.yaml:9:59: error: `groups` cannot keep null elements in `users`; "
                      "keep_null_items takes: identities"]


def _read_context(mapping: Any) -> Any:
    from oaamap.sources import ReadContext
    return ReadContext(render_context=render_context(mapping), records_of=lambda n: [])


# -- tables and truncation ---------------------------------------------------------------------


def _functions(**tables: dict[Any, Any]) -> OaamapFunctions:
    functions = OaamapFunctions()
    functions.bind_tables(tables)
    return functions


@pytest.mark.parametrize(("text", "expected"), [
    ("table('roles', p)", "Admin"),
    ("table('roles', 'nope')", None),
    ("table('roles', 'nope', 'Read')", "Read"),
    ("table('roles', missing, 'Read')", "Read"),
    ("table('roles', 'none', 'Read')", None),       # a key whose value is null: null
    ("table('roles', `2`)", "two"),                  # keys compared as text
    ("table('roles', `true`)", "yes"),
    ("truncate(s, `4`)", "Grüß"),
    ("truncate(s, `0`)", ""),
    ("truncate(`12345`, `2`)", "12"),
    ("truncate(missing, `2`)", None),
    ("truncate_bytes(s, `3`)", "Gr"),                # ü is two bytes: never split
    ("truncate_bytes(s, `4`)", "Grü"),
    ("truncate_bytes(e, `7`)", "a🙂"),               # a 4-byte character kept whole
    ("truncate_bytes(e, `8`)", "a🙂"),
    ("truncate_bytes(e, `4`)", "a"),
    ("truncate_bytes(s, `100`)", "Grüße"),
])
def test_table_and_truncate(text: str, expected: Any) -> None:
    functions = _functions(roles={"admin": "Admin", 2: "two", True: "yes", "none": None})
    record = {"p": "admin", "s": "Grüße", "e": "a🙂🙂"}
    assert compile_expression(text, functions).search(record) == expected


def test_truncate_refuses_a_negative_or_fractional_length() -> None:
    for text in ("truncate(s, `-1`)", "truncate_bytes(s, `1.5`)"):
        with pytest.raises(FunctionError, match="whole number of at least 0"):
            compile_expression(text, OaamapFunctions()).search({"s": "abc"})


def test_unknown_table_is_an_error_at_its_column(tmp_path: Path) -> None:
    errors = mapping_errors(tmp_path, """\
        tables:
          roles: {admin: Admin}
        sources:
          people: {csv: people.csv}
        users:
          - {from: people, id: id, name: "table('rols', role)"}
        """)
    assert errors[0].startswith("m.yaml:11:42: error: table('rols') names a table that "
                                "`tables:` does not declare")
    assert "did you mean `roles`?" in errors[0]


def test_table_name_must_be_a_literal() -> None:
    with pytest.raises(ExpressionError, match="table's name as a string literal"):
        compile_expression("table(name, role)", _functions(roles={}))


def test_tables_in_a_compiled_mapping(tmp_path: Path) -> None:
    result = compile_case(tmp_path, """\
        tables:
          roles: {admin: Admin, push: Write}
        sources:
          people: {csv: people.csv}
        roles:
          - {name: Admin}
          - {name: Write}
          - {name: Read}
        users:
          - {from: people, id: id, name: login, roles: "[table('roles', role, 'Read')]"}
        """, {"people.csv": "id,login,role\nu1,ann,admin\nu2,ben,pull\n"})
    grants = result.payload["identity_to_permissions"]
    assert [(g["identity"], g["role_assignments"][0]["role"]) for g in grants] == [
        ("u1", "Admin"), ("u2", "Read")]


# -- headerless CSV ------------------------------------------------------------------------------


def test_csv_columns_read_the_first_row_as_data(tmp_path: Path) -> None:
    result = compile_case(tmp_path, """\
        sources:
          people: {csv: people.csv, columns: [login, email]}
        users:
          - {from: people, name: trim(login), identities: "email && [trim(email)]"}
        """, {"people.csv": "ann, ann@x.com\n bob ,\n"})
    users = result.payload["applications"][0]["local_users"]
    assert [(u["name"], u.get("identities")) for u in users] == [("ann", ["ann@x.com"]),
                                                                 ("bob", None)]


def test_csv_columns_row_too_wide_is_located(tmp_path: Path) -> None:
    with pytest.raises(DataErrors) as info:
        compile_case(tmp_path, """\
            sources:
              people: {csv: people.csv, columns: [login]}
            users:
              - {from: people, name: login}
            """, {"people.csv": "ann\nbob,extra\n"})
    text = str(info.value.errors[0])
    assert "people.csv:2:" in text and "row has 2 cells but the `columns:` has 1" in text


def test_csv_columns_repeated_is_a_mapping_error(tmp_path: Path) -> None:
    errors = mapping_errors(tmp_path, """\
        sources:
          people: {csv: people.csv, columns: [login, " login"]}
        users:
          - {from: people, name: login}
        """)
    assert "column name `login` is repeated" in errors[0]


# -- merge: first --------------------------------------------------------------------------------


DUPLICATES = "id,login,team,title\nu1,ann,a,first\nU1,ann2,b,second\n"


def test_merge_first_keeps_the_first_record_without_a_conflict(tmp_path: Path) -> None:
    result = compile_case(tmp_path, """\
        sources:
          people: {csv: people.csv}
        groups:
          - {from: people, name: team}
        users:
          - from: people
            merge: first
            id: id
            name: login
            groups: "[team]"
            properties: {title: title}
        """, {"people.csv": DUPLICATES}, strict=True)
    user = result.payload["applications"][0]["local_users"][0]
    assert (user["name"], user["groups"], user["custom_properties"]) == (
        "ann", ["a", "b"], {"title": "first"})
    assert result.warnings == []


def test_without_merge_first_the_same_rows_conflict(tmp_path: Path) -> None:
    with pytest.raises(WarningsAsErrors):
        compile_case(tmp_path, """\
            sources:
              people: {csv: people.csv}
            users:
              - {from: people, id: id, name: login}
            """, {"people.csv": DUPLICATES}, warnings_as_errors=True)


def test_merge_first_does_not_fill_a_null_of_the_first_record(tmp_path: Path) -> None:
    result = compile_case(tmp_path, """\
        sources:
          people: {csv: people.csv}
        users:
          - {from: people, merge: first, id: id, name: login, email: title}
        """, {"people.csv": "id,login,title\nu1,ann,\nu1,ann,x@y\n"})
    assert "email" not in result.payload["applications"][0]["local_users"][0]


def test_merge_policy_is_checked_by_the_schema(tmp_path: Path) -> None:
    errors = mapping_errors(tmp_path, """\
        sources:
          people: {csv: people.csv}
        users:
          - {from: people, merge: last, id: id, name: login}
        """)
    assert "'last' is not one of ['first']" in errors[0]


def test_merge_on_grants_is_a_mapping_error(tmp_path: Path) -> None:
    errors = mapping_errors(tmp_path, """\
        sources:
          people: {csv: people.csv}
        grants:
          - {from: people, merge: first, user: id, role: role}
        """)
    assert "`merge:` applies to entities; `grants` rows are not merged" in errors[0]


# -- context sources -----------------------------------------------------------------------------


CONTEXT_HEAD = """\
oaamap: 1
template: application
provider: "P {{ account.name }}"
data_source: "pd - {{ account.subdomain }}"
context: [account]
"""


def test_context_record_names_provider_data_source_and_application(tmp_path: Path) -> None:
    result = compile_case(tmp_path, """\
        sources:
          account: {json: account.json}
          people: {csv: "{{ account.file }}"}
        application: {name: "App {{ account.subdomain }}", type: app}
        roles:
          - {name: "Owner of {{ account.name }}"}
        users:
          - {from: people, id: id, name: login}
          - {from: account, id: "'admin'", name: "concat('admin@', subdomain)"}
        """, {"account.json": json.dumps([{"subdomain": "acme", "name": "Acme",
                                           "file": "people.csv"}]),
              "people.csv": USERS_CSV}, head=CONTEXT_HEAD)
    assert (result.provider, result.data_source) == ("P Acme", "pd - acme")
    app = result.payload["applications"][0]
    assert app["name"] == "App acme"
    assert app["local_roles"][0]["name"] == "Owner of Acme"
    assert [u["name"] for u in app["local_users"]] == ["ann", "ben", "admin@acme"]
    assert result.records["account"] == 1


@pytest.mark.parametrize(("records", "count"), [([], 0), ([{"a": 1}, {"a": 2}], 2)])
def test_context_source_must_yield_one_record(tmp_path: Path, records: list[Any],
                                              count: int) -> None:
    with pytest.raises(ContextRecordError) as info:
        compile_case(tmp_path, """\
            sources:
              account: {json: account.json}
              people: {csv: missing.csv}
            application: {name: App, type: app}
            users:
              - {from: people, id: id, name: login}
            """, {"account.json": json.dumps(records)}, head=CONTEXT_HEAD)
    assert info.value.source == "account" and info.value.records == count
    assert info.value.exit_code == 3
    assert f"must yield exactly one record, got {count}" in str(info.value)


def test_context_mistakes_are_mapping_errors(tmp_path: Path) -> None:
    errors = mapping_errors(tmp_path, """\
        sources:
          account: {json: "{{ account.path }}"}
          env: {json: e.json}
        application: {name: "{{ acount.name }}", type: app}
        """, head=CONTEXT_HEAD.replace("[account]", "[account, acount2, env]"))
    text = "\n".join(errors)
    assert "`context:` names unknown source `acount2`" in text
    assert "a context source cannot be named `env`" in text
    # A context source cannot read itself; a misspelt one is unknown (with what is available).
    assert "unknown template variable `account` in `{{ account.path }}` (available here: env, " \
        "vars)" in text
    assert "unknown template variable `acount` in `{{ acount.name }}` (available here: " \
        "account, env, vars)" in text


def test_context_is_in_the_schema() -> None:
    properties = mapping_schema()["properties"]
    assert {"context", "tables", "property_definitions"} <= set(properties)
