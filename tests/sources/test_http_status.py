"""`http` source: per-request status handling (`ignore_status`, `status_field`)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import run_cli
from http_server import LocalServer, Reply, Req
from source_helpers import data, errors_of, plan_one, read_all, read_context
from veza_servers import serving

from oaamap.errors import Origin, SourceError
from oaamap.pipeline import CompileOptions, compile_mapping
from oaamap.sources import Record

PROBE = """\
oaamap: 1
template: application
provider: GitHub
data_source: acme branch protection
vars: {base_url: "https://api.github.com", org: acme}
sources:
  repos:
    http:
      url: "{{ vars.base_url }}/orgs/{{ vars.org }}/repos"
      auth: {bearer: "{{ env.GITHUB_TOKEN }}"}
      paginate: {link_header: next}
  protection:
    http:
      for_each: {repo: repos}
      url: "{{ vars.base_url }}/repos/{{ vars.org }}/{{ repo.name }}/branches/\
{{ repo.default_branch }}/protection"
      auth: {bearer: "{{ env.GITHUB_TOKEN }}"}
      ignore_status: [403, 404]
STATUS_FIELD
application: {name: acme, type: GitHub}
resources:
  - from: protection
    id: repo.name
    name: repo.name
    type: "'repository'"
    properties:
      branch: repo.default_branch
PROTECTED
"""


@pytest.fixture(scope="module")
def github() -> Iterator[str]:
    with serving("github-org") as base:
        yield base


def _probe(tmp_path: Path, status_field: bool) -> Path:
    text = PROBE.replace("STATUS_FIELD", "      status_field: http_status" if status_field
                         else "").replace(
        "PROTECTED", "      branch_protected: \"http_status == `200`\"" if status_field else "")
    path = tmp_path / "probe.yaml"
    path.write_text(text)
    return path


def test_a_probe_answers_for_every_parent(github: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "offline-token")
    result = compile_mapping(_probe(tmp_path, True), {"base_url": github},
                             CompileOptions(warnings_as_errors=True))
    resources = result.payload["applications"][0]["resources"]
    assert [(r["id"], r["custom_properties"]["branch_protected"]) for r in resources] == [
        ("api", True), ("web", False), ("infra", False), ("docs", False), ("legacy", True)]
    assert result.records == {"repos": 5, "protection": 5}
    assert result.notes == ["source `protection`: 3 requests ignored by `ignore_status` "
                            "(1 answered 403, 2 answered 404): one record each holding "
                            "`http_status`"]


def test_without_status_field_an_ignored_request_yields_nothing(
        github: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "offline-token")
    result = run_cli("compile", str(_probe(tmp_path, False)), "--var", f"base_url={github}",
                     "--warnings-as-errors")
    assert result.code == 0, result.err
    import json
    resources = json.loads(result.out)["applications"][0]["resources"]
    assert [r["id"] for r in resources] == ["api", "legacy"]
    assert ("oaamap: note: source `protection`: 3 requests ignored by `ignore_status` "
            "(1 answered 403, 2 answered 404): no records from them") in result.err


def _plan(server: LocalServer, path: str, extra: str) -> object:
    return plan_one(f"""
sources:
  probe:
    http:
      url: "{server.url(path)}"
{textwrap.indent(textwrap.dedent(extra), '      ')}""")


def _status_route(server: LocalServer) -> None:
    @server.route("/status/", prefix=True)
    def status(req: Req) -> Reply:
        code = int(req.path.rsplit("/", 1)[1])
        server.count(f"status-{code}")
        if code == 200:
            return Reply(200, [{"id": 1}, {"id": 2}])
        return Reply(code, {"message": "nope"})


def test_records_of_a_successful_response_carry_the_status(server: LocalServer) -> None:
    _status_route(server)
    plan = _plan(server, "/status/200", "status_field: code")
    assert data(read_all(plan)) == [{"id": 1, "code": 200}, {"id": 2, "code": 200}]


def test_an_ignored_status_in_a_fan_out_keeps_the_parent(server: LocalServer) -> None:
    _status_route(server)
    plan = plan_one(f"""
sources:
  probe:
    http:
      for_each: {{p: parents}}
      url: "{server.url('/status/')}{{{{ p.code }}}}"
      ignore_status: [404, 402, 500]
      status_field: code
""", other_sources=["parents"])
    origin = Origin("parents", "parents.json", "index")
    parents = [Record({"code": c}, origin, i) for i, c in enumerate((200, 404, 402, 500))]
    assert data(read_all(plan, parents={"parents": parents})) == [
        {"id": 1, "code": 200, "p": {"code": 200}}, {"id": 2, "code": 200, "p": {"code": 200}},
        {"code": 404, "p": {"code": 404}}, {"code": 402, "p": {"code": 402}},
        {"code": 500, "p": {"code": 500}}]
    # An ignored 5xx is taken as it is: not retried.
    assert server.state["status-500"] == 1


def test_a_status_not_ignored_still_fails(server: LocalServer) -> None:
    _status_route(server)
    plan = _plan(server, "/status/500", "ignore_status: [404]\nretries: 1")
    with pytest.raises(SourceError) as failed:
        read_all(plan)
    assert "HTTP 500 Internal Server Error; gave up after 2 attempts" in str(failed.value)
    assert server.state["status-500"] == 2


def test_a_rate_limited_403_is_still_waited_for(server: LocalServer) -> None:
    @server.route("/status-limited")
    def limited(req: Req) -> Reply:
        if server.count("limited") == 1:
            return Reply(403, {"message": "API rate limit exceeded"}, {"Retry-After": "0"})
        return Reply(200, [{"id": 7}])

    plan = _plan(server, "/status-limited", "ignore_status: [403]\nstatus_field: code")
    assert data(read_all(plan)) == [{"id": 7, "code": 200}]
    assert server.state["limited"] == 2


@pytest.mark.parametrize("option, message", [
    ("ignore_status: [401]", "`ignore_status` cannot list 401: a 401 means the credentials "
                             "were refused; fix `auth`"),
    ("ignore_status: [429]", "`ignore_status` cannot list 429: a 429 is a rate limit"),
    ("ignore_status: [200]", "`ignore_status` takes HTTP error statuses (400-599), got `200`"),
    ("ignore_status: [nope]", "`ignore_status` takes HTTP error statuses (400-599), got `nope`"),
    ("status_field: a-b", "`status_field` must be a field name"),
])
def test_status_options_are_checked(option: str, message: str) -> None:
    errors = errors_of(f"""
sources:
  probe:
    http:
      url: "https://api.example.test/x"
      {option}
""")
    assert len(errors) == 1 and message in errors[0], errors
    assert errors[0].startswith("test.yaml:6:")


def test_a_pagerduty_account_without_the_teams_ability_reads_no_teams() -> None:
    # PagerDuty answers 402 on /teams when the account's plan lacks the `teams` ability.
    source = """
sources:
  teams:
    http:
      url: "BASE/teams"
      auth: {api_key: {header: Authorization, value: "Token token=offline-key"}}
      params: {limit: 100}
      records: teams
      paginate: {offset: {limit: 100, has_more: more}}
      ignore_status: [402, 403]
"""
    with serving("pagerduty", without=("teams",)) as base:
        plan = plan_one(source.replace("BASE", base))
        ctx = read_context()
        assert read_all(plan, ctx=ctx) == []
        assert ctx.notes == ["source `teams`: 1 request ignored by `ignore_status` (1 answered "
                             "402): no records from them"]
    with serving("pagerduty") as base:
        assert len(read_all(plan_one(source.replace("BASE", base)))) > 0
