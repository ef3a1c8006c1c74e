"""The Rollbar fixture server (examples/rollbar/server.py): the calls and branches of Veza's
Rollbar connector (docs/catalog-parity.md), and the payload that connector produced on it
(tests/veza_connectors/README.md)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import ROOT
from test_http_examples import _load_server


def _serve(**options: Any) -> Iterator[str]:
    server = _load_server("rollbar").make_server("127.0.0.1", 0, **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def rollbar() -> Iterator[str]:
    yield from _serve(token="rb-token")


def _get(url: str, token: str | None = "rb-token") -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("X-Rollbar-Access-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def test_account_lists_are_wrapped_and_not_paged(rollbar: str) -> None:
    status, body, _ = _get(f"{rollbar}/users")
    assert status == 200 and body["err"] == 0
    users = body["result"]["users"]
    assert [u["username"] for u in users].count("alice") == 2        # same username, two ids
    assert [u["email"] for u in users if u["username"] in ("carol", "dave")] == [None, ""]
    _, projects, _ = _get(f"{rollbar}/projects")
    assert [p["status"] for p in projects["result"]] == ["enabled", "enabled", "disabled",
                                                          "enabled"]
    _, teams, _ = _get(f"{rollbar}/teams")
    levels = [t["access_level"] for t in teams["result"]]
    assert levels == ["owner", "standard", "standard", "light", "view", "everyone"]
    assert teams["result"][0]["account_id"] == 9001


def test_team_links_unknown_ids_and_empty_teams(rollbar: str) -> None:
    _, body, _ = _get(f"{rollbar}/team/3002/projects")
    assert body["result"] == [{"team_id": 3002, "project_id": 501},
                              {"team_id": 3002, "project_id": 599}]   # 599: no such project
    _, body, _ = _get(f"{rollbar}/team/3002/users")
    assert [u["user_id"] for u in body["result"]] == [1001, 1002, 1777]  # 1777: no such user
    assert _get(f"{rollbar}/team/3005/projects")[1] == {"err": 0, "result": []}
    assert _get(f"{rollbar}/team/4242/users")[0] == 404
    assert _get(f"{rollbar}/team/3001")[1]["result"]["name"] == "Owners"


def test_access_token_is_required(rollbar: str) -> None:
    assert _get(f"{rollbar}/users", token=None)[:2] == (
        401, {"err": 1, "message": "No access token was found in the request."})
    assert _get(f"{rollbar}/users", token="wrong")[:2] == (
        401, {"err": 1, "message": "Invalid access token"})


def test_rate_limit_answers_first_then_the_data() -> None:
    for base in _serve(fail_first=1):
        status, body, headers = _get(f"{base}/teams")
        assert status == 429 and body["err"] == 1
        assert headers["X-Rate-Limit-Remaining"] == "0" and int(headers["X-Rate-Limit-Reset"]) > 0
        assert _get(f"{base}/teams")[0] == 200


def test_the_veza_payload_is_committed() -> None:
    payload = json.loads((ROOT / "examples/rollbar/expected-veza.json").read_text())
    app = payload["applications"][0]
    assert app["name"] == "Rollbar.com"
    assert [r["id"] for r in app["local_roles"]] == ["owner", "standard", "light", "view",
                                                     "everyone"]
    assert payload["permissions"][-1]["permission_type"] == ["Uncategorized"]
    grants = {g["identity"]: g["role_assignments"][0]["resources"]
              for g in payload["identity_to_permissions"]}
    assert grants["3002"] == ["501"] and "3005" not in grants
