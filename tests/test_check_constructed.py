"""Constructed payload items get a shorter test than the schema, never a more lenient one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oaamap.check import CONSTRUCTED, MAX_KEY, MAX_NAME, _validator

SCHEMA = Path(__file__).parent.parent / "oaamap" / "schemas" / "payload-application.schema.json"


def test_limits_are_the_schemas() -> None:
    defs = json.loads(SCHEMA.read_text())["$defs"]
    grant = defs["identity_to_permission"]["properties"]
    assert grant["identity"]["maxLength"] == MAX_NAME
    for name, key in (("application_permission", "permission"), ("role_assignment", "role")):
        props = defs[name]["properties"]
        assert props[key]["maxLength"] == props["application"]["maxLength"] == MAX_NAME
        assert props["resources"]["items"]["maxLength"] == MAX_KEY


def _entry(identity: str = "ann", role: str = "r", permission: str = "read",
           resource: str = "p.q", props: dict[str, Any] | None = None) -> dict[str, Any]:
    assignment: dict[str, Any] = {"application": "A", "role": role,
                                  "apply_to_application": False, "resources": [resource]}
    if props is not None:
        assignment["custom_properties"] = props
    return {"identity": identity, "identity_type": "local_user",
            "application_permissions": [
                {"application": "A", "permission": permission, "apply_to_application": True},
                {"application": "A", "resources": ["x", resource], "permission": permission}],
            "role_assignments": [assignment]}


@pytest.mark.parametrize("item", [
    _entry(), _entry(identity="i" * MAX_NAME), _entry(identity="i" * (MAX_NAME + 1)),
    _entry(role="r" * (MAX_NAME + 1)), _entry(permission="p" * (MAX_NAME + 1)),
    _entry(resource="k" * MAX_KEY), _entry(resource="k" * (MAX_KEY + 1)),
    _entry(props={"since": "2020"}), _entry(props={"Bad-Name": 1}),
], ids=["plain", "longest-identity", "long-identity", "long-role", "long-permission",
        "longest-key", "long-key", "properties", "bad-property"])
def test_identity_entry_test_agrees_with_the_schema(item: dict[str, Any]) -> None:
    valid = _validator("application").is_valid(item, "identity_to_permission")
    constructed = CONSTRUCTED["identity_to_permission"](item)
    assert not constructed or valid  # never passes what the schema refuses
    if "custom_properties" not in item["role_assignments"][0]:
        assert constructed == valid  # and refuses only what it refuses (then it names why)


def _user(**changes: Any) -> dict[str, Any]:
    user: dict[str, Any] = {
        "name": "ann", "email": "a@x", "identities": ["a@x"], "groups": ["g"],
        "is_active": True, "created_at": "2020-01-02T03:04:05Z", "user_type": "human",
        "custom_properties": {"title": "Engineer"}, "id": "u1"}
    user.update(changes)
    return {k: v for k, v in user.items() if v is not None}


@pytest.mark.parametrize("item", [
    _user(), _user(name="n" * MAX_NAME), _user(name="n" * (MAX_NAME + 1)),
    _user(email="e" * (MAX_NAME + 1)), _user(created_at="t" * 4097),
    _user(groups=["g" * (MAX_NAME + 1)]), _user(identities=["a@x", None]),
    _user(custom_properties={"Bad-Name": "x"}), _user(custom_properties={"n" * 513: "x"}),
    _user(custom_properties={"title": "t" * 4097}), _user(custom_properties={"level": 3}),
    _user(tags=[{"key": "bad key", "value": "v"}]), _user(tags=[{"key": "k", "value": "v"}]),
], ids=["plain", "longest-name", "long-name", "long-email", "long-timestamp", "long-group",
        "null-identity", "bad-property-name", "long-property-name", "long-property-value",
        "number-property", "bad-tag", "tag"])
def test_local_user_test_agrees_with_the_schema(item: dict[str, Any]) -> None:
    valid = _validator("application").is_valid(item, "local_user")
    constructed = CONSTRUCTED["local_user"](item)
    assert not constructed or valid
    if "tags" not in item and item["identities"][-1] is not None and \
            all(isinstance(v, str) for v in item["custom_properties"].values()):
        assert constructed == valid


@pytest.mark.parametrize(("roles", "permissions", "keys", "app", "properties", "fits"), [
    ({"r"}, {"read"}, {"p.q"}, "A", False, True),
    ({"r" * (MAX_NAME + 1)}, {"read"}, {"p.q"}, "A", False, False),
    ({"r"}, {"w" * (MAX_NAME + 1)}, {"p.q"}, "A", False, False),
    ({"r"}, {"read"}, {"k" * (MAX_KEY + 1)}, "A", False, False),
    ({"r"}, {"read"}, {"p.q"}, "A" * (MAX_NAME + 1), False, False),
    ({"r"}, {"read"}, {"p.q"}, "A", True, False),  # assignment properties: the whole schema
])
def test_identity_entries_shortcut_only_when_every_name_fits(
        roles: set[str], permissions: set[str], keys: set[str], app: str, properties: bool,
        fits: bool) -> None:
    """When the grants' names were checked once, an identity entry tests its identity only;
    whatever a name could break keeps the per-entry test."""
    from oaamap.check import SchemaCheck, _identity_fits
    from oaamap.model import Entity, EntitySet, Granted

    header = Entity("application", "", {"name": app, "type": "t"}, {}, (), None, None)
    es = EntitySet("application", header, {}, granted=Granted(
        frozenset(roles), frozenset(permissions), frozenset(keys), properties))
    check = SchemaCheck(es)
    assert (check.constructed["identity_to_permission"] is _identity_fits) is fits
    if fits:  # what the per-entry test would pass, the shortcut passes; a long identity fails
        assert _identity_fits(_entry()) and not _identity_fits(_entry(identity="i" * 513))
