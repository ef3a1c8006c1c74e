"""Every snippet of README.md, docs/*.md and examples/*/README.md runs as written.

The convention (fence languages and attributes): docs/contributing.md and tests/doc_snippets.py.
One test per fenced block, named by its place (`docs/cli.md:37`); illustrations (```text) are not
tests, output blocks are checked with the command before them.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from doc_snippets import (
    ROOT,
    Run,
    Snippet,
    SnippetError,
    Workspace,
    check_json,
    check_python,
    console_commands,
    doc_files,
    expected_lines,
    is_complete_mapping,
    missing_output,
    parse_snippets,
    prepare_script,
    run_shell,
    wrapped_fragment,
    yaml_document,
)
from helpers import run_cli

from oaamap.veza.emulator import start_emulator

DOCS = {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
        for path in doc_files()}


def _parsed(doc: str) -> list[Snippet]:
    try:
        return parse_snippets(DOCS[doc], doc)
    except SnippetError:
        return []  # reported by test_fences_follow_the_convention


SNIPPETS = [snippet for doc in DOCS for snippet in _parsed(doc)]
RUNNABLE = [s for s in SNIPPETS if s.language != "text"]
EMULATOR_KEY = "doc-snippet-key"


@pytest.fixture(scope="module")
def workspaces() -> dict[str, Workspace]:
    """One temporary copy of the repository per doc page, made on first use."""
    return {}


def _workspace(workspaces: dict[str, Workspace], tmp_path_factory: pytest.TempPathFactory,
               snippet: Snippet) -> Workspace:
    if snippet.doc not in workspaces:
        target = tmp_path_factory.mktemp("doc") / "repo"
        workspaces[snippet.doc] = Workspace.copy_of(ROOT, target)
    workspace = workspaces[snippet.doc]
    workspace.write_files([s for s in SNIPPETS if s.doc == snippet.doc])
    return workspace


@pytest.mark.parametrize("snippet", RUNNABLE, ids=[s.id for s in RUNNABLE])
def test_snippet_runs_as_written(snippet: Snippet, workspaces: dict[str, Workspace],
                                 tmp_path_factory: pytest.TempPathFactory,
                                 tmp_path: Path) -> None:
    """The block does what the doc says: valid YAML/JSON/Python, mappings validate (and compile
    where their data is), commands exit 0 and print the output the doc shows."""
    if "skip" in snippet.attrs:
        pytest.skip(f"{snippet.id}: {snippet.attrs['skip']}")
    workspace = _workspace(workspaces, tmp_path_factory, snippet)
    RUNNERS[snippet.language](snippet, workspace, tmp_path)


def _run_yaml(snippet: Snippet, workspace: Workspace, tmp_path: Path) -> None:
    document = yaml_document(snippet)
    folder = workspace.folder(snippet)
    if snippet.flag("fragment"):
        wrapped = wrapped_fragment(snippet, document)
        if wrapped is not None:
            _validate(snippet, _write(folder, snippet, wrapped), "wrapped into a minimal mapping")
        return
    if not is_complete_mapping(document):
        if "file" in snippet.attrs:
            return  # a data file (YAML) other snippets read; written by the workspace
        pytest.fail(f"{snippet.id}: a YAML block that is not a complete mapping (`oaamap: 1`): "
                    "complete it, or mark it ```yaml fragment")
    path = _write(folder, snippet, snippet.body)
    _validate(snippet, path, "")
    if "cwd" in snippet.attrs or _files_at_hand(document, folder):
        result = run_cli("compile", str(path), "-o", str(tmp_path / "payload.json"))
        assert result.code == 0, f"{snippet.id} does not compile in {folder}:\n{result.err}"
        assert (tmp_path / "payload.json").stat().st_size > 0


def _files_at_hand(document: dict[str, Any], folder: Path) -> bool:
    """Every source of the mapping is a file that exists in `folder` (so it can be compiled)."""
    sources = document.get("sources") or {}
    paths = [spec.get("csv") or spec.get("json") for spec in sources.values()
             if isinstance(spec, dict)]
    return bool(paths) and len(paths) == len(sources) and all(
        isinstance(p, str) and "{" not in p and (folder / p).is_file() for p in paths)


def _write(folder: Path, snippet: Snippet, text: str) -> Path:
    path = folder / snippet.attrs.get("file", f".snippet-{snippet.line}.yaml")
    path.write_text(text, encoding="utf-8")
    return path


def _validate(snippet: Snippet, path: Path, how: str) -> None:
    result = run_cli("validate", str(path))
    assert result.code == 0, f"{snippet.id} ({how or 'as written'}) is not valid:\n{result.err}"


def _run_sh(snippet: Snippet, workspace: Workspace, tmp_path: Path) -> None:
    script = prepare_script(snippet.body)
    if script.needs_veza:
        with start_emulator(api_key=EMULATOR_KEY, data_dir=tmp_path / "veza-data") as veza:
            script = prepare_script(snippet.body, veza.url, EMULATOR_KEY)
            run = _run_script(snippet, workspace, script.text,
                              {"VEZA_URL": veza.url, "VEZA_API_KEY": EMULATOR_KEY})
    else:
        run = _run_script(snippet, workspace, script.text, {})
    assert run.code == 0, f"{snippet.id} failed (exit {run.code}):\n{script.text}\n---\n" \
                          f"{run.output}"
    if snippet.output is not None:
        missing = missing_output(expected_lines(snippet.output.body), run.output)
        assert not missing, (f"{snippet.output.id}: the output shown is not what "
                             f"{snippet.id} prints; missing lines:\n" + "\n".join(missing)
                             + f"\n--- printed:\n{run.output}")


def _run_script(snippet: Snippet, workspace: Workspace, text: str, env: dict[str, str]) -> Run:
    folder = workspace.folder(snippet)
    if "setup" in snippet.attrs:
        setup = run_shell(snippet.attrs["setup"], folder, workspace.env())
        assert setup.code == 0, f"{snippet.id}: setup failed:\n{setup.output}"
    return run_shell(text, folder, workspace.env(env))


def _run_console(snippet: Snippet, workspace: Workspace, tmp_path: Path) -> None:
    folder = workspace.folder(snippet)
    for command, shown in console_commands(snippet.body):
        script = prepare_script(command)
        assert not script.needs_veza, f"{snippet.id}: use a ```sh block for pushes"
        run = run_shell(script.text, folder, workspace.env())
        missing = missing_output(expected_lines("\n".join(shown)), run.output)
        assert not missing, (f"{snippet.id}: `{command}` does not print what the doc shows; "
                             "missing lines:\n" + "\n".join(missing) + f"\n--- printed:\n"
                             f"{run.output}")


def _run_json(snippet: Snippet, workspace: Workspace, tmp_path: Path) -> None:
    check_json(snippet)


def _run_csv(snippet: Snippet, workspace: Workspace, tmp_path: Path) -> None:
    rows = list(csv.reader(io.StringIO(snippet.body)))
    assert rows and all(len(row) <= len(rows[0]) for row in rows), \
        f"{snippet.id}: a row has more cells than the header"


def _run_python(snippet: Snippet, workspace: Workspace, tmp_path: Path) -> None:
    check_python(snippet)
    if snippet.flag("fragment"):
        return
    proc = subprocess.run([sys.executable, "-c", snippet.body], cwd=workspace.folder(snippet),
                          env=workspace.env(), capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, f"{snippet.id} failed:\n{proc.stdout}{proc.stderr}"


RUNNERS: dict[str, Callable[[Snippet, Workspace, Path], None]] = {
    "yaml": _run_yaml, "sh": _run_sh, "console": _run_console, "json": _run_json,
    "csv": _run_csv, "python": _run_python,
}


@pytest.mark.parametrize("doc", list(DOCS))
def test_fences_follow_the_convention(doc: str) -> None:
    """Every fence of the page has a known language and attributes (docs/contributing.md)."""
    try:
        parse_snippets(DOCS[doc], doc)
    except SnippetError as e:
        pytest.fail(str(e))


def test_every_language_has_a_runner() -> None:
    """A language the parser accepts but no runner handles would be skipped silently."""
    from doc_snippets import LANGUAGES

    assert set(RUNNERS) | {"text"} == set(LANGUAGES)


def test_the_docs_have_snippets_of_every_kind() -> None:
    """The extraction finds the docs' blocks (an empty list would make every test vanish)."""
    kinds = {s.language for s in SNIPPETS}
    assert {"yaml", "sh", "console", "text"} <= kinds
    assert any(s.output is not None for s in SNIPPETS)
    assert {s.doc for s in SNIPPETS} >= {"README.md", "docs/cli.md", "docs/language.md"}


def test_the_readme_tour_is_a_complete_mapping() -> None:
    """The README's tour of the language is checked as a mapping, not skipped as a fragment."""
    tours = [s for s in SNIPPETS if s.doc == "README.md" and s.language == "yaml"]
    assert tours and all(is_complete_mapping(yaml.safe_load(s.body)) for s in tours)
    assert not any(s.flag("fragment") or "skip" in s.attrs for s in tours)


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    """`.ci/run` calls the README's second command verbatim, venv creation included."""
    first, second = _readme_commands()
    assert first.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert second.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert "pytest" in second
    ci = (ROOT / ".ci" / "run").read_text().split("\n")
    assert second in ci, f"`.ci/run` does not run the README's test command `{second}`"


def _readme_commands() -> list[str]:
    readme = next(s for s in SNIPPETS if s.doc == "README.md" and s.language == "sh")
    return [line for line in readme.body.split("\n") if line and not line.startswith("#")]
