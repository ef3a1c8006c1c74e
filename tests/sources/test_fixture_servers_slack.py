"""The Slack fixture server (examples/slack/server.py) answers like the Slack Web API for every
call and branch of Veza's Slack connector (docs/catalog-parity.md#slack)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import ROOT
from test_http_examples import _load_server


@pytest.fixture(scope="module")
def slack() -> Iterator[str]:
    server = _load_server("slack").make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def _call(base: str, method: str, token: str | None = "xoxb-test", **params: str
          ) -> tuple[int, Any]:
    """POST a form like slack_sdk does."""
    request = urllib.request.Request(f"{base}/{method}", method="POST",
                                     data=urllib.parse.urlencode(params).encode())
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_users_list_pages_by_cursor_until_an_empty_next_cursor(slack: str) -> None:
    ids, cursor, pages = [], "", 0
    while True:
        status, body = _call(slack, "users.list", cursor=cursor)
        assert status == 200 and body["ok"] is True
        ids += [m["id"] for m in body["members"]]
        pages += 1
        cursor = body["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 7 and len(ids) == 13 and ids[0] == "U01OWNER01" and ids[-1] == "USLACKBOT"
    assert _call(slack, "users.list", cursor="bm9wZQ==")[1] == {"ok": False,
                                                                  "error": "invalid_cursor"}


def test_tokens_are_checked_the_slack_way_with_http_200(slack: str) -> None:
    assert _call(slack, "team.info", token=None) == (200, {"ok": False, "error": "not_authed"})
    assert _call(slack, "team.info", token="nope") == (200, {"ok": False,
                                                              "error": "invalid_auth"})
    status, body = _call(slack, "team.info")
    assert status == 200 and body["team"]["name"] == "Acme Corp"
    assert _call(slack, "team.nope")[0] == 404


def test_usergroups_hide_disabled_groups_and_member_lists_by_default(slack: str) -> None:
    _, body = _call(slack, "usergroups.list")
    assert [g["id"] for g in body["usergroups"]] == ["S01ENGINEER", "S02ONCALL02", "S03ADMINS03",
                                                      "S05DESIGN05"]
    assert all("users" not in g for g in body["usergroups"])
    _, body = _call(slack, "usergroups.list", include_disabled="true", include_users="true")
    assert [g["id"] for g in body["usergroups"]][3] == "S04OLDTEAM4"
    assert body["usergroups"][0]["users"][-1] == "U99EXTERNAL"


def test_usergroup_members_and_their_errors(slack: str) -> None:
    _, body = _call(slack, "usergroups.users.list", usergroup="S02ONCALL02")
    assert body["users"] == ["U02ADMIN02", "U03MEMBR03", "U09DEPLOY9", "U07GONE007"]
    assert _call(slack, "usergroups.users.list", usergroup="S05DESIGN05")[1]["users"] == []
    assert _call(slack, "usergroups.users.list", usergroup="S00")[1]["error"] == "no_such_subteam"
    assert _call(slack, "usergroups.users.list",
                 usergroup="S04OLDTEAM4")[1]["error"] == "usergroup_disabled"


def test_the_veza_payload_is_committed() -> None:
    payload = json.loads((ROOT / "examples/slack/expected-veza.json").read_text())
    app = payload["applications"][0]
    assert app["name"] == "Slack - Acme Corp"
    assert [u["name"] for u in app["local_users"]][7] == "U08INVITE8"    # no name: the id
    assert [g["id"] for g in app["local_groups"]] == ["S01ENGINEER", "S02ONCALL02",
                                                      "S03ADMINS03", "S05DESIGN05"]
