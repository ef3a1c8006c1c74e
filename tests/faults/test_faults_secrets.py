"""Fault suite, issue point 3: secrets never leave.

A mapping cannot read `VEZA_API_KEY`, nor a secret-looking variable outside a credential position
unless `secrets:` lists it; every message is masked (by shape and by value); credential headers do
not follow a redirect to another host; the Veza client follows no redirect; `--api-key-file` reads
its first line. Most cases grep every output and every file the run leaves behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import assert_no_secret
from helpers import CliResult, run_cli, write_case
from http_server import LocalServer, Reply, Req
from veza_helpers import KEY

TOKEN = "tok-7Hq2-s3cr3t-bearer"
API_KEY_VALUE = "ak-91xZ-s3cr3t-header"
DB_PASSWORD = "db-Pw-4417-s3cr3t"
LOCATED = re.compile(r"mapping\.yaml:\d+:\d+: error: ")

HEADER = """\
oaamap: 1
template: application
provider: {provider}
data_source: {data_source}
"""
APP = """\
application: {{name: "{app}", type: Portal}}
users:
  - from: people
    id: id
    name: name
"""
PEOPLE = "id,name\n1,alice\n2,bob\n"


def _mapping(*, provider: str = "Acme", data_source: str = "acme", app: str = "Portal",
             extra: str = "", source: str | None = None) -> str:
    source = source or "  people: {csv: people.csv}\n"
    return (HEADER.format(provider=provider, data_source=data_source) + extra
            + "sources:\n" + source + APP.format(app=app))


def _all_text(result: CliResult) -> list[str]:
    return [result.out, result.err]


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secret-looking variables (and the Veza key) set for the run."""
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("DB_PASSWORD", DB_PASSWORD)
    monkeypatch.setenv("TENANT_KEY", "tenant-k3y-acme")
    monkeypatch.setenv("Private_Signing", "priv-s1gning-value")
    monkeypatch.setenv("PLAIN_NAME", "portal")


# -- 1. where a mapping may read which variable (plan time, exit 2, located) ------------------

REFUSED = {
    "veza-key-in-provider": (dict(provider='"{{ env.VEZA_API_KEY }}"'),
                             "never reads `VEZA_API_KEY`"),
    "token-in-data-source": (dict(data_source='"acme-{{ env.GITHUB_TOKEN }}"'),
                             "`env.GITHUB_TOKEN` looks like a secret (its name contains TOKEN)"),
    "password-in-var": (dict(extra='vars: {pw: "{{ env.DB_PASSWORD }}"}\n'),
                        "`env.DB_PASSWORD` looks like a secret"),
    "key-by-index-in-app-name": (dict(app="{{ env['TENANT_KEY'] }}"),
                                 "`env.TENANT_KEY` looks like a secret"),
    "lower-case-private": (dict(extra='vars: {k: "{{ env.Private_Signing }}"}\n'),
                           "its name contains PRIVATE"),
    "env-whole": (dict(extra='vars: {all: "{{ env }}"}\n'),
                  "`env` would expose every environment variable"),
    "env-list-filter": (dict(extra='vars: {all: "{{ env | list }}"}\n'),
                        "`env` would expose every environment variable"),
    "env-items-loop": (dict(extra='vars: {all: "{% for k, v in env.items() %}{{ v }}'
                                  '{% endfor %}"}\n'),
                       "`env.items` would expose every environment variable"),
    "env-get-method": (dict(extra="vars: {k: \"{{ env.get('VEZA_API_KEY') }}\"}\n"),
                       "`env.get` would expose every environment variable"),
    "env-computed-key": (dict(extra='vars: {n: GITHUB_TOKEN, k: "{{ env[vars.n] }}"}\n'),
                         "`env[...] with a computed name` would expose"),
    "env-aliased-by-set": (dict(extra='vars: {k: "{% set e = env %}{{ e.GITHUB_TOKEN }}"}\n'),
                           "`env` would expose every environment variable"),
    "veza-key-listed": (dict(extra="secrets: [VEZA_API_KEY]\n"),
                        "`VEZA_API_KEY` cannot be listed in `secrets:`"),
    "veza-key-in-credential": (dict(source=(
        '  people:\n    http:\n      url: "http://127.0.0.1:1/people"\n'
        '      auth: {bearer: "{{ env.VEZA_API_KEY }}"}\n')), "never reads `VEZA_API_KEY`"),
    "token-in-http-url": (dict(source=(
        '  people:\n    http:\n      url: "http://127.0.0.1:1/p?t={{ env.GITHUB_TOKEN }}"\n')),
        "`env.GITHUB_TOKEN` looks like a secret"),
    "password-in-plain-header": (dict(source=(
        '  people:\n    http:\n      url: "http://127.0.0.1:1/p"\n'
        '      headers: {X-Tenant: "{{ env.DB_PASSWORD }}"}\n')),
        "`env.DB_PASSWORD` looks like a secret"),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_a_secret_read_outside_a_credential_position_is_a_located_mapping_error(
        tmp_path: Path, secret_env: None, case: tuple[dict[str, str], str]) -> None:
    parts, message = case
    mapping = write_case(tmp_path, _mapping(**parts), {"people.csv": PEOPLE})
    out = tmp_path / "out.json"
    for argv in (["validate", str(mapping)], ["compile", str(mapping), "-o", str(out)]):
        result = run_cli(*argv)
        assert result.code == 2, result.err
        assert LOCATED.search(result.err), result.err
        assert message in result.err
        assert not out.exists()
        for secret in (KEY, TOKEN, DB_PASSWORD, "tenant-k3y-acme", "priv-s1gning-value"):
            assert_no_secret(secret, _all_text(result), [tmp_path])


def test_the_error_points_at_the_variable_in_the_string(tmp_path: Path, secret_env: None) -> None:
    mapping = write_case(tmp_path, _mapping(data_source='"acme-{{ env.GITHUB_TOKEN }}"'),
                         {"people.csv": PEOPLE})
    result = run_cli("validate", str(mapping))
    line = next(n for n, text in enumerate(mapping.read_text().splitlines(), 1)
                if "GITHUB_TOKEN" in text)
    column = mapping.read_text().splitlines()[line - 1].index("GITHUB_TOKEN") + 1
    assert f"mapping.yaml:{line}:{column}: error:" in result.err
    assert "secrets: [GITHUB_TOKEN]" in result.err  # the hint names the way out


ALLOWED = {
    "listed-secret-in-app-name": _mapping(app="{{ env.TENANT_KEY }}",
                                          extra="secrets: [TENANT_KEY]\n"),
    "plain-name-anywhere": _mapping(data_source='"{{ env.PLAIN_NAME }}"'),
    "bearer-token": _mapping(source=(
        '  people:\n    http:\n      url: "http://127.0.0.1:1/p"\n'
        '      auth: {bearer: "{{ env.GITHUB_TOKEN }}"}\n')),
    "basic-password": _mapping(source=(
        '  people:\n    http:\n      url: "http://127.0.0.1:1/p"\n'
        '      auth: {basic: {username: u, password: "{{ env.DB_PASSWORD }}"}}\n')),
    "declared-secret-header": _mapping(source=(
        '  people:\n    http:\n      url: "http://127.0.0.1:1/p"\n'
        '      headers: {X-Tenant: "{{ env.TENANT_KEY }}"}\n      secret_headers: [X-Tenant]\n')),
    "credential-named-header": _mapping(source=(
        '  people:\n    http:\n      url: "http://127.0.0.1:1/p"\n'
        '      headers: {X-Auth-Token: "{{ env.GITHUB_TOKEN }}"}\n')),
    "sql-url-password": _mapping(source=(
        '  people:\n    sql:\n      url: "postgresql+psycopg://u:{{ env.DB_PASSWORD }}@h/db"\n'
        '      query: SELECT 1\n')),
}


@pytest.mark.parametrize("text", ALLOWED.values(), ids=ALLOWED.keys())
def test_credential_positions_and_listed_secrets_are_allowed(tmp_path: Path, secret_env: None,
                                                              text: str) -> None:
    mapping = write_case(tmp_path, text, {"people.csv": PEOPLE})
    result = run_cli("validate", str(mapping))
    assert result.code == 0, result.err


def test_a_listed_secret_reaches_the_payload_but_no_message(tmp_path: Path,
                                                            secret_env: None) -> None:
    mapping = write_case(tmp_path, _mapping(app="{{ env.TENANT_KEY }}",
                                            extra="secrets: [TENANT_KEY]\n"),
                         {"people.csv": PEOPLE})
    out = tmp_path / "out.json"
    result = run_cli("compile", str(mapping), "-o", str(out), "-v")
    assert result.code == 0, result.err
    payload = json.loads(out.read_text())
    assert payload["applications"][0]["name"] == "tenant-k3y-acme"  # the mapping asked for it
    assert_no_secret("tenant-k3y-acme", _all_text(result))


def test_secret_headers_must_name_a_header(tmp_path: Path) -> None:
    mapping = write_case(tmp_path, _mapping(source=(
        '  people:\n    http:\n      url: "http://127.0.0.1:1/p"\n'
        '      headers: {X-Tenant: acme}\n      secret_headers: [X-Tenent]\n')), {})
    result = run_cli("validate", str(mapping))
    assert result.code == 2
    assert LOCATED.search(result.err)
    assert "`secret_headers` names `X-Tenent`, which is not one of `headers`" in result.err


# -- 2. masking of every message ----------------------------------------------------------------

@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as local:
        yield local


def _people(req: Req) -> Reply:
    return Reply(200, [{"id": 1, "name": "alice"}])


def test_unexpected_error_line_masks_known_and_shaped_secrets(
        monkeypatch: pytest.MonkeyPatch, secret_env: None, tmp_path: Path) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError(
            f"boom {KEY} postgresql://u:p@ss-0wn3d@db/x host=db password=kw-pa55 "
            f"https://h/x?api_key=qk-v4lue&page=2 Bearer {TOKEN}")

    import oaamap.cli.compile as compile_cli

    monkeypatch.setattr(compile_cli, "compile_mapping", explode)
    mapping = write_case(tmp_path, _mapping(), {"people.csv": PEOPLE})
    result = run_cli("compile", str(mapping))
    assert result.code == 1
    assert "oaamap: unexpected error: RuntimeError: boom ***" in result.err
    for secret in (KEY, "p@ss-0wn3d", "ss-0wn3d", "kw-pa55", "qk-v4lue", TOKEN):
        assert_no_secret(secret, _all_text(result))
    assert "page=2" in result.err  # only the secrets go


def test_traceback_is_masked_too(monkeypatch: pytest.MonkeyPatch, secret_env: None,
                                 tmp_path: Path) -> None:
    import oaamap.cli.compile as compile_cli

    def explode(*args: object, **kwargs: object) -> None:
        raise ValueError(f"db said: {DB_PASSWORD}")

    monkeypatch.setattr(compile_cli, "compile_mapping", explode)
    mapping = write_case(tmp_path, _mapping(), {"people.csv": PEOPLE})
    result = run_cli("compile", str(mapping), "--traceback")
    assert result.code == 1
    assert "Traceback" in result.err and "db said: ***" in result.err
    assert_no_secret(DB_PASSWORD, _all_text(result))


HOSTILE_SOURCE = {
    # a server echoing the credential it was sent, in a 401 body and in its message
    "bearer-echoed": ('auth: {bearer: "{{ env.GITHUB_TOKEN }}"}', TOKEN, "authorization"),
    "api-key-header-echoed": ('auth: {api_key: {header: X-Api-Key, value: "{{ env.API_VALUE }}"}}',
                              API_KEY_VALUE, "x-api-key"),
    "secret-header-echoed": ('headers: {X-Custom: "{{ env.API_VALUE }}"}\n'
                             "      secret_headers: [X-Custom]", API_KEY_VALUE, "x-custom"),
}


@pytest.mark.parametrize("case", HOSTILE_SOURCE.values(), ids=HOSTILE_SOURCE.keys())
def test_a_credential_echoed_by_a_source_server_is_masked(
        server: LocalServer, tmp_path: Path, secret_env: None, monkeypatch: pytest.MonkeyPatch,
        case: tuple[str, str, str]) -> None:
    config, secret, header = case
    monkeypatch.setenv("API_VALUE", API_KEY_VALUE)

    @server.route("/people")
    def echo(req: Req) -> Reply:
        sent = req.headers.get(header, "")
        return Reply(401, {"message": f"bad credential {sent}", "request_id": sent,
                           "detail": f"got={sent}"}, headers={"X-Echo": sent})

    mapping = write_case(tmp_path, _mapping(source=(
        f'  people:\n    http:\n      url: "{server.url("/people")}"\n      {config}\n')),
        {})
    result = run_cli("compile", str(mapping), "-o", str(tmp_path / "out.json"), "-v")
    assert result.code == 3, result.err
    assert re.search(r"error: source `people` \(GET http://127\.0\.0\.1:\d+/people page 1\)",
                     result.err)
    assert "HTTP 401" in result.err
    assert secret in server.requests[0].headers[header]  # it was sent, and only there
    assert_no_secret(secret, _all_text(result), [tmp_path])


URL_PASSWORDS = {
    "at-sign-in-password": ("http://svc:pa@ss-w0rd-9@127.0.0.1:{port}/people", "ss-w0rd-9"),
    "percent-encoded-at": ("http://svc:pa%40ss-w0rd-9@127.0.0.1:{port}/people", "ss-w0rd-9"),
    "secret-query-params": ("http://127.0.0.1:{port}/people?api_key=qk-1234-v4lue&token=tk-5678"
                            "&page=1", "qk-1234-v4lue"),
}


@pytest.mark.parametrize("case", URL_PASSWORDS.values(), ids=URL_PASSWORDS.keys())
def test_credentials_in_a_source_url_are_masked(server: LocalServer, tmp_path: Path,
                                                case: tuple[str, str]) -> None:
    url, secret = case
    port = server.base.rsplit(":", 1)[1]

    @server.route("/people")
    def refuse(req: Req) -> Reply:
        return Reply(403, {"message": f"no access for {req.raw_query}"})

    mapping = write_case(tmp_path, _mapping(source=(
        f'  people:\n    http:\n      url: "{url.format(port=port)}"\n')), {})
    result = run_cli("compile", str(mapping))
    assert result.code == 3, result.err
    assert "GET http://" in result.err and "/people" in result.err
    assert_no_secret(secret, _all_text(result))
    assert_no_secret("tk-5678", _all_text(result))


SQL_URLS = {
    "password-from-env": ("postgresql+psycopg://oaamap:{{ env.DB_PASSWORD }}@127.0.0.1:1/x",
                          DB_PASSWORD, "cannot connect to the database"),
    "at-sign-in-password": ("postgresql+psycopg://oaamap:db-Pw@4417-s3cr3t@127.0.0.1:1/x",
                            "4417-s3cr3t", "the password in `url` contains `@`"),
    "keyword-dsn": ("{{ env.DB_DSN }}", "kw-dsn-pa55", "`url` is not a SQLAlchemy URL"),
}


@pytest.mark.parametrize("case", SQL_URLS.values(), ids=SQL_URLS.keys())
def test_sql_passwords_never_show(tmp_path: Path, secret_env: None,
                                  monkeypatch: pytest.MonkeyPatch,
                                  case: tuple[str, str, str]) -> None:
    url, secret, message = case
    monkeypatch.setenv("DB_DSN", "host=127.0.0.1 port=1 password=kw-dsn-pa55 dbname=x")
    mapping = write_case(tmp_path, _mapping(source=(
        f'  people:\n    sql:\n      url: "{url}"\n      query: SELECT 1 AS id\n')), {})
    result = run_cli("compile", str(mapping), "-o", str(tmp_path / "out.json"))
    assert result.code == 3, result.err
    assert "error: source `people`" in result.err and message in result.err
    assert not (tmp_path / "out.json").exists()
    assert_no_secret(secret, _all_text(result), [tmp_path / "out.json"])


# -- 3. credential headers and redirects ----------------------------------------------------------

REDIRECTED = {
    "api-key-header": ('auth: {api_key: {header: X-Api-Key, value: "{{ env.API_VALUE }}"}}',
                       "x-api-key"),
    "declared-secret-header": ('headers: {X-Custom: "{{ env.API_VALUE }}"}\n'
                               "      secret_headers: [X-Custom]", "x-custom"),
    "credential-named-header": ('headers: {X-Auth-Token: "{{ env.API_VALUE }}"}',
                                "x-auth-token"),
    "bearer": ('auth: {bearer: "{{ env.API_VALUE }}"}', "authorization"),
    "cookie": ('headers: {Cookie: "session={{ env.API_VALUE }}"}', "cookie"),
    "proxy-authorization": ('headers: {Proxy-Authorization: "Basic {{ env.API_VALUE }}"}',
                            "proxy-authorization"),
}


@pytest.mark.parametrize("target_host", ["localhost", "127.0.0.1"], ids=["other-host",
                                                                          "other-port"])
@pytest.mark.parametrize("case", REDIRECTED.values(), ids=REDIRECTED.keys())
def test_credential_headers_are_dropped_on_a_redirect_to_another_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: tuple[str, str],
        target_host: str) -> None:
    config, header = case
    monkeypatch.setenv("API_VALUE", API_KEY_VALUE)
    with LocalServer() as origin, LocalServer() as other:
        other.route("/people")(_people)
        target = f"http://{target_host}:{other.base.rsplit(':', 1)[1]}/people"

        @origin.route("/people")
        def moved(req: Req) -> Reply:
            return Reply(302, {}, headers={"Location": target})

        mapping = write_case(tmp_path, _mapping(source=(
            f'  people:\n    http:\n      url: "{origin.url("/people")}"\n      {config}\n')),
            {})
        out = tmp_path / "out.json"
        result = run_cli("compile", str(mapping), "-o", str(out))
        assert API_KEY_VALUE in origin.requests[0].headers.get(header, "")
        assert len(other.requests) == 1
        assert header not in other.requests[0].headers  # the other host never sees it
        assert_no_secret(API_KEY_VALUE, [json.dumps(r.headers) for r in other.requests])
    assert result.code == 0, result.err
    assert json.loads(out.read_text())["applications"][0]["local_users"][0]["name"] == "alice"
    assert_no_secret(API_KEY_VALUE, _all_text(result), [tmp_path])


def test_a_redirect_on_the_same_host_keeps_the_credential(server: LocalServer, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_VALUE", API_KEY_VALUE)
    server.route("/v2/people")(_people)
    server.route("/people")(lambda req: Reply(301, {}, headers={"Location": "/v2/people"}))
    mapping = write_case(tmp_path, _mapping(source=(
        f'  people:\n    http:\n      url: "{server.url("/people")}"\n'
        '      auth: {api_key: {header: X-Api-Key, value: "{{ env.API_VALUE }}"}}\n')), {})
    result = run_cli("compile", str(mapping), "-o", str(tmp_path / "out.json"))
    assert result.code == 0, result.err
    assert [r.headers.get("x-api-key") for r in server.requests] == [API_KEY_VALUE] * 2


# -- 4. the Veza side: redirects, request ids, --api-key-file ------------------------------------

def _payload_file(tmp_path: Path) -> Path:
    mapping = write_case(tmp_path, _mapping(), {"people.csv": PEOPLE})
    out = tmp_path / "payload.json"
    assert run_cli("compile", str(mapping), "-o", str(out)).code == 0
    return out


def _push(payload: Path, state: Path, *extra: str) -> CliResult:
    return run_cli("push", str(payload), "--provider", "Acme", "--data-source", "acme",
                   "--template", "application", "--state-dir", str(state), "--retries", "0",
                   *extra)


def test_the_veza_client_follows_no_redirect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    payload = _payload_file(tmp_path)
    with LocalServer() as veza, LocalServer() as elsewhere:
        target = f"http://localhost:{elsewhere.base.rsplit(':', 1)[1]}/steal"
        veza.route("/", prefix=True)(lambda req: Reply(307, {}, headers={"Location": target}))
        veza.route("/", "POST", prefix=True)(
            lambda req: Reply(307, {}, headers={"Location": target}))
        monkeypatch.setenv("VEZA_URL", veza.base)
        monkeypatch.setenv("VEZA_API_KEY", KEY)
        result = _push(payload, tmp_path / "state")
        assert elsewhere.requests == []
    assert result.code == 5, result.err
    assert "was redirected to http://localhost:" in result.err
    assert "oaamap never follows a redirect" in result.err
    assert_no_secret(KEY, _all_text(result), [tmp_path])


def test_a_request_id_echoing_the_key_is_masked_everywhere(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    payload = _payload_file(tmp_path)

    def hostile(req: Req) -> Reply:
        sent = req.headers.get("authorization", "")
        return Reply(400, {"code": "InvalidArgument", "message": f"rejected {sent}",
                           "request_id": f"req-{sent.removeprefix('Bearer ')}",
                           "details": [{"field_violations": [
                               {"field": "key", "description": sent}]}]})

    with LocalServer() as veza:
        veza.route("/", prefix=True)(hostile)
        veza.route("/", "POST", prefix=True)(hostile)
        monkeypatch.setenv("VEZA_URL", veza.base)
        monkeypatch.setenv("VEZA_API_KEY", KEY)
        result = _push(payload, tmp_path / "state")
        assert KEY in veza.requests[0].headers["authorization"]
    assert result.code == 5, result.err
    assert "request id: req-***" in result.err
    assert_no_secret(KEY, _all_text(result), [tmp_path])


KEY_FILES = {
    "trailing-newline": (f"{KEY}\n", 0, "pushed"),
    "comment-second-line": (f"  {KEY}  \n# rotated 2026-01, owner: iam team\n", 0, "pushed"),
    "crlf": (f"{KEY}\r\n", 0, "pushed"),
    "empty-first-line": (f"\n{KEY}\n", 2, "the first line of"),
    "wrong-key": ("wrong-key-0a9b8c7d\n", 5, "Unauthenticated"),
}


@pytest.mark.parametrize("case", KEY_FILES.values(), ids=KEY_FILES.keys())
def test_api_key_file_uses_its_first_line(emulator: object, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          case: tuple[str, int, str]) -> None:
    content, code, message = case
    payload = _payload_file(tmp_path)
    key_file = tmp_path / "veza.key"
    key_file.write_text(content, newline="")
    monkeypatch.setenv("VEZA_URL", emulator.url)  # type: ignore[attr-defined]
    monkeypatch.delenv("VEZA_API_KEY", raising=False)
    result = _push(payload, tmp_path / "state", "--api-key-file", str(key_file))
    assert result.code == code, result.err
    assert message in result.err
    if code == 2:
        assert "put the API key alone on the first line" in result.err
        assert emulator.requests == []  # type: ignore[attr-defined]
    first = content.strip().splitlines()[0].strip()
    for secret in {KEY, first} - {"# rotated 2026-01, owner: iam team"}:
        assert_no_secret(secret, _all_text(result), [tmp_path / "state"])


def test_a_full_run_leaves_no_secret_in_any_output_or_file(
        emulator: object, server: LocalServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """run: an http source with a bearer token, pushed to the emulator; then a failed push spooled.
    Neither the token nor the Veza key is in stdout, stderr, the state dir, the spool, the saved
    payload or the emulator's data."""
    server.route("/people")(_people)
    monkeypatch.setenv("VEZA_URL", emulator.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    mapping = write_case(tmp_path, _mapping(source=(
        f'  people:\n    http:\n      url: "{server.url("/people")}"\n'
        '      auth: {bearer: "{{ env.GITHUB_TOKEN }}"}\n')), {})
    state, saved = tmp_path / "state", tmp_path / "saved.json"
    ok = run_cli("run", str(mapping), "--state-dir", str(state), "--save-json", str(saved), "-v")
    assert ok.code == 0, ok.err
    emulator.fail_next(500, count=10)  # type: ignore[attr-defined]
    failed = run_cli("run", str(mapping), "--state-dir", str(state), "--retries", "0")
    assert failed.code == 5, failed.err
    assert "the payload was kept in" in failed.err
    assert any(state.rglob("*")), "the spool and state are where the grep looks"
    for secret in (KEY, TOKEN):
        assert_no_secret(secret, [*_all_text(ok), *_all_text(failed)],
                         [state, saved, tmp_path / "veza-data"])


# -- the masking module's shapes (what the CLI applies to every line it prints) ----------------

SHAPES = {
    "url-userinfo": ("GET https://svc:hunter22@api.example/x", "hunter22"),
    "url-at-in-password": ("https://u:p@ss-w0rd@host.example/x", "ss-w0rd"),
    "url-percent-encoded": ("https://u:p%40ss-w0rd@host.example/x", "ss-w0rd"),
    "libpq-url": ("postgresql://oaamap:pg-s3cret@db:5432/app", "pg-s3cret"),
    "libpq-keywords": ("host=db user=u password=kw-s3cret dbname=app", "kw-s3cret"),
    "libpq-quoted": ("host=db password='kw s3cret q' dbname=app", "kw s3cret q"),
    "odbc": ("Driver=x;Server=db;PWD=odbc-s3cret;", "odbc-s3cret"),
    "query-params": ("https://h/x?page=2&api_key=qk-s3cret&access_token=at-s3cret",
                     "qk-s3cret"),
    "free-text-param": ("the server said client_secret=cs-s3cret is wrong", "cs-s3cret"),
    "bearer": ("sent Authorization: Bearer eyJhbGc.s3cret.sig", "eyJhbGc.s3cret.sig"),
}


@pytest.mark.parametrize("case", SHAPES.values(), ids=SHAPES.keys())
def test_secrets_are_masked_by_shape(case: tuple[str, str]) -> None:
    from oaamap.redact import mask_text

    text, secret = case
    masked = mask_text(text)
    assert "***" in masked
    assert_no_secret(secret, [masked])


def test_prose_is_left_alone() -> None:
    from oaamap.redact import mask_text

    text = ("Basic authentication failed; the token endpoint's answer has no `access_token` "
            "(GET https://api.example/users/bob@example.com page 2)")
    assert mask_text(text) == text


def test_a_secret_environment_value_in_a_data_error_record_is_masked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The mapping never reads AWS_SECRET_ACCESS_KEY; its value sits in a row of the data.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-K7MDENG")
    mapping = write_case(tmp_path, _mapping(), {
        "people.csv": "id,name\n1,human\n2,wJalrXUtnFEMI-K7MDENG\n"})
    mapping.write_text(mapping.read_text().replace("    name: name\n",
                                                   "    name: name\n    user_type: name\n"))
    out = tmp_path / "out.json"
    result = run_cli("compile", str(mapping), "-o", str(out))
    assert result.code == 4, result.err
    assert "people.csv:3: error: users[0]: `user_type`: `***` is not one of" in result.err
    assert 'record: {"id": "2", "name": "***"}' in result.err
    assert not out.exists()
    assert_no_secret("wJalrXUtnFEMI-K7MDENG", _all_text(result))


def test_a_token_request_redirected_to_another_host_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A 307/308 resends the body: the client secret of the token request must not follow it.
    monkeypatch.setenv("CLIENT_SECRET", "cs-0auth-s3cret-value")
    with LocalServer() as origin, LocalServer() as other:
        target = f"http://localhost:{other.base.rsplit(':', 1)[1]}/token"
        origin.route("/token", "POST")(lambda req: Reply(307, {}, headers={"Location": target}))
        origin.route("/people")(_people)
        mapping = write_case(tmp_path, _mapping(source=(
            f'  people:\n    http:\n      url: "{origin.url("/people")}"\n'
            '      auth: {oauth2_client_credentials: {token_url: "' + origin.url("/token")
            + '", client_id: app, client_secret: "{{ env.CLIENT_SECRET }}"}}\n')), {})
        result = run_cli("compile", str(mapping), "-o", str(tmp_path / "out.json"))
        assert other.requests == []
        assert origin.hits["/people"] == 0
    assert result.code == 3, result.err
    assert "(token request)" in result.err
    assert "would resend the request body (it may carry credentials) to another host" in result.err
    assert not (tmp_path / "out.json").exists()
    assert_no_secret("cs-0auth-s3cret-value", _all_text(result))
