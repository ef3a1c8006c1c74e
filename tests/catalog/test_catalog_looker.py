"""mappings/looker.yaml against the Looker fixture server (examples/looker): its payload is the
one Veza's Looker connector produced on the same data (examples/looker/expected-veza.json),
compared as JSON text (key order included)."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers import ROOT, run_cli

CLIENT_ID, CLIENT_SECRET = "looker-id", "looker-secret"
EXPECTED = ROOT / "examples" / "looker" / "expected-veza.json"


@contextmanager
def _serve(fixtures: str | None = None) -> Iterator[str]:
    """The fixture server's base URL (it accepts only the credentials above)."""
    path = ROOT / "examples" / "looker" / "server.py"
    spec = importlib.util.spec_from_file_location("catalog_looker_server", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.make_server("127.0.0.1", 0, fixtures=fixtures, client_id=CLIENT_ID,
                                client_secret=CLIENT_SECRET)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def looker() -> Iterator[str]:
    with _serve() as base_url:
        yield base_url


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKERSDK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("LOOKERSDK_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.delenv("LOOKERSDK_BASE_URL", raising=False)


def _compile(base_url: str) -> Any:
    result = run_cli("compile", "mappings/looker.yaml", "--quiet", "--var", f"base_url={base_url}")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_the_payload_is_veza_connectors(looker: str) -> None:
    assert json.dumps(_compile(looker)) == json.dumps(json.loads(EXPECTED.read_text()))


@pytest.mark.parametrize("suffix", ["", "/"], ids=["base-url", "base-url-with-slash"])
def test_the_edge_fixtures_give_veza_connectors_payload_too(suffix: str) -> None:
    # fixtures-edge: a second role named Admin (the connector applies only the last one), a
    # permission listed twice in a set, an empty display name, a null is_disabled and
    # verified_looker_employee, a group listed twice in a user's group_ids
    with _serve("fixtures-edge") as base_url:
        payload = _compile(base_url + suffix)
    expected = ROOT / "examples" / "looker" / "expected-veza-edge.json"
    assert json.dumps(payload) == json.dumps(json.loads(expected.read_text()))


def test_the_data_source_is_the_instance_host(looker: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from oaamap.pipeline import CompileOptions, compile_mapping

    mapping = ROOT / "mappings" / "looker.yaml"
    port = looker.rsplit(":", 1)[1]
    assert compile_mapping(mapping, {"base_url": looker}, CompileOptions()).data_source == \
        f"127.0.0.1:{port}"
    monkeypatch.setenv("LOOKERSDK_BASE_URL", looker)     # the connector's environment
    named = compile_mapping(mapping, {"instance": "acme.cloud.looker.com"}, CompileOptions())
    assert named.data_source == "acme.cloud.looker.com"


def test_deleted_models_and_unknown_holders_are_skipped(looker: str) -> None:
    result = run_cli("compile", "mappings/looker.yaml", "--var", f"base_url={looker}")
    assert result.code == 0, result.err
    assert "2 requests ignored by `ignore_status` (2 answered 404)" in result.err  # ghost_model
    payload = json.loads(result.out)
    holders = {(e["identity"], e["identity_type"]) for e in payload["identity_to_permissions"]}
    assert ("1042", "local_user") not in holders and ("77", "local_group") not in holders
    dave = next(u for u in payload["applications"][0]["local_users"] if u["id"] == "4")
    assert "99" not in dave["groups"]


def test_wrong_credentials_stop_the_run(looker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKERSDK_CLIENT_SECRET", "not-the-secret")
    result = run_cli("compile", "mappings/looker.yaml", "--var", f"base_url={looker}")
    assert result.code == 3
    assert "not-the-secret" not in result.err
