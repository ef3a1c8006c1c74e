"""`when:` may read a context record (GitLab reads `/users` only when `/user` is an admin): the
condition is decided once the context sources are read, and its source's settings are not
rendered before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_case

from oaamap.pipeline import compile_mapping

MAPPING = """\
oaamap: 1
template: application
provider: P
data_source: "D {{ caller.name }}"
context: [caller]
sources:
  caller: {json: caller.json}
  people: {csv: people.csv}
  admins_only:
    csv: "{{ env.OAAMAP_TEST_UNSET_WHEN_OFF }}"      # unset: rendered only when enabled
    when: "caller.is_admin | default(false)"
application: {name: App, type: app}
users:
  - {from: people, id: login, name: login}
  - {from: admins_only, id: login, name: login}
"""


@pytest.mark.parametrize(("caller", "users"), [
    ({"name": "root", "is_admin": True}, ["ann", "bob"]),
    ({"name": "alice", "is_admin": False}, ["ann"]),
    ({"name": "alice"}, ["ann"]),
])
def test_a_condition_reads_a_context_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caller: dict[str, object], users: list[str]) -> None:
    (tmp_path / "admins.csv").write_text("login\nbob\n")
    monkeypatch.delenv("OAAMAP_TEST_UNSET_WHEN_OFF", raising=False)
    if caller.get("is_admin"):
        monkeypatch.setenv("OAAMAP_TEST_UNSET_WHEN_OFF", str(tmp_path / "admins.csv"))
    path = write_case(tmp_path, MAPPING, {"caller.json": json.dumps(caller),
                                          "people.csv": "login\nann\n"})
    result = compile_mapping(path)
    assert result.data_source == f"D {caller['name']}"
    assert [u["id"] for u in result.payload["applications"][0]["local_users"]] == users
    if not caller.get("is_admin"):
        assert any("source `admins_only` is disabled" in note for note in result.notes)
