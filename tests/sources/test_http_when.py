"""Conditional sources (`when:`), on every source kind: a disabled source reads nothing, sends no
request and runs no query; rules over it say so in a note, not in an error or a warning."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from helpers import run_cli
from http_server import LocalServer, Reply, Req

from oaamap.errors import DataErrors, MappingErrors
from oaamap.pipeline import CompileOptions, compile_mapping

MAPPING = """\
oaamap: 1
template: application
provider: Demo
data_source: demo
vars: {hr: "yes", remote: "no"}
sources:
  people: {csv: people.csv}
  contractors:
    csv: contractors.csv
    when: "vars.hr == 'yes'"
  remote:
    http:
      url: "{{ vars.base_url }}/page"
      paginate: {page: {}}
      records: results
    when: "{{ vars.remote }}"
  details:
    http:
      for_each: {item: remote}
      url: "{{ vars.base_url }}/children/{{ item.id }}"
  archive:
    sql: {url: "sqlite:///archive.db", query: "SELECT login FROM users ORDER BY login"}
    when: false
application: {name: Demo, type: Demo}
users:
  - {from: people, id: login, name: login}
  - {from: contractors, id: login, name: login}
  - {from: remote, id: "to_string(id)", name: name, is_active: enabled}
  - {from: details, id: child, name: child}
  - {from: archive, id: login, name: login}
"""


def _case(tmp_path: Path, server: LocalServer) -> Path:
    (tmp_path / "people.csv").write_text("login\nalice\n")
    (tmp_path / "contractors.csv").write_text("login\nbob\n")
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return path


def _users(out: str) -> list[str]:
    return [u["id"] for u in json.loads(out)["applications"][0]["local_users"]]


def test_disabled_sources_read_nothing_and_say_so(tmp_path: Path, server: LocalServer) -> None:
    path = _case(tmp_path, server)
    result = run_cli("compile", str(path), "--var", f"base_url={server.base}",
                     "--warnings-as-errors")
    assert result.code == 0, result.err
    # `remote` is off, `details` fans out over it, `archive` (a SQLite file that does not
    # exist) is never opened; `is_active: enabled` reads a field no record has, unchecked.
    assert _users(result.out) == ["alice", "bob"]
    assert server.hits == {}
    assert not (tmp_path / "archive.db").exists()
    for line in [
        "oaamap: note: source `remote` is disabled (`when: vars.remote` is false): no records read",
        "oaamap: note: source `archive` is disabled (`when: false` is false): no records read",
        "oaamap: note: users[2] reads no records: its source `remote` is disabled by "
        "`when: vars.remote`",
        "oaamap: note: users[3] reads no records: its source `details` is disabled (it fans "
        "out over `remote`) by `when: vars.remote`",
        "oaamap: note: users[4] reads no records: its source `archive` is disabled by "
        "`when: false`",
    ]:
        assert line in result.err
    assert "warning" not in result.err


def test_an_enabled_source_reads_as_usual(tmp_path: Path, server: LocalServer) -> None:
    path = _case(tmp_path, server)
    variables = {"base_url": server.base, "remote": "true", "hr": "no"}
    # Enabled, the source's rules are checked as any: `enabled` is a field no record has.
    with pytest.raises(DataErrors, match="no record of source `remote` has a field `enabled`"):
        compile_mapping(path, variables)
    path.write_text(MAPPING.replace(", is_active: enabled", ""))
    server.reset()
    result = compile_mapping(path, variables,
                             CompileOptions(source_options={"http_concurrency": 1}))
    assert result.records["contractors"] == 0
    assert result.records["remote"] == 23
    assert result.records["details"] == 23 * 2
    assert server.hits["/page"] == 6
    assert "source `contractors` is disabled (`when: vars.hr == 'yes'` is false): no records " \
           "read" in result.notes
    assert not any("remote" in note for note in result.notes)


def test_when_may_only_read_vars_and_env(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("login\nalice\n")
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent("""\
        oaamap: 1
        template: application
        provider: Demo
        data_source: demo
        sources:
          people: {csv: people.csv, when: "row.login == 'x'"}
        application: {name: Demo, type: Demo}
        users:
          - {from: people, id: login, name: login}
        """))
    with pytest.raises(MappingErrors) as failed:
        compile_mapping(path)
    assert "mapping.yaml:6:" in str(failed.value) and "`row`" in str(failed.value)


def test_a_secret_in_when_needs_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HR_TOKEN", "s3cr3t-value")
    (tmp_path / "people.csv").write_text("login\nalice\n")
    text = textwrap.dedent("""\
        oaamap: 1
        template: application
        provider: Demo
        data_source: demo
        SECRETS
        sources:
          people: {csv: people.csv, when: "env.HR_TOKEN | default('') != ''"}
        application: {name: Demo, type: Demo}
        users:
          - {from: people, id: login, name: login}
        """)
    path = tmp_path / "mapping.yaml"
    path.write_text(text.replace("SECRETS", ""))
    with pytest.raises(MappingErrors) as failed:
        compile_mapping(path)
    assert "HR_TOKEN" in str(failed.value)
    path.write_text(text.replace("SECRETS", "secrets: [HR_TOKEN]"))
    assert compile_mapping(path).records == {"people": 1}


def test_when_in_the_schema_for_every_kind(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("login\nalice\n")
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent("""\
        oaamap: 1
        template: application
        provider: Demo
        data_source: demo
        sources:
          people: {csv: people.csv, when: [1]}
        application: {name: Demo, type: Demo}
        users:
          - {from: people, id: login, name: login}
        """))
    result = run_cli("validate", str(path))
    assert result.code == 2
    assert "mapping.yaml:6:" in result.err and "expected string or boolean" in result.err


APP_OR_TOKEN = """\
oaamap: 1
template: application
provider: GitHub
data_source: acme
vars: {base_url: "https://api.github.com", org: acme, auth: token}
sources:
  repos_by_app:
    when: "vars.auth == 'app'"
    http:
      url: "{{ vars.base_url }}/orgs/{{ vars.org }}/repos"
      auth:
        github_app:
          app_id: "{{ env.GITHUB_APP_ID }}"
          org: "{{ vars.org }}"
          private_key: "{{ env.GITHUB_APP_PRIVATE_KEY }}"
          api_url: "{{ vars.base_url }}"
  repos_by_token:
    when: "vars.auth == 'token'"
    http:
      url: "{{ vars.base_url }}/orgs/{{ vars.org }}/repos"
      auth: {bearer: "{{ env.GITHUB_TOKEN }}"}
  branches:
    http:
      for_each: {repo: repos_by_app}
      url: "{{ vars.base_url }}/repos/{{ vars.org }}/{{ repo.name }}/branches"
      headers: {X-App: "{{ env.GITHUB_APP_ID }}"}
application: {name: acme, type: GitHub}
resources:
  - {from: repos_by_app, id: name, name: name, type: "'repository'"}
  - {from: repos_by_token, id: name, name: name, type: "'repository'"}
  - {from: branches, id: name, name: name, type: "'branch'"}
"""


def test_a_disabled_source_may_use_unset_variables(tmp_path: Path, server: LocalServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The unused auth kind's variables are unset: the source that needs them is off, and so is
    # the source that fans out over it; their settings are not rendered before the run.
    monkeypatch.delenv("GITHUB_APP_ID", raising=False)
    monkeypatch.delenv("GITHUB_APP_PRIVATE_KEY", raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", "offline-token")
    path = tmp_path / "mapping.yaml"
    path.write_text(APP_OR_TOKEN)

    @server.route("/orgs/acme/repos")
    def repos(req: Req) -> Reply:
        return Reply(200, [{"name": "api"}, {"name": "web"}])

    result = compile_mapping(path, {"base_url": server.base})
    assert result.records == {"repos_by_app": 0, "repos_by_token": 2, "branches": 0}
    assert [r["id"] for r in result.payload["applications"][0]["resources"]] == ["api", "web"]
    # Turned on, the same settings are checked before anything is read.
    with pytest.raises(MappingErrors, match="GITHUB_APP_ID"):
        compile_mapping(path, {"base_url": server.base, "auth": "app"})
    assert server.hits == {"/orgs/acme/repos": 1}
