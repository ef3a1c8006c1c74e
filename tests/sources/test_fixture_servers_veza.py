"""The `fixtures-veza` side of the network examples' fixture servers: the calls and branches of
Veza's GitHub and PagerDuty connectors (docs/catalog-parity.md), and the committed payloads those
connectors produced on them (tests/veza_connectors/README.md)."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import ROOT
from test_http_examples import _load_server


def _serve(folder: str, **options: Any) -> Iterator[str]:
    server = _load_server(folder).make_server("127.0.0.1", 0, fixtures="fixtures-veza", **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def github() -> Iterator[str]:
    yield from _serve("github-org", app_id=777, token_ttl=2)


@pytest.fixture(scope="module")
def pagerduty() -> Iterator[str]:
    yield from _serve("pagerduty")


def _call(url: str, token: str | None = "x", body: Any = None, scheme: str = "Bearer"
          ) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST")
    if token is not None:
        request.add_header("Authorization", f"{scheme} {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def _graphql(base: str, query: str, **variables: Any) -> Any:
    status, body, _ = _call(f"{base}/api/graphql", body={"query": query, "variables": variables})
    assert status == 200
    return body


MEMBERS = """query($org: String!, $after: String) { organization(login: $org) {
  membersWithRole(first: 100, after: $after) {
    pageInfo { endCursor hasNextPage } totalCount
    edges { role node { login name organizationVerifiedDomainEmails(login: $org) } } } } }"""


def test_graphql_members_page_by_cursor(github: str) -> None:
    logins, roles, after = [], {}, None
    while True:
        page = _graphql(github, MEMBERS, org="acme", after=after)["data"]["organization"]
        connection = page["membersWithRole"]
        assert connection["totalCount"] == 8
        for edge in connection["edges"]:
            logins.append(edge["node"]["login"])
            roles[edge["node"]["login"]] = edge["role"]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert logins == ["octo-admin", "alice", "bob", "carol", "dave", "erin", "frank", "gwen"]
    assert roles["octo-admin"] == roles["gwen"] == "ADMIN" and roles["alice"] == "MEMBER"


def test_graphql_cursors_are_keyset_and_honoured_across_connections(github: str) -> None:
    query = """query($after: String) { organization(login: "acme") {
      team(slug: "security") { members(membership: IMMEDIATE, first: 100, after: $after) {
        nodes { login } } } } }"""
    def members(after: str | None) -> list[str]:
        team = _graphql(github, query, after=after)["data"]["organization"]["team"]
        return [n["login"] for n in team["members"]["nodes"]]
    assert members(None) == ["octo-admin", "alice"]            # 2 per page (the cap)
    cursor = base64.b64encode(b"cursor:v2:[1004]").decode()   # e.g. carol's, from another team
    assert members(cursor) == ["erin"]


def test_graphql_errors_are_answered_the_github_way(github: str) -> None:
    body = _graphql(github, '{ organization(login: "nope") { login } }')
    assert body["data"] == {"organization": None}
    assert body["errors"][0]["type"] == "NOT_FOUND"
    body = _graphql(github, '{ organization(login: "acme") { bogus } }')
    assert "doesn't exist on type 'Organization'" in body["errors"][0]["message"]
    body = _graphql(github, '{ organization(login: "acme") { teams(first: 101) { totalCount } } }')
    assert "exceeds the `first` limit of 100" in body["errors"][0]["message"]


def test_branch_protection_answers_every_branch_of_the_probe(github: str) -> None:
    def probe(repo: str, branch: str) -> tuple[int, str | None]:
        status, body, _ = _call(f"{github}/api/v3/repos/acme/{repo}/branches/{branch}/protection")
        return status, body.get("message")
    assert probe("api", "main")[0] == 200
    assert probe("web", "main") == (404, "Branch not protected")
    assert probe("infra", "release/v2") == (403, "Resource not accessible by integration")
    assert probe("docs", "gh-pages") == (404, "Not Found")


def test_rest_lists_are_link_paged_under_api_v3_with_absolute_urls(github: str) -> None:
    status, body, headers = _call(f"{github}/api/v3/orgs/acme/repos")
    assert status == 200 and [r["name"] for r in body] == ["api", "web"]
    assert f'<{github}/api/v3/orgs/acme/repos?per_page=2&page=2>; rel="next"' in headers["Link"]
    assert headers["X-RateLimit-Remaining"] == "4999"
    _, members, _ = _call(f"{github}/orgs/acme/teams/engineering/members?per_page=100&page=4")
    assert [m["login"] for m in members] == ["frank"]          # REST includes child teams'


def _jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def test_github_app_installation_tokens_expire(github: str) -> None:
    now = int(time.time())
    jwt = _jwt({"iat": now - 10, "exp": now + 600, "iss": 777})
    assert _call(f"{github}/api/v3/app/installations", token="not-a-jwt")[0] == 401
    assert _call(f"{github}/app/installations", token=_jwt({"iat": now, "exp": now + 600,
                                                            "iss": 1}))[0] == 401
    status, installs, _ = _call(f"{github}/api/v3/app/installations", token=jwt)
    assert status == 200 and [i["account"]["login"] for i in installs] == ["other-org", "acme"]
    status, issued, _ = _call(f"{github}/api/v3/app/installations/4242/access_tokens", token=jwt,
                              body={})
    assert status == 201 and issued["token"].startswith("ghs_") and issued["expires_at"]
    assert _call(f"{github}/orgs/acme", token=issued["token"])[0] == 200
    assert _call(f"{github}/orgs/acme", token=jwt)[0] == 401    # a JWT is for /app only
    time.sleep(2.2)                                              # token_ttl=2
    status, body, _ = _call(f"{github}/orgs/acme", token=issued["token"])
    assert (status, body["message"]) == (401, "Bad credentials")


def test_pagerduty_abilities_and_subdomains(pagerduty: str) -> None:
    def get(path: str) -> tuple[int, Any]:
        status, body, _ = _call(f"{pagerduty}{path}", token="token=x", scheme="Token")
        return status, body
    assert "teams" in get("/abilities")[1]["abilities"]
    _, body = get("/users?limit=1&include%5B%5D=subdomains")
    assert body["users"][0]["subdomains"] == ["acme"] and body["more"] is True
    assert "subdomains" not in get("/users?limit=1")[1]["users"][0]
    assert get("/teams/PD4TA8X/members?limit=100&offset=2")[1]["more"] is False


def test_pagerduty_without_the_teams_ability() -> None:
    for base in _serve("pagerduty", without=("teams",)):
        _, body, _ = _call(f"{base}/abilities", token="token=x", scheme="Token")
        assert "teams" not in body["abilities"]
        assert _call(f"{base}/teams?limit=100", token="token=x", scheme="Token")[0] == 402


@pytest.mark.parametrize("path, provider_app", [
    ("examples/github-org/expected-veza.json", "Github - acme"),
    ("examples/github-org/expected-veza-no-user-map.json", "Github - acme"),
    ("examples/github-org/expected-veza-skip-branch-protection.json", "Github - acme"),
    ("examples/github-org/expected-veza-offset-cursors.json", "Github - acme"),
    ("examples/pagerduty/expected-veza.json", "PagerDuty - acme"),
    ("examples/pagerduty/expected-veza-without-teams.json", "PagerDuty - acme"),
])
def test_the_veza_payloads_are_committed(path: str, provider_app: str) -> None:
    payload = json.loads((ROOT / path).read_text())
    assert list(payload) == ["custom_property_definition", "applications", "permissions",
                             "identity_to_permissions"]
    assert payload["applications"][0]["name"] == provider_app
