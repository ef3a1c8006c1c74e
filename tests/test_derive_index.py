"""`derive` `each` with `index: NAME`: the element's position in its parent's list."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli, write_case

MAPPING = """\
oaamap: 1
template: application
provider: Demo
data_source: demo
sources:
  teams: {json: teams.json}
  members:
    derive: {from: teams, parent: team, each: {m: members}, index: %s}
application: {name: Demo, type: Demo}
users:
  - from: members
    name: m
    properties: {position: pos, team: team.name}
"""
DATA = {"teams.json": json.dumps([{"name": "a", "members": ["ann", "bob"]},
                                  {"name": "b", "members": ["cy"]}])}


def test_each_record_holds_its_position(tmp_path: Path) -> None:
    mapping = write_case(tmp_path, MAPPING % "pos", DATA)
    result = run_cli("compile", str(mapping), "--quiet")
    assert result.code == 0, result.err
    users = json.loads(result.out)["applications"][0]["local_users"]
    assert [(u["name"], u["custom_properties"]["position"]) for u in users] == [
        ("ann", 0), ("bob", 1), ("cy", 0)]


def test_the_index_name_must_not_clash(tmp_path: Path) -> None:
    mapping = write_case(tmp_path, MAPPING % "team", DATA)
    result = run_cli("validate", str(mapping))
    assert result.code == 2
    assert "`index` must be a field name other than `m` and `team`, got `team`" in result.err


def test_index_applies_to_each_only(tmp_path: Path) -> None:
    text = (MAPPING % "pos").replace("{from: teams, parent: team, each: {m: members}, index: pos}",
                                     "{from: teams, distinct: {m: members}, index: pos}")
    mapping = write_case(tmp_path, text.replace("team: team.name", "n: m"), DATA)
    result = run_cli("validate", str(mapping))
    assert result.code == 2
    assert "`index` applies to `each`, not to `distinct`" in result.err
