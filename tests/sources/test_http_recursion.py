"""`http` recursive fan-out (`recurse:`): a source that also fans out over its own records."""

from __future__ import annotations

from typing import Any

import pytest
from http_server import LocalServer, Reply, Req
from source_helpers import errors_of, plan_one, read_all

from oaamap.errors import Origin, SourceError
from oaamap.sources import Record

# GitLab-like: /groups/{id}/subgroups; group 9 is its own grandchild (a cycle).
SUBGROUPS: dict[str, list[dict[str, Any]]] = {
    "1": [{"id": 2, "name": "backend"}, {"id": 3, "name": "frontend"}],
    "2": [{"id": 4, "name": "db"}],
    "4": [{"id": 5, "name": "replicas"}],
    "8": [{"id": 9, "name": "loop"}],
    "9": [{"id": 8, "name": "top-again"}],
}


@pytest.fixture
def tree(server: LocalServer) -> LocalServer:
    @server.route("/groups/", prefix=True)
    def subgroups(req: Req) -> Reply:
        group = req.path.split("/")[2]
        return Reply(200, SUBGROUPS.get(group, []))

    return server


def _source(url: str, recurse: str) -> str:
    return f"""
sources:
  subgroups:
    http:
      url: "{url}"
      for_each: {{group: top}}
      recurse: {recurse}
"""


def _top(*ids: int) -> list[Record]:
    origin = Origin("top", "top.json", "index")
    return [Record({"id": i, "name": f"g{i}"}, origin, n) for n, i in enumerate(ids)]


def test_recursion_reads_every_level_depth_first(tree: LocalServer) -> None:
    """Each record is followed by its own subgroups (pre-order); each carries its parent."""
    plan = plan_one(_source(tree.url("/groups/{{ group.id }}/subgroups"), "{key: id}"),
                    other_sources=["top"])
    records = read_all(plan, parents={"top": _top(1, 6)})
    assert [(r.data["name"], r.data["group"]["id"]) for r in records] == [
        ("backend", 1), ("db", 2), ("replicas", 4), ("frontend", 1)]
    assert str(records[2].ref) == f"GET {tree.base}/groups/4/subgroups page 1[#0]"
    assert tree.hits["/groups/5/subgroups"] == 1
    assert tree.hits["/groups/6/subgroups"] == 1


def test_a_cycle_is_an_error_naming_the_record(tree: LocalServer) -> None:
    """A record whose key repeats an ancestor's stops the read instead of looping."""
    plan = plan_one(_source(tree.url("/groups/{{ group.id }}/subgroups"), "{key: id}"),
                    other_sources=["top"])
    with pytest.raises(SourceError) as info:
        read_all(plan, parents={"top": _top(8)})
    # top group 8 -> 9 -> 8: the `8` read from /groups/9/subgroups repeats the top group
    assert str(info.value.ref) == f"GET {tree.base}/groups/9/subgroups page 1[#0]"
    assert "a cycle: the record repeats one of its ancestors (the same id, at level 0)" in \
        str(info.value)


def test_the_depth_bound_is_an_error(tree: LocalServer) -> None:
    """A tree deeper than `max_depth` fails at the record below which it goes on."""
    plan = plan_one(_source(tree.url("/groups/{{ group.id }}/subgroups"), "{max_depth: 2}"),
                    other_sources=["top"])
    with pytest.raises(SourceError, match=r"deeper than `max_depth: 2` below this record"):
        read_all(plan, parents={"top": _top(1)})


def test_recurse_true_detects_cycles_by_the_records_fields(tree: LocalServer) -> None:
    """Without `key`, a record equal (apart from its parent) to an ancestor is a cycle."""
    SUBGROUPS["7"] = [{"id": 7, "name": "self"}]
    try:
        plan = plan_one(_source(tree.url("/groups/{{ group.id }}/subgroups"), "true"),
                        other_sources=["top"])
        with pytest.raises(SourceError, match="the same its fields, at level 1"):
            read_all(plan, parents={"top": _top(7)})
    finally:
        del SUBGROUPS["7"]


def test_recurse_needs_for_each() -> None:
    """`recurse` without `for_each` is a mapping error."""
    assert errors_of("""
sources:
  g:
    http:
      url: "https://example.test/groups"
      recurse: true
""") == ["test.yaml:6:16: error: `recurse` needs `for_each`: the first level fans out over "
         "another source, the next ones over this source's own records"]
