"""Catalog parity: `mappings/slack.yaml` compiled against `examples/slack/server.py` gives exactly
the payload Veza's Slack connector produced on the same workspace (`expected-veza.json`)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, run_cli

EXAMPLE = ROOT / "examples" / "slack"
TOKEN = "xoxb-offline-slack-token"

Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start the example's fixture server on an ephemeral port; returns its API root."""
    spec = importlib.util.spec_from_file_location("catalog_slack_server", EXAMPLE / "server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    servers: list[Any] = []

    def start(**options: Any) -> str:
        server = module.make_server("127.0.0.1", 0, **options)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/api"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _compile(base_url: str, monkeypatch: pytest.MonkeyPatch, token: str = TOKEN) -> Any:
    monkeypatch.setenv("SLACK_TOKEN", token)
    result = run_cli("compile", "mappings/slack.yaml", "--quiet", "--var", f"base_url={base_url}")
    return result


def test_the_payload_is_veza_connectors_payload(serve: Serve,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    result = _compile(serve(), monkeypatch)
    assert result.code == 0, result.err
    expected = json.loads((EXAMPLE / "expected-veza.json").read_text())
    # key order included: compare the serialised documents
    assert json.dumps(json.loads(result.out)) == json.dumps(expected)


def test_the_payload_does_not_depend_on_the_page_size(serve: Serve,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    one_per_page = _compile(serve(cap=1), monkeypatch)
    all_at_once = _compile(serve(cap=100), monkeypatch)
    assert one_per_page.code == all_at_once.code == 0
    assert one_per_page.out == all_at_once.out


def test_an_ok_false_answer_stops_the_run_naming_the_request(
        serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _compile(serve(), monkeypatch, token="not-a-slack-token")
    assert result.code == 3
    assert "/api/team.info" in result.err
    assert '"error": "invalid_auth"' in result.err
    assert "not-a-slack-token" not in result.err


def test_the_connectors_rules_on_other_workspace_data(serve: Serve, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Branches the example workspace does not take, as `_add_user` / `_discover_usergroups`
    decide them: a bot whose `bot_id` is empty (set, as `""`), a bot without one (unset), a
    user named only by real name, a user without profile email (no identity), a primary owner
    who is not flagged admin; groups whose members are all unknown to `users.list`."""
    fixtures = tmp_path / "fixtures"
    shutil.copytree(EXAMPLE / "fixtures", fixtures)
    users = [
        {"id": "U1", "deleted": False, "is_bot": True, "is_primary_owner": True,
         "profile": {"display_name_normalized": "", "real_name_normalized": "Real One",
                     "bot_id": ""}},
        {"id": "U2", "deleted": True, "is_bot": True, "is_restricted": True, "is_admin": True,
         "profile": {"display_name_normalized": "b2", "email": "b2@x.test"}},
    ]
    (fixtures / "users.json").write_text(json.dumps(users))
    result = _compile(serve(fixtures=fixtures), monkeypatch)
    assert result.code == 0, result.err
    app = json.loads(result.out)["applications"][0]
    u1, u2 = app["local_users"]
    assert [g["id"] for g in app["local_groups"]] == [
        "S01ENGINEER", "S02ONCALL02", "S03ADMINS03", "S05DESIGN05"]
    assert "groups" not in u1 and "groups" not in u2
    assert (u1["name"], u1["is_active"], "identities" in u1) == ("Real One", True, False)
    assert u1["custom_properties"] == {"slack_name": "Real One", "has_mfa": False,
                                       "is_restricted": False, "is_ultra_restricted": False,
                                       "bot_id": ""}
    assert (u2["name"], u2["is_active"], u2["identities"]) == ("b2", False, ["b2@x.test"])
    assert u2["custom_properties"] == {"email": "b2@x.test", "slack_name": None,
                                       "has_mfa": False, "is_restricted": True,
                                       "is_ultra_restricted": False}
    grants = {g["identity"]: [p["permission"] for p in g["application_permissions"]]
              for g in json.loads(result.out)["identity_to_permissions"]}
    assert grants == {"U1": ["Member", "Primary Owner"], "U2": ["Guest", "Admin"]}


def test_an_ok_false_answer_to_a_group_member_list_is_not_an_empty_group(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack answers errors with HTTP 200: a `usergroups.users.list` answer without `users`
    stops the run (as the connector's SlackApiError) instead of reading as a group without
    members."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers = {"team.info": {"ok": True, "team": {"name": "T"}},
               "users.list": {"ok": True, "members": [{"id": "U1", "profile": {}}],
                              "response_metadata": {"next_cursor": ""}},
               "usergroups.list": {"ok": True, "usergroups": [{"id": "S1", "name": "g"}]}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            method = self.path.split("?")[0].rsplit("/", 1)[-1]
            raw = json.dumps(answers.get(method, {"ok": False, "error": "ratelimited"})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        result = _compile(f"http://127.0.0.1:{server.server_address[1]}/api", monkeypatch)
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 3
    assert "source `usergroup_members`" in result.err
    assert '"error": "ratelimited"' in result.err
