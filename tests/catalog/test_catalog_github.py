"""Catalog parity: `mappings/github.yaml` compiled against the github-org fixture server
(`fixtures-veza`) gives exactly the payloads Veza's GitHub connector produced on it
(`examples/github-org/expected-veza*.json`, tests/veza_connectors/README.md), compared with
`json.dumps` equality (key order included), for every variant the connector was run in."""

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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from oaamap.pipeline import compile_mapping, plan_mapping, render_context

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "github-org"
MAPPING = ROOT / "mappings" / "github.yaml"
USER_MAP = str(EXAMPLE / "fixtures-veza" / "user-map.csv")
ENV_NAMES = ("GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_KEY", "GITHUB_KEY_BASE64", "GITHUB_ORG",
             "GITHUB_URL", "GITHUB_USER_MAP", "SKIP_BRANCH_PROTECTION")


def _server_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("catalog_github_server", EXAMPLE / "server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SERVER = _server_module()


@contextmanager
def serving(**options: Any) -> Iterator[str]:
    """The fixture server on an ephemeral port, with `fixtures-veza`; yields its base URL."""
    server = SERVER.make_server("127.0.0.1", 0, fixtures="fixtures-veza", **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def _payload(base_url: str, **variables: str) -> Any:
    result = compile_mapping(MAPPING, {"org": "acme", "base_url": base_url, **variables})
    assert (result.provider, result.data_source) == ("Github", "github-acme")
    return result.payload


def _expected(name: str) -> Any:
    return json.loads((EXAMPLE / name).read_text())


# (expected file, server options, env, vars): the runs of tests/veza_connectors/README.md
VARIANTS = {
    "user-map": ("expected-veza.json", {}, {}, {"user_map": USER_MAP}),
    "no-user-map": ("expected-veza-no-user-map.json", {}, {}, {}),
    "skip-branch-protection": ("expected-veza-skip-branch-protection.json", {},
                               {"SKIP_BRANCH_PROTECTION": "1"}, {"user_map": USER_MAP}),
    "offset-cursors": ("expected-veza-offset-cursors.json", {"cursors": "offset"}, {},
                       {"user_map": USER_MAP}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_payload_is_veza_s(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected, options, env, variables = VARIANTS[variant]
    monkeypatch.setenv("GITHUB_TOKEN", "offline-token")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with serving(**options) as base:
        payload = _payload(base, **variables)
    assert json.dumps(payload, indent=2) == json.dumps(_expected(expected), indent=2)


def test_github_app_auth_with_short_lived_tokens(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """As Veza's connector runs: GitHub App auth (the server checks the JWT against app id 777),
    installation tokens that expire within five minutes: the same payload."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "app.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    monkeypatch.setenv("GITHUB_APP_ID", "777")
    monkeypatch.setenv("GITHUB_KEY", str(tmp_path / "app.pem"))
    with serving(app_id=777, token_ttl=200) as base:
        payload = _payload(base, user_map=USER_MAP)
    assert json.dumps(payload) == json.dumps(_expected("expected-veza.json"))


@pytest.mark.parametrize("base_url, api, graphql", [
    ("https://api.github.com", "https://api.github.com", "https://api.github.com/graphql"),
    ("https://api.github.com/", "https://api.github.com", "https://api.github.com/graphql"),
    ("https://github.acme.test", "https://github.acme.test/api/v3",
     "https://github.acme.test/api/graphql"),
    ("github.acme.test/", "https://github.acme.test/api/v3",
     "https://github.acme.test/api/graphql"),
])
def test_base_url_is_github_com_or_enterprise(base_url: str, api: str, graphql: str) -> None:
    """Veza's rule: exactly https://api.github.com is GitHub.com; anything else is GitHub
    Enterprise Server (REST at URL/api/v3, GraphQL at URL/api/graphql)."""
    mapping, _ = plan_mapping(MAPPING, {"org": "acme", "base_url": base_url})
    rendered = render_context(mapping)["vars"]
    assert (rendered["api_url"], rendered["graphql_url"]) == (api, graphql)


def test_the_default_base_url_is_github_com() -> None:
    mapping, _ = plan_mapping(MAPPING, {"org": "acme"})
    assert render_context(mapping)["vars"]["api_url"] == "https://api.github.com"


def test_the_example_is_the_catalog_mapping_and_its_golden_is_veza_s() -> None:
    """examples/github-org runs the catalog mapping on `fixtures-veza` without a user map
    (tests/sources/test_http_examples.py): its golden is Veza's payload of that run."""
    assert (EXAMPLE / "mapping.yaml").read_text() == MAPPING.read_text()
    assert json.dumps(_expected("expected.json")) == json.dumps(
        _expected("expected-veza-no-user-map.json"))
