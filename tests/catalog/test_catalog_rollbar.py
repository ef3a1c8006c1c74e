"""mappings/rollbar.yaml against the Rollbar fixture server (examples/rollbar): its payload is the
one Veza's Rollbar connector produced on the same data (examples/rollbar/expected-veza.json),
compared as JSON text (key order included)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, run_cli

TOKEN = "offline-rollbar-token"
EXPECTED = ROOT / "examples" / "rollbar" / "expected-veza.json"


@contextmanager
def _serve(**options: Any) -> Iterator[str]:
    path = ROOT / "examples" / "rollbar" / "server.py"
    spec = importlib.util.spec_from_file_location("catalog_rollbar_server", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.make_server("127.0.0.1", 0, token=TOKEN, **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLBAR_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("OAAMAP_HTTP_BACKOFF_BASE", "0.01")


def _compile(base_url: str) -> Any:
    result = run_cli("compile", "mappings/rollbar.yaml", "--quiet", "--var", f"base_url={base_url}")
    assert result.code == 0, result.err
    return json.loads(result.out)


@pytest.mark.parametrize("fail_first", [0, 2], ids=["plain", "two-429-first"])
def test_the_payload_is_veza_connectors(fail_first: int) -> None:
    with _serve(fail_first=fail_first) as base_url:
        payload = _compile(base_url)
    assert json.dumps(payload) == json.dumps(json.loads(EXPECTED.read_text()))


def test_the_edge_fixtures_give_veza_connectors_payload_too() -> None:
    # fixtures-edge: the first team has no account_id, a level spelt `Standard` after `standard`,
    # a user listed twice by a team, a user without an `email` key, a project whose status is null
    from oaamap.pipeline import CompileOptions, compile_mapping

    with _serve(fixtures="fixtures-edge") as base_url:
        payload = _compile(base_url)
        result = compile_mapping(ROOT / "mappings" / "rollbar.yaml", {"base_url": base_url},
                                 CompileOptions())
    expected = ROOT / "examples" / "rollbar" / "expected-veza-edge.json"
    assert json.dumps(payload) == json.dumps(json.loads(expected.read_text()))
    assert result.data_source == "Rollbar - 9001"    # the first account_id that is set


def test_the_data_source_is_named_after_the_first_teams_account(tmp_path: Path) -> None:
    from oaamap.pipeline import CompileOptions, compile_mapping

    fixtures = tmp_path / "fixtures"
    shutil.copytree(ROOT / "examples" / "rollbar" / "fixtures", fixtures)
    with _serve() as base_url:
        named = compile_mapping(ROOT / "mappings" / "rollbar.yaml", {"base_url": base_url},
                                CompileOptions())
    assert named.data_source == "Rollbar - 9001"
    (fixtures / "teams.json").write_text("[]")
    with _serve(fixtures=fixtures) as base_url:
        unnamed = compile_mapping(ROOT / "mappings" / "rollbar.yaml", {"base_url": base_url},
                                  CompileOptions())
        payload = _compile(base_url)
    # the connector's f"Rollbar - {None}"; no team: no permission, role, group or grant
    assert unnamed.data_source == "Rollbar - None"
    assert payload["permissions"] == [] and payload["identity_to_permissions"] == []
    assert [u.get("groups") for u in payload["applications"][0]["local_users"]] == [None] * 7
