"""Golden cases end to end: each folder holds a mapping, its data and the expected output.

Folders: `tests/cases/*/` and `examples/*/` (those without a fixture server). A folder may hold
`case.json` with `{"mapping": "<path relative to the folder>", "vars": {...}}` (catalog cases point
at `mappings/*.yaml` this way); `expected.json` is the payload, `expected.err` the rendered errors
with the exit code on its first line. `UPDATE_GOLDEN=1` rewrites them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ROOT, UPDATE_GOLDEN, run_cli


def _cases() -> list[Path]:
    folders = sorted((ROOT / "tests" / "cases").glob("*/")) + sorted((ROOT / "examples").glob("*/"))
    return [f for f in folders if not (f / "server.py").exists()
            and ((f / "mapping.yaml").exists() or (f / "case.json").exists())]


def _invocation(folder: Path) -> list[str]:
    case = json.loads((folder / "case.json").read_text()) if (folder / "case.json").exists() else {}
    mapping = (folder / case.get("mapping", "mapping.yaml")).resolve().relative_to(ROOT)
    args = [str(mapping)]
    for key, value in case.get("vars", {}).items():
        args += ["--var", f"{key}={value}"]
    return args


@pytest.mark.parametrize("folder", _cases(), ids=lambda f: f"{f.parent.name}/{f.name}")
def test_golden_case(folder: Path) -> None:
    """`oaamap compile` of the case gives exactly the pinned payload (or the pinned errors)."""
    result = run_cli("compile", *_invocation(folder), "--quiet")
    expected_err = folder / "expected.err"
    if expected_err.exists() or (UPDATE_GOLDEN and result.code != 0):
        actual = f"exit {result.code}\n{result.err}"
        if UPDATE_GOLDEN:
            expected_err.write_text(actual)
        assert actual == expected_err.read_text()
        return
    assert result.code == 0, result.err
    expected = folder / "expected.json"
    if UPDATE_GOLDEN or not expected.exists():
        expected.write_text(json.dumps(json.loads(result.out), indent=2, ensure_ascii=False) + "\n")
    assert json.loads(result.out) == json.loads(expected.read_text())
