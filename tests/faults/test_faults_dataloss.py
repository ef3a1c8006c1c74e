"""Fault suite, area "no silent loss of rows or entities" (issue 7, point 1).

Each hostile input must fail the run with the documented exit code and a message located at the
mapping's `file:line:col` or the data's `source:line`, and nothing may be written or pushed. The
control cases pin what must keep working (a field null in some rows, an empty source, an explicit
`@.field`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy
from helpers import CliResult, run_cli, write_case
from http_server import LocalServer, Reply, Req
from veza_helpers import KEY

from oaamap.veza.emulator import EmulatorHandle

D = textwrap.dedent

APP = D("""\
    oaamap: 1
    template: application
    provider: P
    data_source: D
    sources:
      people: {csv: data/people.csv}
    application: {name: App, type: app}
    """)
IDP = D("""\
    oaamap: 1
    template: identity_provider
    provider: P
    data_source: D
    sources:
      people: {csv: data/people.csv}
    idp: {name: Dir, type: custom, domain: example.com}
    """)
HRIS = D("""\
    oaamap: 1
    template: hris
    provider: P
    data_source: D
    sources:
      people: {csv: data/people.csv}
    system: {name: HR, type: custom}
    """)
PEOPLE = "id,name,email,team\nu1,ann,ann@x.test,eng\nu2,bob,bob@x.test,ops\n"


def position(text: str, needle: str) -> str:
    """`line:col` (1-based) of the first `needle` in a mapping as written to disk."""
    text = textwrap.dedent(text)
    before = text[: text.index(needle)]
    return f"{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"


@dataclass
class Case:
    """A mapping and its data files; `located` are `{mapping}`/`{data}`-relative substrings of the
    expected error text (formatted with the case's paths)."""

    mapping: str
    files: dict[str, str | bytes]
    code: int
    located: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


def _write(folder: Path, case: Case) -> Path:
    text_files = {k: v for k, v in case.files.items() if isinstance(v, str)}
    path = write_case(folder, case.mapping, text_files)
    for name, content in case.files.items():
        if isinstance(content, bytes):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(content)
    return path


def compile_to_file(tmp_path: Path, case: Case) -> tuple[CliResult, Path, Path]:
    """Run `oaamap compile MAPPING -o out/payload.json`; returns the result, mapping and output."""
    path = _write(tmp_path, case)
    out = tmp_path / "out" / "payload.json"
    out.parent.mkdir()
    result = run_cli("compile", str(path), "-o", str(out), *case.flags)
    return result, path, out


def assert_failed_cleanly(result: CliResult, case: Case, mapping: Path, out: Path) -> None:
    """The exit code, every located message, and no payload file (not even a partial one)."""
    assert result.code == case.code, result.err
    for expected in case.located:
        assert expected.format(mapping=mapping, data=mapping.parent / "data") in result.err, \
            result.err
    assert list(out.parent.iterdir()) == [], "a failed run wrote a payload"
    assert result.out == ""


# -- a field no record has, an identifier null in every row ---------------------------------

MISSPELT = APP + D("""\
    users:
      - from: people
        id: id
        name: name
        email: emial
    """)
WHERE_MISSING = APP + D("""\
    users:
      - from: people
        where: "status == 'active'"
        id: id
        name: name
    """)
PROPERTY_MISSING = APP + D("""\
    users:
      - from: people
        id: id
        name: name
        properties:
          department: dept
    """)
ID_NULL = APP + D("""\
    users:
      - from: people
        id: id
        name: name
    """)
GRANT_NULL = APP + D("""\
    users:
      - {from: people, id: id, name: name}
    roles:
      - {name: "'viewer'"}
    grants:
      - from: people
        user: login
        role: "'viewer'"
    """)
LOOKUP_MISSING = APP.replace("people: {csv: data/people.csv}",
                             "people: {csv: data/people.csv}\n  teams: {csv: data/teams.csv}") \
    + D("""\
    users:
      - from: people
        id: id
        name: name
        groups: "lookup('teams', 'cdoe', team).title"
    groups:
      - {from: teams, name: title}
    """)
IDP_IDENTITY_MISSING = IDP + D("""\
    users:
      - from: people
        identity: uid
        name: name
    """)
IDP_IDENTITY_NULL = IDP + D("""\
    users:
      - from: people
        identity: uid
        name: name
    """)
HRIS_ID_NULL = HRIS + D("""\
    employees:
      - from: people
        id: employee_id
        name: name
        first_name: name
        last_name: name
        is_active: "`true`"
        employment_status: "'ACTIVE'"
    """)

LOSS_CASES = {
    "misspelt-field": Case(MISSPELT, {"data/people.csv": PEOPLE}, 4, (
        "{mapping}:" + position(MISSPELT, "emial") + ": error: users[0]: no record of source "
        "`people` has a field `emial`",
        "the records have: `id`, `name`, `email`, `team`", "rule: emial")),
    "where-reads-missing-field": Case(WHERE_MISSING, {"data/people.csv": PEOPLE}, 4, (
        "{mapping}:" + position(WHERE_MISSING, "\"status") + ": error: users[0]: no record of "
        "source `people` has a field `status`, so `where` would be null",)),
    "property-reads-missing-field": Case(PROPERTY_MISSING, {"data/people.csv": PEOPLE}, 4, (
        "{mapping}:" + position(PROPERTY_MISSING, "dept") + ": error: users[0]: no record of "
        "source `people` has a field `dept`, so `properties.department` would be null",)),
    "identifier-null-every-row": Case(ID_NULL, {"data/people.csv": "id,name\n,ann\n,bob\n"}, 4, (
        "{mapping}:" + position(ID_NULL, "id\n") + ": error: users[0]: `id` is null in every "
        "row of source `people` (2 rows), so the rule defines no users",)),
    "grant-identity-null-every-row": Case(
        GRANT_NULL, {"data/people.csv": "id,name,login\nu1,ann,\nu2,bob,\n"}, 4, (
            "{mapping}:" + position(GRANT_NULL, "login") + ": error: grants[0]: `user` is null "
            "in every row of source `people` (2 rows)",)),
    "lookup-key-field-missing": Case(LOOKUP_MISSING, {
        "data/people.csv": PEOPLE, "data/teams.csv": "code,title\neng,Engineering\n"}, 4, (
        "{mapping}:" + position(LOOKUP_MISSING, "\"lookup(") + ": error: lookup('teams', 'cdoe', "
        "...): no record of source `teams` has a field `cdoe`",)),
    "idp-identity-column-missing": Case(IDP_IDENTITY_MISSING, {"data/people.csv": PEOPLE}, 4, (
        "{mapping}:" + position(IDP_IDENTITY_MISSING, "uid") + ": error: users[0]: no record of "
        "source `people` has a field `uid`",)),
    "idp-identity-null-every-row": Case(
        IDP_IDENTITY_NULL, {"data/people.csv": "uid,name\n,ann\n,bob\n"}, 4, (
            "{mapping}:" + position(IDP_IDENTITY_NULL, "uid") + ": error: users[0]: `identity` "
            "is null in every row of source `people` (2 rows), so every one would be "
            "identified by its name",)),
    "hris-employee-id-null-every-row": Case(
        HRIS_ID_NULL, {"data/people.csv": "employee_id,name\n,ann\n,bob\n"}, 4, (
            "{mapping}:" + position(HRIS_ID_NULL, "employee_id") + ": error: employees[0]: `id` "
            "is null in every row of source `people` (2 rows)",)),
}


@pytest.mark.parametrize("case", LOSS_CASES.values(), ids=LOSS_CASES.keys())
def test_a_rule_that_would_lose_every_row_fails(tmp_path: Path, case: Case) -> None:
    """A field no record has, or an identifier null in every row: exit 4, located, no file."""
    result, mapping, out = compile_to_file(tmp_path, case)
    assert_failed_cleanly(result, case, mapping, out)
    assert "nothing was written or pushed" in result.err


OPTIONAL = APP + D("""\
    users:
      - from: people
        id: id
        name: name
        email: "@.mail"
    """)
KEPT_CASES = {
    # A field null in some rows only: those rows are skipped and counted, as documented.
    "identifier-null-in-some-rows": (ID_NULL, "id,name\nu1,ann\n,bob\n", ["ann"]),
    # An empty source defines nothing, and that is not a loss.
    "empty-source": (ID_NULL, "id,name\n", []),
    # `@.field` reads a field that may be absent from every record, on purpose.
    "explicit-optional-field": (OPTIONAL, "id,name\nu1,ann\n", ["ann"]),
    # A row with fewer cells than the header: the missing cells are null (documented).
    "fewer-cells-are-null": (MISSPELT.replace("emial", "email"), "id,name,email\nu1,ann\n",
                             ["ann"]),
}


@pytest.mark.parametrize(("mapping", "csv", "names"), KEPT_CASES.values(), ids=KEPT_CASES.keys())
def test_legitimate_nulls_still_compile(tmp_path: Path, mapping: str, csv: str,
                                        names: list[str]) -> None:
    """Controls: what looks like a loss but is not still compiles (exit 0)."""
    result, _, out = compile_to_file(tmp_path, Case(mapping, {"data/people.csv": csv}, 0))
    assert result.code == 0, result.err
    users = json.loads(out.read_text())["applications"][0]["local_users"]
    assert [u["name"] for u in users] == names


def test_idp_identity_null_in_some_rows_falls_back_per_row(tmp_path: Path) -> None:
    """The SDK's per-row fallback (identity := name) is kept for an occasional null."""
    case = Case(IDP_IDENTITY_NULL, {"data/people.csv": "uid,name\nA1,ann\n,bob\n"}, 0)
    result, _, out = compile_to_file(tmp_path, case)
    assert result.code == 0, result.err
    users = json.loads(out.read_text())["users"]
    assert [(u["name"], u["identity"]) for u in users] == [("ann", "A1"), ("bob", "bob")]


# -- warnings as errors, and -q -----------------------------------------------------------------

CONFLICT = APP + D("""\
    users:
      - from: people
        id: id
        name: name
        email: email
    """)
CONFLICT_CSV = "id,name,email\nu1,ann,ann@x.test\nu1,ann,other@x.test\n"
UNUSED = APP.replace("people: {csv: data/people.csv}",
                     "people: {csv: data/people.csv}\n  spare: {csv: data/people.csv}") + \
    CONFLICT.removeprefix(APP)

WARNING_CASES = {
    "warnings-as-errors-conflict": Case(CONFLICT, {"data/people.csv": CONFLICT_CSV}, 4, (
        "{data}/people.csv:3: error: users `u1`: `email` is `ann@x.test` (from "
        "{data}/people.csv:2) but `other@x.test` here; the first value is kept",
        "1 warning treated as error"), flags=("--warnings-as-errors",)),
    "strict-turns-mapping-warnings-into-errors": Case(UNUSED, {"data/people.csv": PEOPLE}, 4, (
        "{mapping}:" + position(UNUSED, "spare") + ": error: source `spare` is declared but no "
        "rule uses it",), flags=("--strict",)),
    "strict-conflict-is-a-data-error": Case(CONFLICT, {"data/people.csv": CONFLICT_CSV}, 4, (
        "{data}/people.csv:3: error: users `u1`: `email` is `ann@x.test`",
        "two rows give different values"), flags=("--strict",)),
}


@pytest.mark.parametrize("case", WARNING_CASES.values(), ids=WARNING_CASES.keys())
def test_warnings_as_errors_write_nothing(tmp_path: Path, case: Case) -> None:
    """`--warnings-as-errors` / `--strict`: any warning fails the run (exit 4), nothing written."""
    result, mapping, out = compile_to_file(tmp_path, case)
    assert_failed_cleanly(result, case, mapping, out)
    assert "warning:" not in result.err  # shown as errors, not twice


def test_quiet_keeps_the_warnings_that_changed_the_payload(tmp_path: Path) -> None:
    """-q hides an unused source, never a conflicting value that was resolved."""
    path = write_case(tmp_path, UNUSED, {"data/people.csv": CONFLICT_CSV})
    result = run_cli("compile", str(path), "-q", "-o", str(tmp_path / "p.json"))
    assert result.code == 0
    data = tmp_path / "data" / "people.csv"
    assert result.err == (f"{data}:3: warning: users `u1`: `email` is `ann@x.test` (from "
                          f"{data}:2) but `other@x.test` here; the first value is kept\n")


BAD_BOOL = APP + D("""\
    users:
      - {from: people, id: id, name: name, is_active: "to_bool(active)"}
    """)
NOTHING_GRANTED = APP + D("""\
    users:
      - {from: people, id: id, name: name}
    permissions:
      - {name: read, canonical: [DataRead]}
    grants:
      - {from: people, user: id, permission: "'read'", apply_to_application: "`false`"}
    """)
QUIET_CASES = {
    "skipped-row-under-skip": (BAD_BOOL, "id,name,active\nu1,ann,yes\nu2,bob,maybe\n",
                               ("--on-data-error", "skip"),
                               "people.csv:3: warning: row skipped: `is_active`: to_bool"),
    "skipped-rows-under-warn": (BAD_BOOL, "id,name,active\nu1,ann,yes\nu2,bob,maybe\n",
                                ("--on-data-error", "warn"),
                                "warning: 1 row with data errors was skipped"),
    "grant-that-grants-nothing": (NOTHING_GRANTED, "id,name\nu1,ann\n", (),
                                  "people.csv:2: warning: grant applies to neither the "
                                  "application nor any resource; it grants nothing"),
    "conflicts-beyond-the-first-20": (
        CONFLICT, "id,name,email\n" + "".join(f"u1,ann,a{i}@x.test\n" for i in range(23)),
        ("-v",),
        "warning: 2 more conflicting values (the first value of each entity was kept)"),
}


@pytest.mark.parametrize(("mapping", "csv", "flags", "shown"), QUIET_CASES.values(),
                         ids=QUIET_CASES.keys())
def test_quiet_never_hides_a_payload_change(tmp_path: Path, mapping: str, csv: str,
                                            flags: tuple[str, ...], shown: str) -> None:
    """-q: rows skipped, a grant dropped, conflicts counted past the cap are still printed."""
    path = write_case(tmp_path, mapping, {"data/people.csv": csv})
    result = run_cli("compile", str(path), "-q", "-o", str(tmp_path / "p.json"), *flags)
    assert result.code == 0, result.err
    assert shown in result.err
    assert "oaamap: read" not in result.err  # the summary line stays hidden


def test_run_with_warnings_as_errors_pushes_nothing(tmp_path: Path, emulator: EmulatorHandle,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`run --warnings-as-errors` with a warning: exit 4 and not one request reaches Veza."""
    monkeypatch.setenv("VEZA_URL", emulator.url)
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    path = write_case(tmp_path, CONFLICT, {"data/people.csv": CONFLICT_CSV})
    result = run_cli("run", str(path), "--warnings-as-errors", "--state-dir",
                     str(tmp_path / "state"))
    assert result.code == 4, result.err
    assert "people.csv:3: error: users `u1`" in result.err
    assert emulator.requests == []


def test_run_with_a_missing_field_pushes_nothing(tmp_path: Path, emulator: EmulatorHandle,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt field fails `run` before Veza is contacted."""
    monkeypatch.setenv("VEZA_URL", emulator.url)
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    path = write_case(tmp_path, MISSPELT, {"data/people.csv": PEOPLE})
    result = run_cli("run", str(path), "--state-dir", str(tmp_path / "state"))
    assert result.code == 4, result.err
    assert f"{path}:{position(MISSPELT, 'emial')}: error:" in result.err
    assert emulator.requests == []


# -- malformed CSV --------------------------------------------------------------------------

BIG = "x" * 140_000
CSV_CASES = {
    "unclosed-quote-swallows-the-file": Case(ID_NULL, {
        "data/people.csv": 'id,name\nu1,ann\nu2,"bob\nu3,cid\nu4,dan\n'}, 4, (
        "{data}/people.csv:3: error: source `people`: a quoted cell of the row starting on line "
        "3 is never closed: it swallows the file to its end (line 5)",)),
    "unclosed-quote-beyond-the-field-limit": Case(ID_NULL, {
        "data/people.csv": f'id,name\nu1,ann\nu2,"bob\n{BIG}\nu4,dan\n'}, 4, (
        "{data}/people.csv:3: error: source `people`: a cell starting on line 3 is longer than "
        "131,072 characters",)),
    "text-after-a-closing-quote": Case(ID_NULL, {
        "data/people.csv": 'id,name\nu1,"ann" smith\n'}, 4, (
        "{data}/people.csv:2: error: source `people`: text follows the closing quote",)),
    "nul-byte": Case(ID_NULL, {"data/people.csv": b"id,name\nu1,ann\nu2,b\x00ob\n"}, 4, (
        "{data}/people.csv:3: error: source `people`: a NUL byte at column 5",)),
    "more-cells-than-the-header": Case(ID_NULL, {
        "data/people.csv": "id,name\nu1,ann\nu2,bob,extra\n"}, 4, (
        "{data}/people.csv:3: error: source `people`: row has 3 cells but the header has 2",)),
    "invalid-utf8-far-into-the-file": Case(ID_NULL, {
        "data/people.csv": b"id,name\n" + b"u,ann\n" * 30_000 + b"u9,b\xffob\n"}, 4, (
        "{data}/people.csv:30002: error: source `people`: cannot decode the line as utf-8-sig at "
        "byte 5 (invalid start byte)",)),
}


@pytest.mark.parametrize("case", CSV_CASES.values(), ids=CSV_CASES.keys())
def test_malformed_csv_is_a_located_data_error(tmp_path: Path, case: Case) -> None:
    """Malformed CSV never becomes fewer or merged rows: exit 4 at `file:line`, no payload."""
    result, mapping, out = compile_to_file(tmp_path, case)
    assert_failed_cleanly(result, case, mapping, out)


def test_a_declared_utf16_file_is_not_taken_for_nul_bytes(tmp_path: Path) -> None:
    """Control: UTF-16 writes a NUL byte in every ASCII character; declared, it is read."""
    mapping = ID_NULL.replace("people: {csv: data/people.csv}",
                              "people: {csv: data/people.csv, encoding: utf-16}")
    case = Case(mapping, {"data/people.csv": "id,name\nu1,ann\n".encode("utf-16")}, 0)
    result, _, out = compile_to_file(tmp_path, case)
    assert result.code == 0, result.err
    assert json.loads(out.read_text())["applications"][0]["local_users"][0]["name"] == "ann"


# -- JSON shapes and non-finite numbers -----------------------------------------------------

JSON_APP = APP.replace("people: {csv: data/people.csv}", "people: {json: data/people.json}")
JSON_RECORDS = JSON_APP.replace("people: {json: data/people.json}",
                                "people: {json: data/people.json, records: data}")
JSON_USERS = D("""\
    users:
      - from: people
        id: id
        name: name
    """)
JSON_CASES = {
    "object-keyed-by-id": Case(JSON_APP + JSON_USERS, {"data/people.json": json.dumps(
        {"u1": {"id": "u1", "name": "ann"}, "u2": {"id": "u2", "name": "bob"}})}, 3, (
        "error: source `people` ({data}/people.json): the document is an object keyed by `u1`, "
        "`u2` whose values are all objects: read as one record it would define one entity, not "
        "2; `records: \"values(@)\"` gives one record per value",)),
    "records-selects-a-wrapper": Case(JSON_RECORDS + JSON_USERS, {"data/people.json": json.dumps(
        {"data": {"users": [{"id": "u1", "name": "ann"}], "next": None}})}, 3, (
        "`records: data` is an object of objects and lists with no field of its own (`users`, "
        "`next`): it holds records rather than being one; e.g. `records: data.users`",)),
    "records-selects-a-container": Case(JSON_RECORDS + JSON_USERS, {"data/people.json": json.dumps(
        {"data": {"users": [{"id": "u1", "name": "ann"}], "groups": []}})}, 3, (
        "`records: data` is an object of objects and lists with no field of its own (`users`, "
        "`groups`): it holds records rather than being one; e.g. `records: data.users`",)),
    "scalar-document": Case(JSON_APP + JSON_USERS, {"data/people.json": "42"}, 3, (
        "the document is a number `42`, not an object or a list of objects",)),
    "list-of-strings": Case(JSON_APP + JSON_USERS, {"data/people.json": '["ann", "bob"]'}, 3, (
        "the document is a list of 2 strings, not a list of objects",
        '`records: "[*].{{value: @}}"`')),
    "nan-in-a-document": Case(JSON_APP + JSON_USERS, {
        "data/people.json": '[{"id": "u1", "name": "ann"}, {"id": "u2", "name": "bob", '
                            '"score": NaN}]'}, 4, (
        "{data}/people.json[#1]: error: source `people`: `NaN` at `score` is not a number",)),
    "infinity-in-json-lines": Case(JSON_APP.replace("people.json", "people.jsonl") + JSON_USERS, {
        "data/people.jsonl": '{"id": "u1", "name": "ann"}\n{"id": "u2", "name": "bob", '
                             '"limits": {"max": -Infinity}}\n'}, 4, (
        "{data}/people.jsonl:2: error: source `people`: `-Infinity` at `limits.max`",)),
    "invalid-utf8-in-json-lines": Case(
        JSON_APP.replace("people.json", "people.jsonl") + JSON_USERS, {
            "data/people.jsonl": b'{"id": "u1", "name": "ann"}\n' * 5000
            + b'{"id": "u2", "name": "b\xc3\x28ob"}\n'}, 4, (
            "{data}/people.jsonl:5001: error: source `people`: cannot decode the line as "
            "utf-8-sig at byte 24 (invalid continuation byte)",)),
    "invalid-utf8-in-a-document": Case(JSON_APP + JSON_USERS, {
        "data/people.json": b'[{"id": "u1",\n "name": "\xffann"}]'}, 4, (
            "{data}/people.json:2: error: source `people`: cannot decode the line as utf-8-sig "
            "at byte 11 (invalid start byte)",)),
    "overflowing-number": Case(JSON_APP + JSON_USERS, {
        "data/people.json": '[{"id": "u1", "name": "ann", "quota": [1, 1e999]}]'}, 4, (
        "{data}/people.json[#0]: error: source `people`: `Infinity` at `quota[1]`",)),
}


@pytest.mark.parametrize("case", JSON_CASES.values(), ids=JSON_CASES.keys())
def test_json_of_the_wrong_shape_or_with_nan_fails(tmp_path: Path, case: Case) -> None:
    """A JSON shape that is not records names the shape and the fix; NaN/Infinity: exit 4."""
    result, mapping, out = compile_to_file(tmp_path, case)
    assert_failed_cleanly(result, case, mapping, out)


def test_one_object_can_still_be_one_record(tmp_path: Path) -> None:
    """Control: an object with scalar fields is one record, and `[@]` says so explicitly."""
    mapping = JSON_RECORDS.replace("records: data", "records: '[@]'") + JSON_USERS
    case = Case(mapping, {"data/people.json": json.dumps({"id": "u1", "name": "ann",
                                                          "team": {"x": 1}})}, 0)
    result, _, out = compile_to_file(tmp_path, case)
    assert result.code == 0, result.err
    assert json.loads(out.read_text())["applications"][0]["local_users"][0]["name"] == "ann"


# -- SQL and HTTP non-finite numbers ----------------------------------------------------------

SQL_APP = APP.replace("people: {csv: data/people.csv}",
                      "people: {sql: {url: 'sqlite:///data/people.db', query: \"{query}\"}}")


@pytest.mark.parametrize(("query", "row", "column"), [
    ("SELECT 'u1' AS id, 'ann' AS name, 1e999 AS score", 1, "score"),
    ("SELECT id, name, score FROM people ORDER BY id", 2, "score"),
], ids=["select-1e999", "real-column-holding-infinity"])
def test_sql_infinity_is_a_data_error(tmp_path: Path, query: str, row: int, column: str) -> None:
    """A float column holding NaN/Infinity: exit 4 naming `source:row` and the column."""
    (tmp_path / "data").mkdir()
    with sqlite3.connect(tmp_path / "data" / "people.db") as db:
        db.execute("CREATE TABLE people (id TEXT, name TEXT, score REAL)")
        db.executemany("INSERT INTO people VALUES (?, ?, ?)",
                       [("u1", "ann", 1.5), ("u2", "bob", float("-inf"))])
    mapping = SQL_APP.replace("{query}", query) + JSON_USERS
    case = Case(mapping, {}, 4, (f"people:{row}: error: source `people`: column `{column}`: "
                                 "the value `",))
    result, path, out = compile_to_file(tmp_path, case)
    assert_failed_cleanly(result, case, path, out)
    assert "cannot be represented in JSON" in result.err


@pytest.fixture(scope="module")
def postgres_url() -> str:
    """The test PostgreSQL server (as tests/sources finds it), or a skip naming why."""
    url = os.environ.get("OAAMAP_TEST_POSTGRES_URL",
                         "postgresql+psycopg://oaamap:oaamap@127.0.0.1:5432/oaamap_test")
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as e:  # any failure to connect means: no server here
        pytest.skip(f"no PostgreSQL server reachable: {type(e).__name__}")
    return url


@pytest.mark.parametrize(("value", "shown"), [
    ("'NaN'::float8", "nan"), ("'-Infinity'::float8", "-inf"), ("'NaN'::numeric", "NaN"),
], ids=["float8-nan", "float8-minus-infinity", "numeric-nan"])
def test_postgres_nan_is_a_data_error(tmp_path: Path, postgres_url: str, value: str,
                                      shown: str) -> None:
    """PostgreSQL returns NaN/Infinity for float8 and numeric: exit 4 at `source:row`."""
    query = f"SELECT 'u1' AS id, 'ann' AS name, 1.5::float8 AS score UNION ALL " \
            f"SELECT 'u2', 'bob', {value}::float8" if "float8" in value else \
            f"SELECT 'u1' AS id, 'ann' AS name, {value} AS score"
    mapping = APP.replace("people: {csv: data/people.csv}",
                          f"people: {{sql: {{url: '{postgres_url}', query: \"{query}\"}}}}") + \
        JSON_USERS
    row = 2 if "float8" in value else 1
    case = Case(mapping, {}, 4, (f"people:{row}: error: source `people`: column `score`: the "
                                 f"value `{shown}` cannot be represented in JSON",))
    result, path, out = compile_to_file(tmp_path, case)
    assert_failed_cleanly(result, case, path, out)


@pytest.fixture
def nan_server() -> Iterator[LocalServer]:
    """An API answering a page whose JSON has a NaN, as Python's json.dumps writes one."""
    with LocalServer() as server:
        @server.route("/users")
        def users(req: Req) -> Reply:
            return Reply(raw=b'[{"id": "u1", "name": "ann", "score": NaN}]',
                         headers={"Content-Type": "application/json"})
        yield server


def test_http_response_with_nan_is_refused(tmp_path: Path, nan_server: LocalServer) -> None:
    """An HTTP body with NaN is not JSON: the source fails (exit 3), nothing is written."""
    mapping = APP.replace("people: {csv: data/people.csv}",
                          f"people: {{http: {{url: '{nan_server.url('/users')}'}}}}") + JSON_USERS
    case = Case(mapping, {}, 3, ("the response is not JSON", "`NaN` is not a JSON number"))
    result, path, out = compile_to_file(tmp_path, case)
    assert_failed_cleanly(result, case, path, out)


@pytest.fixture
def keyed_server() -> Iterator[LocalServer]:
    """An API answering an object keyed by id (one object per user), not a list of users."""
    with LocalServer() as server:
        @server.route("/users")
        def users(req: Req) -> Reply:
            return Reply(raw=b'{"u1": {"id": "u1", "name": "ann"}, "u2": {"id": "u2", '
                             b'"name": "bob"}}', headers={"Content-Type": "application/json"})
        yield server


def test_http_object_keyed_by_id_is_not_one_record(tmp_path: Path,
                                                   keyed_server: LocalServer) -> None:
    """Read as one record, an object keyed by id would become one entity: the source fails and
    names the shape and the `records:` that fixes it."""
    mapping = APP.replace("people: {csv: data/people.csv}",
                          f"people: {{http: {{url: '{keyed_server.url('/users')}'}}}}") + JSON_USERS
    case = Case(mapping, {}, 3, ("an object keyed by `u1`, `u2` whose values are all objects",
                                 'records: "values(@)"'))
    result, path, out = compile_to_file(tmp_path, case)
    assert_failed_cleanly(result, case, path, out)
