"""Fault suite, area "the docs' claims hold" (issue 7, point 6).

- configuration strings are rendered before any record is read or any request sent;
- every source is read once (an HTTP request is never sent twice, a file opened once);
- `compile -o` into a folder that is missing or cannot be written is a usage error, found before
  reading, with nothing written;
- `validate` checks several files, each to the end;
- the doc-snippet convention itself: a broken fence, a wrong output, a command that would reach a
  real tenant are caught, never passed silently.
"""

from __future__ import annotations

import builtins
import errno
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from doc_snippets import (
    SnippetError,
    expected_lines,
    missing_output,
    parse_snippets,
    prepare_script,
)
from helpers import run_cli, write_case
from http_server import LocalServer, Reply, Req
from veza_helpers import KEY

from oaamap.veza.emulator import EmulatorHandle

PEOPLE = [{"id": "u1", "login": "alice", "team": "eng"},
          {"id": "u2", "login": "bob", "team": "ops"}]


@pytest.fixture
def api() -> Iterator[LocalServer]:
    """A REST API with one endpoint, `/people` (two records), counting its requests."""
    with LocalServer() as server:
        @server.route("/people")
        def people(req: Req) -> Reply:
            return Reply(200, PEOPLE)

        yield server


def _http_mapping(url: str, extra_sources: str = "", extra_rules: str = "",
                  **slots: str) -> str:
    """An application mapping over an http source; `slots` replace the default config strings,
    `extra_sources`/`extra_rules` are YAML lines added under `sources:` and before `users:`."""
    values = {"provider": "Docs", "data_source": "docs", "app_name": "Docs App",
              "resource_name": "repo", "header": "docs", "icon": "", **slots}
    lines = [
        "oaamap: 1",
        "template: application",
        "provider:",
        f'  name: "{values["provider"]}"',
        *([f'  icon: "{values["icon"]}"'] if values["icon"] else []),
        f'data_source: "{values["data_source"]}"',
        "sources:",
        "  people:",
        "    http:",
        f'      url: "{url}"',
        f'      headers: {{X-Doc: "{values["header"]}"}}',
        *extra_sources.splitlines(),
        f'application: {{name: "{values["app_name"]}", type: DocApp}}',
        "roles:",
        "  - {name: viewer}",
        *extra_rules.splitlines(),
        "users:",
        "  - {from: people, id: id, name: login, roles: \"['viewer']\"}",
        "resources:                      # a static rule, evaluated after the users",
        f'  - {{name: "{values["resource_name"]}", type: DocRepo}}',
    ]
    return "\n".join(lines) + "\n"


def _located(text: str, needle: str) -> str:
    """`mapping.yaml:LINE:` of the first line of the mapping containing `needle`."""
    for number, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return f"mapping.yaml:{number}:"
    raise AssertionError(f"`{needle}` is not in the mapping")


# --- 3. configuration strings rendered before any record ------------------------------------

UNDEFINED = "{{ vars.nope }}"


@pytest.mark.parametrize("slot", [
    "data_source", "provider", "app_name", "resource_name", "header", "icon",
], ids=lambda slot: f"undefined-var-in-{slot}")
def test_an_undefined_var_in_a_configuration_string_fails_before_any_request(
        slot: str, api: LocalServer, tmp_path: Path) -> None:
    """Exit 2 at the string's place; the API is never called; nothing is written."""
    text = _http_mapping(api.url("/people"), **{slot: UNDEFINED})
    mapping = write_case(tmp_path, text, {})
    out = tmp_path / "payload.json"
    result = run_cli("compile", str(mapping), "-o", str(out))
    assert result.code == 2, result.err
    assert _located(text, UNDEFINED) in result.err
    assert "uses an undefined value" in result.err and "Traceback" not in result.err
    assert api.hits["/people"] == 0, "a request was sent before the mapping was found wrong"
    assert not out.exists() and not (tmp_path / "payload.json.tmp").exists()


def test_an_undefined_var_in_a_later_sources_url_fails_before_the_first_source_is_read(
        api: LocalServer, tmp_path: Path) -> None:
    """The second source's URL is wrong: the first source is not fetched either."""
    text = _http_mapping(
        api.url("/people"),
        extra_sources=f'  teams:\n    http: {{url: "{api.url("/people")}/{UNDEFINED}"}}')
    text += "grants:                          # read after `people`\n" \
            "  - {from: teams, user: id, role: \"'viewer'\"}\n"
    result = run_cli("compile", str(write_case(tmp_path, text, {})))
    assert result.code == 2, result.err
    assert _located(text, UNDEFINED) in result.err
    assert api.hits["/people"] == 0
    assert result.out == ""


def _fan_out(base: str) -> str:
    """A `details` source fetching `/people/<id>` once per record of `people`."""
    return ("  details:\n    http:\n      url: \"" + base + "/{{ p.id }}\"\n"
            "      for_each: {p: people}")


def test_fan_out_strings_that_use_the_parent_are_rendered_per_parent(
        api: LocalServer, tmp_path: Path) -> None:
    """A string using the fan-out parent is not rendered early (it has no parent yet)."""
    _person_route(api)
    text = _http_mapping(api.url("/people"), extra_sources=_fan_out(api.url("/people")),
                         extra_rules="groups:\n  - {from: details, name: member}")
    result = run_cli("compile", str(write_case(tmp_path, text, {})))
    assert result.code == 0, result.err
    assert api.hits["/people"] == 1
    assert api.hits["/people/u1"] == 1 and api.hits["/people/u2"] == 1


def _person_route(api: LocalServer) -> None:
    @api.route("/people/", prefix=True)
    def person(req: Req) -> Reply:
        return Reply(200, [{"member": req.path.rsplit("/", 1)[-1]}])


# --- 2. every source is read once -------------------------------------------------------------

CSV_MAPPING = """\
    oaamap: 1
    template: application
    provider: Docs
    data_source: docs
    sources:
      people: {csv: people.csv}
      other: {json: other.json}
    application: {name: Docs, type: DocApp}
    groups:
      - {from: people, name: team}
      - {from: other, name: "lookup('people', 'id', id).team"}
    users:
      - {from: people, id: id, name: login, groups: "[team]"}
      - {from: other, id: id, name: "lookup('people', 'id', id).login"}
    """


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times each file name is opened for reading."""
    counts: dict[str, int] = {}
    real_open = builtins.open

    def counting_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | os.PathLike) and "r" in mode:
            name = Path(file).name
            counts[name] = counts.get(name, 0) + 1
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    return counts


def test_a_file_used_by_several_rules_and_a_lookup_is_opened_once(
        tmp_path: Path, opened: dict[str, int]) -> None:
    """Two rules and a lookup over `people.csv`, two rules over `other.json`: one open each."""
    mapping = write_case(tmp_path, CSV_MAPPING, {
        "people.csv": "id,login,team\nu1,alice,eng\nu2,bob,ops\n",
        "other.json": '[{"id": "u1"}, {"id": "u2"}]',
    })
    result = run_cli("compile", str(mapping), "-o", str(tmp_path / "payload.json"))
    assert result.code == 0, result.err
    assert opened["people.csv"] == 1, opened
    assert opened["other.json"] == 1, opened
    assert "read people 2, other 2" in result.err


def test_a_file_changed_between_two_rules_cannot_split_the_payload(tmp_path: Path) -> None:
    """The rules of one source see one snapshot: a file rewritten while it is read does not
    give the second rule other rows (the records are kept, not read again)."""
    mapping = write_case(tmp_path, """\
        oaamap: 1
        template: application
        provider: Docs
        data_source: docs
        sources:
          people: {csv: people.csv}
        application: {name: Docs, type: DocApp}
        groups:
          - {from: people, name: team}
        users:
          - {from: people, id: id, name: login, groups: "[team]"}
        """, {"people.csv": "id,login,team\nu1,alice,eng\nu2,bob,ops\n"})
    from oaamap.sources import csv_source

    real_rows = csv_source.CsvSource._rows
    reads = []

    def rows_then_rewrite(self: Any, *args: Any) -> Any:
        reads.append(1)
        yield from real_rows(self, *args)
        (tmp_path / "people.csv").write_text("id,login,team\nu9,mallory,evil\n")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csv_source.CsvSource, "_rows", rows_then_rewrite)
        result = run_cli("compile", str(mapping), "--indent", "0")
    assert result.code == 0, result.err
    assert len(reads) == 1
    assert "mallory" not in result.out and "evil" not in result.out
    assert '"name":"eng"' in result.out.replace(" ", "").replace("\n", "")


@pytest.mark.parametrize("consumers", ["two-rules", "rule-and-lookup", "fan-out-parent"])
def test_an_http_source_is_fetched_once(consumers: str, api: LocalServer,
                                        tmp_path: Path) -> None:
    """However many consumers an http source has, each URL is requested exactly once."""
    base = api.url("/people")
    if consumers == "two-rules":
        text = _http_mapping(base, extra_rules="groups:\n  - {from: people, name: team}")
    elif consumers == "rule-and-lookup":
        text = _http_mapping(base).replace("name: login,",
                                           "name: \"lookup('people', 'id', id).login\",")
    else:
        _person_route(api)
        text = _http_mapping(base, extra_sources=_fan_out(base),
                             extra_rules="groups:\n  - {from: details, name: member}")
    result = run_cli("compile", str(write_case(tmp_path, text, {})))
    assert result.code == 0, result.err
    assert api.hits["/people"] == 1, api.hits


# --- 4. compile -o into a folder that cannot take the payload --------------------------------


@pytest.mark.parametrize(("target", "reason"), [
    ("missing/payload.json", "the folder `{tmp}/missing` does not exist"),
    ("missing/deeper/payload.json", "the folder `{tmp}/missing/deeper` does not exist"),
    ("a-file/payload.json", "`{tmp}/a-file` is not a folder"),
    (".", "it is a folder"),
], ids=["missing-folder", "missing-parents", "parent-is-a-file", "output-is-a-folder"])
def test_compile_into_a_folder_that_cannot_be_written(
        target: str, reason: str, api: LocalServer, tmp_path: Path) -> None:
    """Exit 2, the folder named, no traceback, nothing written, and no source read."""
    mapping = write_case(tmp_path, _http_mapping(api.url("/people")), {"a-file": "x"})
    output = tmp_path / target if target != "." else tmp_path
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = run_cli("compile", str(mapping), "-o", str(output))
    assert result.code == 2, result.err
    assert reason.format(tmp=tmp_path) in result.err
    assert "nothing was written" in result.err and "Traceback" not in result.err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert api.hits["/people"] == 0


@pytest.mark.parametrize("dry_run", [True, False], ids=["run-dry-run", "run-push"])
def test_run_save_json_into_a_missing_folder_pushes_nothing(
        dry_run: bool, api: LocalServer, emulator: EmulatorHandle, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`run --save-json` into a missing folder: exit 2 before reading, nothing sent to Veza."""
    monkeypatch.setenv("VEZA_URL", emulator.url)
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    mapping = write_case(tmp_path, _http_mapping(api.url("/people")), {})
    target = tmp_path / "missing" / "payload.json"
    result = run_cli("run", str(mapping), "--save-json", str(target),
                     "--state-dir", str(tmp_path / "state"), *(["--dry-run"] if dry_run else []))
    assert result.code == 2, result.err
    assert f"the folder `{tmp_path / 'missing'}` does not exist" in result.err
    assert "Traceback" not in result.err and "unexpected error" not in result.err
    assert api.hits["/people"] == 0
    assert emulator.requests == []
    assert not (tmp_path / "missing").exists()


def test_compile_into_an_unwritable_folder(api: LocalServer, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder the user may not write to (as root, permissions do not stop writes: the check is
    simulated for the folder only)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == locked
                        else real_access(path, mode, **kw))
    mapping = write_case(tmp_path, _http_mapping(api.url("/people")), {})
    result = run_cli("compile", str(mapping), "-o", str(locked / "payload.json"))
    assert result.code == 2, result.err
    assert f"the folder `{locked}` is not writable" in result.err
    assert list(locked.iterdir()) == []
    assert api.hits["/people"] == 0


def test_a_write_that_fails_midway_leaves_no_partial_file(api: LocalServer, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up while writing: exit 2, no payload, no `.tmp` left behind."""
    from oaamap.pipeline import CompileResult

    def full_disk(self: CompileResult, stream: Any, indent: int | None = None) -> None:
        stream.write('{"applications": [')
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(CompileResult, "write", full_disk)
    mapping = write_case(tmp_path, _http_mapping(api.url("/people")), {})
    out = tmp_path / "out" / "payload.json"
    out.parent.mkdir()
    result = run_cli("compile", str(mapping), "-o", str(out))
    assert result.code == 2, result.err
    assert "No space left on device" in result.err and str(out) in result.err
    assert list(out.parent.iterdir()) == []


# --- 5. validate takes several files --------------------------------------------------------

VALID = """\
    oaamap: 1
    template: application
    provider: Docs
    data_source: docs
    application: {name: Docs, type: DocApp}
    roles:
      - {name: viewer}
    """
INVALID = VALID.replace("    roles:", "    rolez:")


@pytest.mark.parametrize(("files", "code", "lines"), [
    (["ok1", "ok2"], 0, ["ok1.yaml is valid", "ok2.yaml is valid"]),
    (["ok1", "bad1", "ok2"], 2, ["ok1.yaml is valid", "bad1.yaml:6:1: error: unexpected key "
                                 "`rolez`", "1 error in", "ok2.yaml is valid",
                                 "1 of 3 mapping files are invalid"]),
    (["bad1", "bad2"], 2, ["bad1.yaml:6:1: error", "bad2.yaml:6:1: error",
                           "2 of 2 mapping files are invalid"]),
    (["missing", "ok1"], 2, ["cannot read the mapping file", "missing.yaml",
                             "ok1.yaml is valid", "1 of 2 mapping files are invalid"]),
], ids=["all-valid", "one-invalid-among-valid", "all-invalid", "a-missing-file"])
def test_validate_checks_every_file(files: list[str], code: int, lines: list[str],
                                    tmp_path: Path) -> None:
    """Each file is checked to the end, in order; exit 2 when any is invalid."""
    for name in files:
        if name != "missing":
            (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(
                VALID if name.startswith("ok") else INVALID))
    result = run_cli("validate", *(str(tmp_path / f"{name}.yaml") for name in files))
    assert result.code == code, result.err
    position = 0
    for line in lines:
        found = result.err.find(line, position)
        assert found >= 0, f"`{line}` not printed (in order):\n{result.err}"
        position = found + len(line)


# --- 1. the doc-snippet convention catches what would pass silently ---------------------------


@pytest.mark.parametrize(("markdown", "message"), [
    ("text\n\n```\noaamap validate m.yaml\n```\n", "guide.md:3: a fence without a language"),
    ("```yaml\noaamap: 1\n```\n\n```yamll\n", "guide.md:5: unknown snippet language `yamll`"),
    ("```sh skipp=\"x\"\nls\n```\n", "guide.md:1: unknown snippet attribute `skipp=x`"),
    ("```sh skip=\"\"\nls\n```\n", "guide.md:1: `skip=` needs a reason"),
    ("```sh\nls\n", "guide.md:1: the fence is never closed"),
    ("```text output\nhello\n```\n", "guide.md:1: an `output` block must follow"),
], ids=["bare-fence", "unknown-language", "unknown-attribute", "skip-without-reason",
        "unclosed-fence", "orphan-output"])
def test_a_fence_that_breaks_the_convention_is_an_error(markdown: str, message: str) -> None:
    """Never skipped silently: the page fails with the fence's place."""
    with pytest.raises(SnippetError) as caught:
        parse_snippets(markdown, "guide.md")
    assert message in str(caught.value)


def test_an_output_block_that_differs_from_the_command_is_caught() -> None:
    """Lines must appear in order; only timings may differ."""
    snippets = parse_snippets("```sh\noaamap compile m.yaml\n```\n\n```text output\n"
                              "oaamap: read people 4; built 3 users (0.0 s)\n```\n", "g.md")
    assert snippets[0].output is snippets[1]
    shown = expected_lines(snippets[1].body)
    assert missing_output(shown, "oaamap: read people 4; built 3 users (1.7 s)\n") == []
    assert missing_output(shown, "oaamap: read people 5; built 3 users (0.0 s)\n") == shown
    two = expected_lines("a\nb\n")
    assert missing_output(two, "b\na\n") == ["b"]


def test_a_command_for_a_real_tenant_is_pointed_at_the_test_emulator() -> None:
    """The snippet's own VEZA_URL/VEZA_API_KEY are replaced; install steps are not run; fixed
    ports become free ones."""
    body = ("export VEZA_URL=https://acme.vezacloud.com\nexport VEZA_API_KEY=...   # a key\n"
            "python3 -m venv .venv && . .venv/bin/activate && python -m pip install -e . && "
            "oaamap run m.yaml\n")
    script = prepare_script(body, "http://127.0.0.1:9", "k")
    assert script.needs_veza
    assert "acme.vezacloud.com" not in script.text and "VEZA_URL=http://127.0.0.1:9" in script.text
    assert "VEZA_API_KEY=k" in script.text
    assert "pip install" not in script.text and "venv" not in script.text
    assert "oaamap run m.yaml" in script.text
    own = prepare_script("oaamap emulator --tls --port 8443 &\n"
                         "VEZA_URL=https://127.0.0.1:8443 oaamap run m.yaml --insecure\n")
    assert not own.needs_veza and "8443" not in own.text
    port = own.text.split("--port ")[1].split()[0]
    assert f"https://127.0.0.1:{port} " in own.text
