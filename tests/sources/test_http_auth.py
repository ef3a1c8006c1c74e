"""`http` source: every auth kind against the local server; secrets never leak."""

from __future__ import annotations

import logging

import pytest
from http_server import API_KEY, CLIENT_ID, CLIENT_SECRET, PASSWORD, TOKEN, USER, LocalServer
from source_helpers import data, plan_one, read_all

from oaamap.errors import SourceError

ENV = {"TOKEN": TOKEN, "USER": USER, "PASSWORD": PASSWORD, "API_KEY": API_KEY,
       "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET}
SECRETS = (TOKEN, PASSWORD, API_KEY, CLIENT_SECRET)


def source(url: str, auth: str, extra: str = "") -> str:
    return f"""
sources:
  things:
    http:
      url: "{url}"
      auth: {auth}
{extra}"""


AUTHS = {
    "bearer": ("/auth/bearer", '{bearer: "{{ env.TOKEN }}"}'),
    "bearer_mapping": ("/auth/bearer", '{bearer: {token: "{{ env.TOKEN }}"}}'),
    "basic": ("/auth/basic",
              '{basic: {username: "{{ env.USER }}", password: "{{ env.PASSWORD }}"}}'),
    "api_key_header": ("/auth/header-key",
                       '{api_key: {header: X-API-Key, value: "{{ env.API_KEY }}"}}'),
    "api_key_param": ("/auth/query-key",
                      '{api_key: {param: api_key, value: "{{ env.API_KEY }}"}}'),
}


@pytest.mark.parametrize("kind", list(AUTHS), ids=list(AUTHS))
def test_every_auth_kind_is_accepted(server: LocalServer, kind: str) -> None:
    path, auth = AUTHS[kind]
    records = read_all(plan_one(source(server.url(path), auth)), env=ENV)
    assert records and records[0].data["who"] in path


@pytest.mark.parametrize("kind", list(AUTHS), ids=list(AUTHS))
def test_wrong_credentials_fail_at_once_without_leaking_them(
        server: LocalServer, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    path, auth = AUTHS[kind]
    wrong = {k: v + "-WRONG" for k, v in ENV.items()}
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as info:
        read_all(plan_one(source(server.url(path), auth)), env=wrong)
    error = info.value
    assert error.status == 401
    assert error.source == "things"
    assert "the server refused the credentials; check `auth`" in error.message
    assert server.hits[path] == 1  # a 401 is not retried
    for secret in (*SECRETS, *wrong.values()):
        if len(secret) > 8:
            assert secret not in str(error) and secret not in caplog.text


def test_api_key_in_the_query_is_never_shown(server: LocalServer,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path, auth = AUTHS["api_key_param"]
    records = read_all(plan_one(source(server.url(path), auth, """      paginate: {page: {}}""")),
                       env=ENV)
    assert [r["page"] for r in data(records)] == [1, 2]
    assert all(API_KEY not in str(r.ref) for r in records)
    assert server.requests[0].query["api_key"] == API_KEY
    assert API_KEY not in caplog.text
    assert "/auth/query-key?page=1" in caplog.text


def test_a_missing_secret_is_reported_before_any_request(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/auth/bearer"),
                           '{bearer: "{{ env.TOKEN | default(\'\') }}"}'))
    with pytest.raises(SourceError, match=r"`auth: bearer`: `token` is empty"):
        read_all(plan, env={})
    assert server.hits["/auth/bearer"] == 0


OAUTH = ('{oauth2_client_credentials: {token_url: "%s", client_id: "{{ env.CLIENT_ID }}", '
         'client_secret: "{{ env.CLIENT_SECRET }}", scope: "read:all"%s}}')


@pytest.mark.parametrize("client_auth", ["", ", client_auth: basic"], ids=["body", "basic"])
def test_oauth2_token_is_fetched_once_and_shared_by_all_pages(server: LocalServer,
                                                               client_auth: str) -> None:
    auth = OAUTH % (server.url("/oauth/token"), client_auth)
    plan = plan_one(source(server.url("/auth/oauth"), auth, "      paginate: {page: {}}"))
    records = read_all(plan, env=ENV)
    assert [r["page"] for r in data(records)] == [1, 2, 3]
    assert server.state["tokens"] == 1
    assert server.state["scope"] == "read:all"


def test_oauth2_token_is_shared_by_the_fan_out_threads(server: LocalServer) -> None:
    from oaamap.errors import Origin
    from oaamap.sources import Record
    parents = [Record({"n": i}, Origin("p", "p", "index"), i) for i in range(20)]
    auth = OAUTH % (server.url("/oauth/token"), "")
    plan = plan_one(source(server.url("/auth/oauth?x={{ p.n }}"), auth,
                           "      for_each: {p: parents}\n      concurrency: 8"),
                    other_sources=["parents"])
    records = read_all(plan, env=ENV, parents={"parents": parents})
    assert len(records) == 20
    assert server.state["tokens"] == 1


def test_oauth2_token_is_refreshed_after_a_401(server: LocalServer) -> None:
    server.state["revoke_at_page"] = 2
    auth = OAUTH % (server.url("/oauth/token"), "")
    plan = plan_one(source(server.url("/auth/oauth"), auth, "      paginate: {page: {}}"))
    records = read_all(plan, env=ENV)
    assert [r["page"] for r in data(records)] == [1, 2, 3]
    assert server.state["tokens"] == 2
    # page 2 was asked twice: once with the stale token (401), once with the new one
    assert [r.query.get("page") for r in server.requests if r.path == "/auth/oauth"] == [
        "1", "2", "2", "3", "4"]


def test_oauth2_token_is_refreshed_when_it_expires(server: LocalServer) -> None:
    server.state["expires_in"] = 0  # every token is already expired when it arrives
    auth = OAUTH % (server.url("/oauth/token"), "")
    plan = plan_one(source(server.url("/auth/oauth"), auth, "      paginate: {page: {}}"))
    read_all(plan, env=ENV)
    assert server.state["tokens"] == 4  # one per request


def test_oauth2_bad_client_secret_names_the_token_request_not_the_secret(
        server: LocalServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth = OAUTH % (server.url("/oauth/token"), "")
    plan = plan_one(source(server.url("/auth/oauth"), auth))
    env = {**ENV, "CLIENT_SECRET": "wrong-secret-value"}
    with pytest.raises(SourceError) as info:
        read_all(plan, env=env)
    error = info.value
    assert error.status == 401
    assert error.location == f"POST {server.base}/oauth/token (token request)"
    assert error.body == '{"error": "invalid_client"}'
    assert "wrong-secret-value" not in str(error) + caplog.text
    assert server.hits["/auth/oauth"] == 0


def test_a_body_echoing_the_credentials_is_masked(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/echo-error"), AUTHS["bearer"][1]))
    with pytest.raises(SourceError) as info:
        read_all(plan, env=ENV)
    error = info.value
    assert error.status == 400
    assert TOKEN not in str(error)
    assert error.body == ('{"error": "bad request", "you_sent": "Bearer ***", '
                          '"note": "auth was Bearer ***"}')


def test_the_redactor_masks_plain_and_url_encoded_forms() -> None:
    from oaamap.sources.http.redact import Redactor
    redact = Redactor(["p@ss word/1", "ab"])
    assert redact("x p@ss word/1 p%40ss%20word%2F1 p%40ss+word%2F1 ab") == "x *** *** *** ab"
