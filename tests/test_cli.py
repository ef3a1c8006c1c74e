"""The command line: exit codes, output, the summary line, `python -m oaamap`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, run_cli, write_case

EXAMPLE = "examples/app-csv/mapping.yaml"


def test_compile_writes_the_payload_and_a_summary() -> None:
    """stdout carries the payload; stderr one summary line with counts."""
    result = run_cli("compile", EXAMPLE)
    assert result.code == 0
    payload = json.loads(result.out)
    assert payload["applications"][0]["name"] == "Acme Portal"
    assert result.err.startswith("oaamap: read ")
    assert "4 users" in result.err and "rows skipped" in result.err


def test_compile_to_a_file_is_compact_like_the_sdk(tmp_path: Path) -> None:
    """-o writes the compact form the SDK sends (separators without spaces, ASCII)."""
    out = tmp_path / "p.json"
    assert run_cli("compile", EXAMPLE, "-o", str(out), "--quiet").code == 0
    text = out.read_text().rstrip("\n")
    assert text == json.dumps(json.loads(text), separators=(",", ":"))


def test_validate_reads_no_data(tmp_path: Path) -> None:
    """validate succeeds even when the data files do not exist."""
    path = write_case(tmp_path, Path(ROOT / EXAMPLE).read_text(), {})
    result = run_cli("validate", str(path))
    assert result.code == 0, result.err
    assert "is valid (application, 5 sources, 9 rules)" in result.err


def test_var_overrides(tmp_path: Path) -> None:
    """--var overrides a `vars:` entry used in a configuration string."""
    result = run_cli("compile", "tests/cases/doc-application/mapping.yaml", "--var", "host=x.test")
    assert result.code == 0


@pytest.mark.parametrize(("mapping", "files", "code", "needle"), [
    ("oaamap: 1\ntemplate: nope\n", {}, 2, "template"),
    ("oaamap: 1\ntemplate: application\nprovider: P\ndata_source: D\n"
     "sources: {u: {csv: missing.csv}}\napplication: {name: A, type: a}\n"
     "users: [{from: u, name: n}]\n", {}, 3, "cannot open the file"),
    ("oaamap: 1\ntemplate: application\nprovider: P\ndata_source: D\n"
     "sources: {u: {csv: u.csv}}\napplication: {name: A, type: a}\n"
     "users: [{from: u, name: n, is_active: n}]\n", {"u.csv": "n\nx\n"}, 4, "boolean"),
], ids=["mapping-error", "source-error", "data-error"])
def test_exit_codes(tmp_path: Path, mapping: str, files: dict[str, str], code: int,
                    needle: str) -> None:
    """2 mapping, 3 source, 4 data; nothing on stdout when a run fails."""
    result = run_cli("compile", str(write_case(tmp_path, mapping, files)))
    assert (result.code, result.out) == (code, "")
    assert needle in result.err


def test_failed_compile_leaves_no_output_file(tmp_path: Path) -> None:
    """-o is written atomically: a failed run never leaves a partial payload."""
    path = write_case(tmp_path, "oaamap: 1\ntemplate: application\nprovider: P\ndata_source: D\n"
                      "sources: {u: {csv: u.csv}}\napplication: {name: A, type: a}\n"
                      "users: [{from: u, name: n, is_active: n}]\n", {"u.csv": "n\nx\n"})
    out = tmp_path / "out.json"
    assert run_cli("compile", str(path), "-o", str(out)).code == 4
    assert not out.exists()


def test_several_mistakes_at_once_exit_2() -> None:
    """The issue's acceptance check: bad JMESPath, unknown key, unknown source and unknown
    function, all printed with file:line:col, exit 2."""
    result = run_cli("validate", "tests/cases/bad-mapping/mapping.yaml")
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if ": error: " in line]
    assert lines == [
        "tests/cases/bad-mapping/mapping.yaml:7:29: error: unexpected key `delimitr` in "
        "`people` (did you mean `delimiter`?)",
        "tests/cases/bad-mapping/mapping.yaml:10:11: error: `from:` names unknown source "
        "`peeple` (did you mean `people`?)",
        "tests/cases/bad-mapping/mapping.yaml:12:13: error: unknown JMESPath function `lowr()` "
        "(did you mean `lower`?)",
        "tests/cases/bad-mapping/mapping.yaml:13:19: error: incomplete expression in `[dept`",
    ]
    assert result.err.rstrip().endswith("oaamap: 4 errors in tests/cases/bad-mapping/mapping.yaml")


def test_python_dash_m_and_console_script() -> None:
    """`python -m oaamap` works (the console script calls the same main)."""
    proc = subprocess.run([sys.executable, "-m", "oaamap", "validate", EXAMPLE],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr


def test_the_references_sources_block_validates() -> None:
    """The reference's file layout and every source kind (csv, json, http with auth, paging and
    fan-out, sql) as written: valid without reading data or touching the network."""
    result = run_cli("validate", "tests/fixtures/doc-sources.yaml")
    assert result.code == 0, result.err
    assert "is valid (application, 5 sources, 5 rules)" in result.err
