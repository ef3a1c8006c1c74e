"""Incremental updates: the diff as Veza operations, and the emulator applying them faithfully.

The property: a full push of A then the incremental update A->B leaves the emulator holding
exactly what a full push of B leaves (compared without list order, which Veza does not keep),
on 200 random A/B pairs per template.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from payload_gen import pair
from veza_helpers import compact

from oaamap.diff import NotIncremental, canonical, incremental_payload, operation_count
from oaamap.errors import PushError
from oaamap.veza.client import VezaClient
from oaamap.veza.emulator import EmulatorHandle
from oaamap.veza.emulator_incremental import apply_incremental
from oaamap.veza.emulator_store import ApiError

PAIRS = 200
TEMPLATES = ("application", "identity_provider", "hris")


@pytest.mark.parametrize("template", TEMPLATES)
def test_full_then_incremental_equals_full(template: str, emulator: EmulatorHandle,
                                           make_client: Callable[..., VezaClient]) -> None:
    client = make_client(emulator)
    provider = client.ensure_provider(f"prop-{template}", template)
    source = client.ensure_data_source(provider.id, "ds")
    operations = 0
    for seed in range(PAIRS):
        a, b = pair(template, seed)
        client.push(provider.id, source.id, compact(b))
        full_b = copy.deepcopy(emulator.store.held[source.id])
        client.push(provider.id, source.id, compact(a))
        update = incremental_payload(template, a, b)
        assert update["incremental_change"] is True
        operations += operation_count(template, update)
        client.push(provider.id, source.id, compact(update))
        held = emulator.store.held[source.id]
        assert canonical(held) == canonical(full_b) == canonical(b), f"seed {seed}"
        assert emulator.store.pushes[-1].incremental
    assert operations > PAIRS  # the pairs differ: the updates are not empty


def test_every_documented_operation_is_used() -> None:
    seen: set[str] = set()
    for template in TEMPLATES:
        for seed in range(50):
            text = json.dumps(incremental_payload(template, *pair(template, seed)))
            seen.update(op for op in ("add", "modify", "delete", "add_tag", "delete_tag",
                                      "add_resource", "delete_resource")
                        if f'"operation": "{op}"' in text)
    assert seen == {"add", "modify", "delete", "add_tag", "delete_tag", "add_resource",
                    "delete_resource"}


def _application() -> dict[str, Any]:
    return {
        "custom_property_definition": {"applications": []},
        "applications": [{"name": "App", "application_type": "T", "local_users": [
            {"name": "alice", "id": "u1", "tags": [{"key": "a", "value": "1"}]},
            {"name": "bob", "id": "u2", "email": "b@x"}], "resources": [
            {"id": "r1", "name": "api", "resource_type": "repo"}]}],
        "permissions": [],
        "identity_to_permissions": [{"identity": "u1", "identity_type": "local_user",
                                     "role_assignments": [{"application": "App", "role": "admin",
                                                           "resources": ["r1"]}]}],
    }


def test_operations_follow_the_documented_shapes() -> None:
    old = _application()
    new = copy.deepcopy(old)
    users = new["applications"][0]["local_users"]
    users[0]["tags"] = [{"key": "b", "value": "2"}]
    users[1]["email"] = "bob@x"
    new["identity_to_permissions"][0]["role_assignments"][0]["resources"] = ["r1", "r1.main"]
    update = incremental_payload("application", old, new)
    app = update["applications"][0]
    assert "operation" not in app  # a locator of its children's changes
    assert app["local_users"] == [
        {"id": "u1", "tags": [{"key": "a", "value": "1"}], "operation": "delete_tag"},
        {"id": "u1", "tags": [{"key": "b", "value": "2"}], "operation": "add_tag"},
        {"name": "bob", "id": "u2", "email": "bob@x", "operation": "modify"},
    ]
    assert update["identity_to_permissions"] == [{
        "identity": "u1", "identity_type": "local_user", "role_assignments": [
            {"application": "App", "role": "admin", "resources": ["r1.main"],
             "operation": "add_resource"}]}]


def test_a_removed_field_is_a_delete_then_add() -> None:
    old = _application()
    new = copy.deepcopy(old)
    del new["applications"][0]["local_users"][1]["email"]
    ops = incremental_payload("application", old, new)["applications"][0]["local_users"]
    assert [op["operation"] for op in ops] == ["delete", "add"]
    assert canonical(apply_incremental("application", old, {
        "incremental_change": True, "applications": [{"name": "App", "local_users": ops}]})
    ) == canonical(new)


def test_header_change_needs_a_full_push() -> None:
    old = _application()
    new = copy.deepcopy(old)
    new["custom_property_definition"] = {"applications": [{"application_type": "T"}]}
    with pytest.raises(NotIncremental, match="custom_property_definition"):
        incremental_payload("application", old, new)


def test_duplicate_identifiers_need_a_full_push() -> None:
    old = _application()
    new = copy.deepcopy(old)
    new["applications"][0]["local_users"].append({"name": "ALICE", "id": "U1"})
    with pytest.raises(NotIncremental, match="share the identifier"):
        incremental_payload("application", old, new)


@pytest.mark.parametrize(("update", "problem"), [
    ({"applications": [{"name": "App", "local_users": [{"id": "u9", "operation": "delete"}]}]},
     "does not exist"),
    ({"applications": [{"name": "App", "local_users": [{"id": "U1", "operation": "add"}]}]},
     "already exists"),
    ({"applications": [{"name": "App", "local_users": [{"id": "u1", "operation": "rename"}]}]},
     "unknown operation"),
    ({"applications": [{"name": "App", "local_users": [
        {"id": "u1", "email": "x", "tags": [], "operation": "add_tag"}]}]},
     "only the identifier and the tags"),
    ({"applications": [{"name": "App", "local_users": [
        {"id": "u1", "tags": [], "operation": "modify"}]}]}, "add_tag and delete_tag"),
])
def test_the_emulator_refuses_bad_operations(update: dict[str, Any], problem: str) -> None:
    with pytest.raises(ApiError) as caught:
        apply_incremental("application", _application(), {"incremental_change": True, **update})
    assert problem in caught.value.violations[0][1]


def test_a_first_push_cannot_be_incremental(emulator: EmulatorHandle,
                                            make_client: Callable[..., VezaClient]) -> None:
    client = make_client(emulator)
    provider = client.ensure_provider("first", "application")
    source = client.ensure_data_source(provider.id, "ds")
    with pytest.raises(PushError, match="first push cannot be an incremental"):
        client.push(provider.id, source.id, compact({"incremental_change": True}))


def test_an_emulator_restarted_on_its_data_dir_applies_updates_to_what_it_held(tmp_path) -> None:
    from veza_helpers import KEY

    from oaamap.veza.client import ClientSettings
    from oaamap.veza.emulator import start_emulator

    a, b = pair("application", 7)
    with start_emulator(api_key=KEY, data_dir=tmp_path) as handle:
        client = VezaClient(ClientSettings(handle.url, KEY))
        provider = client.ensure_provider("restart", "application")
        source = client.ensure_data_source(provider.id, "ds")
        client.push(provider.id, source.id, compact(a))
    with start_emulator(api_key=KEY, data_dir=tmp_path) as handle:
        client = VezaClient(ClientSettings(handle.url, KEY))
        client.push(provider.id, source.id, compact(incremental_payload("application", a, b)))
        assert canonical(handle.store.pushes[-1].payload()) == canonical(b)
