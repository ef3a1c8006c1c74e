"""`oaamap plan` and `oaamap run --incremental` on the examples, against the emulator."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from veza_helpers import KEY

from oaamap.cli import main
from oaamap.diff import canonical
from oaamap.pipeline import compile_mapping
from oaamap.veza.state import StateKey, StateStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROVIDER, SOURCE = "Acme Portal", "Acme Portal - portal.acme.test"


@pytest.fixture
def env(emulator, monkeypatch, tmp_path):
    """VEZA_URL/VEZA_API_KEY of the emulator; returns the state-dir arguments."""
    monkeypatch.setenv("VEZA_URL", emulator.url)
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    monkeypatch.delenv("ACME_HOST", raising=False)
    return ["--state-dir", str(tmp_path / "state")]


def _copy(tmp_path: Path, name: str) -> Path:
    shutil.copytree(EXAMPLES / name, tmp_path / name)
    return tmp_path / name / "mapping.yaml"


def _plan(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["plan", *argv])
    return code, out.getvalue()


def _edit(mapping: Path) -> None:
    """bob's Developer role on backend becomes Viewer; carol loses her grant; the role Viewer
    is renamed Reader."""
    data = mapping.parent / "data"
    grants = data / "grants.csv"
    grants.write_text(grants.read_text().replace("u2,r-dev,repo1,", "u2,r-view,repo1,")
                      .replace("u3,r-view,b-web-main,\n", ""))
    roles = data / "roles.csv"
    roles.write_text(roles.read_text().replace("r-view,Viewer,", "r-view,Reader,"))


def test_plan_before_and_after_pushes(emulator, env, tmp_path):
    mapping = _copy(tmp_path, "app-csv")
    code, out = _plan(str(mapping), *env, "--detailed-exitcode")
    assert code == 6
    assert "no push to http://127.0.0.1" in out and "+ u1" in out
    assert "+ alice: role Administrator (app-wide)" in out
    assert main(["run", str(mapping), *env, "-q"]) == 0
    code, out = _plan(str(mapping), *env, "--detailed-exitcode")
    assert code == 0
    assert out.endswith("No changes: Veza already holds this payload.\n")
    _edit(mapping)
    code, out = _plan(str(mapping), *env)
    assert code == 0  # without --detailed-exitcode: 0 for changes too
    assert "local_roles: 1 to change\n    ~ r-view" in out
    assert "role_assignments: 1 to add, 1 to remove, 1 to change" in out
    assert "    - u3/local_user: Acme Portal/r-view" in out
    assert "- bob: loses role Developer on repo backend" in out
    assert "+ bob: role Reader on repo backend" in out
    assert "- carol: loses role Viewer on branch main" in out


def test_plan_json(emulator, env, tmp_path):
    mapping = _copy(tmp_path, "app-csv")
    assert main(["run", str(mapping), *env, "-q"]) == 0
    _edit(mapping)
    code, out = _plan(str(mapping), *env, "--json", "--detailed-exitcode")
    assert code == 6
    plan = json.loads(out)
    assert plan["changes"] is True
    assert plan["provider"] == PROVIDER and plan["data_source"] == SOURCE
    assert plan["kinds"]["local_roles"] == {"added": [], "removed": [], "changed": ["r-view"]}
    assert {"change": "-", "identity": "bob", "access": "role Developer on repo backend",
            "text": "- bob: loses role Developer on repo backend"} in plan["access"]


def test_plan_is_per_veza_url(emulator, env, tmp_path):
    mapping = _copy(tmp_path, "app-csv")
    assert main(["run", str(mapping), *env, "-q"]) == 0
    code, out = _plan(str(mapping), *env, "--veza-url", "https://other.example",
                      "--detailed-exitcode")
    assert code == 6 and "no push to https://other.example is recorded" in out


@pytest.mark.parametrize("example", ["app-csv", "hris-csv", "idp-csv"])
def test_run_incremental_leaves_veza_with_the_full_payload(emulator, env, tmp_path, capsys,
                                                           example):
    mapping = _copy(tmp_path, example)
    assert main(["run", str(mapping), *env, "--incremental"]) == 0
    assert "full push: no previous push is recorded" in capsys.readouterr().err
    if example == "app-csv":
        _edit(mapping)
    else:  # the last person leaves
        data = mapping.parent / "data" / ("users.csv" if example == "idp-csv" else "workers.csv")
        data.write_text("".join(data.read_text().splitlines(keepends=True)[:-1]))
    # carol's grant goes: 1 of 4 identities with grants, beyond the shrink guard's 20%.
    assert main(["run", str(mapping), *env, "--incremental", "--max-incremental", "100",
                 "--allow-shrink"]) == 0
    assert "incremental push:" in capsys.readouterr().err
    last = emulator.pushes[-1]
    assert last.incremental
    result = compile_mapping(mapping)
    assert canonical(last.payload()) == canonical(result.payload)
    # The state records the full resulting payload, not the update sent.
    store = StateStore(Path(env[1]))
    [kept] = store.previous(StateKey.of(emulator.url, result.provider, result.data_source))
    assert kept.payload == result.payload


def test_run_incremental_pushes_in_full_above_the_threshold(emulator, env, tmp_path, capsys):
    mapping = _copy(tmp_path, "app-csv")
    assert main(["run", str(mapping), *env, "-q"]) == 0
    _edit(mapping)
    assert main(["run", str(mapping), *env, "--incremental", "--max-incremental", "1",
                 "--allow-shrink"]) == 0
    err = capsys.readouterr().err
    assert "oaamap: full push: " in err and "is more than 1%" in err
    assert not emulator.pushes[-1].incremental


def test_guards_apply_to_incremental_pushes(emulator, env, tmp_path, capsys):
    mapping = _copy(tmp_path, "idp-csv")
    assert main(["run", str(mapping), *env, "-q"]) == 0
    users = mapping.parent / "data" / "users.csv"
    users.write_text("".join(users.read_text().splitlines(keepends=True)[:3]))
    pushes = len(emulator.pushes)
    assert main(["run", str(mapping), *env, "--incremental", "--max-incremental", "100"]) == 5
    assert "--allow-shrink" in capsys.readouterr().err
    assert len(emulator.pushes) == pushes


def test_dry_run_tells_whether_the_push_would_be_incremental(emulator, env, tmp_path, capsys):
    mapping = _copy(tmp_path, "app-csv")
    assert main(["run", str(mapping), *env, "-q"]) == 0
    pushes = len(emulator.pushes)
    assert main(["run", str(mapping), *env, "--incremental", "--dry-run",
                 "--save-json", str(tmp_path / "p.json")]) == 0
    assert ("a real run would push an incremental update (0 changes)"
            in capsys.readouterr().err)
    assert len(emulator.pushes) == pushes
