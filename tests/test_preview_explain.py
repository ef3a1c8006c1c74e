"""`oaamap preview`, `compile --limit` and `oaamap explain` on the examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import ROOT, run_cli

APP = "examples/app-csv/mapping.yaml"
HRIS = "examples/hris-csv/mapping.yaml"
IDP = "examples/idp-csv/mapping.yaml"


def test_preview_shows_the_first_records_of_every_source_with_their_fields() -> None:
    result = run_cli("preview", APP, "-n", "2")
    assert result.code == 0, result.err
    assert "people: 2 records, more follow" in result.out
    assert ("fields: user_id, login, email, department, active, created, last_login, title, "
            "hired_on") in result.out
    assert 'examples/app-csv/data/users.csv:2  {"user_id": "u1", "login": "alice"' in result.out
    assert "repos: 2 records\n" in result.out  # exactly two: no "more follow"
    assert result.out.count("\n  examples/app-csv/data/") == 10  # 5 sources x 2


def test_preview_one_source_as_json() -> None:
    result = run_cli("preview", APP, "--source", "repos", "--json", "-n", "1")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert list(data) == ["repos"]
    assert data["repos"]["more"] is True
    assert data["repos"]["records"] == [{"ref": "examples/app-csv/data/repos.csv:2", "data": {
        "id": "repo1", "name": "backend", "description": "Backend services",
        "visibility": "private"}}]


def test_preview_of_an_unknown_source_names_the_sources() -> None:
    result = run_cli("preview", APP, "--source", "nope")
    assert result.code == 2
    assert "--source `nope`: the mapping has no such source (it has: people, role_rows" in \
        result.err


@pytest.mark.parametrize("mapping", [APP, HRIS, IDP])
def test_compile_limit_reads_n_records_of_each_source(mapping: str) -> None:
    result = run_cli("compile", mapping, "--limit", "1", "--on-data-error", "skip")
    assert result.code == 0, result.err
    summary = next(line for line in result.err.splitlines() if line.startswith("oaamap: read"))
    counts = summary.removeprefix("oaamap: read ").split(";")[0].split(", ")
    assert counts and all(c.rsplit(" ", 1)[1] in ("0", "1") for c in counts), summary
    assert "the payload is a trial" in result.err
    full = json.loads(run_cli("compile", mapping).out)
    assert json.loads(result.out) != full


def test_compile_limit_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        run_cli("compile", APP, "--limit", "0")


def test_explain_names_the_rules_and_rows_of_each_grant() -> None:
    result = run_cli("explain", APP, "--user", "alice")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "alice (users `u1`), built from 1 row:",
        "  examples/app-csv/data/users.csv:2 (rule users[0] at "
        "examples/app-csv/mapping.yaml:47:5)",
        "Grants:",
        "  role Administrator (app-wide)",
        "    from examples/app-csv/data/grants.csv:2 (rule grants[0] at "
        "examples/app-csv/mapping.yaml:75:5)",
        "  role Developer on repo frontend",
        "    from examples/app-csv/data/grants.csv:3 (rule grants[0] at "
        "examples/app-csv/mapping.yaml:75:5)",
    ]


def test_explain_with_a_resource_keeps_its_grants_and_app_wide_ones() -> None:
    result = run_cli("explain", APP, "--user", "alice@acme.test", "--resource", "backend")
    assert result.code == 0, result.err
    assert "role Administrator (app-wide)" in result.out
    assert "frontend" not in result.out


def test_explain_shows_merges_of_rows_that_shape_one_entity(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    shutil.copytree(ROOT / "examples" / "app-csv", folder)
    users = folder / "data" / "users.csv"
    users.write_text(users.read_text() + "u1,alicia,alice@acme.test,ops,yes,2021-03-04,,"
                     "Engineer,2021-03-04\n")
    result = run_cli("explain", str(folder / "mapping.yaml"), "--user", "u1")
    assert result.code == 0, result.err
    assert "built from 2 rows" in result.out
    merge = next(line for line in result.out.splitlines() if "data/users.csv:7" in line
                 and "Merges" not in line and ": " in line.split(")", 1)[1])
    assert "added groups ops" in merge and "kept name `alice` over `alicia`" in merge


def test_explain_an_unknown_identity_lists_some() -> None:
    result = run_cli("explain", APP, "--user", "zed")
    assert result.code == 4
    assert "no users entry is `zed`" in result.err and "u1" in result.err


def test_explain_an_hris_employee() -> None:
    result = run_cli("explain", HRIS, "--user", "100001")
    assert result.code == 0, result.err
    assert result.out.startswith("Rosa Delgado (employees `100001`), built from")
    assert "No grants." in result.out


def test_explain_shows_grants_through_groups(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    shutil.copytree(ROOT / "examples" / "app-csv", folder)
    mapping = folder / "mapping.yaml"
    (folder / "data" / "team_grants.csv").write_text("team,role\neng,r-view\n")
    text = mapping.read_text().replace("  grant_rows: {csv: data/grants.csv}", (
        "  grant_rows: {csv: data/grants.csv}\n  team_grants: {csv: data/team_grants.csv}"))
    mapping.write_text(text + "  - {from: team_grants, group: team, role: role}\n")
    result = run_cli("explain", str(mapping), "--user", "alice")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    at = lines.index("  role Viewer (app-wide) (through group eng)")
    assert lines[at + 1].startswith(f"    from {folder}/data/team_grants.csv:2 (rule grants[1] at ")
