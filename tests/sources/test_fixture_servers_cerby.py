"""The Cerby fixture server (examples/cerby/server.py): the calls and branches of Veza's Cerby
connector (docs/catalog-parity.md), and the payload that connector produced on it
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


@pytest.fixture(scope="module")
def cerby() -> Iterator[str]:
    server = _load_server("cerby").make_server("127.0.0.1", 0, api_key="cb-key")
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, key: str | None = "cb-key") -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("x-api-key", key)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _all(base: str, path: str) -> tuple[list[Any], int]:
    """Follow `links.next` (a path relative to the workspace URL) as the connector does."""
    items, pages, url = [], 0, f"{base}{path}"
    while True:
        status, body = _get(url)
        assert status == 200
        items += body["data"]
        pages += 1
        if not body["links"]["next"]:
            return items, pages
        url = f"{base}{body['links']['next']}"


def test_lists_are_json_api_pages_with_relative_next_links(cerby: str) -> None:
    status, first = _get(f"{cerby}/api/v1/users")
    assert status == 200 and len(first["data"]) == 2
    assert first["links"]["next"] == "/api/v1/users?page%5Bnumber%5D=2&page%5Bsize%5D=2"
    assert first["links"]["prev"] is None and first["meta"]["totalCount"] == 6
    users, pages = _all(cerby, "/api/v1/users")
    assert pages == 3 and len({u["id"] for u in users}) == 6
    assert [u["attributes"]["lastName"] for u in users].count(None) == 1
    assert users[-1]["attributes"]["email"] is None
    accounts, pages = _all(cerby, "/api/v1/accounts")
    assert pages == 4 and [a["id"] for a in accounts][-1] == "acc-0007"
    assert "application" not in accounts[-1]["attributes"]
    assert _get(f"{cerby}/api/v1/users?page%5Bsize%5D=100")[1]["links"]["next"] is None
    assert _get(f"{cerby}/api/v1/users?page%5Bnumber%5D=0")[0] == 400


def test_integration_users_and_their_failures(cerby: str) -> None:
    status, body = _get(f"{cerby}/api/v1/integrations/acc-0001/users")
    assert status == 200 and [u["id"] for u in body["data"]] == ["iu-1", "iu-2"]
    assert _get(f"{cerby}/api/v1/integrations/acc-0004/users") == (200, {"data": []})
    assert _get(f"{cerby}/api/v1/integrations/acc-0003/users")[0] == 403
    assert _get(f"{cerby}/api/v1/integrations/acc-0005/users")[0] == 404
    status, body = _get(f"{cerby}/api/v1/integrations/acc-0006/users")
    assert status == 500 and body["errors"][0]["title"] == "Internal Server Error"


def test_api_key_is_required(cerby: str) -> None:
    assert _get(f"{cerby}/api/v1/users", key=None)[0] == 401
    status, body = _get(f"{cerby}/api/v1/accounts", key="wrong")
    assert status == 401 and body["errors"][0]["status"] == "401"


def test_the_veza_payload_is_committed() -> None:
    payload = json.loads((ROOT / "examples/cerby/expected-veza.json").read_text())
    app = payload["applications"][0]
    assert (app["name"], app["application_type"]) == ("FullCerbyIntegration", "integration")
    # accounts whose integration users failed (403, 404, 500) or that have no application: gone
    assert [r["id"] for r in app["resources"]] == ["acc-0001", "acc-0002", "acc-0004"]
    assert [u["name"] for u in app["local_users"]][2] == "Carol None"
    assert payload["permissions"] == [] and payload["identity_to_permissions"] == []
