"""mappings/jira.yaml against examples/jira/server.py: exactly the payload of Veza's connector."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from catalog_servers import compile_catalog, expected, fixture_server


@pytest.fixture(scope="module")
def jira_api() -> Iterator[str]:
    with fixture_server("jira") as root:
        yield f"{root}/rest/api/3"


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIRA_TOKEN", "offline-jira-token")
    monkeypatch.delenv("JIRA_URL", raising=False)
    monkeypatch.delenv("JIRA_USER", raising=False)


def _vars(api: str, **more: str) -> dict[str, str]:
    return {"jira_url": "acme.atlassian.net", "jira_user": "veza@acme.test", "base_url": api,
            **more}


def test_the_payload_is_veza_connectors(jira_api: str) -> None:
    code, payload, err = compile_catalog("jira.yaml", _vars(jira_api))
    assert code == 0, err
    # json.dumps equality: key order and list order included
    assert json.dumps(payload) == json.dumps(expected("jira", "expected-veza.json"))


def test_the_payload_is_veza_connectors_on_reordered_data() -> None:
    """Projects, scheme entries and users in reverse order, every project's privacy flipped."""
    with fixture_server("jira", fixtures="fixtures-reordered") as root:
        code, payload, err = compile_catalog("jira.yaml", _vars(f"{root}/rest/api/3"))
    assert code == 0, err
    assert json.dumps(payload) == json.dumps(expected("jira", "expected-veza-reordered.json"))


def test_the_application_is_named_after_the_site_host(jira_api: str) -> None:
    code, payload, err = compile_catalog(
        "jira.yaml", _vars(jira_api, jira_url="https://other.atlassian.net/"))
    assert code == 0, err
    assert payload["applications"][0]["name"] == "Jira - other.atlassian.net"


def test_the_role_names_two_keys_no_permission_defines(jira_api: str) -> None:
    """`VIEW_ISSUES` and `VIEW_PROJECTS` are sent as the connector sends them (`unchecked_refs`)."""
    _, payload, _ = compile_catalog("jira.yaml", _vars(jira_api))
    defined = {p["name"] for p in payload["permissions"]}
    role = payload["applications"][0]["local_roles"][0]
    assert role["id"] == "jira-software-users"
    assert [p for p in role["permissions"] if p not in defined] == ["VIEW_ISSUES", "VIEW_PROJECTS"]


def test_without_the_token_nothing_is_requested(jira_api: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JIRA_TOKEN")
    code, _, err = compile_catalog("jira.yaml", _vars(jira_api))
    assert code == 2
    assert "JIRA_TOKEN" in err
