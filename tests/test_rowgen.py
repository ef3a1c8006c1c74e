"""The generated row functions agree with the generic evaluation loop on every row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import write_case

from oaamap.errors import Origin
from oaamap.evaluate import Evaluation
from oaamap.pipeline import plan_mapping, render_context
from oaamap.rowgen import FALLBACK
from oaamap.sources import Record

RULES = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  rows: {json: rows.json}
application: {name: A, type: a}
users:
  - from: rows
    id: id
    name: "name || concat('user-', id)"
    email: "!disabled && email"
    groups: "teams"
    identities: "[email, alt]"
    is_active: "to_bool(active)"
    created_at: created
    user_type: kind
grants:
  - {from: rows, user: id, role: role, resources: "res && [res]"}
"""

RECORDS = [
    {"id": "1", "name": "ann", "email": "a@x", "teams": ["t1", "t1", None], "active": "yes",
     "created": "2021-03-04", "kind": "Human", "role": "r", "res": "x"},
    {"id": 2, "name": None, "email": "b@x", "disabled": True, "teams": "t2", "active": True,
     "alt": "b2@x", "role": "", "res": ""},
    {"id": "", "name": "nobody", "role": "r"},
    {"id": "4", "name": "d", "active": "maybe", "role": "r", "res": ["a", "b"]},
    {"id": "5", "name": "e", "created": "yesterday", "kind": "robot", "role": None},
    {"id": "6", "name": "f", "teams": [], "email": "", "alt": 7, "role": "r", "res": 0},
    {"id": "7", "name": {"nested": 1}, "role": "r"},
]


@pytest.fixture
def evaluation_and_rules(tmp_path: Path) -> tuple[Evaluation, list[Any]]:
    path = write_case(tmp_path, RULES, {"rows.json": json.dumps(RECORDS)})
    mapping, _ = plan_mapping(path)
    return Evaluation("application", render_context(mapping)), list(mapping.rules)


def _summary(row: Any) -> Any:
    return None if row is None else (row.values, row.properties, row.tags)


@pytest.mark.parametrize("index", range(len(RECORDS)))
@pytest.mark.parametrize("rule_index", [0, 1], ids=["users", "grants"])
def test_fast_path_matches_generic(evaluation_and_rules: tuple[Evaluation, list[Any]],
                                   index: int, rule_index: int) -> None:
    """Either the generated function gives the generic loop's row, or it defers to it."""
    evaluation, rules = evaluation_and_rules
    compiled = evaluation._compile(rules[rule_index])
    record = Record(dict(RECORDS[index]), Origin("rows", "rows.json", "index"), index)
    fast = compiled.fast(record.data, record)
    generic = Evaluation("application", evaluation.context)._row(compiled, record, record.data)
    if fast is not FALLBACK:
        assert _summary(fast) == _summary(generic)


def test_fast_path_is_taken_for_ordinary_rows(
        evaluation_and_rules: tuple[Evaluation, list[Any]]) -> None:
    """The ordinary rows do not fall back (the point of generating the function)."""
    evaluation, rules = evaluation_and_rules
    compiled = evaluation._compile(rules[1])
    record = Record(dict(RECORDS[0]), Origin("rows", "rows.json", "index"), 0)
    row = compiled.fast(record.data, record)
    assert row is not FALLBACK and row.values == {"user": "1", "role": "r", "resources": ["x"]}


CSV_RULES = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  rows: {csv: rows.csv, null_values: ["N/A"]}
  people: {csv: people.csv}
application: {name: A, type: a}
permissions:
  - {name: read, canonical: [DataRead]}
roles:
  - {name: r, permissions: [read]}
  - {name: R2, permissions: [read]}
resources:
  - {name: x, type: t}
  - {name: y, type: t}
users:
  - {from: people, name: login}
grants:
  - {from: rows, user: "user || alt", role: role, resources: "res && [res]"}
"""

# Rows that take every path: ordinary, null-value cells, a short row, a quoted multi-line cell,
# an empty role (skipped), an empty user (skipped), a role spelled in another case.
CSV_ROWS = (
    'user,role,res,alt\n'
    'ann,r,x,\n'
    'N/A,r,y,bob\n'
    'bob,R2\n'
    '"ann",r,"y",\n'
    'cy,,x,\n'
    ',r,x,\n'
    'ann,R,N/A,\n'
)


def _spy_cell_functions(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    made: list[Any] = []
    original = Evaluation._cell_function

    def spy(self: Evaluation, *args: Any) -> Any:
        made.append(original(self, *args))
        return made[-1]

    monkeypatch.setattr(Evaluation, "_cell_function", spy)
    return made


def test_cell_rows_match_record_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CSV cell path (no dict per row) gives the record path's payload, skips and counts."""
    from oaamap.pipeline import CompileOptions, compile_mapping

    made = _spy_cell_functions(monkeypatch)
    path = write_case(tmp_path, CSV_RULES, {"rows.csv": CSV_ROWS,
                                            "people.csv": "login\nann\nbob\ncy\n"})
    cells = compile_mapping(path)
    assert len(made) == 2 and all(made)  # users and grants read cells
    records = compile_mapping(path, options=CompileOptions(limit=1_000))  # reads records
    assert cells.payload_json() == records.payload_json()
    assert cells.records == records.records == {"rows": 7, "people": 3}
    assert cells.entities.skipped == records.entities.skipped == 2
    grants = {g.identity: g.ref for g in cells.entities.grants}
    assert str(grants["ann"]) == str(grants["ann"]).split(":")[0] + ":2"
    assert str(grants["bob"]).endswith(":3")


def test_cell_rows_report_errors_with_the_record(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A row the generated function cannot decide goes to the generic loop with its record."""
    from oaamap.errors import DataErrors
    from oaamap.pipeline import compile_mapping

    made = _spy_cell_functions(monkeypatch)
    mapping = CSV_RULES.replace('user: "user || alt"', 'user: "user || alt", '
                                'apply_to_application: flag').replace(
        "rows: {csv: rows.csv", "rows: {csv: rows.csv, columns: [user, role, res, alt, flag]")
    path = write_case(tmp_path, mapping, {"rows.csv": 'ann,r,x\n"b\nob",r,x,,maybe\n',
                                          "people.csv": "login\nann\n"})
    with pytest.raises(DataErrors) as caught:
        compile_mapping(path)
    assert made[-1] is not None
    error = caught.value.errors[0]
    assert str(error.ref).endswith(":2") and error.record["flag"] == "maybe"


def test_cell_function_needs_plain_fields(
        evaluation_and_rules: tuple[Evaluation, list[Any]]) -> None:
    """A rule reading a function of the record, or a field the header lacks, gets none."""
    evaluation, rules = evaluation_and_rules
    users = evaluation._compile(rules[0])
    columns = {name: i for i, name in enumerate(RECORDS[0])}
    assert evaluation._cell_function(users, tuple(columns), frozenset({""})) is None
    grants = evaluation._compile(rules[1])
    fast = evaluation._cell_function(grants, tuple(columns), frozenset({""}))
    assert fast is not None
    cells = [str(v) if v is not None else "" for v in
             {**dict.fromkeys(columns, ""), "id": "1", "role": "r", "res": "x"}.values()]
    record = Record({}, Origin("rows", "rows.csv", "line"), 2)
    assert fast(cells, record).values == {"user": "1", "role": "r", "resources": ["x"]}


EXTRAS_RULES = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  rows: {json: rows.json}
application: {name: A, type: a}
users:
  - from: rows
    id: id
    name: "lower(name)"
    is_active: "to_bool(active)"
    properties:
      title: title
      level: {value: level, type: NUMBER}
      since: {value: created, type: TIMESTAMP}
      note: {value: note, keep_null: true, keep_empty: true}
      fixed: 7
    tags:
      - {key: team, value: team}
      - {key: env, value: prod}
groups:
  - from: rows
    name: id
    tags: "tags"
"""

EXTRAS_RECORDS = [
    {"id": "1", "name": "Ann", "active": "yes", "title": "Dev", "level": "3",
     "created": "2021-03-04", "note": "", "team": "t1", "tags": [{"key": "a", "value": "b"}]},
    {"id": "2", "name": "Bob", "active": "maybe", "title": None, "level": 4.5},
    {"id": "3", "name": 7, "active": True, "level": "high", "team": 5, "tags": {"key": "k"}},
    {"id": "4", "name": "Cy", "created": "yesterday", "note": None, "tags": "bad"},
    {"id": "5", "name": None, "title": "", "level": None, "tags": [{"key": "x", "value": None}]},
]


@pytest.mark.parametrize("index", range(len(EXTRAS_RECORDS)))
@pytest.mark.parametrize("rule_index", [0, 1], ids=["users", "groups"])
def test_generated_properties_and_tags_match_generic(tmp_path: Path, index: int,
                                                     rule_index: int) -> None:
    """Properties, tags and registered function calls computed by the generated function agree
    with the generic loop, or defer to it."""
    path = write_case(tmp_path, EXTRAS_RULES, {"rows.json": json.dumps(EXTRAS_RECORDS)})
    mapping, _ = plan_mapping(path)
    evaluation = Evaluation("application", render_context(mapping))
    compiled = evaluation._compile(list(mapping.rules)[rule_index])
    record = Record(dict(EXTRAS_RECORDS[index]), Origin("rows", "rows.json", "index"), index)
    fast = compiled.fast(record.data, record)
    generic = Evaluation("application", evaluation.context)._row(compiled, record, record.data)
    if fast is not FALLBACK:
        assert _summary(fast) == _summary(generic)
    if index == 0:
        assert fast is not FALLBACK  # the ordinary row takes the generated path


CELL_EXTRAS_RULES = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  people: {csv: people.csv}
  depts: {csv: depts.csv}
application: {name: A, type: a}
roles:
  - {name: admin, permissions: []}
groups:
  - {from: depts, name: dept}
users:
  - from: people
    id: id
    name: "lower(login)"
    email: email
    identities: "email && [email]"
    groups: "[dept]"
    roles: "role && [role]"
    is_active: "to_bool(active)"
    created_at: created
    properties:
      title: title
      level: {value: level, type: NUMBER}
      note: {value: note, keep_empty: true}
    tags:
      - {key: dept, value: dept}
"""

# Ordinary rows, a repeated user (merged: a conflict, a second group, a property), a null-value
# cell, a short row, a date to normalise, a value of another type for one property.
CELL_EXTRAS_PEOPLE = (
    "id,login,email,dept,role,active,created,title,level,note\n"
    "u1,Ann,a@x,d1,admin,yes,2021-03-04T00:00:00Z,Dev,3,\n"
    "u2,BOB,b@x,d2,,no,2021-03-04,Ops,4.5,n\n"
    "U1,ann,a2@x,d2,,yes,2021-03-04T00:00:00Z,Lead,3,x\n"
    "u3,cy,,d1,admin,1\n"
    "u4,dee,d@x,d3,,false,1614816000,,,\n"
)
DEPTS = "dept\nd1\nd2\nd3\nd2\n"


def test_cell_rows_with_properties_match_record_rows(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule with properties, tags and function calls reads cells and hands its rows to the
    builder's entity sink; the payload, warnings and refs are the generic path's."""
    from oaamap.pipeline import CompileOptions, compile_mapping

    made = _spy_cell_functions(monkeypatch)
    path = write_case(tmp_path, CELL_EXTRAS_RULES, {"people.csv": CELL_EXTRAS_PEOPLE,
                                                    "depts.csv": DEPTS})
    cells = compile_mapping(path)
    assert len(made) == 2 and all(made)  # groups and users read cells
    observed: list[Any] = []
    generic = compile_mapping(path, options=CompileOptions(limit=1_000,
                                                           observe=observed.append))
    assert len(observed) == 10  # no sink: every row went through a RuleRow
    assert cells.payload_json() == generic.payload_json()
    assert [w.message for w in cells.warnings] == [w.message for w in generic.warnings]
    conflicts = [(w.message.split(":")[0], str(w.ref).rsplit(":", 1)[1]) for w in cells.warnings]
    assert conflicts == [("users `u1`", "4")] * 2  # `email` and `properties.title`
    users = cells.entities.sections["users"]
    assert [str(u.ref).rsplit(":", 1)[1] for u in users] == ["2", "3", "5", "6"]
    assert cells.entities.property_types == generic.entities.property_types


def test_cell_function_errors_go_to_the_generic_loop(tmp_path: Path) -> None:
    """A registered function that raises on a cell (to_bool of `maybe`) defers the row to the
    generic loop, which reports it with its line."""
    from oaamap.errors import DataErrors
    from oaamap.pipeline import compile_mapping

    people = CELL_EXTRAS_PEOPLE.replace("u3,cy,,d1,admin,1", "u3,cy,,d1,admin,maybe")
    path = write_case(tmp_path, CELL_EXTRAS_RULES, {"people.csv": people, "depts.csv": DEPTS})
    with pytest.raises(DataErrors) as caught:
        compile_mapping(path)
    error = caught.value.errors[0]
    assert str(error.ref).endswith(":5") and "to_bool" in str(error)


ONE_CELL_LISTS = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  people: {csv: people.csv}
  again: {csv: people.csv}
application: {name: A, type: a}
groups:
  - {name: d1}
users:
  - from: people
    name: login
    groups: "[dept]"
    identities: "email && [email]"
  - from: again
    name: "join('-', [login, 'x'])"
    identities: "[email]"
    keep_null_items: [identities]
"""


def test_one_cell_lists_match_record_rows(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`[x]` and `x && [x]` of a cell (empty or not) give the record path's lists; a field in
    `keep_null_items` keeps its own normaliser (a null item kept)."""
    from oaamap.pipeline import CompileOptions, compile_mapping

    made = _spy_cell_functions(monkeypatch)
    path = write_case(tmp_path, ONE_CELL_LISTS, {"people.csv": "login,dept,email\nann,d1,a@x\n"
                                                               "bob,,\n"})
    cells = compile_mapping(path)
    assert made[0] is not None  # the first users rule reads cells
    records = compile_mapping(path, options=CompileOptions(limit=1_000))
    assert cells.payload_json() == records.payload_json()
    users = {u["name"]: u for u in cells.payload["applications"][0]["local_users"]}
    assert users["ann"]["groups"] == ["d1"] and users["ann"]["identities"] == ["a@x"]
    assert "groups" not in users["bob"] and "identities" not in users["bob"]
