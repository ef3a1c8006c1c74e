"""`paginate: graphql_variables`: the next request's variables computed from the whole answer and
the variables that produced it (several cursors at once, Veza's GitHub teams query)."""

from __future__ import annotations

import json

import pytest
from http_server import LocalServer, Reply, Req
from source_helpers import data, errors_of, plan_one, read_all

from oaamap.errors import SourceError

# An outer connection one item a page, an inner one two items a page; the next request goes on
# with the inner cursor while the inner connection has more, else moves the outer cursor.
NEXT = ("{o: response.data.outer, v: variables} | (o.inner.more && {outer_after: v.outer_after, "
        "inner_after: o.inner.end}) || (o.more && {outer_after: o.end, inner_after: `null`}) "
        "|| `null`")


def _source(url: str, nxt: str = NEXT) -> str:
    return f"""
sources:
  pages:
    http:
      url: "{url}"
      method: POST
      body:
        query: "query($outer_after: String, $inner_after: String) {{ outer }}"
        variables: {{outer_after: null, inner_after: null}}
      records: "[data.outer]"
      paginate:
        graphql_variables:
          next: {json.dumps(nxt)}
"""


def _serve(server: LocalServer) -> None:
    items = {"a": ["1", "2", "3"], "b": ["4"]}

    @server.route("/gql", method="POST")
    def gql(req: Req) -> Reply:
        variables = req.json()["variables"]
        outer = sorted(items)
        name = outer[0] if variables["outer_after"] is None else outer[
            outer.index(variables["outer_after"]) + 1]
        start = 0 if variables["inner_after"] is None else int(variables["inner_after"])
        inner = items[name][start:start + 2]
        return Reply(200, {"data": {"outer": {
            "name": name, "more": name != outer[-1], "end": name,
            "inner": {"nodes": inner, "more": start + 2 < len(items[name]),
                      "end": str(start + len(inner))}}}})


def test_the_variables_follow_the_next_expression(server: LocalServer) -> None:
    _serve(server)
    records = read_all(plan_one(_source(server.url("/gql"))))
    assert [(r["name"], r["inner"]["nodes"]) for r in data(records)] == [
        ("a", ["1", "2"]), ("a", ["3"]), ("b", ["4"])]
    assert [r.json()["variables"] for r in server.requests] == [
        {"outer_after": None, "inner_after": None},
        {"outer_after": None, "inner_after": "2"},      # the same outer item, the inner cursor
        {"outer_after": "a", "inner_after": None}]      # the next outer item
    assert all(r.json()["query"].startswith("query(") for r in server.requests)


def test_next_must_give_an_object_of_variables(server: LocalServer) -> None:
    _serve(server)
    with pytest.raises(SourceError, match=r"is `a`, not an object of variables"):
        read_all(plan_one(_source(server.url("/gql"), "response.data.outer.name")))


def test_it_needs_a_graphql_post() -> None:
    errors = errors_of("""
sources:
  pages:
    http:
      url: "https://api.example.test/x"
      paginate: {graphql_variables: {next: "`null`"}}
""")
    assert any("`paginate: graphql_variables` needs `method: POST`" in e for e in errors), errors
