"""The grant log (oaamap/grantlog.py): grants recorded per identity as integer pairs and replayed.

The replay must give exactly what merging row by row gave: first-granted order and first
spelling of roles and permissions, targets in first-named order without repeats (case-insensitive),
`apply_to_application` as last set, properties merged. Each case runs three ways: the CSV cell path
and the JSON record path (both through the builder's sink), and records through the generic loop
(`limit`), which hands RuleRows to the builder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oaamap.pipeline import CompileOptions, compile_mapping
from tests.helpers import write_case

MAPPING = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  rows: {SOURCE}
  people: {csv: people.csv}
application: {name: A, type: a}
permissions:
  - {name: read, canonical: [DataRead]}
  - {name: Write, canonical: [DataWrite]}
roles:
  - {name: viewer, permissions: [read]}
  - {name: Admin, permissions: [read, Write]}
resources:
  - {name: x, type: t}
  - {name: y, type: t}
  - {name: z, type: t}
users:
  - {from: people, name: login, roles: "role && [role]"}
grants:
  - from: rows
    user: user
    role: "role"
    resources: "res && split(res, ';')"
    apply_to_application: "app && to_bool(app)"
  - from: rows
    user: user
    permission: perm
    resources: "res && split(res, ';')"
    apply_to_application: "app && to_bool(app)"
"""

# user, role, perm, res (;-separated), app
ROWS = [
    ("ann", "viewer", "read", "x", ""),
    ("ANN", "VIEWER", "read", "X;y", ""),        # another spelling of ann, of viewer and of x
    ("bob", "Admin", "Write", "", ""),           # app-wide role and app permission
    ("ann", "Admin", "write", "z;z;x", "no"),    # repeats; apply false
    ("bob", "admin", "read", "y", "yes"),        # role now on y and app-wide
    ("cy", "viewer", "read", "", "no"),          # grants nothing (a warning)
    ("ann", "viewer", "read", "y", "yes"),       # apply set on an existing role
]

# As the row-by-row merge (before the log) produced it, key order included (the SDK's).
EXPECTED = json.loads("""[
 {"identity": "ann", "identity_type": "local_user", "application_permissions": [
   {"application": "A", "permission": "read", "apply_to_application": true},
   {"application": "A", "resources": ["x", "y"], "permission": "read"},
   {"application": "A", "resources": ["z", "x"], "permission": "write"}],
  "role_assignments": [
   {"application": "A", "role": "viewer", "apply_to_application": true, "resources": ["x", "y"]},
   {"application": "A", "role": "Admin", "apply_to_application": false,
    "resources": ["z", "x"]}]},
 {"identity": "bob", "identity_type": "local_user", "application_permissions": [
   {"application": "A", "permission": "Write", "apply_to_application": true},
   {"application": "A", "permission": "read", "apply_to_application": true},
   {"application": "A", "resources": ["y"], "permission": "read"}],
  "role_assignments": [
   {"application": "A", "role": "Admin", "apply_to_application": true, "resources": ["y"]}]},
 {"identity": "dan", "identity_type": "local_user", "role_assignments": [
   {"application": "A", "role": "viewer", "apply_to_application": true}]}
]""")


def _case(tmp_path: Path, kind: str) -> Path:
    people = "login,role\nann,\nbob,\ncy,\ndan,viewer\n"
    if kind == "csv":
        text = "user,role,perm,res,app\n" + "".join(",".join(r) + "\n" for r in ROWS)
        return write_case(tmp_path, MAPPING.replace("{SOURCE}", "{csv: rows.csv}"),
                          {"rows.csv": text, "people.csv": people})
    records = [dict(zip(("user", "role", "perm", "res", "app"), r, strict=True)) for r in ROWS]
    records = [{k: (v or None) for k, v in r.items()} for r in records]
    return write_case(tmp_path, MAPPING.replace("{SOURCE}", "{json: rows.json}"),
                      {"rows.json": json.dumps(records), "people.csv": people})


@pytest.mark.parametrize("kind", ["csv", "json"])
@pytest.mark.parametrize("limit", [None, 1000], ids=["sink", "rows"])
def test_replayed_grants_equal_row_by_row_merging(tmp_path: Path, kind: str,
                                                  limit: int | None) -> None:
    result = compile_mapping(_case(tmp_path, kind), options=CompileOptions(limit=limit))
    assert json.dumps(result.payload["identity_to_permissions"]) == json.dumps(EXPECTED)
    assert len([w for w in result.warnings if "it grants nothing" in str(w)]) == 2
    assert result.counts["identity_to_permissions"] == 3


def test_grants_are_rebuilt_on_each_iteration(tmp_path: Path) -> None:
    """Iterating the grants twice gives equal grants (nothing consumed), in the SDK's order."""
    grants = compile_mapping(_case(tmp_path, "csv")).entities.grants
    first, second = list(grants), list(grants)
    assert first == second and [g.identity for g in first] == ["ann", "bob", "dan"]
    assert len(grants) == 3 and grants[1].identity == "bob"
    assert str(first[0].ref).endswith("rows.csv:2")  # the row that first named ann


def test_granted_names_are_checked_once(tmp_path: Path) -> None:
    """A role no rule defines is reported (the summary fails, the grants are walked)."""
    from oaamap.errors import PayloadErrors

    path = _case(tmp_path, "csv")
    path.write_text(path.read_text().replace("  - {name: Admin, permissions: [read, Write]}\n",
                                             ""))
    with pytest.raises(PayloadErrors) as caught:
        compile_mapping(path)
    messages = [str(p) for p in caught.value.errors]
    assert any("granted role `Admin` that no `roles` rule defines" in m for m in messages)


ROLE_ONLY = MAPPING.split("  - from: rows\n    user: user\n    permission: perm")[0]


@pytest.mark.parametrize(("rows", "grouped"), [
    (ROWS, False),  # permissions too
    ([("ann", "viewer", "", "x;y", ""), ("ann", "viewer", "", "", ""),
      ("ann", "viewer", "", "Y", ""), ("bob", "Admin", "", "", ""),
      ("bob", "viewer", "", "z;x;z", ""), ("cy", "Admin", "", "y", ""),
      ("ann", "Admin", "", "x", "")], True),  # one grant per role; app-wide rows; repeats
    ([("ann", "viewer", "", "x", ""), ("ann", "VIEWER", "", "y", ""),
      ("bob", "viewer", "", "", "yes"), ("bob", "viewer", "", "z", ""),
      ("dan", "viewer", "", "x", "no")], False),  # spellings, apply
], ids=["permissions", "roles", "collisions"])
def test_roles_only_replay_equals_the_general_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[tuple[str, ...]],
        grouped: bool) -> None:
    """The grouped replay (every grant a role, no two grants naming one role) gives what the
    general replay gives, entry by entry and key by key."""
    from oaamap import grantlog

    text = "user,role,perm,res,app\n" + "".join(",".join(r) + "\n" for r in rows)
    path = write_case(tmp_path, ROLE_ONLY.replace("{SOURCE}", "{csv: rows.csv}"),
                      {"rows.csv": text, "people.csv": "login,role\nann,\nbob,\ncy,\ndan,viewer\n"})
    fast = compile_mapping(path).payload_json()
    calls: list[bool] = []
    original = grantlog.GrantLog._replay_roles

    def spy(self: grantlog.GrantLog, *args: object) -> object:
        calls.append(True)
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(grantlog.GrantLog, "_replay_roles", spy)
    compile_mapping(path)
    took_fast_path = bool(calls)
    monkeypatch.setattr(grantlog.GrantLog, "folded_grants", _general_only)
    assert compile_mapping(path).payload_json() == fast
    assert took_fast_path == grouped


def _general_only(self: object) -> list[tuple[bool, str, bool | None, object, str]]:
    log = self  # a GrantLog: the table folded as usual, the grouped replay never chosen
    table = [(*grant, grant[1].lower()) for grant in log.grants]  # type: ignore[attr-defined]
    log._folded, log._roles_only = table, False  # type: ignore[attr-defined]
    return table
