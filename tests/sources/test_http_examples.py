"""Golden tests of the network examples: each starts its fixture server on an ephemeral port and
compiles the example (and the catalog connector it copies) with `--var base_url=...`.

`UPDATE_GOLDEN=1` rewrites `expected.json`.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from helpers import ROOT, UPDATE_GOLDEN, run_cli

EXAMPLES = {
    # folder: (catalog mapping, env with the secret, vars)
    "github-org": ("mappings/github.yaml", {"GITHUB_TOKEN": "offline-token"}, {"org": "acme"}),
    "pagerduty": ("mappings/pagerduty.yaml", {"PAGERDUTY_API_KEY": "offline-key"},
                  {}),
}
# The fixture server's options per example (default: its `fixtures/`). The GitHub example runs on
# `fixtures-veza`, the organisation Veza's connector was run on: its golden is Veza's payload.
SERVER_OPTIONS: dict[str, dict[str, str]] = {"github-org": {"fixtures": "fixtures-veza"}}
# Without the secret: (exit code, message). The GitHub mapping takes a token or the GitHub App
# settings, all optional in the environment: the source's auth says what is missing.
MISSING_SECRET = {"github-org": (3, "`app_id` is empty (and so is `token`)")}


def _load_server(folder: str) -> ModuleType:
    path = ROOT / "examples" / folder / "server.py"
    spec = importlib.util.spec_from_file_location(f"example_server_{folder.replace('-', '_')}",
                                                  path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=list(EXAMPLES), scope="module")
def example(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(folder, base_url) with the folder's fixture server running on an ephemeral port."""
    folder = request.param
    server = _load_server(folder).make_server("127.0.0.1", 0, **SERVER_OPTIONS.get(folder, {}))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _compile(mapping: str, base_url: str, variables: dict[str, str], *extra: str) -> tuple[
        int, str, str]:
    args = ["compile", mapping, "--quiet", "--var", f"base_url={base_url}"]
    for key, value in variables.items():
        args += ["--var", f"{key}={value}"]
    result = run_cli(*args, *extra)
    return result.code, result.out, result.err


def test_example_compiles_to_the_golden_payload(example: tuple[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder, base_url = example
    _, env, variables = EXAMPLES[folder]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = _compile(f"examples/{folder}/mapping.yaml", base_url, variables)
    assert code == 0, err
    expected = ROOT / "examples" / folder / "expected.json"
    if UPDATE_GOLDEN or not expected.exists():
        expected.write_text(json.dumps(json.loads(out), indent=2, ensure_ascii=False) + "\n")
    assert json.loads(out) == json.loads(expected.read_text())


def test_the_catalog_connector_gives_the_same_payload(example: tuple[str, str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder, base_url = example
    catalog, env, variables = EXAMPLES[folder]
    assert (ROOT / catalog).read_text() == (ROOT / "examples" / folder / "mapping.yaml").read_text()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = _compile(catalog, base_url, variables)
    assert code == 0, err
    expected = json.loads((ROOT / "examples" / folder / "expected.json").read_text())
    assert json.loads(out) == expected


def test_without_the_secret_the_compile_stops_before_any_request(
        example: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, base_url = example
    _, env, variables = EXAMPLES[folder]
    for key in env:
        monkeypatch.delenv(key, raising=False)
    code, _, err = _compile(f"examples/{folder}/mapping.yaml", base_url, variables)
    expected_code, message = MISSING_SECRET.get(folder, (2, "uses an undefined value"))
    assert code == expected_code, err
    assert message in err


def test_a_wrong_base_url_is_a_source_error_naming_the_request(
        example: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, base_url = example
    _, env, variables = EXAMPLES[folder]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, _, err = _compile(f"examples/{folder}/mapping.yaml", base_url + "/nowhere", variables)
    assert code == 3
    assert f"{base_url}/nowhere/" in err
    assert "[HTTP 404]" in err
    for value in env.values():
        assert value not in err


def test_the_payload_does_not_depend_on_concurrency(example: tuple[str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from oaamap.pipeline import CompileOptions, compile_mapping

    folder, base_url = example
    _, env, variables = EXAMPLES[folder]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    payloads = [
        compile_mapping(ROOT / "examples" / folder / "mapping.yaml",
                        {**variables, "base_url": base_url},
                        CompileOptions(source_options={"http_concurrency": n})).payload
        for n in (1, 16)]
    assert payloads[0] == payloads[1]


def test_examples_have_the_documented_files() -> None:
    for folder in EXAMPLES:
        path = Path(ROOT / "examples" / folder)
        for name in ("mapping.yaml", "README.md", "server.py", "expected.json"):
            assert (path / name).is_file(), f"{folder}/{name}"
