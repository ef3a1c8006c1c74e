"""`oaamap run`, `oaamap push` and their safety rules, against the emulator over real HTTP(S)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from veza_helpers import KEY, compact, sample

from oaamap.cli import main
from oaamap.veza.state import StateStore

try:
    from oaamap.pipeline import compile_mapping
except ImportError:  # the compile engine is not there yet
    compile_mapping = None

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "app-csv"
needs_pipeline = pytest.mark.skipif(
    compile_mapping is None or not EXAMPLE.exists(),
    reason="oaamap.pipeline or examples/app-csv is not available yet")
PROVIDER, SOURCE = "Acme Portal", "Acme Portal - portal.acme.test"


@pytest.fixture
def env(emulator, monkeypatch, tmp_path):
    """VEZA_URL/VEZA_API_KEY of the emulator; returns the common state-dir arguments."""
    monkeypatch.setenv("VEZA_URL", emulator.url)
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    monkeypatch.delenv("ACME_HOST", raising=False)
    return ["--state-dir", str(tmp_path / "state")]


@pytest.fixture
def example(tmp_path) -> Path:
    """A private copy of examples/app-csv (tests edit its data)."""
    target = tmp_path / "app-csv"
    shutil.copytree(EXAMPLE, target)
    return target / "mapping.yaml"


def _pushes(emulator) -> list:
    return [r for r in emulator.requests if r.path.endswith((":push", ":parts"))]


@needs_pipeline
def test_run_pushes_exactly_the_compiled_payload(emulator, env, capsys):
    assert main(["run", str(EXAMPLE / "mapping.yaml"), *env]) == 0
    assert main(["run", str(EXAMPLE / "mapping.yaml"), *env]) == 0
    compiled = compile_mapping(EXAMPLE / "mapping.yaml").payload_json()
    assert [p.json_text for p in emulator.payloads(PROVIDER, SOURCE)] == [compiled] * 2
    err = capsys.readouterr().err
    assert "provider created; data source created" in err
    assert err.count("veza: warning: Cannot find identity by names") == 6  # every warning shown
    assert "pushed 4 local_users" in err


@needs_pipeline
def test_run_over_tls_with_insecure(tls_emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("VEZA_URL", tls_emulator.url)
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    assert main(["run", str(EXAMPLE / "mapping.yaml"), "--insecure",
                 "--state-dir", str(tmp_path)]) == 0
    [push] = tls_emulator.pushes
    assert push.path.read_text() == compile_mapping(EXAMPLE / "mapping.yaml").payload_json()


@needs_pipeline
def test_dry_run_writes_the_payload_and_sends_nothing(emulator, env, tmp_path, monkeypatch):
    monkeypatch.delenv("VEZA_API_KEY")  # a dry run needs no credentials
    out = tmp_path / "payload.json"
    assert main(["run", str(EXAMPLE / "mapping.yaml"), "--dry-run", "--save-json", str(out),
                 *env]) == 0
    assert json.loads(out.read_text()) == compile_mapping(EXAMPLE / "mapping.yaml").payload
    assert emulator.requests == []


@needs_pipeline
def test_save_json_is_what_was_pushed(emulator, env, tmp_path):
    out = tmp_path / "pushed.json"
    assert main(["run", str(EXAMPLE / "mapping.yaml"), "--save-json", str(out), *env]) == 0
    assert out.read_text().strip() == emulator.pushes[0].json_text


@needs_pipeline
def test_multipart_and_no_compression_options(emulator, env):
    assert main(["run", str(EXAMPLE / "mapping.yaml"), "--multipart-threshold", "1KB",
                 "--part-size", "1000", *env]) == 0
    assert emulator.pushes[0].multipart
    assert len([r for r in emulator.requests if r.path.endswith(":parts")]) > 3


@needs_pipeline
def test_source_error_never_pushes(emulator, env, example, capsys):
    (example.parent / "data" / "users.csv").unlink()
    assert main(["run", str(example), *env]) == 3
    assert emulator.requests == []
    assert "users.csv" in capsys.readouterr().err


@needs_pipeline
def test_data_error_never_pushes(emulator, env, example):
    users = example.parent / "data" / "users.csv"
    users.write_text(users.read_text().replace(",yes,", ",maybe,", 1))
    assert main(["run", str(example), *env]) == 4
    assert emulator.requests == []


@needs_pipeline
def test_shrink_guard_refuses_then_allows(emulator, env, example, capsys):
    assert main(["run", str(example), *env]) == 0
    for name, keep in (("users.csv", 2), ("grants.csv", 3)):  # 4 users -> 1, with u1's grants
        path = example.parent / "data" / name
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:keep]))
    assert main(["run", str(example), *env]) == 5
    assert "refusing to push" in capsys.readouterr().err
    assert len(_pushes(emulator)) == 1
    assert main(["run", str(example), "--max-shrink", "70", *env]) == 5
    assert main(["run", str(example), "--allow-shrink", *env]) == 0
    assert len(_pushes(emulator)) == 2
    assert main(["run", str(example), *env]) == 0  # the new counts are the reference now


@needs_pipeline
def test_failed_push_is_spooled_and_resent(emulator, env, capsys):
    emulator.fail_next(500, 3, path_contains=":push")
    assert main(["run", str(EXAMPLE / "mapping.yaml"), "--retries", "2", *env]) == 5
    err = capsys.readouterr().err
    assert "push failed [HTTP 500]" in err and "--resend" in err
    [spooled] = StateStore(Path(env[1])).spooled()
    assert (spooled.provider, spooled.data_source) == (PROVIDER, SOURCE)
    assert not emulator.pushes
    assert main(["push", "--resend", *env]) == 0
    compiled = compile_mapping(EXAMPLE / "mapping.yaml").payload_json()
    assert [p.json_text for p in emulator.pushes] == [compiled]
    assert StateStore(Path(env[1])).spooled() == []
    assert main(["push", "--resend", *env]) == 2  # nothing left to resend


def test_push_command_sends_a_payload_file(emulator, env, tmp_path):
    path = tmp_path / "idp.json"
    path.write_text(json.dumps(sample("identity_provider"), indent=2))
    assert main(["push", str(path), "--provider", "IdP", "--data-source", "corp",
                 "--template", "identity_provider", *env]) == 0
    assert emulator.pushes[0].json_text == compact(sample("identity_provider"))
    assert main(["push", str(path), "--provider", "IdP", *env]) == 2  # no data source/template


def test_push_command_checks_the_payload_first(emulator, env, tmp_path, capsys):
    payload = sample("hris")
    payload["employees"][0]["surprise"] = True
    path = tmp_path / "hr.json"
    path.write_text(json.dumps(payload))
    args = [str(path), "--provider", "HR", "--data-source", "hr", "--template", "hris", *env]
    assert main(["push", *args]) == 4
    assert "employees[0].surprise" in capsys.readouterr().err
    assert emulator.requests == []
    assert main(["push", *args, "--no-check"]) == 5  # and Veza refuses it too
    assert "employees[0].surprise" in capsys.readouterr().err


def test_lock_held_by_another_run_prevents_the_push(emulator, env, tmp_path):
    path = tmp_path / "hr.json"
    path.write_text(json.dumps(sample("hris")))
    with StateStore(Path(env[1])).lock("HR", "hr"):
        assert main(["push", str(path), "--provider", "HR", "--data-source", "hr",
                     "--template", "hris", *env]) == 5
    assert emulator.requests == []


def test_401_exits_5_with_a_clear_message(emulator, env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VEZA_API_KEY", "not-the-key-42")
    path = tmp_path / "hr.json"
    path.write_text(json.dumps(sample("hris")))
    assert main(["push", str(path), "--provider", "HR", "--data-source", "hr",
                 "--template", "hris", *env]) == 5
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "VEZA_API_KEY" in err and "not-the-key-42" not in err


def test_api_key_is_never_taken_from_the_command_line(env, capsys):
    assert main(["push", "x.json", "--api-key", "sekrit-value-9", *env]) == 2
    assert main(["push", "x.json", "--api-key=sekrit-value-9", *env]) == 2
    err = capsys.readouterr().err
    assert "not accepted on the command line" in err and "sekrit-value-9" not in err


def test_api_key_file(emulator, env, tmp_path, monkeypatch):
    monkeypatch.delenv("VEZA_API_KEY")
    (tmp_path / "key").write_text(KEY + "\n")
    path = tmp_path / "hr.json"
    path.write_text(json.dumps(sample("hris")))
    assert main(["push", str(path), "--provider", "HR", "--data-source", "hr", "--template",
                 "hris", "--api-key-file", str(tmp_path / "key"), *env]) == 0


def test_missing_url_is_a_usage_error(env, monkeypatch, capsys):
    monkeypatch.delenv("VEZA_URL")
    assert main(["push", "--resend", *env]) == 2
    assert "VEZA_URL" in capsys.readouterr().err


def test_cli_never_prints_the_key(emulator, env, tmp_path, capfd):
    path = tmp_path / "hr.json"
    path.write_text(json.dumps(sample("hris")))
    assert main(["push", str(path), "--provider", "HR", "--data-source", "hr",
                 "--template", "hris", "-v", *env]) == 0
    captured = capfd.readouterr()
    assert KEY not in captured.out + captured.err
    assert os.environ["VEZA_API_KEY"] == KEY


def test_a_spooled_payload_file_can_be_pushed_by_path(emulator, env, tmp_path):
    path = tmp_path / "hr.json"
    path.write_text(json.dumps(sample("hris")))
    args = [str(path), "--provider", "HR", "--data-source", "hr", "--template", "hris", *env]
    emulator.fail_next(400, 1, path_contains=":push")
    assert main(["push", *args]) == 5
    [spooled] = StateStore(Path(env[1])).spooled()
    assert main(["push", str(spooled.payload_path), *env]) == 0  # targets from the spool record
    assert emulator.pushes[0].json_text == compact(sample("hris"))
