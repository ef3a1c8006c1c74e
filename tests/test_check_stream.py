"""Stage 8 on bigger sections: batched item checks keep each violation's pointer and row, and the
per-name shortcuts of the entity checks agree with the full checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from oaamap.check import _check_properties, _PropertyRules
from oaamap.errors import PayloadErrors
from oaamap.model import Entity
from oaamap.pipeline import compile_mapping

MAPPING = """\
oaamap: 1
template: application
provider: Demo
data_source: demo
sources:
  people: {csv: people.csv}
application: {name: Demo, type: Demo}
groups:
  - {name: staff}
users:
  - from: people
    name: login
    groups: "[team]"
    properties:
      title: title
"""


def _people(rows: int, changes: dict[int, tuple[str, str, str]]) -> str:
    lines = ["login,team,title"]
    for i in range(rows):
        lines.append(",".join(changes.get(i, (f"u{i}", "staff", "Engineer"))))
    return "\n".join(lines) + "\n"


def _errors(tmp_path: Path, people: str) -> list[tuple[str, str]]:
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    (tmp_path / "people.csv").write_text(people)
    with pytest.raises(PayloadErrors) as caught:
        compile_mapping(tmp_path / "mapping.yaml")
    return [(p.pointer, str(p.ref).rsplit("/", 1)[-1]) for p in caught.value.errors]


def test_a_violation_in_a_later_batch_has_its_own_pointer_and_row(tmp_path: Path) -> None:
    errors = _errors(tmp_path, _people(100, {70: ("n" * 513, "staff", "x")}))
    assert errors == [("/applications/0/local_users/70/name", "people.csv:72")]


def test_violations_in_several_batches_are_each_reported(tmp_path: Path) -> None:
    changes = {3: ("a" * 600, "staff", "x"), 40: ("b", "staff", "t" * 5000),
               99: ("c", "nope", "x")}
    errors = dict(_errors(tmp_path, _people(100, changes)))
    assert errors["/applications/0/local_users/3/name"] == "people.csv:5"
    assert errors["/applications/0/local_users/99"] == "people.csv:101"  # unknown group
    assert any(p.startswith("/applications/0/local_users/40") for p in errors)


def test_a_clean_section_compiles(tmp_path: Path) -> None:
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    (tmp_path / "people.csv").write_text(_people(100, {}))
    result = compile_mapping(tmp_path / "mapping.yaml")
    assert len(result.payload["applications"][0]["local_users"]) == 100


TYPES = {"users": {"level": "NUMBER", "Title": "STRING", "on": "BOOLEAN",
                   "since": "TIMESTAMP", "tags_": "STRING_LIST"}}


@pytest.mark.parametrize("properties", [
    {}, {"title": "x"}, {"TITLE": 3}, {"level": 3}, {"level": "3"}, {"level": True},
    {"on": False}, {"on": "yes"}, {"since": "2020-01-02T03:04:05Z"}, {"since": "yesterday"},
    {"tags_": ["a", "b"]}, {"tags_": ["a", 1]}, {"Bad-Name": "x"}, {"free": "t" * 4097},
    {"free": "t" * 4096}, {"level": None}, {"free": None}, {"free": 2.5},
])
def test_the_fast_property_test_agrees_with_the_full_one(properties: dict[str, object]) -> None:
    entity = Entity("users", "ann", {"name": "ann"}, properties, (), None, None)
    rules = _PropertyRules(TYPES)
    found = list(_check_properties(entity, "users", rules, "/x"))
    for _ in range(2):  # the second time from the per-name cache
        assert rules.fine(entity, "users") == (not found)
