"""`when:` over a context source's record: the condition waits until the context sources are read
(PagerDuty's teams are read only when the account's `/abilities` list `teams`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from http_server import LocalServer, Reply, Req

from oaamap.errors import MappingErrors
from oaamap.pipeline import compile_mapping

MAPPING = """\
oaamap: 1
template: application
provider: Demo
data_source: "demo - {{ account.name }}"
vars: {feature: teams}
context: [account]
sources:
  account:
    http: {url: "{{ vars.base_url }}/ctxwhen/account"}
  teams:
    http:
      url: "{{ vars.base_url }}/ctxwhen/teams"
      headers: {X-Team-Key: "{{ env.CTXWHEN_TEAMS_KEY }}"}
    when: "vars.feature in account.abilities"
  members:
    http:
      for_each: {team: teams}
      url: "{{ vars.base_url }}/ctxwhen/teams/{{ team.id }}/members"
application: {name: "{{ account.name }}", type: Demo}
groups:
  - {from: teams, id: id, name: id}
users:
  - {from: members, id: login, name: login, groups: "[team.id]"}
"""


@pytest.fixture()
def account_server(server: LocalServer) -> LocalServer:
    """`/ctxwhen/account` lists the abilities given by `server.abilities`."""
    abilities: list[str] = []

    @server.route("/ctxwhen/account")
    def account(req: Req) -> Reply:
        return Reply(200, {"name": "acme", "abilities": abilities})

    @server.route("/ctxwhen/teams")
    def teams(req: Req) -> Reply:
        return Reply(200, [{"id": "t1"}])

    @server.route("/ctxwhen/teams/t1/members")
    def members(req: Req) -> Reply:
        return Reply(200, [{"login": "ann"}])

    server.abilities = abilities  # type: ignore[attr-defined]
    return server


def _mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return path


def test_a_condition_over_a_context_record_enables_the_source(
        tmp_path: Path, account_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXWHEN_TEAMS_KEY", "k")
    account_server.abilities.append("teams")  # type: ignore[attr-defined]
    result = compile_mapping(_mapping(tmp_path), {"base_url": account_server.base})
    assert result.records == {"account": 1, "teams": 1, "members": 1}
    assert result.data_source == "demo - acme"
    assert result.payload["applications"][0]["local_users"][0]["groups"] == ["t1"]
    assert result.notes == []


def test_a_condition_over_a_context_record_disables_the_source_and_its_fan_out(
        tmp_path: Path, account_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The disabled source's header reads a variable that is not set: never rendered.
    monkeypatch.delenv("CTXWHEN_TEAMS_KEY", raising=False)
    result = compile_mapping(_mapping(tmp_path), {"base_url": account_server.base})
    assert result.records == {"account": 1, "teams": 0, "members": 0}
    assert account_server.hits == {"/ctxwhen/account": 1}
    assert result.notes[0] == ("source `teams` is disabled (`when: vars.feature in "
                               "account.abilities` is false): no records read")
    assert "users[0] reads no records: its source `members` is disabled (it fans out over " \
           "`teams`) by `when: vars.feature in account.abilities`" in result.notes


def test_an_enabled_source_s_settings_are_checked_before_the_other_sources_are_read(
        tmp_path: Path, account_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTXWHEN_TEAMS_KEY", raising=False)
    account_server.abilities.append("teams")  # type: ignore[attr-defined]
    with pytest.raises(MappingErrors, match="CTXWHEN_TEAMS_KEY"):
        compile_mapping(_mapping(tmp_path), {"base_url": account_server.base})
    assert account_server.hits == {"/ctxwhen/account": 1}


def test_a_condition_over_a_source_that_is_not_a_context_source_is_a_mapping_error(
        tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("login\nalice\n")
    (tmp_path / "flags.csv").write_text("teams\nyes\n")
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent("""\
        oaamap: 1
        template: application
        provider: Demo
        data_source: demo
        sources:
          flags: {csv: flags.csv}
          people: {csv: people.csv, when: "flags.teams == 'yes'"}
        application: {name: Demo, type: Demo}
        users:
          - {from: people, id: login, name: login}
          - {from: flags, id: teams, name: teams}
        """))
    with pytest.raises(MappingErrors) as failed:
        compile_mapping(path)
    assert "mapping.yaml:7:" in str(failed.value) and "`flags`" in str(failed.value)
