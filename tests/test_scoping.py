"""Sub-resource identity scoped to the parent (issue 8): merge key, references, problems."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import write_case

from oaamap.errors import PayloadErrors
from oaamap.pipeline import compile_mapping
from oaamap.scoping import scope_resources

APP = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  rows: {csv: rows.csv}
application: {name: App, type: app}
roles: [{name: viewer}]
users: [{name: ann}]
resources:
  - {from: rows, name: name, type: "'t'", parent: "parent || `null`"}
"""


def _compile(tmp_path: Path, csv: str, grants: str = "") -> Any:
    path = write_case(tmp_path, APP + textwrap.dedent(grants), {"rows.csv": csv})
    return compile_mapping(path)


def _tree(resources: list[dict[str, Any]], prefix: str = "") -> list[str]:
    out = []
    for r in resources:
        out.append(prefix + r["name"])
        out += _tree(r.get("sub_resources", []), prefix + r["name"] + ".")
    return out


def test_scope_paths_resolve_by_path_then_unique_own_id() -> None:
    """Paths are built level by level; a parent is named by path or by a unique own id."""
    scope = scope_resources([("r1", None), ("main", "r1"), ("r2", None), ("main", "R2"),
                             ("docs", "r1.main"), ("x", "main"), ("y", "nowhere"),
                             ("a", "b"), ("b", "a")])
    assert scope.paths == ["r1", "r1.main", "r2", "r2.main", "r1.main.docs", None, None, None,
                           None]
    assert scope.parents[4] == "r1.main"
    assert scope.aliases == {"docs": "r1.main.docs"}
    assert scope.ambiguous == {"main": ["r1.main", "r2.main"]}
    assert scope.ambiguous_parents == [(5, "main", ["r1.main", "r2.main"])]


def test_children_with_one_id_under_two_parents_are_two_resources(tmp_path: Path) -> None:
    """Before issue 8 the two `main` rows merged into one resource under `r1`."""
    result = _compile(tmp_path, "name,parent\nr1,\nr2,\nmain,r1\nmain,r2\nMAIN,r1\n", """\
        grants:
          - {user: ann, role: viewer, resources: [r2.main, R1.Main]}
        """)
    app = result.payload["applications"][0]
    assert _tree(app["resources"]) == ["r1", "r1.main", "r2", "r2.main"]
    assert result.payload["identity_to_permissions"][0]["role_assignments"][0]["resources"] == [
        "r2.main", "r1.main"]


def test_a_grant_naming_a_shared_own_id_is_an_error(tmp_path: Path) -> None:
    """`main` names two sub-resources: the grant must use a path."""
    with pytest.raises(PayloadErrors) as info:
        _compile(tmp_path, "name,parent\nr1,\nr2,\nmain,r1\nmain,r2\n",
                 "grants:\n  - {user: ann, role: viewer, resources: [main]}\n")
    # (stage 8 then also reports the reference as unresolved)
    assert info.value.errors[0].message == (
        "a grant names resource `main`, the id of 2 resources (`r1.main`, `r2.main`); name one "
        "by its path (`parent.child`)")


def test_a_parent_named_by_a_shared_own_id_is_an_error(tmp_path: Path) -> None:
    """`docs` under `main`: which `main`? An error naming both paths and the row."""
    with pytest.raises(PayloadErrors) as info:
        _compile(tmp_path, "name,parent\nr1,\nr2,\nmain,r1\nmain,r2\ndocs,main\n")
    messages = [(str(e.ref), e.message) for e in info.value.errors]
    assert (f"{tmp_path / 'rows.csv'}:6", "resources `docs` names parent `main`, the id of 2 "
            "resources (`r1.main`, `r2.main`); name the parent by its path") in messages


def test_a_parent_named_two_ways_is_reported(tmp_path: Path) -> None:
    """The same child under one parent named by path and by own id: two definitions."""
    with pytest.raises(PayloadErrors, match=r"sub-resource `r1\.main\.docs` is defined twice"):
        _compile(tmp_path, "name,parent\nr1,\nmain,r1\ndocs,main\ndocs,r1.main\n")


def test_parent_cycles_are_still_reported(tmp_path: Path) -> None:
    """Resources whose parents form a cycle keep their own ids; stage 8 names the cycle."""
    with pytest.raises(PayloadErrors, match="nested resources form a cycle: a -> b -> a"):
        _compile(tmp_path, "name,parent\na,b\nb,a\n")
