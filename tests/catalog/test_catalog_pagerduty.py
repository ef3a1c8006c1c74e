"""Catalog parity: `mappings/pagerduty.yaml` compiled offline against the PagerDuty fixture server
gives exactly (key order included) the payload Veza's PagerDuty connector produced on the same
data (`examples/pagerduty/expected-veza*.json`), and the names Veza's connector pushed to; the
documented deviations behave as documented (docs/catalog.md, section "pagerduty")."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers import ROOT, run_cli

from oaamap.errors import PayloadErrors
from oaamap.pipeline import CompileResult, compile_mapping

EXAMPLE = ROOT / "examples" / "pagerduty"
MAPPING = ROOT / "mappings" / "pagerduty.yaml"

# expected payload: (fixture folder, abilities the account lacks, the data source Veza pushed to)
VARIANTS = {
    "expected-veza.json": ("fixtures-veza", (), "pagerduty - acme"),
    "expected-veza-without-teams.json": ("fixtures-veza", ("teams",), "pagerduty - acme"),
    "expected-veza-edge.json": ("fixtures-edge", (), "pagerduty - edge-co"),
    "expected.json": ("fixtures", (), "pagerduty - acme"),
}


def _server_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("catalog_pagerduty_server",
                                                  EXAMPLE / "server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def _serving(fixtures: str | Path, without: tuple[str, ...] = (),
             seen: list[str] | None = None) -> Iterator[str]:
    """The fixture server on an ephemeral port; `seen` collects the requested paths."""
    server = _server_module().make_server("127.0.0.1", 0, fixtures=fixtures, without=without)
    if seen is not None:
        handler: Any = server.RequestHandlerClass  # a class made for this server only
        answer = handler.do_GET

        def recording(self: Any) -> None:
            seen.append(self.path)
            answer(self)

        handler.do_GET = recording
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGERDUTY_API_KEY", "offline-key")


def _compile(fixtures: str | Path, without: tuple[str, ...] = ()) -> CompileResult:
    with _serving(fixtures, without) as base:
        return compile_mapping(MAPPING, {"base_url": base})


@pytest.mark.parametrize("expected", list(VARIANTS))
def test_the_payload_is_veza_s_exactly(expected: str) -> None:
    fixtures, without, data_source = VARIANTS[expected]
    result = _compile(fixtures, without)
    # json.dumps equality: the same keys in the same order, not only equal objects.
    want = json.loads((EXAMPLE / expected).read_text())
    assert json.dumps(json.loads(result.payload_json())) == json.dumps(want)
    assert (result.provider, result.data_source) == ("PagerDuty", data_source)


# What Veza's connector requested from `server.py --fixtures fixtures-veza` (the server's log of
# its run): the mapping sends the same requests, offsets taken from each response.
VEZA_REQUESTS = [
    "/abilities", "/users?limit=1&include%5B%5D=subdomains",
    "/users?limit=100", "/users?limit=100&offset=2", "/users?limit=100&offset=4",
    "/users?limit=100&offset=6", "/users?limit=100&offset=8",
    "/teams?limit=100", "/teams?limit=100&offset=2", "/teams?limit=100&offset=4",
    "/teams/PT4KHLK/members?limit=100", "/teams/PT4KHLK/members?limit=100&offset=2",
    "/teams/PQ9K7I8/members?limit=100", "/teams/PF9KMXH/members?limit=100",
    "/teams/PD4TA8X/members?limit=100", "/teams/PD4TA8X/members?limit=100&offset=2",
    "/teams/PN0DESC/members?limit=100",
]


def test_it_sends_the_connector_s_requests() -> None:
    seen: list[str] = []
    with _serving("fixtures-veza", seen=seen) as base:
        compile_mapping(MAPPING, {"base_url": base})
    assert sorted(seen) == sorted(VEZA_REQUESTS)
    seen.clear()
    with _serving("fixtures-veza", ("teams",), seen=seen) as base:
        compile_mapping(MAPPING, {"base_url": base})
    assert sorted(seen) == sorted(r for r in VEZA_REQUESTS if not r.startswith("/teams"))


def test_the_cli_compiles_it_offline() -> None:
    with _serving("fixtures-veza") as base:
        result = run_cli("compile", str(MAPPING), "--var", f"base_url={base}")
    assert result.code == 0, result.err
    want = json.loads((EXAMPLE / "expected-veza.json").read_text())
    assert json.dumps(json.loads(result.out)) == json.dumps(want)


def test_without_the_teams_ability_no_team_is_requested_and_the_run_says_so() -> None:
    result = _compile("fixtures-veza", ("teams",))
    assert result.records["teams"] == 0 and result.records["team_members"] == 0
    assert result.notes[0] == ("source `teams` is disabled (`when: 'teams' in "
                               "abilities.abilities` is false): no records read")


def test_the_example_is_the_catalog_mapping() -> None:
    assert (EXAMPLE / "mapping.yaml").read_text() == MAPPING.read_text()


# The documented deviations, on small accounts written for them.

def _account(tmp_path: Path, users: list[dict[str, Any]],
             members: list[dict[str, Any]] | None = None) -> Path:
    (tmp_path / "team-members").mkdir()
    (tmp_path / "users.json").write_text(json.dumps(users))
    (tmp_path / "teams.json").write_text(json.dumps(
        [{"id": "PT1", "type": "team", "summary": "Ops", "name": "Ops"}]))
    (tmp_path / "team-members" / "PT1.json").write_text(json.dumps(members or []))
    return tmp_path


def _user(uid: str, **fields: Any) -> dict[str, Any]:
    return {"id": uid, "name": uid, "email": f"{uid}@x.test", "billed": True, "role": "user",
            **fields}


def test_an_empty_email_gives_no_identity(tmp_path: Path) -> None:
    # Veza's connector sends `identities: [""]`; oaamap drops "" list items.
    payload = _compile(_account(tmp_path, [_user("PA1", email="")])).payload
    user = payload["applications"][0]["local_users"][0]
    assert "identities" not in user
    assert user["custom_properties"] == {"email": "", "is_billed": True}


def test_a_user_without_a_role_gets_no_account_role(tmp_path: Path) -> None:
    # Veza's connector sends an assignment of role null; oaamap skips that grant's row.
    users = [_user("PA1"), {k: v for k, v in _user("PA2").items() if k != "role"}]
    result = _compile(_account(tmp_path, users, [{"user": {"id": "PA2"}, "role": "observer"}]))
    assert result.entities.skipped == 1
    assert result.payload["identity_to_permissions"][1]["role_assignments"] == [
        {"application": "PagerDuty - acme", "role": "observer", "apply_to_application": False,
         "resources": ["Ops"]}]


def test_an_unknown_account_role_is_a_payload_error(tmp_path: Path) -> None:
    # Veza's connector sends the dangling role reference; oaamap refuses the payload.
    with pytest.raises(PayloadErrors, match="incident_commander"):
        _compile(_account(tmp_path, [_user("PA1", role="incident_commander")]))
