"""mappings/bitbucket-cloud.yaml against examples/bitbucket-cloud/server.py: exactly the payloads
of Veza's connector, in each variant it was run in."""

from __future__ import annotations

import json

import pytest
from catalog_servers import compile_catalog, expected, fixture_server

OAUTH = {"BITBUCKET_CLIENT_KEY": "offline-client", "BITBUCKET_CLIENT_SECRET": "offline-secret",
         "ATLASSIAN_LOGIN": "veza@acme.test", "ATLASSIAN_API_KEY": "offline-atlassian"}
APP_PASSWORD = {"BITBUCKET_USER": "veza", "BITBUCKET_APP_KEY": "offline-app-key"}
VARIANTS = {
    # expected payload: (env, skip_branch_restriction_discovery, fixture folder)
    "expected-veza.json": (OAUTH, "no", "fixtures"),
    "expected-veza-app-password.json": (APP_PASSWORD, "no", "fixtures"),
    "expected-veza-skip-branch-restrictions.json": (APP_PASSWORD, "yes", "fixtures"),
    # the caller administers no repository: every probe answers 403 from the first one on
    "expected-veza-no-admin.json": (APP_PASSWORD, "no", "fixtures-no-admin"),
}
ALL_ENV = ("BITBUCKET_WORKSPACE", *OAUTH, *APP_PASSWORD)


def _compile(root: str, env: dict[str, str], skip: str,
             monkeypatch: pytest.MonkeyPatch) -> tuple[int, object, str]:
    for name in ALL_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return compile_catalog("bitbucket-cloud.yaml", {
        "workspace": "acme", "base_url": root, "token_url": f"{root}/site/oauth2/access_token",
        "atlassian_url": root, "skip_branch_restriction_discovery": skip})


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_payload_is_veza_connectors(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env, skip, fixtures = VARIANTS[name]
    with fixture_server("bitbucket-cloud", fixtures=fixtures) as root:
        code, payload, err = _compile(root, env, skip, monkeypatch)
    assert code == 0, err
    assert json.dumps(payload) == json.dumps(expected("bitbucket-cloud", name))


def test_tokens_refreshed_before_every_call_give_the_same_payload(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with fixture_server("bitbucket-cloud", token_ttl=200) as root:
        code, payload, err = _compile(root, OAUTH, "no", monkeypatch)
    assert code == 0, err
    assert json.dumps(payload) == json.dumps(expected("bitbucket-cloud", "expected-veza.json"))


def test_an_account_that_may_not_browse_users_gives_no_emails(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with fixture_server("bitbucket-cloud", user_picker=False) as root:
        code, payload, err = _compile(root, OAUTH, "no", monkeypatch)
    assert code == 0, err
    users = payload["applications"][0]["local_users"]
    assert not any("identities" in u or "email" in u.get("custom_properties", {}) for u in users)
    want = expected("bitbucket-cloud", "expected-veza.json")["applications"][0]["local_users"]
    assert [u["id"] for u in users] == [u["id"] for u in want]


def test_without_credentials_nothing_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    with fixture_server("bitbucket-cloud") as root:
        code, _, err = _compile(root, {}, "no", monkeypatch)
    assert code == 3
    assert "`auth: basic`: `username` is empty" in err
