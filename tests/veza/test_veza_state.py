"""Push safety: counts, the shrink guard, the lock and the spool."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from veza_helpers import sample

from oaamap.veza.state import (
    LockedError,
    Shrink,
    ShrinkError,
    SpooledPush,
    StateKey,
    StateStore,
    default_state_dir,
    find_shrinks,
    payload_counts,
)


def test_payload_counts_per_template():
    assert payload_counts("application", sample("application")) == {
        "local_users": 2, "local_groups": 2, "local_roles": 2, "local_access_creds": 1,
        "local_agents": 0, "local_models": 0, "resources": 4, "permissions": 3,
        "identity_to_permissions": 5}
    assert payload_counts("identity_provider", sample("identity_provider")) == {
        "users": 2, "groups": 2, "apps": 2}
    assert payload_counts("hris", sample("hris")) == {"employees": 2, "groups": 2}


@pytest.mark.parametrize("before, after, expected", [
    ({"users": 100}, {"users": 80}, []),
    ({"users": 100}, {"users": 79}, [Shrink("users", 100, 79)]),
    ({"users": 10, "groups": 5}, {"users": 10}, [Shrink("groups", 5, 0)]),
    ({"users": 0}, {"users": 0}, []),
    ({"users": 3}, {"users": 300}, []),
], ids=["exactly-20-percent", "over-20-percent", "kind-gone", "empty-before", "growth"])
def test_find_shrinks(before, after, expected):
    assert find_shrinks(before, after, 0.2) == expected


def test_shrink_error_text():
    text = str(ShrinkError("ds", [Shrink("users", 100, 10)], 0.2))
    assert "users: 100 -> 10 (-90%)" in text and "--allow-shrink" in text


def test_state_file_round_trip_keyed_by_url(tmp_path):
    store = StateStore(tmp_path)
    key = StateKey.of("https://Veza.example:443/", "P", "D")
    assert store.previous(key) == []  # first push
    path = store.record_push(key, "hris", '{"employees":[],"groups":[]}', {"employees": 10},
                             provider_id="x")
    state = json.loads(path.read_text())
    assert (state["url"], state["last_push"]["counts"]) == ("https://veza.example",
                                                           {"employees": 10})
    [last] = store.previous(StateKey.of("https://veza.example", "P", "D"))
    assert last.counts == {"employees": 10} and last.payload == {"employees": [], "groups": []}
    assert find_shrinks(last.counts, {"employees": 5}, 0.2) == [Shrink("employees", 10, 5)]
    assert store.previous(StateKey.of("http://127.0.0.1:8000", "P", "D")) == []
    assert store.previous(StateKey.of("https://veza.example", "P", "other")) == []


def test_default_state_dir():
    assert str(default_state_dir({"XDG_STATE_HOME": "/s"})) == "/s/oaamap"
    assert default_state_dir({}).parts[-3:] == (".local", "state", "oaamap")


def test_lock_is_exclusive_and_released(tmp_path):
    store = StateStore(tmp_path)
    with store.lock("P", "D") as path:
        assert path.exists()
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"), store.lock("P", "D"):
            pass
        with store.lock("P", "other"):
            pass
    assert not path.exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    store = StateStore(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with store.lock("P", "D") as path:
        pass
    import socket

    path.write_text(json.dumps({"pid": int(dead), "host": socket.gethostname(), "since": 0}))
    with store.lock("P", "D"):
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_spool_and_unspool(tmp_path):
    store = StateStore(tmp_path)
    spooled = SpooledPush(tmp_path, "P", "D", "hris", "2024-01-01T00:00:00Z", "HTTP 500")
    path = store.spool(spooled, '{"a":1}')
    assert path.read_text() == '{"a":1}'
    [found] = store.spooled()
    assert (found.provider, found.data_source, found.template, found.payload_path) == (
        "P", "D", "hris", path)
    store.unspool("P", "D")
    assert store.spooled() == [] and not path.exists()
