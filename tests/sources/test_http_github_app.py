"""`auth: github_app`: JWT RS256 -> installation token, against the github-org fixture server
(which checks the JWT's claims and expires its tokens after `token_ttl` seconds)."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from http_server import LocalServer, Reply, Req
from source_helpers import data, errors_of, plan_one, read_all
from veza_servers import serving

from oaamap.errors import SourceError
from oaamap.redact import Redactor, mask_text
from oaamap.sources.http.auth import AuthTools
from oaamap.sources.http.client import HttpClient, RetryPolicy, make_session
from oaamap.sources.http.github_app import GitHubAppAuth
from oaamap.sources.http.request import Request

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption()).decode()
PUBLIC = KEY.public_key()


@pytest.fixture(scope="module")
def github() -> Iterator[str]:
    with serving("github-org", app_id=777, token_ttl=2) as base:
        yield base


def members_source(base: str, auth: str, path: str = "/orgs/acme/members") -> str:
    return f"""
sources:
  members:
    http:
      url: "{base}{path}"
      auth:
        github_app:
          app_id: "{{{{ env.APP_ID }}}}"
          api_url: "{base}"
{auth}
      paginate: {{link_header: next}}
"""


KEY_FROM_ENV = '          private_key: "{{ env.GITHUB_APP_PRIVATE_KEY }}"\n'
ORG = '          org: ACME\n'


@pytest.mark.parametrize("form", ["pem", "pem_escaped_newlines", "base64"])
def test_the_key_from_an_environment_variable(github: str, form: str) -> None:
    value = {"pem": PEM, "pem_escaped_newlines": PEM.replace("\n", "\\n"),
             "base64": base64.b64encode(PEM.encode()).decode()}[form]
    plan = plan_one(members_source(github, KEY_FROM_ENV + ORG))
    records = read_all(plan, env={"APP_ID": "777", "GITHUB_APP_PRIVATE_KEY": value})
    assert len(records) == 8 and data(records)[0]["login"] == "octo-admin"


def test_the_key_from_a_file_next_to_the_mapping_and_an_installation_id(
        github: str, tmp_path: Path) -> None:
    (tmp_path / "app.pem").write_text(PEM)
    auth = "          private_key_file: app.pem\n          installation_id: 4242\n"
    plan = plan_one(members_source(github, auth, "/api/v3/orgs/acme/repos"), base_dir=tmp_path)
    assert [r["name"] for r in data(read_all(plan, env={"APP_ID": "777"}))] == [
        "api", "web", "infra", "docs", "legacy"]


def test_graphql_gets_the_installation_token_too(github: str) -> None:
    plan = plan_one(f"""
sources:
  members:
    http:
      url: "{github}/api/graphql"
      method: POST
      auth:
        github_app: {{app_id: 777, org: acme, api_url: "{github}/api/v3",
                     private_key: "{{{{ env.GITHUB_APP_PRIVATE_KEY }}}}"}}
      body:
        query: "query($after: String) {{ organization(login: \\"acme\\") {{
          membersWithRole(first: 100, after: $after) {{ pageInfo {{ endCursor hasNextPage }}
          nodes {{ login }} }} }} }}"
      records: data.organization.membersWithRole.nodes
      paginate:
        graphql: {{cursor: after, page_info: data.organization.membersWithRole.pageInfo}}
""")
    records = read_all(plan, env={"GITHUB_APP_PRIVATE_KEY": PEM})
    assert [r["login"] for r in data(records)][:3] == ["octo-admin", "alice", "bob"]


def test_the_jwt_and_the_calls(server: LocalServer) -> None:
    @server.route("/app/installations")
    def installations(req: Req) -> Reply:
        return Reply(200, [{"id": 9, "account": {"login": "Other"}}], {
            "Link": f'<{server.url("/app/installations2")}>; rel="next"'})

    @server.route("/app/installations2")
    def installations2(req: Req) -> Reply:
        return Reply(200, [{"id": 31, "account": {"login": "Acme"}}])

    @server.route("/app/installations/31/access_tokens", method="POST")
    def token(req: Req) -> Reply:
        return Reply(201, {"token": "ghs_installation-token-1",
                           "expires_at": "2099-01-01T00:00:00Z"})

    @server.route("/data")
    def answer(req: Req) -> Reply:
        return Reply(200, [{"auth": req.headers["authorization"]}])

    plan = plan_one(members_source(server.base, KEY_FROM_ENV + "          org: acme\n", "/data"))
    started = int(time.time())
    assert data(read_all(plan, env={"APP_ID": "777", "GITHUB_APP_PRIVATE_KEY": PEM})) == [
        {"auth": "Bearer ghs_installation-token-1"}]
    sent = [r for r in server.requests if r.path.startswith("/app/")]
    assert [(r.method, r.path) for r in sent] == [
        ("GET", "/app/installations"), ("GET", "/app/installations2"),
        ("POST", "/app/installations/31/access_tokens")]
    app_jwt = sent[0].headers["authorization"].removeprefix("Bearer ")
    header = jwt.get_unverified_header(app_jwt)
    claims = jwt.decode(app_jwt, PUBLIC, algorithms=["RS256"],
                        options={"verify_iat": False})
    assert header["alg"] == "RS256"
    assert claims["iss"] == "777"                          # a string, as PyJWT >= 2.10 requires
    assert started - 61 <= claims["iat"] <= started - 59
    assert claims["exp"] - claims["iat"] == 600
    assert sent[0].headers["accept"] == "application/vnd.github+json"


def _client(source: str = "app") -> tuple[HttpClient, AuthTools, Redactor]:
    redactor, stop = Redactor(), threading.Event()
    client = HttpClient(source, make_session(4), RetryPolicy(retries=0), 10, redactor, stop)
    return client, AuthTools(source, redactor, client.post_token, client.call_json), redactor


def _values(github: str, **extra: str) -> dict[str, str]:
    return {"app_id": "777", "private_key": PEM, "org": "acme", "api_url": github, **extra}


def test_the_token_is_refreshed_before_it_expires(github: str) -> None:
    client, tools, redactor = _client()
    auth = GitHubAppAuth(_values(github), tools)
    first = auth.token()
    assert first.startswith("ghs_") and auth.fetches == 1
    assert auth.token() == first and auth.fetches == 1        # still fresh
    time.sleep(2.1)                                            # token_ttl=2
    second = auth.token()
    assert second != first and auth.fetches == 2
    assert client.send(Request("GET", f"{github}/orgs/acme"), auth, "GET org").status == 200
    assert redactor(f"x {first} {second} y") == "x *** *** y"


def test_an_expired_token_is_fetched_again_after_the_401(github: str) -> None:
    # A clock 20 s behind makes the token look fresh after the server expired it (clock drift).
    drift = [0.0]
    client, tools, _ = _client()
    auth = GitHubAppAuth(_values(github), tools, clock=lambda: time.time() - drift[0])
    first = auth.token()
    drift[0] = 20.0
    time.sleep(2.1)
    assert auth.token() == first                               # believed fresh
    response = client.send(Request("GET", f"{github}/orgs/acme"), auth, "GET org")
    assert response.status == 200 and auth.fetches == 2


def test_an_expired_token_that_stays_refused_fails(github: str) -> None:
    _, tools, _ = _client()
    auth = GitHubAppAuth(_values(github), tools, clock=lambda: time.time() - 1000)
    with pytest.raises(SourceError) as failed:   # the JWT itself is expired for the server
        auth.token()
    text = str(failed.value)
    assert "HTTP 401 Unauthorized" in text and "A JSON web token could not be decoded" in text
    assert "(GitHub App installations)" in text


def test_an_app_not_installed_on_the_org(github: str) -> None:
    _, tools, _ = _client()
    auth = GitHubAppAuth(_values(github, org="elsewhere"), tools)
    with pytest.raises(SourceError, match="the GitHub App 777 is not installed on `elsewhere` "
                                          r"\(its installations: `other-org`, `acme`\)"):
        auth.token()


@pytest.mark.parametrize("key, message", [
    ("not a key at all", "`private_key` is neither a PEM private key"),
    ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
     "`private_key` cannot be loaded as an unencrypted PEM private key"),
    (ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode(), "`private_key` is not an RSA key"),
])
def test_a_bad_key_is_refused_without_showing_it(github: str, key: str, message: str) -> None:
    _, tools, _ = _client()
    with pytest.raises(SourceError, match=message) as failed:
        GitHubAppAuth(_values(github, private_key=key), tools)
    assert "AAAA" not in str(failed.value) and "not a key at all" not in str(failed.value)


def test_a_missing_key_file(github: str, tmp_path: Path) -> None:
    plan = plan_one(members_source(github, "          private_key_file: nope.pem\n" + ORG),
                    base_dir=tmp_path)
    with pytest.raises(SourceError, match=r"cannot read `private_key_file` .*nope.pem"):
        read_all(plan, env={"APP_ID": "777"})


@pytest.mark.parametrize("auth, message", [
    (ORG, "`auth: github_app` needs `private_key` (PEM or base64 PEM"),
    (KEY_FROM_ENV, "`auth: github_app` needs `org` (the account the app is installed on) or "
                   "`installation_id`"),
])
def test_github_app_settings_are_checked(auth: str, message: str) -> None:
    errors = errors_of(members_source("https://api.example.test", auth))
    assert len(errors) == 1 and message in errors[0], errors


def test_the_key_jwt_and_token_never_show(server: LocalServer) -> None:
    @server.route("/app/installations/55/access_tokens", method="POST")
    def token(req: Req) -> Reply:
        return Reply(201, {"token": "ghs_echoed-token-55", "expires_at": "2099-01-01T00:00:00Z"})

    auth = "          private_key: \"{{ env.GITHUB_APP_PRIVATE_KEY }}\"\n" \
           "          installation_id: 55\n"
    plan = plan_one(members_source(server.base, auth, "/echo-error"))
    with pytest.raises(SourceError) as failed:
        read_all(plan, env={"APP_ID": "777", "GITHUB_APP_PRIVATE_KEY": PEM})
    text = str(failed.value)
    assert "HTTP 400" in text and "auth was Bearer ***" in text
    assert "ghs_echoed-token-55" not in text
    app_jwt = next(r for r in server.requests if r.path.startswith("/app/")
                   ).headers["authorization"].removeprefix("Bearer ")
    assert app_jwt not in text and PEM.splitlines()[1] not in text
    # Registered by value: masked wherever they would show, whatever surrounds them.
    shown = mask_text(f"seen ghs_echoed-token-55, {app_jwt} and {PEM.splitlines()[1]}")
    assert shown == "seen ***, *** and ***"


def test_both_key_forms_the_first_non_empty_one_is_used(github: str, tmp_path: Path) -> None:
    """`private_key` and `private_key_file` may both be given (an env var or a file, as Veza's
    connector takes them): the non-empty one is used."""
    (tmp_path / "app.pem").write_text(PEM)
    auth = ('          private_key: "{{ env.GITHUB_KEY_BASE64 | default(\'\') }}"\n'
            '          private_key_file: "{{ env.GITHUB_KEY | default(\'\') }}"\n' + ORG)
    plan = plan_one(members_source(github, auth), base_dir=tmp_path)
    records = read_all(plan, env={"APP_ID": "777", "GITHUB_KEY": "app.pem"})
    assert len(records) == 8
    with pytest.raises(SourceError, match="`private_key` and `private_key_file` are both empty"):
        read_all(plan_one(members_source(github, auth), base_dir=tmp_path), env={"APP_ID": "777"})


def test_a_token_is_sent_instead_of_the_app(server: LocalServer) -> None:
    """A non-empty `token` is sent as the bearer; no JWT is made, no installation asked for."""
    @server.route("/orgs/acme/members")
    def members(req: Req) -> Reply:
        assert req.headers["authorization"] == "Bearer ghp_plain-token"
        return Reply(200, [{"login": "ann"}])

    auth = ('          private_key: "{{ env.GITHUB_APP_PRIVATE_KEY | default(\'\') }}"\n'
            '          token: "{{ env.GITHUB_TOKEN | default(\'\') }}"\n' + ORG)
    plan = plan_one(members_source(server.base, auth))
    records = read_all(plan, env={"GITHUB_TOKEN": "ghp_plain-token", "APP_ID": ""})
    assert data(records) == [{"login": "ann"}]
    assert [r.path for r in server.requests] == ["/orgs/acme/members"]
    with pytest.raises(SourceError, match="`app_id` is empty \\(and so is `token`\\)"):
        read_all(plan_one(members_source(server.base, auth)), env={"APP_ID": ""})
