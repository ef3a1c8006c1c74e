"""The Bitbucket Cloud fixture server (examples/bitbucket-cloud/server.py) answers like
Bitbucket Cloud (REST 2.0, 1.0 groups, internal groups, OAuth2) and the Atlassian user search for
every call and branch of Veza's Bitbucket connector (docs/catalog-parity.md#bitbucket-cloud)."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import ROOT
from test_http_examples import _load_server

BASIC = "Basic " + base64.b64encode(b"veza-bot:app-password").decode()
CLIENT = "Basic " + base64.b64encode(b"client-key:client-secret").decode()


def _serve(**options: Any) -> Iterator[str]:
    server = _load_server("bitbucket-cloud").make_server("127.0.0.1", 0, **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def bitbucket() -> Iterator[str]:
    yield from _serve()


def _call(url: str, auth: str | None = BASIC, form: dict[str, str] | None = None
          ) -> tuple[int, Any]:
    data = None if form is None else urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, method="GET" if form is None else "POST")
    if auth is not None:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _all(url: str, auth: str = BASIC) -> tuple[list[Any], int]:
    values, pages = [], 0
    while True:
        status, body = _call(url, auth)
        assert status == 200 and "page" in body
        values += body["values"]
        pages += 1
        if "next" not in body:
            return values, pages
        url = body["next"]


def _token(base: str) -> dict[str, Any]:
    status, issued = _call(f"{base}/site/oauth2/access_token", CLIENT,
                           {"grant_type": "client_credentials"})
    assert status == 200
    return issued


def test_auth_basic_or_an_issued_unexpired_token(bitbucket: str) -> None:
    url = f"{bitbucket}/2.0/workspaces/acme/projects"
    assert _call(url, auth=None)[0] == 401
    assert _call(url, auth="Bearer made-up")[0] == 401
    issued = _token(bitbucket)
    assert issued["token_type"] == "bearer" and issued["expires_in"] == 7200
    assert _call(url, auth=f"Bearer {issued['access_token']}")[0] == 200
    status, refreshed = _call(f"{bitbucket}/site/oauth2/access_token", CLIENT, {
        "grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert status == 200 and refreshed["access_token"] != issued["access_token"]
    assert _call(f"{bitbucket}/site/oauth2/access_token", CLIENT, {
        "grant_type": "refresh_token", "refresh_token": "nope"})[0] == 400


def test_tokens_expire() -> None:
    for base in _serve(token_ttl=1):
        token = _token(base)["access_token"]
        url = f"{base}/2.0/workspaces/acme/projects"
        assert _call(url, auth=f"Bearer {token}")[0] == 200
        time.sleep(1.2)
        assert _call(url, auth=f"Bearer {token}") == (401, {"type": "error", "error": {
            "message": "Access token expired."}})


def test_pages_carry_page_and_next_single_lists_do_not(bitbucket: str) -> None:
    members, pages = _all(f"{bitbucket}/2.0/workspaces/acme/permissions")
    assert (len(members), pages) == (8, 4)
    assert [m["permission"] for m in members][:3] == ["owner", "member", "collaborator"]
    repos, _ = _all(f"{bitbucket}/2.0/repositories/acme?"
                    + urllib.parse.urlencode({"q": 'project.key="PLAT"', "pagelen": 100}))
    assert [r["slug"] for r in repos] == ["api", "web-app", "infra", "tools"]
    status, groups = _call(f"{bitbucket}/1.0/groups/acme")
    assert status == 200 and isinstance(groups, list) and groups[0]["members"][0]["nickname"]
    assert _call(f"{bitbucket}/2.0/workspaces/nope/projects")[0] == 404


def test_branch_restrictions_filter_on_pattern_and_admin_only_calls_403(bitbucket: str) -> None:
    restrictions, pages = _all(f"{bitbucket}/2.0/repositories/acme/api/branch-restrictions"
                               "?pagelen=100&pattern=main")
    assert pages == 2 and [r["kind"] for r in restrictions] == [
        "require_approvals_to_merge", "push", "enforce_merge_checks"]
    assert _all(f"{bitbucket}/2.0/repositories/acme/web-app/branch-restrictions"
                "?pattern=develop")[0] == []
    assert _call(f"{bitbucket}/2.0/repositories/acme/infra/branch-restrictions")[0] == 403
    assert _call(f"{bitbucket}/2.0/repositories/acme/infra/permissions-config/users")[0] == 403
    effective, _ = _all(f"{bitbucket}/2.0/workspaces/acme/permissions/repositories/infra")
    assert [e["permission"] for e in effective] == ["admin", "admin", "read", "write"]


def test_internal_groups_need_an_oauth_token(bitbucket: str) -> None:
    url = f"{bitbucket}/internal/workspaces/acme/groups"
    assert _call(url)[0] == 403
    bearer = f"Bearer {_token(bitbucket)['access_token']}"
    groups, _ = _all(url + "?pagelen=100", bearer)
    assert [g["type"] for g in groups] == ["group", "group", "group", "bot-group"]
    members, _ = _all(f"{url}/developers/members?pagelen=100", bearer)
    assert len(members) == 4


def test_atlassian_user_picker_and_search() -> None:
    for base in _serve(user_picker=False):
        _, body = _call(f"{base}/rest/api/3/mypermissions?permissions=USER_PICKER")
        assert body["permissions"]["USER_PICKER"]["havePermission"] is False
    for base in _serve():
        _, body = _call(f"{base}/rest/api/3/mypermissions?permissions=USER_PICKER")
        assert body["permissions"]["USER_PICKER"]["havePermission"] is True
        assert len(_call(f"{base}/rest/api/3/users/search?startAt=0&maxResults=100")[1]) == 7
        assert _call(f"{base}/rest/api/3/users/search?startAt=100&maxResults=100")[1] == []


def test_fail_once() -> None:
    for base in _serve(fail_once=("/2.0/workspaces/acme/projects:503",)):
        assert _call(f"{base}/2.0/workspaces/acme/projects")[0] == 503
        assert _call(f"{base}/2.0/workspaces/acme/projects")[0] == 200


@pytest.mark.parametrize("name, repo_properties", [
    ("expected-veza.json", 11), ("expected-veza-app-password.json", 11),
    ("expected-veza-skip-branch-restrictions.json", 4),
])
def test_the_veza_payloads_are_committed(name: str, repo_properties: int) -> None:
    payload = json.loads((ROOT / "examples/bitbucket-cloud" / name).read_text())
    assert payload["applications"][0]["name"] == "Bitbucket - acme"
    definitions = payload["custom_property_definition"]["applications"][0]["resources"]
    assert len(definitions[1]["properties"]) == repo_properties
