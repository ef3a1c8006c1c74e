"""Catalog parity: `mappings/github.yaml` compiled against the github-org fixture server
(`fixtures-veza`) gives exactly the payloads Veza's GitHub connector produced on it
(`examples/github-org/expected-veza*.json`, tests/veza_connectors/README.md), compared with
`json.dumps` equality (key order included), for every variant the connector was run in."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
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
    """The fixture server on an ephemeral port (`fixtures-veza` unless told); yields its URL."""
    server = SERVER.make_server("127.0.0.1", 0, **{"fixtures": "fixtures-veza", **options})
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


# -- more data: a second organisation derived from fixtures-veza, Veza's payload on it -----------

MORE_EXPECTED = Path(__file__).with_name("github-more.expected-veza.json")


def more_fixtures(dst: Path) -> Path:
    """fixtures-veza with more of everything Veza's connector branches on: teams with more
    members than a page (their nested cursors carried over), more child teams, an owner in a
    team, an empty and a missing profile name, repeated verified emails, an org default of
    `write`, repo team permissions `PUSH`, `Admin` and a custom role, a collaborator whose login
    differs in case from a member's, a new outside collaborator, user map lines in other cases
    and repeated. Veza's payload on it is `github-more.expected-veza.json` (how it was made:
    tests/veza_connectors/README.md)."""
    src = EXAMPLE / "fixtures-veza"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)

    def load(name: str) -> Any:
        return json.loads((dst / name).read_text())

    def save(name: str, value: Any) -> None:
        (dst / name).write_text(json.dumps(value, indent=1))

    new = [{"login": f"u{i}", "id": 2000 + i, "type": "User", "site_admin": False}
           for i in range(1, 8)]
    for i, member in enumerate(new, 1):
        save(f"users/{member['login']}.json", {
            **member, "name": {3: "", 4: None}.get(i, f"User {i}"),
            "created_at": f"2022-01-0{i}T00:00:00Z"})
    save("members.json", load("members.json") + new)
    save("admins.json", [*load("admins.json"), "u5"])
    save("verified-domain-emails.json", {**load("verified-domain-emails.json"),
                                         "u1": ["u1@acme.test", "u1@acme.test"],
                                         "u2": ["u2@acme.test"]})
    teams = load("teams.json")
    by_slug = {t["slug"]: t for t in teams}

    def team(number: int, name: str, parent: str | None) -> dict[str, Any]:
        above = by_slug.get(parent or "")
        return {"id": number, "node_id": f"T{number}", "name": name, "slug": name.lower(),
                "description": "", "privacy": "closed", "permission": "pull",
                "parent": above and {k: above[k] for k in ("id", "slug", "name")}}

    extra = [team(31, "Alpha", "security"), team(32, "Ops", "engineering"),
             team(33, "Zeta", None), team(34, "Data", "engineering"), team(35, "QA", "engineering")]
    save("teams.json", teams + extra)
    save("team-members/engineering.json", load("team-members/engineering.json") + new[:5])
    for slug, people in {"alpha": new[2:6], "ops": new[:3], "zeta": new, "data": [],
                         "qa": new[6:]}.items():
        save(f"team-members/{slug}.json", people)
    save("org.json", {**load("org.json"), "default_repository_permission": "write"})
    save("repo-teams/web.json", [
        *load("repo-teams/web.json"), {**extra[0], "permission": "PUSH"},
        {**extra[1], "permission": "triage-plus"}, {**extra[2], "permission": "Admin"}])
    level = {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True}
    save("collaborators/web.json", [
        *load("collaborators/web.json"),
        {"login": "ALICE", "id": 1002, "type": "User", "site_admin": False, "permissions": level},
        {"login": "ext-one", "id": 3001, "type": "User", "site_admin": False,
         "permissions": {**level, "maintain": True}}])
    (dst / "user-map.csv").write_text((src / "user-map.csv").read_text() + (
        "CAROL,carol@acme.test\ndave,dave@acme.test\ndave,dave@acme.test\n"
        "ext-one,ext@one.test\nu1,u1@acme.test\n"))
    return dst


@pytest.mark.parametrize("cursors", ["keyset", "offset"])
def test_more_data_gives_veza_s_payload_too(cursors: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    folder = more_fixtures(tmp_path / "fixtures-more")
    monkeypatch.setenv("GITHUB_TOKEN", "offline-token")
    with serving(fixtures=folder, cursors=cursors) as base:
        payload = _payload(base, user_map=str(folder / "user-map.csv"))
    expected = json.loads(MORE_EXPECTED.read_text())
    assert json.dumps(payload, indent=2) == json.dumps(expected[cursors], indent=2)


if __name__ == "__main__":      # write the folder for a run of Veza's connector on it
    print(more_fixtures(Path(sys.argv[1]).resolve()))
