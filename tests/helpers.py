"""Shared test helpers: the repository root, golden-update switch, the in-process CLI."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"


@dataclass
class CliResult:
    """What a CLI run printed and returned."""

    code: int
    out: str
    err: str


def run_cli(*argv: str) -> CliResult:
    """Run `oaamap ARGV...` in-process and capture its output."""
    from oaamap.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return CliResult(code, out.getvalue(), err.getvalue())




def write_case(folder: Path, mapping: str, files: dict[str, str]) -> Path:
    """Write a mapping and its data files into `folder`; returns the mapping path."""
    import textwrap

    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
    mapping_path = folder / "mapping.yaml"
    mapping_path.write_text(textwrap.dedent(mapping))
    return mapping_path
