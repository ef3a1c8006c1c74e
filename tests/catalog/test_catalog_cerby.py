"""mappings/cerby.yaml against the Cerby fixture server (examples/cerby): its payload is the one
Veza's Cerby connector produced on the same data (examples/cerby/expected-veza.json), compared
as JSON text (key order included)."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import ROOT, run_cli

KEY = "offline-cerby-key"


def _serve(**options: Any) -> Iterator[str]:
    path = ROOT / "examples" / "cerby" / "server.py"
    spec = importlib.util.spec_from_file_location("catalog_cerby_server", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.make_server("127.0.0.1", 0, api_key=KEY, **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module", params=[2, 100], ids=["page-size-2", "page-size-100"])
def cerby(request: pytest.FixtureRequest) -> Iterator[str]:
    """The fixture server's base URL, with small pages (several `links.next`) or one page."""
    yield from _serve(page_size=request.param)


def _compile(base_url: str) -> tuple[int, str, str]:
    result = run_cli("compile", "mappings/cerby.yaml", "--quiet", "--var", f"base_url={base_url}")
    return result.code, result.out, result.err


def test_the_payload_is_veza_connectors(cerby: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERBY_API_KEY", KEY)
    code, out, err = _compile(cerby)
    assert code == 0, err
    expected = json.loads((ROOT / "examples" / "cerby" / "expected-veza.json").read_text())
    assert json.dumps(json.loads(out)) == json.dumps(expected)


def test_the_edge_fixtures_give_veza_connectors_payload_too(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    # fixtures-edge: an empty lastName, a null firstName, integrations answering 502 and 422, one
    # whose user has no `attributes` (the connector's KeyError drops the account)
    monkeypatch.setenv("CERBY_API_KEY", KEY)
    for base_url in _serve(fixtures="fixtures-edge"):
        code, out, err = _compile(base_url)
    assert code == 0, err
    expected = json.loads((ROOT / "examples" / "cerby" / "expected-veza-edge.json").read_text())
    assert json.dumps(json.loads(out)) == json.dumps(expected)


def test_the_accounts_kept_are_those_whose_integration_answered(
        cerby: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERBY_API_KEY", KEY)
    result = run_cli("compile", "mappings/cerby.yaml", "--var", f"base_url={cerby}")
    assert result.code == 0, result.err
    app = json.loads(result.out)["applications"][0]
    # 0003 (403), 0005 (404), 0006 (500) failed; 0007 has no `application` and is never asked
    assert [r["id"] for r in app["resources"]] == ["acc-0001", "acc-0002", "acc-0004"]
    assert "1 answered 403, 1 answered 404, 1 answered 500" in result.err
    assert "integrations 6" in result.err


def test_a_wrong_key_stops_the_run(cerby: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERBY_API_KEY", "not-the-key")
    code, _, err = _compile(cerby)
    assert code == 3
    assert "[HTTP 401]" in err
    assert "not-the-key" not in err
