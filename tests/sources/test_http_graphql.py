"""`http` source: GraphQL queries (`body: {query, variables}`), cursor pagination through the
query's variables (`paginate: graphql`), and `errors` answers."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import pytest
from http_server import LocalServer, Reply, Req
from source_helpers import data, errors_of, plan_one, read_all
from veza_servers import serving

from oaamap.errors import SourceError

MEMBERS = ("query($org: String!, $after: String) { organization(login: $org) { "
           "membersWithRole(first: 100, after: $after) { pageInfo { endCursor hasNextPage } "
           "edges { role node { login } } } } }")


def graphql_source(url: str, query: str = MEMBERS, extra: str = "",
                   paginate: str = "{graphql: {cursor: after, page_info: "
                                   "data.organization.membersWithRole.pageInfo}}") -> str:
    return f"""
sources:
  members:
    http:
      url: "{url}"
      method: POST
      auth: {{bearer: offline-token}}
      body:
        query: {json.dumps(query)}
        variables: {{org: "{{{{ vars.org }}}}"}}
      records: data.organization.membersWithRole.edges
      paginate: {paginate}
{extra}"""


@pytest.fixture(scope="module")
def github() -> Iterator[str]:
    with serving("github-org") as base:
        yield base


def test_members_page_by_cursor_through_the_variables(github: str) -> None:
    plan = plan_one(graphql_source(f"{github}/graphql"))
    records = read_all(plan, vars={"org": "acme"})
    assert [(r["node"]["login"], r["role"]) for r in data(records)] == [
        ("octo-admin", "ADMIN"), ("alice", "MEMBER"), ("bob", "MEMBER"), ("carol", "MEMBER"),
        ("dave", "MEMBER"), ("erin", "MEMBER"), ("frank", "MEMBER"), ("gwen", "ADMIN")]
    assert str(records[2].ref) == f"POST {github}/graphql page 2[#0]"


def _recording_graphql(server: LocalServer) -> None:
    logins = [f"u{i}" for i in range(1, 6)]

    @server.route("/gql", method="POST")
    def gql(req: Req) -> Reply:
        body = req.json()
        after = body["variables"].get("after")
        start = 0 if after is None else int(base64.b64decode(after)) + 1
        chunk = logins[start:start + 2]
        end = base64.b64encode(str(start + len(chunk) - 1).encode()).decode()
        return Reply(200, {"data": {"organization": {"membersWithRole": {
            "pageInfo": {"hasNextPage": start + 2 < len(logins), "endCursor": end},
            "edges": [{"node": {"login": login}} for login in chunk]}}}})


def test_the_cursor_goes_into_the_variables_and_the_rest_is_kept(server: LocalServer) -> None:
    _recording_graphql(server)
    plan = plan_one(graphql_source(server.url("/gql")))
    records = read_all(plan, vars={"org": "acme"})
    assert [r["node"]["login"] for r in data(records)] == ["u1", "u2", "u3", "u4", "u5"]
    bodies = [r.json() for r in server.requests]
    assert [b["variables"] for b in bodies] == [
        {"org": "acme"}, {"org": "acme", "after": "MQ=="}, {"org": "acme", "after": "Mw=="}]
    assert all(b["query"] == MEMBERS for b in bodies)
    assert server.requests[0].headers["authorization"] == "Bearer offline-token"


def test_an_errors_answer_fails_even_with_http_200(github: str) -> None:
    query = ('query($org: String!, $after: String) { organization(login: $org) { bogus '
             'membersWithRole(first: 100, after: $after) { pageInfo { endCursor hasNextPage } '
             'edges { role } } } }')
    plan = plan_one(graphql_source(f"{github}/graphql", query))
    with pytest.raises(SourceError) as failed:
        read_all(plan, vars={"org": "acme"})
    text = str(failed.value)
    assert f"source `members` (POST {github}/graphql page 1): the GraphQL query failed: " in text
    assert "doesn't exist on type 'Organization'" in text
    assert "offline-token" not in text


def test_an_errors_answer_names_its_type_and_path(github: str) -> None:
    plan = plan_one(graphql_source(f"{github}/graphql"))
    with pytest.raises(SourceError, match=r"\(type NOT_FOUND\) at organization"):
        read_all(plan, vars={"org": "nope"})


def test_a_graphql_query_without_pagination_also_checks_errors(github: str) -> None:
    plan = plan_one(f"""
sources:
  org:
    http:
      url: "{github}/api/graphql"
      method: POST
      auth: {{bearer: offline-token}}
      body: {{query: '{{ organization(login: "acme") {{ teams(first: 101) {{ totalCount }} }} }}'}}
      records: data.organization
""")
    with pytest.raises(SourceError, match="exceeds the `first` limit of 100"):
        read_all(plan)


def test_has_next_page_without_a_cursor_is_an_error(server: LocalServer) -> None:
    @server.route("/gql-broken", method="POST")
    def broken(req: Req) -> Reply:
        return Reply(200, {"data": {"organization": {"membersWithRole": {
            "pageInfo": {"hasNextPage": True, "endCursor": None}, "edges": [{"node": {}}]}}}})

    plan = plan_one(graphql_source(server.url("/gql-broken")))
    with pytest.raises(SourceError, match=re.escape(
            "cannot follow the pagination: `hasNextPage` is true but `endCursor` at "
            "`data.organization.membersWithRole.pageInfo` is `None`, not a cursor")):
        read_all(plan, vars={"org": "acme"})


def test_a_missing_page_info_is_an_error(server: LocalServer) -> None:
    _recording_graphql(server)
    plan = plan_one(graphql_source(server.url("/gql"), paginate="{graphql: {cursor: after, "
                                   "page_info: data.organization.pageInfo}}"))
    with pytest.raises(SourceError, match=re.escape("`page_info: data.organization.pageInfo` "
                                                    "is null")):
        read_all(plan, vars={"org": "acme"})


@pytest.mark.parametrize("source, message", [
    ("""
      url: https://api.example.test/graphql
      paginate: {graphql: {cursor: after, page_info: data.x.pageInfo}}""",
     "test.yaml:5:27: error: `paginate: graphql` needs `method: POST` and a `body` with the "
     "`query` (and its `variables`)"),
    ("""
      url: https://api.example.test/graphql
      method: POST
      body: {query: "{ x }"}
      paginate: {graphql: {cursor: "a b", page_info: data.x.pageInfo}}""",
     "test.yaml:7:36: error: `cursor` must name a GraphQL variable, got `a b`"),
    ("""
      url: https://api.example.test/graphql
      method: POST
      body: {query: "{ x }"}
      paginate: {graphql: {cursor: after}}""",
     "test.yaml:7:27: error: `graphql` pagination needs `page_info`"),
])
def test_graphql_pagination_is_checked(source: str, message: str) -> None:
    errors = errors_of(f"sources:\n  members:\n    http:{source}\n")
    assert errors == [message]


def test_a_search_body_with_an_object_query_is_not_graphql(server: LocalServer) -> None:
    @server.route("/search-with-errors", method="POST")
    def search(req: Req) -> Reply:
        return Reply(200, {"errors": ["shard 2 timed out"], "hits": [{"id": 1}]})

    plan = plan_one(f"""
sources:
  hits:
    http:
      url: "{server.url('/search-with-errors')}"
      method: POST
      body: {{query: {{match_all: {{}}}}}}
      records: hits
""")
    assert data(read_all(plan)) == [{"id": 1}]
    graphql = plan_one(f"""
sources:
  hits:
    http:
      url: "{server.url('/search-with-errors')}"
      method: POST
      body: {{query: "{{ hits {{ id }} }}"}}
      records: hits
""")
    with pytest.raises(SourceError, match="the GraphQL query failed: `shard 2 timed out`"):
        read_all(graphql)
