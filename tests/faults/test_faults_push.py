"""Push faults: the guards fail closed, the push outcome is told truthfully, the lock expires, the
emulator keeps its files inside its data directory. Real emulator over HTTP throughout."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import ROOT, CliResult, run_cli, write_case
from veza_helpers import KEY

import oaamap.pipeline
from oaamap.veza.client import APPLIED, NOT_APPLIED, UNKNOWN, DataSourceRef, VezaClient, judge_push
from oaamap.veza.emulator import start_emulator
from oaamap.veza.state import StateKey, StateStore, process_start

P, D = "Fault IdP", "corp"
BASE = "/api/v1/providers/custom"
APP_EXAMPLE = ROOT / "examples" / "app-csv"


# -- helpers ----------------------------------------------------------------------------------


def idp(users: list[str], groups: list[str] = ()) -> dict[str, Any]:
    """An identity-provider payload with these user and group identities."""
    empty = {k: {} for k in ("domain_properties", "user_properties", "group_properties",
                             "app_properties", "app_assignment_properties")}
    return {
        "custom_property_definition": empty, "name": "Corp", "idp_type": "custom_idp",
        "domains": [{"name": "example.com", "tags": [], "custom_properties": {}}],
        "users": [{"name": u.split("@")[0], "identity": u} for u in users],
        "groups": [{"name": g, "identity": g} for g in groups], "apps": [],
    }


def users(n: int, start: int = 0) -> list[str]:
    return [f"user-{i:03d}@example.com" for i in range(start, start + n)]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def env(emulator, monkeypatch, state_dir) -> list[str]:
    """VEZA_URL/VEZA_API_KEY of the emulator; the state-dir arguments."""
    monkeypatch.setenv("VEZA_URL", emulator.url)
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    return ["--state-dir", str(state_dir)]


@pytest.fixture
def push_file(tmp_path: Path, env: list[str]) -> Callable[..., CliResult]:
    """`oaamap push` of an IdP payload to (P, D), with extra arguments."""
    def push(payload: dict[str, Any], *extra: str) -> CliResult:
        path = tmp_path / f"payload-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(payload))
        return run_cli("push", str(path), "--provider", P, "--data-source", D,
                       "--template", "identity_provider", *env, *extra)
    return push


def stored(emulator) -> list[Any]:
    return [p.payload() for p in emulator.payloads(P, D)]


def key_of(emulator) -> StateKey:
    return StateKey.of(emulator.url, P, D)


# -- 1. the state is per Veza URL -------------------------------------------------------------


def test_state_is_kept_per_veza_url(emulator, push_file, tmp_path, monkeypatch):
    assert push_file(idp(users(10))).code == 0
    with start_emulator(api_key=KEY) as other:  # another Veza: it has no state of its own
        monkeypatch.setenv("VEZA_URL", other.url)
        assert push_file(idp(users(2))).code == 0
        assert len(other.payloads(P, D)) == 1
    monkeypatch.setenv("VEZA_URL", emulator.url)
    result = push_file(idp(users(2)))
    assert result.code == 5
    assert "users: 10 -> 2 (-80%)" in result.err and "--allow-shrink" in result.err
    assert len(stored(emulator)) == 1


def test_state_url_is_normalised(emulator, push_file):
    port = emulator.port
    assert push_file(idp(users(10)), "--veza-url", f"HTTP://LocalHost:{port}/").code == 0
    result = push_file(idp(users(2)), "--veza-url", f"http://localhost:{port}")
    assert result.code == 5 and "users: 10 -> 2" in result.err
    assert len(stored(emulator)) == 1


def test_a_version_1_state_file_still_guards(emulator, push_file, state_dir):
    legacy = StateStore(state_dir).legacy_state_path(P, D)
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"provider": P, "data_source": D, "counts": {"users": 10}}))
    result = push_file(idp(users(2)))
    assert result.code == 5 and "users: 10 -> 2" in result.err
    assert stored(emulator) == []


def test_state_file_shape_keeps_the_pushed_payload(emulator, push_file, state_dir):
    assert push_file(idp(users(3), ["g1"])).code == 0
    path = StateStore(state_dir).state_path(key_of(emulator))
    state = json.loads(path.read_text())
    assert (state["version"], state["url"], state["provider"], state["data_source"],
            state["template"]) == (2, emulator.url, P, D, "identity_provider")
    last = state["last_push"]
    assert last["counts"] == {"users": 3, "groups": 1, "apps": 0} and last["pushed_at"]
    raw = gzip.decompress((state_dir / last["payload_file"]).read_bytes())
    assert raw.decode() == emulator.payloads(P, D)[0].json_text
    assert last["sha256"] == hashlib.sha256(raw).hexdigest() and last["bytes"] == len(raw)
    assert state["unconfirmed"] is None
    assert not list(state_dir.glob(".*.tmp")), "a temporary file was left behind"


# -- 2. unreadable or corrupt state refuses the push ------------------------------------------


def _state_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _rewrite(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = _state_json(path)
    change(data)
    path.write_text(json.dumps(data))


def _payload_file(path: Path) -> Path:
    return path.with_name(_state_json(path)["last_push"]["payload_file"])


def _symlink_loop(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.name)  # reading it fails with ELOOP


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "bad-json": lambda p: p.write_text("{not json"),
    "truncated-json": lambda p: p.write_text(p.read_text()[:40]),
    "not-an-object": lambda p: p.write_text("[]"),
    "wrong-version": lambda p: _rewrite(p, lambda d: d.update(version=99)),
    "counts-not-numbers": lambda p: _rewrite(
        p, lambda d: d["last_push"].update(counts={"users": "many"})),
    "other-url-inside": lambda p: _rewrite(p, lambda d: d.update(url="https://x.example")),
    "payload-missing": lambda p: _payload_file(p).unlink(),
    "payload-not-gzip": lambda p: _payload_file(p).write_bytes(b"plain text"),
    "payload-sha-mismatch": lambda p: _payload_file(p).write_bytes(gzip.compress(b"{}")),
    "unreadable": _symlink_loop,
    "not-utf8": lambda p: p.write_bytes(b"\xff\xfe{}"),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_corrupt_state_refuses_the_push(emulator, push_file, state_dir, corrupt):
    assert push_file(idp(users(10))).code == 0
    path = StateStore(state_dir).state_path(key_of(emulator))
    corrupt(path)
    result = push_file(idp(users(10)))
    assert result.code == 5, result.err
    assert f"`{path}`" in result.err and "--ignore-state" in result.err
    assert "nothing was pushed" in result.err
    assert len(stored(emulator)) == 1
    # --allow-shrink does not cover it ...
    assert push_file(idp(users(10)), "--allow-shrink").code == 5
    # ... --ignore-state does, and the state is replaced by a sound one
    ignored = push_file(idp(users(10)), "--ignore-state")
    assert ignored.code == 0, ignored.err
    assert len(stored(emulator)) == 2
    [last] = StateStore(state_dir).previous(key_of(emulator))
    assert last.confirmed and last.counts["users"] == 10


def test_corrupt_version_1_state_refuses_too(emulator, push_file, state_dir):
    legacy = StateStore(state_dir).legacy_state_path(P, D)
    legacy.parent.mkdir(parents=True)
    legacy.write_text("{oops")
    result = push_file(idp(users(3)))
    assert result.code == 5 and str(legacy) in result.err and "--ignore-state" in result.err
    assert stored(emulator) == []


# -- 3. replaced ids are refused even with equal counts --------------------------------------


REPLACEMENTS = {
    # name: (second payload's users, code, expected text)
    "half-replaced-equal-count": (users(5) + users(5, start=100), 5,
                                  "users: 5 of 10 ids replaced by new ones (50%)"),
    "all-replaced": (users(10, start=100), 5, "users: 10 of 10 ids replaced"),
    "case-only-change": ([u.upper() for u in users(10)], 0, None),
    "exactly-20-percent": (users(8) + users(2, start=100), 0, None),
    "growth-is-not-replacement": (users(10) + users(10, start=100), 0, None),
}


@pytest.mark.parametrize("second, code, text", REPLACEMENTS.values(), ids=REPLACEMENTS.keys())
def test_replaced_ids(emulator, push_file, second, code, text):
    assert push_file(idp(users(10))).code == 0
    result = push_file(idp(second))
    assert result.code == code, result.err
    if code:
        assert text in result.err and "--allow-replace" in result.err
        assert "user***" in result.err  # examples, masked
        assert "user-000@example.com" not in result.err
        assert len(stored(emulator)) == 1
    else:
        assert len(stored(emulator)) == 2


def test_allow_replace_pushes_and_becomes_the_reference(emulator, push_file):
    assert push_file(idp(users(10))).code == 0
    allowed = push_file(idp(users(10, start=100)), "--allow-replace")
    assert allowed.code == 0 and "allowed by --allow-replace" in allowed.err
    assert push_file(idp(users(10, start=100))).code == 0
    assert len(stored(emulator)) == 3


def test_replaced_group_ids(emulator, push_file):
    assert push_file(idp(users(2), ["eng", "ops", "sales", "hr", "it"])).code == 0
    result = push_file(idp(users(2), ["eng", "ops", "legal", "pr", "qa"]))
    assert result.code == 5 and "groups: 3 of 5 ids replaced" in result.err
    assert len(stored(emulator)) == 1


def test_replaced_sub_resource_ids(emulator, env, tmp_path):
    app = tmp_path / "app"
    shutil.copytree(APP_EXAMPLE, app)
    assert run_cli("run", str(app / "mapping.yaml"), *env).code == 0
    for name in ("branches.csv", "grants.csv"):
        path = app / "data" / name
        path.write_text(path.read_text().replace("b-main", "b-trunk")
                        .replace("b-web-main", "b-web-trunk"))
    result = run_cli("run", str(app / "mapping.yaml"), *env)
    assert result.code == 5, result.err
    assert "resources: 2 of 5 ids replaced" in result.err
    assert len(emulator.pushes) == 1


# -- 4. a first push of an empty kind the mapping has rules for ------------------------------


IDP_MAPPING = """\
    oaamap: 1
    template: identity_provider
    provider: Fault IdP
    data_source: corp
    sources:
      users: {csv: data/users.csv}
      groups: {csv: data/groups.csv}
    idp:
      name: Corp
      type: custom_idp
      domain: example.com
    users:
      - from: users
        identity: id
        name: name
    groups:
      - from: groups
        identity: id
        name: name
"""


@pytest.fixture
def empty_groups_case(tmp_path: Path) -> Path:
    return write_case(tmp_path / "case", IDP_MAPPING, {
        "data/users.csv": "id,name\nu1,Ann\nu2,Bob\n", "data/groups.csv": "id,name\n"})


def test_first_push_with_an_empty_ruled_kind_is_refused(emulator, env, empty_groups_case):
    result = run_cli("run", str(empty_groups_case), *env)
    assert result.code == 5, result.err
    assert "no entities of `groups`" in result.err and "--allow-empty" in result.err
    assert not [r for r in emulator.requests if r.path.endswith(":push")]
    allowed = run_cli("run", str(empty_groups_case), "--allow-empty", *env)
    assert allowed.code == 0 and len(stored(emulator)) == 1


def test_dry_run_tells_the_empty_kind(emulator, env, empty_groups_case, tmp_path):
    result = run_cli("run", str(empty_groups_case), "--dry-run", "--save-json",
                     str(tmp_path / "out.json"), *env)
    assert result.code == 0
    assert "first push with no groups" in result.err and "--allow-empty" in result.err
    assert emulator.requests == []


def test_empty_kind_after_a_first_push_is_the_shrink_guards_business(
        emulator, env, empty_groups_case):
    groups = empty_groups_case.parent / "data" / "groups.csv"
    groups.write_text("id,name\ng1,Eng\n")
    assert run_cli("run", str(empty_groups_case), *env).code == 0
    groups.write_text("id,name\n")
    result = run_cli("run", str(empty_groups_case), *env)
    assert result.code == 5 and "groups: 1 -> 0" in result.err
    assert len(stored(emulator)) == 1


def test_push_file_with_no_entities_at_all_is_refused_first(emulator, push_file):
    result = push_file(idp([]))
    assert result.code == 5 and "the payload has no entities at all" in result.err
    assert "--allow-empty" in result.err and stored(emulator) == []
    assert push_file(idp([]), "--allow-empty").code == 0


# -- 5. the push outcome is told truthfully ---------------------------------------------------


def _previous(emulator, state_dir) -> list[Any]:
    return StateStore(state_dir).previous(key_of(emulator))


def _spooled(state_dir) -> list[Any]:
    return StateStore(state_dir).spooled()


def test_lost_push_answer_after_veza_applied_it(emulator, push_file, state_dir):
    emulator.lose_next(path_contains=":push", applied=True)
    result = push_file(idp(users(3)), "--retries", "0")
    assert result.code == 0, result.err
    assert "was lost, but Veza's data source shows the push applied" in result.err
    assert len(stored(emulator)) == 1
    [last] = _previous(emulator, state_dir)
    assert last.confirmed and last.info["confirmed_by"] == "data source state"
    assert _spooled(state_dir) == []


def test_lost_push_before_veza_processed_it(emulator, push_file, state_dir):
    emulator.lose_next(path_contains=":push", applied=False)
    result = push_file(idp(users(3)), "--retries", "0")
    assert result.code == 5
    assert "the push was not applied" in result.err and "never received a push" in result.err
    assert stored(emulator) == [] and _previous(emulator, state_dir) == []
    assert len(_spooled(state_dir)) == 1


def test_lost_answer_on_a_second_push_compares_updated_at(emulator, push_file, state_dir):
    assert push_file(idp(users(3))).code == 0
    emulator.lose_next(path_contains=":push", applied=False)
    result = push_file(idp(users(4)), "--retries", "0")
    assert result.code == 5 and "shows no push since the one of" in result.err
    [last] = _previous(emulator, state_dir)
    assert last.counts["users"] == 3  # the state still says what Veza has


def test_lost_answer_then_retry_is_plain_success(emulator, push_file, state_dir):
    emulator.lose_next(path_contains=":push", applied=True)
    result = push_file(idp(users(3)))
    assert result.code == 0 and "was lost" not in result.err
    assert len(stored(emulator)) == 2  # a full push is idempotent: sent again


MULTIPART = ("--multipart-threshold", "100", "--part-size", "300")


def test_lost_complete_answer_after_veza_applied_it(emulator, push_file, state_dir):
    emulator.lose_next(path_contains=":parts", operation="complete", applied=True)
    result = push_file(idp(users(5)), *MULTIPART)
    assert result.code == 0, result.err
    assert "shows the push applied" in result.err
    [push] = emulator.payloads(P, D)
    assert push.multipart
    completes = [r for r in emulator.requests if (r.body or {}).get("operation") == "complete"]
    assert len(completes) == 1, "a complete whose answer was lost must not be sent again"
    [last] = _previous(emulator, state_dir)
    assert last.counts["users"] == 5


def test_lost_complete_before_veza_processed_it(emulator, push_file, state_dir):
    emulator.lose_next(path_contains=":parts", operation="complete", applied=False)
    result = push_file(idp(users(5)), *MULTIPART)
    assert result.code == 5 and "the push was not applied" in result.err
    assert stored(emulator) == [] and _previous(emulator, state_dir) == []
    assert len(_spooled(state_dir)) == 1


@pytest.mark.parametrize("interrupt", [False, True], ids=["lost-upload-answer", "ctrl-c"])
def test_stopped_before_complete_is_not_applied(emulator, push_file, state_dir, monkeypatch,
                                                interrupt):
    if interrupt:
        _interrupt(monkeypatch, after_sending=True, path_contains=":parts")
    else:
        emulator.lose_next(path_contains=":parts", operation="upload", applied=True)
    result = push_file(idp(users(5)), *MULTIPART, "--retries", "0")
    assert result.code == (130 if interrupt else 5), result.err
    assert "the push was not applied (it stopped before the multipart `complete`" in result.err
    assert not [r for r in emulator.requests if (r.body or {}).get("operation") == "complete"]
    assert stored(emulator) == [] and _previous(emulator, state_dir) == []


def test_lost_answer_and_unreadable_state_is_unknown(emulator, push_file, state_dir):
    assert push_file(idp(users(10))).code == 0
    emulator.lose_next(path_contains=":push", applied=True)
    emulator.lose_next(3, path_contains="/datasources/", applied=True)  # the check's GETs
    result = push_file(idp(users(10, start=0)[:9] + users(1, start=500)), "--retries", "0")
    assert result.code == 5, result.err
    assert "unknown whether the push was applied" in result.err and "check Veza" in result.err
    confirmed, unconfirmed = _previous(emulator, state_dir)
    assert confirmed.confirmed and not unconfirmed.confirmed
    assert unconfirmed.counts["users"] == 10 and len(_spooled(state_dir)) == 1
    # Veza may hold either payload: the next one is compared with both
    third = push_file(idp(users(10, start=0)[:9] + users(1, start=600)))
    assert third.code == 0, third.err
    shrunk = push_file(idp(users(9)[:7]))
    assert shrunk.code == 5 and "users: 10 -> 7" in shrunk.err


def _interrupt(monkeypatch, *, after_sending: bool, path_contains: str = ":push") -> None:
    """Ctrl-C during the first request whose URL contains `path_contains` (before it is sent,
    or after Veza answered it)."""
    original = VezaClient._send

    def send(self, method, url, data):
        if path_contains in url:
            if after_sending:
                original(self, method, url, data)
            raise KeyboardInterrupt
        return original(self, method, url, data)

    monkeypatch.setattr(VezaClient, "_send", send)


def test_ctrl_c_after_veza_applied_the_push(emulator, push_file, state_dir, monkeypatch):
    _interrupt(monkeypatch, after_sending=True)
    result = push_file(idp(users(3)))
    assert result.code == 130
    assert "interrupted during the push" in result.err and "the push was applied" in result.err
    assert "nothing was pushed" not in result.err
    assert len(stored(emulator)) == 1
    [last] = _previous(emulator, state_dir)
    assert last.confirmed and _spooled(state_dir) == []


def test_ctrl_c_before_the_payload_left(emulator, push_file, state_dir, monkeypatch):
    _interrupt(monkeypatch, after_sending=False, path_contains=f"{BASE}?")  # provider lookup
    result = push_file(idp(users(3)))
    assert result.code == 130
    assert "the push was not applied (interrupted before the payload was sent)" in result.err
    assert stored(emulator) == [] and _previous(emulator, state_dir) == []


def test_ctrl_c_while_the_push_was_on_its_way(emulator, push_file, state_dir, monkeypatch):
    assert push_file(idp(users(3))).code == 0
    _interrupt(monkeypatch, after_sending=False)
    result = push_file(idp(users(4)))
    assert result.code == 130 and "the push was not applied" in result.err
    [last] = _previous(emulator, state_dir)
    assert last.counts["users"] == 3 and len(_spooled(state_dir)) == 1


def test_ctrl_c_outside_a_push_says_so(emulator, env, empty_groups_case, monkeypatch):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(oaamap.pipeline, "compile_mapping", interrupted)
    result = run_cli("run", str(empty_groups_case), *env)
    assert result.code == 130
    assert "no push was under way" in result.err and "nothing was pushed" not in result.err
    assert emulator.requests == []


def _time_out(monkeypatch, *, after_sending: bool) -> None:
    """The answer to `:push` times out (after Veza processed it, or before it did)."""
    original = VezaClient._send

    def send(self, method, url, data):
        if url.endswith(":push"):
            if after_sending:
                original(self, method, url, data)
            return None, requests.ReadTimeout("read timed out (simulated)")
        return original(self, method, url, data)

    monkeypatch.setattr(VezaClient, "_send", send)


@pytest.mark.parametrize("after_sending, code, text", [
    (True, 0, "shows the push applied"),
    (False, 5, "the push was not applied"),
], ids=["timeout-after-veza-applied", "timeout-before-veza-processed"])
def test_push_answer_timed_out(emulator, push_file, state_dir, monkeypatch, after_sending,
                               code, text):
    _time_out(monkeypatch, after_sending=after_sending)
    result = push_file(idp(users(3)), "--retries", "1")
    assert result.code == code, result.err
    assert text in result.err
    assert len(stored(emulator)) == (2 if after_sending else 0)  # the retry was processed too
    assert bool(_previous(emulator, state_dir)) == after_sending


BEFORE = DataSourceRef("ds1", "corp", status="SUCCESS", updated_at="2026-01-01T00:00:00Z")
NEVER = DataSourceRef("ds1", "corp", created=True, status="PENDING")
VERDICTS = {
    "updated-success": (BEFORE, "SUCCESS", "2026-01-02T00:00:00Z", APPLIED),
    "unchanged": (BEFORE, "SUCCESS", "2026-01-01T00:00:00Z", NOT_APPLIED),
    "updated-but-failed": (BEFORE, "PARSE_FAILED", "2026-01-02T00:00:00Z", NOT_APPLIED),
    "updated-still-processing": (BEFORE, "PROCESSING", "2026-01-02T00:00:00Z", UNKNOWN),
    "never-pushed-still-pending": (NEVER, "PENDING", None, NOT_APPLIED),
    "never-pushed-now-success": (NEVER, "SUCCESS", None, APPLIED),
    "no-updated-at-served": (BEFORE, "SUCCESS", None, UNKNOWN),
}


@pytest.mark.parametrize("before, status, updated_at, verdict", VERDICTS.values(),
                         ids=VERDICTS.keys())
def test_verdict_from_the_data_source_state(before, status, updated_at, verdict):
    check = judge_push(before, status, updated_at)
    assert check.verdict == verdict
    assert "corp" in check.evidence
    assert ("check Veza" in check.sentence()) == (verdict == UNKNOWN)


def test_dry_run_reports_corrupt_state_without_pushing(emulator, push_file, env, state_dir,
                                                       empty_groups_case):
    groups = empty_groups_case.parent / "data" / "groups.csv"
    groups.write_text("id,name\ng1,Eng\n")
    assert run_cli("run", str(empty_groups_case), *env).code == 0
    path = StateStore(state_dir).state_path(key_of(emulator))
    path.write_text("garbage")
    result = run_cli("run", str(empty_groups_case), "--dry-run", "--save-json",
                     str(state_dir.parent / "out.json"), *env)
    assert result.code == 0
    assert "a real run would refuse to push" in result.err and str(path) in result.err
    assert "--ignore-state" in result.err and len(stored(emulator)) == 1


def test_unusable_state_directory_is_a_clear_error(emulator, push_file, tmp_path, state_dir):
    state_dir.write_text("a file, not a directory")
    result = push_file(idp(users(2)))
    assert result.code == 5
    assert f"cannot use the state directory `{state_dir}`" in result.err
    assert "unexpected" not in result.err and stored(emulator) == []


# -- 6. the lock expires, never deadlocks -----------------------------------------------------


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def _lock(pid: int, host: str, since: float, start: str | None) -> str:
    return json.dumps({"pid": pid, "host": host, "since": since, "start": start})


HOST = socket.gethostname()
LOCKS: dict[str, tuple[Callable[[], str], int, str]] = {
    "dead-pid-same-host": (lambda: _lock(_dead_pid(), HOST, time.time(), None), 0, ""),
    "reused-pid-other-start": (lambda: _lock(os.getpid(), HOST, time.time(), "1"), 0, ""),
    "other-host-older-than-max-age": (
        lambda: _lock(4242, "far-away", time.time() - 13 * 3600, "7"), 0, ""),
    "other-host-recent": (lambda: _lock(4242, "far-away", time.time() - 60, "7"), 5,
                          "pid 4242 on far-away"),
    "live-process": (lambda: _lock(os.getpid(), HOST, time.time(),
                                   process_start(os.getpid())), 5, f"pid {os.getpid()} on"),
    "garbage-fresh": (lambda: "{half-written", 5, "(unknown)"),
}


@pytest.mark.parametrize("content, code, text", LOCKS.values(), ids=LOCKS.keys())
def test_lock_expiry(emulator, push_file, state_dir, content, code, text):
    lock = StateStore(state_dir)._path(P, D, ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(content())
    result = push_file(idp(users(2)))
    assert result.code == code, result.err
    if code:
        assert text in result.err and "nothing was pushed" in result.err
        assert stored(emulator) == [] and lock.exists()
    else:
        assert len(stored(emulator)) == 1 and not lock.exists()


def test_old_garbage_lock_is_taken_over(emulator, push_file, state_dir):
    lock = StateStore(state_dir)._path(P, D, ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    os.utime(lock, (time.time() - 120, time.time() - 120))
    assert push_file(idp(users(2))).code == 0 and not lock.exists()


def test_lock_records_host_pid_and_start(state_dir):
    with StateStore(state_dir).lock(P, D) as path:
        info = json.loads(path.read_text())
    assert (info["pid"], info["host"]) == (os.getpid(), HOST)
    assert info["start"] == process_start(os.getpid()) and info["since"] > 0


# -- 7. the emulator never writes outside its data directory ----------------------------------


def _api(emulator, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, emulator.url + path, json=body, timeout=10,
                            headers={"authorization": f"Bearer {KEY}"})


def _files_outside(tmp_path: Path, data_dir: Path) -> set[Path]:
    return {p for p in tmp_path.rglob("*") if data_dir not in p.parents and p != data_dir}


REFUSED_NAMES = {
    "dot-dot-slash": "../../x", "slash": "a/b", "dot-dot": "..", "dot": ".",
    "hidden": ".hidden", "backslash": "C:\\x", "nul": "a\x00b", "too-long": "n" * 600,
    "newline": "a\nb", "trailing-newline": "ab\n",
}


@pytest.mark.parametrize("field", ["provider", "data source"])
@pytest.mark.parametrize("name", REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
def test_emulator_refuses_path_tricks(emulator, tmp_path, name, field):
    before = _files_outside(tmp_path, emulator.store.data_dir)
    if field == "provider":
        answer = _api(emulator, "POST", BASE, {"name": name, "custom_template": "hris"})
    else:
        pid = _api(emulator, "POST", BASE, {"name": "ok", "custom_template": "hris"}
                   ).json()["value"]["id"]
        answer = _api(emulator, "POST", f"{BASE}/{pid}/datasources", {"name": name, "id": pid})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "InvalidArgument" and body["request_id"]
    violations = [v for d in body["details"] for v in d.get("field_violations", [])]
    assert [v["field"] for v in violations] == ["name"]
    assert _files_outside(tmp_path, emulator.store.data_dir) == before


ODD_BUT_VALID = {"percent-encoded-dots": "%2e%2e", "long": "y" * 300, "dots-inside": "a..b"}


@pytest.mark.parametrize("name", ODD_BUT_VALID.values(), ids=ODD_BUT_VALID.keys())
def test_emulator_stores_odd_names_inside_its_data_dir(emulator, tmp_path, name):
    from veza_helpers import compact, sample

    data_dir = emulator.store.data_dir
    before = _files_outside(tmp_path, data_dir)
    pid = _api(emulator, "POST", BASE, {"name": name, "custom_template": "hris"}
               ).json()["value"]["id"]
    dsid = _api(emulator, "POST", f"{BASE}/{pid}/datasources", {"name": name, "id": pid}
                ).json()["value"]["id"]
    answer = _api(emulator, "POST", f"{BASE}/{pid}/datasources/{dsid}:push",
                  {"id": pid, "data_source_id": dsid, "json_data": compact(sample("hris"))})
    assert answer.status_code == 200, answer.text
    [push] = emulator.payloads(name, name)
    assert push.path is not None
    where = push.path.resolve()
    assert where.is_relative_to((data_dir / "payloads").resolve())
    assert all(len(part) <= 100 for part in where.relative_to(data_dir.resolve()).parts)
    assert _files_outside(tmp_path, data_dir) == before


def test_data_source_state_tells_the_last_update(emulator):
    from veza_helpers import compact, sample

    pid = _api(emulator, "POST", BASE, {"name": "HR", "custom_template": "hris"}
               ).json()["value"]["id"]
    dsid = _api(emulator, "POST", f"{BASE}/{pid}/datasources", {"name": "hr", "id": pid}
                ).json()["value"]["id"]
    fresh = _api(emulator, "GET", f"{BASE}/{pid}/datasources/{dsid}").json()["value"]
    assert (fresh["status"], fresh["updated_at"]) == ("PENDING", None)
    stamps = []
    for _ in range(2):
        _api(emulator, "POST", f"{BASE}/{pid}/datasources/{dsid}:push",
             {"id": pid, "data_source_id": dsid, "json_data": compact(sample("hris"))})
        now = _api(emulator, "GET", f"{BASE}/{pid}/datasources/{dsid}").json()["value"]
        stamps.append(now["updated_at"])
        assert now["status"] == "SUCCESS"
    assert stamps[0] and stamps[1] and stamps[0] != stamps[1]


# -- a kept payload goes back where it failed -------------------------------------------------


def test_resend_refuses_another_veza_url(emulator, push_file, state_dir, monkeypatch):
    emulator.fail_next(500, 5, path_contains=":push")
    assert push_file(idp(users(3)), "--retries", "0").code == 5
    [spooled] = StateStore(state_dir).spooled()
    assert spooled.veza_url == key_of(emulator).url
    with start_emulator(api_key=KEY) as other:  # e.g. the real tenant after an emulator trial
        monkeypatch.setenv("VEZA_URL", other.url)
        result = run_cli("push", "--resend", "--state-dir", str(state_dir))
        assert result.code == 2
        assert emulator.url.split("//")[1] in result.err and "--allow-other-url" in result.err
        assert other.payloads(P, D) == []
        # The file pushed by path is the same kept payload: refused as well.
        by_path = run_cli("push", str(spooled.payload_path), "--state-dir", str(state_dir))
        assert by_path.code == 2 and other.payloads(P, D) == []
        assert run_cli("push", "--resend", "--allow-other-url",
                       "--state-dir", str(state_dir)).code == 0
        assert len(other.payloads(P, D)) == 1
    monkeypatch.setenv("VEZA_URL", emulator.url)
    assert StateStore(state_dir).spooled() == []


def test_resend_keeps_the_empty_kind_guard_of_the_run(emulator, tmp_path, state_dir, monkeypatch):
    monkeypatch.setenv("VEZA_URL", emulator.url)
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    mapping = write_case(tmp_path / "case", """\
        oaamap: 1
        template: identity_provider
        provider: P
        data_source: D
        sources:
          people: {csv: people.csv}
        idp: {name: corp, type: ldap, domain: corp.test}
        users:
          - {from: people, name: name, identity: name}
        groups:
          - {from: people, where: team, name: team, identity: team}
        """, {"people.csv": "name,team\nann,\nbob,\n"})
    emulator.fail_next(500, 1, path_contains=":push")
    args = ["--state-dir", str(state_dir), "--retries", "0"]
    result = run_cli("run", str(mapping), "--allow-empty", *args)
    assert result.code == 5
    [spooled] = StateStore(state_dir).spooled()
    assert spooled.empty_kinds == ("groups",)
    resent = run_cli("push", "--resend", *args)
    assert resent.code == 5 and "groups" in resent.err and "--allow-empty" in resent.err
    assert emulator.payloads("P", "D") == []
    assert run_cli("push", "--resend", "--allow-empty", *args).code == 0
