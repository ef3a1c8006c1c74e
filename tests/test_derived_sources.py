"""The `derive` source kind: fan-out over list elements, distinct values, recursive trees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import write_case

from oaamap.errors import DataErrors, MappingErrors
from oaamap.pipeline import compile_mapping

HEAD = """\
oaamap: 1
template: application
provider: P
data_source: D
application: {name: App, type: app}
sources:
  repos: {json: repos.json}
"""
REPOS = [
    {"name": "api", "members": [{"login": "ann", "role": "Admin"},
                                {"login": "bob", "role": "read"}]},
    {"name": "web", "members": []},
    {"name": "cli", "members": {"login": "cy", "role": "ADMIN"}},
    {"name": "doc"},
]
TREE = [
    {"id": 1, "name": "acme", "subgroups": [
        {"id": 2, "name": "backend", "subgroups": [{"id": 4, "name": "db"}]},
        {"id": 3, "name": "frontend", "subgroups": []}]},
    {"id": 5, "name": "labs"},
]


def _compile(tmp_path: Path, text: str, data: Any = REPOS, name: str = "repos.json") -> Any:
    path = write_case(tmp_path, HEAD + text, {name: json.dumps(data)})
    return compile_mapping(path)


def _users(result: Any) -> list[dict[str, Any]]:
    return list(result.payload["applications"][0]["local_users"])


def test_each_makes_one_record_per_element_with_its_parent(tmp_path: Path) -> None:
    """`each`: {parent, NAME} per element, in parent then element order; a single object is one
    element; an empty or missing list gives none."""
    result = _compile(tmp_path, """\
  members:
    derive: {from: repos, parent: repo, each: {member: members}}
users:
  - from: members
    name: member.login
    properties: {repo: repo.name}
""")
    assert [(u["name"], u["custom_properties"]["repo"]) for u in _users(result)] == [
        ("ann", "api"), ("bob", "api"), ("cy", "cli")]
    assert result.records == {"repos": 4, "members": 3}


def test_each_records_are_located_at_the_parent_plus_the_element(tmp_path: Path) -> None:
    """A data error in a derived record names the parent's location and the element index."""
    with pytest.raises(DataErrors) as info:
        _compile(tmp_path, """\
  members:
    derive: {from: repos, each: {m: members}}
users:
  - {from: members, name: m.login, is_active: m.role}
""")
    refs = [str(e.ref) for e in info.value.errors]
    assert refs == [f"{tmp_path / 'repos.json'}[#0] members[#0]",
                    f"{tmp_path / 'repos.json'}[#0] members[#1]",
                    f"{tmp_path / 'repos.json'}[#2] members[#0]"]


def test_distinct_values_first_seen_case_insensitive(tmp_path: Path) -> None:
    """`distinct`: one record per value (list elements each count), first spelling and order,
    with the parent records that hold it."""
    result = _compile(tmp_path, """\
  members:
    derive: {from: repos, parent: repo, each: {member: members}}
  levels:
    derive: {from: members, distinct: {level: member.role}}
roles:
  - from: levels
    name: level
    properties: {holders: {value: "records[].member.login", type: STRING_LIST}}
""")
    roles = result.payload["applications"][0]["local_roles"]
    assert [(r["name"], r["custom_properties"]["holders"]) for r in roles] == [
        ("Admin", ["ann", "cy"]), ("read", ["bob"])]


def test_distinct_case_sensitive_and_lists(tmp_path: Path) -> None:
    """`case: sensitive` keeps `Admin` and `ADMIN` apart; a list value gives each element."""
    result = _compile(tmp_path, """\
  levels:
    derive: {from: repos, distinct: {level: "members[].role || members.role"}, case: sensitive}
roles:
  - {from: levels, name: level}
""")
    # three records; the roles `Admin` and `ADMIN` then merge (entities are case-insensitive)
    assert result.records["levels"] == 3
    assert [r["name"] for r in result.payload["applications"][0]["local_roles"]] == [
        "Admin", "read"]


def test_recurse_walks_trees_depth_first(tmp_path: Path) -> None:
    """`recurse`: every node, depth first, with its parent node and depth."""
    result = _compile(tmp_path, """\
  groups:
    derive: {from: repos, recurse: {group: subgroups}, key: id}
resources:
  - from: groups
    id: group.id
    name: group.name
    type: "'group'"
    parent: parent.id
    properties: {depth: depth}
""", TREE)
    assert result.entities.sections["resources"][0].ref is not None
    assert str(result.entities.sections["resources"][0].ref) == f"{tmp_path / 'repos.json'}[#0]"
    assert str(result.entities.sections["resources"][2].ref) == \
        f"{tmp_path / 'repos.json'}[#0] subgroups[#0] subgroups[#0]"
    top = result.payload["applications"][0]["resources"]
    assert [(r["name"], r["custom_properties"]["depth"]) for r in top] == [("acme", 0),
                                                                          ("labs", 0)]
    assert [s["name"] for s in top[0]["sub_resources"]] == ["backend", "frontend"]
    assert top[0]["sub_resources"][0]["sub_resources"][0]["name"] == "db"
    assert top[0]["sub_resources"][0]["sub_resources"][0]["custom_properties"]["depth"] == 2


def test_recurse_detects_a_cycle_by_key(tmp_path: Path) -> None:
    """A node whose `key` repeats an ancestor's is a data error naming the record."""
    tree = [{"id": 1, "subgroups": [{"id": 2, "subgroups": [{"id": "1"}]}]}]
    with pytest.raises(DataErrors) as info:
        _compile(tmp_path, """\
  groups:
    derive: {from: repos, recurse: {g: subgroups}, key: "to_string(id)"}
resources:
  - {from: groups, name: "to_string(g.id)", type: "'group'"}
""", tree)
    [error] = info.value.errors
    where = f"{tmp_path / 'repos.json'}[#0] subgroups[#0] subgroups[#0]"
    assert str(error) == (f"{where}: error: source `groups`: a cycle: the record at {where} "
                          "repeats its ancestor at depth 0 (`to_string(id)` = `1`); a tree "
                          "cannot contain itself")


def test_recurse_depth_bound(tmp_path: Path) -> None:
    """A tree deeper than `max_depth` is a data error, not a silent cut."""
    with pytest.raises(DataErrors, match=r"deeper than `max_depth: 1` under .*subgroups\[#0\]"):
        _compile(tmp_path, """\
  groups:
    derive: {from: repos, recurse: {group: subgroups}, max_depth: 1}
resources:
  - {from: groups, name: group.name, type: "'group'"}
""", TREE)


@pytest.mark.parametrize(("entry", "message"), [
    ("{from: repos}", "a `derive` source needs exactly one of `each`, `distinct`, `recurse` "
     "(has none)"),
    ("{from: repo, each: {m: members}}", "`from` names an unknown source `repo`"),
    ("{from: members, each: {m: members}}", "source `members` cannot derive from itself"),
    ("{from: repos, each: {parent: members}}", "`each` name `parent` must be a field name "
     "other than `depth`, `parent`, `records`"),
    ("{from: repos, each: {m: members}, case: sensitive}", "`case` applies to `distinct`, not "
     "to `each`"),
    ("{from: repos, each: {m: \"members[\"}}", "incomplete expression"),
])
def test_mapping_mistakes(tmp_path: Path, entry: str, message: str) -> None:
    """Mistakes in a `derive` entry are mapping errors found before any read."""
    path = write_case(tmp_path, HEAD + f"  members:\n    derive: {entry}\n"
                      "users:\n  - {from: members, name: m}\n", {})
    with pytest.raises(MappingErrors) as info:
        compile_mapping(path)
    assert any(message in str(e) for e in info.value.errors), \
        [str(e) for e in info.value.errors]


def test_sources_reading_each_other_in_a_cycle_are_a_mapping_error(tmp_path: Path) -> None:
    """`a` from `b` and `b` from `a` would never finish: refused before any read (this held for
    http fan-outs too, which hit Python's recursion limit)."""
    path = write_case(tmp_path, HEAD + "  a: {derive: {from: b, each: {e: x}}}\n"
                      "  b: {derive: {from: a, each: {e: x}}}\n"
                      "users:\n  - {from: a, name: e}\n  - {from: repos, name: name}\n", {})
    with pytest.raises(MappingErrors) as info:
        compile_mapping(path)
    assert [str(e) for e in info.value.errors] == [
        f"{path}:8:3: error: sources read each other's records in a cycle: `a` -> `b` -> `a`"]
