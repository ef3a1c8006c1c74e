"""Catalog parity: `mappings/gitlab.yaml` compiled against `examples/gitlab/server.py` gives the
payloads Veza's GitLab connector produced on the same instance (`expected-veza*.json`): with an
admin token on a self-managed instance, and with a member's token on gitlab.com."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import ROOT, run_cli

from oaamap.pipeline import compile_mapping

EXAMPLE = ROOT / "examples" / "gitlab"
MAPPING = ROOT / "mappings" / "gitlab.yaml"

Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start the example's fixture server on an ephemeral port; returns its URL."""
    spec = importlib.util.spec_from_file_location("catalog_gitlab_server", EXAMPLE / "server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    servers: list[Any] = []

    def start(**options: Any) -> str:
        server = module.make_server("127.0.0.1", 0, **options)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_ACCESS_TOKEN", "glpat-offline")
    monkeypatch.delenv("GITLAB_URL", raising=False)


def _compile(base_url: str, deployment: str) -> Any:
    result = run_cli("compile", str(MAPPING), "--quiet", "--var", f"base_url={base_url}",
                     "--var", f"deployment_name={deployment}")
    assert result.code == 0, result.err
    return json.loads(result.out)


def _expected(name: str) -> Any:
    return json.loads((EXAMPLE / name).read_text())


def _licensed_as_declared(payload: Any) -> Any:
    """The one documented deviation (GL4): Veza's connector sends `is_licensed` as the JSON
    boolean `true` under its STRING definition; the mapping sends the value converted to the
    declared type, `"true"`."""
    for user in payload["applications"][0]["local_users"]:
        properties = user.get("custom_properties", {})
        if properties.get("is_licensed") is True:
            properties["is_licensed"] = "true"
    return payload


def test_admin_token_on_a_self_managed_instance(serve: Serve) -> None:
    payload = _compile(serve(), "gitlab.acme.test")
    expected = _licensed_as_declared(_expected("expected-veza.json"))
    # key order included: compare the serialised documents
    assert json.dumps(payload) == json.dumps(expected)


def test_member_token_on_gitlab_com(serve: Serve) -> None:
    payload = _compile(serve(caller="alice", public_url="https://gitlab.com"), "gitlab.com")
    assert json.dumps(payload) == json.dumps(_expected("expected-veza-gitlab-com.json"))


@pytest.mark.parametrize(("caller", "deployment", "data_source"), [
    ("root", "gitlab.acme.test", "gitlab.acme.test"),
    ("alice", "gitlab.com", "gitlab.com - Alice Liddell (2)"),
])
def test_pushed_as_the_connector_pushes(serve: Serve, caller: str, deployment: str,
                                        data_source: str) -> None:
    result = compile_mapping(MAPPING, {"base_url": serve(caller=caller),
                                       "deployment_name": deployment})
    assert (result.provider, result.data_source) == ("GitLab", data_source)


def test_retried_failures_and_page_sizes_change_nothing(serve: Serve) -> None:
    reference = _compile(serve(), "gitlab.acme.test")
    flaky = serve(fail_once=("/api/v4/groups/11/members:429", "/api/v4/projects/100/members:502"))
    assert _compile(flaky, "gitlab.acme.test") == reference
    assert _compile(serve(per_page=1), "gitlab.acme.test") == reference
    assert _compile(serve(per_page=100), "gitlab.acme.test") == reference


def test_the_url_is_normalised_as_the_connector_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from oaamap.pipeline import plan_mapping, render_context

    for given, url, name in [("gitlab.acme.test/", "https://gitlab.acme.test", "gitlab.acme.test"),
                             ("https://gitlab.com", "https://gitlab.com", "gitlab.com")]:
        mapping, _ = plan_mapping(MAPPING, {"base_url": given})
        rendered = render_context(mapping)["vars"]
        assert (rendered["gitlab_url"], rendered["deployment_name"]) == (url, name)
    monkeypatch.setenv("GITLAB_URL", "https://git.example.test")
    mapping, _ = plan_mapping(MAPPING)
    assert render_context(mapping)["vars"]["deployment_name"] == "git.example.test"


def test_an_unknown_access_level_stops_the_run(serve: Serve, tmp_path: Any) -> None:
    import shutil

    fixtures = tmp_path / "fixtures"
    shutil.copytree(EXAMPLE / "fixtures", fixtures)
    groups = json.loads((fixtures / "groups.json").read_text())
    groups[0]["members"][0]["access_level"] = 60
    (fixtures / "groups.json").write_text(json.dumps(groups))
    result = run_cli("compile", str(MAPPING), "--quiet", "--var",
                     f"base_url={serve(fixtures=fixtures)}")
    assert result.code != 0
    assert "is granted role `60` that no `roles` rule defines" in result.err, result.err


def test_branches_the_example_does_not_take(serve: Serve, tmp_path: Any) -> None:
    """As `add_user` / `discover_group` decide them: a /users record with a SAML identity whose
    `extern_uid` looks like an email (it replaces the email property, in the email's place), one
    whose `extern_uid` does not (the email stays), and a group whose description is null (the
    connector crashes on it: no description)."""
    import shutil

    fixtures = tmp_path / "fixtures"
    shutil.copytree(EXAMPLE / "fixtures", fixtures)
    users = json.loads((fixtures / "users.json").read_text())
    by_name = {u["username"]: u for u in users}
    by_name["alice"]["group_saml_identity"] = {"extern_uid": "alice.saml@idp.test"}
    by_name["henry"]["group_saml_identity"] = {"extern_uid": "henry-uid"}
    (fixtures / "users.json").write_text(json.dumps(users))
    groups = json.loads((fixtures / "groups.json").read_text())
    groups[0]["description"] = None
    (fixtures / "groups.json").write_text(json.dumps(groups))
    payload = _compile(serve(fixtures=fixtures), "gitlab.acme.test")
    app = payload["applications"][0]
    users_by_name = {u["name"]: u for u in app["local_users"]}
    alice, henry = users_by_name["alice"], users_by_name["henry"]
    assert alice["identities"] == ["alice@acme.test", "alice.saml@idp.test"]
    assert list(alice["custom_properties"].items()) == [
        ("gitlab_id", 2), ("is_licensed", "true"), ("state", "active"),
        ("email", "alice.saml@idp.test"), ("saml_login", True)]
    assert henry["identities"] == ["henry@acme.test", "henry-uid"]
    assert henry["custom_properties"]["email"] == "henry@acme.test"
    assert henry["custom_properties"]["saml_login"] is True
    acme = app["resources"][0]
    assert (acme["id"], "description" in acme) == ("10", False)
