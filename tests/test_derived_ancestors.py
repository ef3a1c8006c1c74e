"""`derive: recurse` records hold `ancestors`, the nodes from the root down to the parent: the
id path of a sub-resource nested at any depth is built from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_case

from oaamap.errors import MappingErrors
from oaamap.pipeline import compile_mapping

HEAD = """\
oaamap: 1
template: application
provider: P
data_source: D
application: {name: App, type: app}
sources:
  top: {json: tree.json}
"""
TREE = [
    {"id": 1, "name": "acme", "subgroups": [
        {"id": 2, "name": "backend", "subgroups": [{"id": 4, "name": "db"}]},
        {"id": 3, "name": "frontend", "subgroups": []}]},
    {"id": 5, "name": "labs"},
]


def test_ancestors_are_the_nodes_from_the_root_to_the_parent(tmp_path: Path) -> None:
    path = write_case(tmp_path, HEAD + """\
  groups:
    derive: {from: top, recurse: {g: subgroups}, key: id}
resources:
  - from: groups
    id: g.id
    name: g.name
    type: "'group'"
    parent: "join('.', map(&to_string(@), ancestors[].id))"
    properties:
      chain: "join('/', [ancestors[].name, [g.name]][])"
""", {"tree.json": json.dumps(TREE)})
    resources = compile_mapping(path).payload["applications"][0]["resources"]
    assert [(r["id"], r["custom_properties"]["chain"]) for r in resources] == [
        ("1", "acme"), ("5", "labs")]
    backend = resources[0]["sub_resources"][0]
    assert backend["custom_properties"]["chain"] == "acme/backend"
    assert backend["sub_resources"][0]["custom_properties"]["chain"] == "acme/backend/db"
    assert [s["id"] for s in resources[0]["sub_resources"]] == ["2", "3"]


@pytest.mark.parametrize("spec", ["recurse: {ancestors: subgroups}",
                                  "recurse: {g: subgroups}, parent: ancestors"])
def test_ancestors_is_reserved_in_recurse(tmp_path: Path, spec: str) -> None:
    path = write_case(tmp_path, HEAD + f"""\
  groups:
    derive: {{from: top, {spec}}}
resources:
  - {{from: groups, id: depth, name: depth, type: "'group'"}}
""", {"tree.json": json.dumps(TREE)})
    with pytest.raises(MappingErrors, match="ancestors"):
        compile_mapping(path)


def test_each_may_still_name_a_field_ancestors(tmp_path: Path) -> None:
    path = write_case(tmp_path, HEAD + """\
  groups:
    derive: {from: top, each: {ancestors: subgroups}}
users:
  - {from: groups, id: ancestors.id, name: ancestors.name}
""", {"tree.json": json.dumps(TREE)})
    users = compile_mapping(path).payload["applications"][0]["local_users"]
    assert [u["name"] for u in users] == ["backend", "frontend"]
