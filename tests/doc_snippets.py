"""The docs' snippets as tests: find every fenced block of the Markdown docs and run it as written.

The convention is described for contributors in docs/contributing.md. In short, a fence's info
string is a language followed by attributes (shell words):

    ```yaml                           a complete mapping (`oaamap: 1`): validated
    ```yaml cwd=examples/app-csv      ... and compiled from that folder of the repository
    ```yaml fragment                  a piece of a mapping: must parse (and validate when wrapped)
    ```sh                             every command runs in a temporary copy of the repository
    ```sh setup="cp a b"              ... after a setup command the reader is assumed to have done
    ```console                        `$ command` lines run, the lines after them are their output
    ```text output                    the output of the `sh` block just before it: compared
    ```text                           illustration: not run
    ```LANG file=PATH                 the block is a file the doc's other snippets use
    ```LANG skip="reason"             not run; reported as skipped with the reason, never silently

Runs are confined: HOME and the state directory point into the temporary copy, fixed ports are
replaced by free ones, and a block that pushes without starting its own emulator gets one, with
the block's own `VEZA_URL=` / `VEZA_API_KEY=` values pointing at it.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = frozenset({"yaml", "sh", "console", "text", "json", "python", "csv"})
ALIASES = {"yml": "yaml", "bash": "sh", "shell": "sh", "py": "python", "txt": "text"}
FLAGS = frozenset({"fragment", "output"})
KEYS = frozenset({"cwd", "setup", "file", "skip", "template"})
RUN_TIMEOUT = 120
COPY_IGNORED = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info",
                                      ".pytest_cache", ".ruff_cache", "bench")
# Install steps and the test command itself: the test runs inside the installed package, and
# `.ci/run` runs the README's install-and-test command verbatim on a fresh machine.
NOT_RUN_STEPS = re.compile(
    r"^\s*(python3? -m venv \S+|[.] \S*bin/activate|source \S*bin/activate"
    r"|(python3? -m )?pip3? install .*|python3? -m pytest.*)\s*$")
TIMING = re.compile(r"\b\d+(\.\d+)? s\b")


class SnippetError(ValueError):
    """A fence that breaks the convention (an unknown language, attribute or a missing fence)."""


@dataclass(frozen=True)
class Snippet:
    """One fenced block: where it is, its language and attributes, its text."""

    doc: str
    line: int
    language: str
    attrs: Mapping[str, str]
    body: str
    output: Snippet | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        """`docs/cli.md:37`: the block's opening fence."""
        return f"{self.doc}:{self.line}"

    def flag(self, name: str) -> bool:
        """True when the info string has the word `name`."""
        return name in self.attrs


def doc_files(root: Path = ROOT) -> list[Path]:
    """Every Markdown page whose snippets must run: docs/, the README, the examples' READMEs."""
    files = [root / "README.md", *sorted((root / "docs").glob("*.md")),
             *sorted((root / "examples").glob("*/README.md"))]
    return [f for f in files if f.is_file()]


FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")


def parse_snippets(text: str, doc: str) -> list[Snippet]:
    """The fenced blocks of a Markdown text, in order; a `text output` block is attached to the
    `sh` block before it.

    Raises:
        SnippetError: a fence without a known language, an unknown attribute, an unclosed fence,
            or an output block with no command before it.
    """
    lines = text.split("\n")
    snippets: list[Snippet] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, indent, fence = i + 1, len(match["indent"]), match["fence"]
        language, attrs = _info(match["info"], f"{doc}:{start}")
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$",
                                              lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
            i += 1
        if i == len(lines):
            raise SnippetError(f"{doc}:{start}: the fence is never closed")
        i += 1
        snippets.append(Snippet(doc, start, language, attrs, "\n".join(body) + "\n"))
    return _attach_outputs(snippets)


def _info(info: str, where: str) -> tuple[str, dict[str, str]]:
    try:
        words = shlex.split(info)
    except ValueError as e:
        raise SnippetError(f"{where}: cannot read the fence's info string `{info}`: {e}") from e
    if not words:
        raise SnippetError(f"{where}: a fence without a language; use ```text for output or "
                           "fragments that do not run (see docs/contributing.md)")
    language, attrs = ALIASES.get(words[0], words[0]), {}
    if language not in LANGUAGES:
        raise SnippetError(f"{where}: unknown snippet language `{language}` "
                           f"(one of {', '.join(sorted(LANGUAGES))})")
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if (sep and key not in KEYS) or (not sep and key not in FLAGS):
            raise SnippetError(f"{where}: unknown snippet attribute `{word}` (flags: "
                               f"{', '.join(sorted(FLAGS))}; keys: {', '.join(sorted(KEYS))})")
        if key == "skip" and not value.strip():
            raise SnippetError(f"{where}: `skip=` needs a reason")
        attrs[key] = value
    return language, attrs


def _attach_outputs(snippets: list[Snippet]) -> list[Snippet]:
    out: list[Snippet] = []
    for snippet in snippets:
        if snippet.flag("output"):
            if not out or out[-1].language != "sh":
                raise SnippetError(f"{snippet.id}: an `output` block must follow the `sh` block "
                                   "whose output it shows")
            out[-1] = Snippet(out[-1].doc, out[-1].line, out[-1].language, out[-1].attrs,
                              out[-1].body, snippet)
        out.append(snippet)
    return out


def all_snippets(root: Path = ROOT) -> list[Snippet]:
    """Every snippet of every doc page."""
    snippets: list[Snippet] = []
    for path in doc_files(root):
        snippets += parse_snippets(path.read_text(encoding="utf-8"),
                                   path.relative_to(root).as_posix())
    return snippets


# --- running ----------------------------------------------------------------------------------


@dataclass
class Workspace:
    """A temporary copy of the repository in which one doc's snippets run, in order."""

    root: Path
    files_written: set[str] = field(default_factory=set)

    @classmethod
    def copy_of(cls, repository: Path, target: Path) -> Workspace:
        """Copy the repository (without VCS, virtualenvs, caches) to `target`."""
        shutil.copytree(repository, target, ignore=COPY_IGNORED)
        (target / ".home").mkdir()
        return cls(target)

    def folder(self, snippet: Snippet) -> Path:
        """Where the snippet runs: its `cwd=` inside the copy, else the copy's root."""
        folder = (self.root / snippet.attrs.get("cwd", ".")).resolve()
        if not folder.is_relative_to(self.root.resolve()) or not folder.is_dir():
            raise SnippetError(f"{snippet.id}: cwd=`{snippet.attrs['cwd']}` is not a folder "
                               "of the repository")
        return folder

    def write_files(self, snippets: list[Snippet]) -> None:
        """Write every `file=` snippet of the doc (data and mappings other snippets use)."""
        for snippet in snippets:
            if "file" in snippet.attrs and snippet.id not in self.files_written:
                path = self.folder(snippet) / snippet.attrs["file"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(snippet.body, encoding="utf-8")
                self.files_written.add(snippet.id)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a run: no Veza settings of the caller, state and HOME inside."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("VEZA_", "OAAMAP_", "ACME_"))}
        env.update(HOME=str(self.root / ".home"), XDG_STATE_HOME=str(self.root / ".state"),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                   PYTHONDONTWRITEBYTECODE="1")
        env.update(extra or {})
        return env


@dataclass(frozen=True)
class Run:
    """What a command or block printed (stdout and stderr interleaved) and its exit code."""

    code: int
    output: str


def run_shell(script: str, cwd: Path, env: Mapping[str, str]) -> Run:
    """Run a bash script in its own process group; background jobs are ended with it.

    Raises:
        subprocess.TimeoutExpired: the script ran over RUN_TIMEOUT seconds (it is killed).
    """
    prelude = "set -eo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    with subprocess.Popen(["bash", "-c", prelude + script], cwd=cwd, env=dict(env),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True) as proc:
        try:
            output, _ = proc.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        finally:
            _end_group(proc.pid)
    return Run(proc.returncode, output)


def _end_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PORT_USE = re.compile(r"(--port[ =])(\d+)|((?:127\.0\.0\.1|localhost):)(\d+)")
EMULATOR = re.compile(r"\boaamap emulator\b")
PUSHES = re.compile(r"\boaamap (run|push)\b(?![^\n]*--dry-run)")


@dataclass(frozen=True)
class Script:
    """A `sh` block made safe to run here, and what was changed."""

    text: str
    needs_veza: bool
    not_run: tuple[str, ...]


def prepare_script(body: str, veza_url: str = "", veza_key: str = "") -> Script:
    """Rewrite a `sh` block for a test run.

    Install steps and the test command are not run (they are CI's job); fixed ports become free
    ones (and the block waits for a server it starts in the background); a block that pushes
    with no emulator of its own gets `VEZA_URL`/`VEZA_API_KEY` pointing at the test's emulator.
    """
    text = body.replace("\\\n", " ")
    lines, not_run = [], []
    for line in text.split("\n"):
        steps = _split_steps(line)
        kept = []
        for step in steps:
            if NOT_RUN_STEPS.match(step):
                not_run.append(step.strip())
                kept.append(" :")
            else:
                kept.append(step)
        lines.append("&&".join(kept))
    text = "\n".join(lines)
    ports: dict[str, str] = {}

    def port(number: str) -> str:
        return ports.setdefault(number, str(free_port()))

    text = PORT_USE.sub(lambda m: f"{m[1]}{port(m[2])}" if m[1] else f"{m[3]}{port(m[4])}", text)
    # The emulator's default port is 8000: make it explicit, so that it is replaced too.
    text = re.sub(r"^(\s*oaamap emulator\b)(?![^\n#]*--port)",
                  lambda m: f"{m.group(1)} --port {port('8000')}", text, flags=re.M)
    text = _wait_for_background_servers(text)
    needs_veza = bool(PUSHES.search(text)) and not EMULATOR.search(text)
    if needs_veza and veza_url:
        text = re.sub(r"\bVEZA_URL=\S+", f"VEZA_URL={veza_url}", text)
        text = re.sub(r"\bVEZA_API_KEY=\S+", f"VEZA_API_KEY={veza_key}", text)
    return Script(text, needs_veza, tuple(not_run))


def _split_steps(line: str) -> list[str]:
    code, hash_, comment = line.partition(" #")
    steps = code.split("&&")
    if hash_:
        steps[-1] += hash_ + comment
    return steps


def _wait_for_background_servers(text: str) -> str:
    out = []
    for line in text.split("\n"):
        out.append(line)
        code = line.split(" #")[0].rstrip()
        match = re.search(r"--port[ =](\d+)", code)
        if code.endswith("&") and match:
            out.append(f"for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/{match[1]}) "
                       "2>/dev/null && break; sleep 0.05; done")
    return "\n".join(out)


def expected_lines(text: str) -> list[str]:
    """The lines an output block shows, timings normalised."""
    return [normalise(line) for line in text.strip("\n").split("\n") if line.strip()]


def normalise(line: str) -> str:
    """A line with timings (`0.4 s`) replaced, trailing spaces dropped."""
    return TIMING.sub("<t> s", line.rstrip())


def missing_output(expected: list[str], output: str) -> list[str]:
    """The expected lines not found, in order, among the lines of `output` (empty when all are)."""
    actual = [normalise(line) for line in output.split("\n")]
    position, missing = 0, []
    for line in expected:
        try:
            position = actual.index(line, position) + 1
        except ValueError:
            missing.append(line)
    return missing


def console_commands(body: str) -> Iterator[tuple[str, list[str]]]:
    """The (`$ command`, output lines) pairs of a console block."""
    command: str | None = None
    output: list[str] = []
    for line in body.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            if command is not None:
                yield command, output
            command, output = line[2:], []
        elif command is not None:
            output.append(line)
    if command is not None:
        yield command, output


# --- checks of the non-shell kinds --------------------------------------------------------------

MINIMAL_MAPPINGS = {
    "application": {"application": {"name": "Doc", "type": "Doc"}},
    "identity_provider": {"idp": {"name": "Doc", "type": "custom", "domain": "doc.test"}},
    "hris": {"system": {"name": "Doc", "type": "custom"}},
}
WRAPPABLE = frozenset({"vars", "sources"})


def yaml_document(snippet: Snippet) -> object:
    """The block parsed as YAML.

    Raises:
        yaml.YAMLError: it is not YAML.
    """
    return yaml.safe_load(snippet.body)


def is_complete_mapping(document: object) -> bool:
    """A mapping file rather than a fragment: it declares the language version."""
    return isinstance(document, dict) and "oaamap" in document


def wrapped_fragment(snippet: Snippet, document: object) -> str | None:
    """A fragment of only `vars:`/`sources:` as a minimal complete mapping (else None)."""
    if not isinstance(document, dict) or not document or not set(document) <= WRAPPABLE:
        return None
    template = snippet.attrs.get("template", "application")
    mapping = {"oaamap": 1, "template": template, "provider": "Doc", "data_source": "Doc",
               **MINIMAL_MAPPINGS[template]}
    return yaml.safe_dump(mapping, sort_keys=False) + snippet.body


def check_json(snippet: Snippet) -> None:
    """Parse a json block (a fragment is parsed as the members of an object).

    Raises:
        json.JSONDecodeError: it is not JSON.
    """
    text = snippet.body
    json.loads("{" + text + "}" if snippet.flag("fragment") else text)


def check_python(snippet: Snippet) -> None:
    """Parse a python block.

    Raises:
        SyntaxError: it is not Python.
    """
    ast.parse(textwrap.dedent(snippet.body), filename=snippet.id)
