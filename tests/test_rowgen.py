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
