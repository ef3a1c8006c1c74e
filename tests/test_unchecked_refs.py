"""`unchecked_refs:`: a role's permission names sent as written when nothing defines them."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli, write_case

MAPPING = """\
oaamap: 1
template: application
provider: Demo
data_source: demo
application: {name: Demo, type: Demo}
permissions:
  - {name: read, canonical: [DataRead]}
roles:
  - name: viewer
    permissions: [read, VIEW_ISSUES]
    %s
users:
  - {name: ann, roles: [viewer]}
"""


def test_the_undefined_permission_is_sent_as_written(tmp_path: Path) -> None:
    mapping = write_case(tmp_path, MAPPING % "unchecked_refs: [permissions]", {})
    result = run_cli("compile", str(mapping), "--quiet")
    assert result.code == 0, result.err
    app = json.loads(result.out)["applications"][0]
    assert app["local_roles"][0]["permissions"] == ["read", "VIEW_ISSUES"]


def test_without_it_the_undefined_permission_is_a_payload_error(tmp_path: Path) -> None:
    mapping = write_case(tmp_path, MAPPING % "", {})
    result = run_cli("compile", str(mapping), "--quiet")
    assert result.code == 4
    assert "names permissions `VIEW_ISSUES` but no `permissions` rule defines it" in result.err


def test_only_other_rules_names_stay_checked(tmp_path: Path) -> None:
    """A name another rule gives without `unchecked_refs` is still checked."""
    text = (MAPPING % "unchecked_refs: [permissions]").replace(
        "users:\n", "  - {name: editor, permissions: [NOPE]}\nusers:\n", 1)
    mapping = write_case(tmp_path, text, {})
    result = run_cli("compile", str(mapping), "--quiet")
    assert result.code == 4
    assert "roles `editor` names permissions `NOPE`" in result.err
    assert "VIEW_ISSUES" not in result.err


def test_a_field_that_cannot_be_unchecked_is_a_mapping_error(tmp_path: Path) -> None:
    mapping = write_case(tmp_path, MAPPING.replace(
        "users:\n  - {name: ann, roles: [viewer]}",
        "users:\n  - {name: ann, roles: [viewer], groups: [g], unchecked_refs: [groups]}") % "",
        {})
    result = run_cli("validate", str(mapping))
    assert result.code == 2
    assert "`groups` cannot be an unchecked reference in `users`" in result.err
    assert "unchecked_refs takes: nothing here" in result.err
