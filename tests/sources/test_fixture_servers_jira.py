"""The Jira fixture server (examples/jira/server.py) answers like Jira Cloud's REST API v3 for
every call and branch of Veza's Jira connector (docs/catalog-parity.md#jira)."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import ROOT
from test_http_examples import _load_server

BASIC = base64.b64encode(b"veza@acme.test:api-token").decode()


@pytest.fixture(scope="module")
def jira() -> Iterator[str]:
    server = _load_server("jira").make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/rest/api/3"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, auth: str | None = BASIC) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", f"Basic {auth}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_basic_auth_is_required(jira: str) -> None:
    assert _get(f"{jira}/permissions", auth=None)[0] == 401
    assert _get(f"{jira}/permissions", auth=base64.b64encode(b"no-colon").decode())[0] == 401
    status, body = _get(f"{jira}/permissions")
    assert status == 200 and "ADMINISTER_PROJECTS" in body["permissions"]


def test_users_search_is_a_bare_list_paged_by_start_at_until_empty(jira: str) -> None:
    pages = [_get(f"{jira}/users/search?startAt={s}&maxResults=50")[1] for s in (0, 50, 100)]
    assert [len(p) for p in pages] == [50, 7, 0]
    assert {u["accountType"] for u in pages[0]} == {"atlassian", "app", "customer"}


def test_page_objects_follow_is_last_with_a_capped_max_results(jira: str) -> None:
    names, start = [], 0
    while True:
        _, page = _get(f"{jira}/group/bulk?startAt={start}")
        assert page["maxResults"] == 2 and page["total"] == 7
        names += [g["name"] for g in page["values"]]
        if page["isLast"]:
            break
        start = page["startAt"] + page["maxResults"]
    assert names[0] == "jira-software-users" and len(names) == 7
    _, page = _get(f"{jira}/project/search?expand=description")
    assert page["isLast"] is False and "description" in page["values"][0]
    assert "description" not in _get(f"{jira}/project/search")[1]["values"][0]


def test_group_members_inactive_users_and_the_404(jira: str) -> None:
    url = f"{jira}/group/member?groupname=developers&maxResults=50"
    def members(query: str) -> list[str]:
        out, start = [], 0
        while True:
            page = _get(f"{url}{query}&startAt={start}")[1]
            out += [m["displayName"] for m in page["values"]]
            if page["isLast"]:
                return out
            start += page["maxResults"]
    assert "Dave Former" in members("&includeInactiveUsers=True")
    assert "Dave Former" not in members("")
    status, body = _get(f"{jira}/group/member?groupname=deleted-while-listing")
    assert status == 404 and body["errorMessages"] == ["Specified group does not exist."]
    assert _get(f"{jira}/group/member?groupname=nope")[0] == 404


def test_project_roles_schemes_and_actors(jira: str) -> None:
    _, roles = _get(f"{jira}/project/ENG/role?startAt=6")      # the connector's leaked startAt
    assert roles["Administrators"].endswith("/rest/api/3/project/10000/role/10002")
    _, scheme = _get(f"{jira}/project/10000/permissionscheme?expand=all")
    holders = {e.get("holder", {}).get("type") for e in scheme["permissions"]}
    assert holders == {"projectRole", "group", "applicationRole", "reporter", "projectLead",
                       "user", None}
    _, bare = _get(f"{jira}/project/10000/permissionscheme")
    assert "projectRole" not in bare["permissions"][0]["holder"]
    _, role = _get(f"{jira}/project/10002/role/10001")
    assert [a["type"] for a in role["actors"]] == [
        "atlassian-group-role-actor", "atlassian-user-role-actor", "atlassian-app-role-actor"]
    assert _get(f"{jira}/project/NOPE/role")[0] == 404


def test_the_veza_payload_is_committed() -> None:
    payload = json.loads((ROOT / "examples/jira/expected-veza.json").read_text())
    app = payload["applications"][0]
    assert app["name"] == "Jira - acme.atlassian.net"
    assert len(app["resources"][0]["description"]) == 256
    assert [u["name"] for u in app["local_users"]][-1] == "Gary Customer"
