"""The hot payload items are built key by key; they equal the SDK's filter-everything form."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from oaamap.model import Entity, IdentityGrants, RoleAssignment
from oaamap.templates import none_list_dict, owners, tags
from oaamap.templates.application import identity_entry, user


def _sdk_user(e: Entity, uses_ids: bool | None) -> dict[str, Any]:
    """`local_users` entry the way the SDK writes it: every key, then `none_list_dict`."""
    v = e.values
    return none_list_dict({
        "name": v["name"], "email": v.get("email"), "identities": v.get("identities"),
        "groups": v.get("groups"), "access_creds": v.get("access_creds"),
        "is_active": v.get("is_active"), "created_at": v.get("created_at"),
        "last_login_at": v.get("last_login_at"), "deactivated_at": v.get("deactivated_at"),
        "password_last_changed_at": v.get("password_last_changed_at"),
        "user_type": v.get("user_type"), "tags": tags(e), "custom_properties": e.properties,
        "owners": owners(e),
        "id": str(v.get("id") or v["name"]) if uses_ids else None})


VALUES: list[dict[str, Any]] = [
    {"name": "ann"},
    {"id": "u1", "name": "ann", "email": "a@x", "identities": ["a@x"], "groups": ["g"],
     "is_active": False, "created_at": "2020-01-02T03:04:05Z"},
    {"name": "bob", "email": "", "identities": [], "groups": None, "access_creds": ["c"],
     "is_active": True, "user_type": "human", "last_login_at": None, "deactivated_at": "",
     "password_last_changed_at": "2021-01-01T00:00:00Z", "owners": []},
    {"user_type": "service", "name": "svc", "owners": [{"external_id": "o", "primary": 1}],
     "email": {}, "identities": ["s@x", None]},
]


@pytest.mark.parametrize(("values", "properties", "entity_tags", "uses_ids"), list(
    itertools.product(VALUES, [{}, {"title": "x", "level": 0}], [(), (("k", "v"),)],
                      [None, False, True])))
def test_user_entry_is_the_sdks(values: dict[str, Any], properties: dict[str, Any],
                                entity_tags: tuple[tuple[str, str], ...],
                                uses_ids: bool | None) -> None:
    e = Entity("users", values["name"], values, properties, entity_tags, None, None)
    built, want = user(e, uses_ids), _sdk_user(e, uses_ids)
    assert json.dumps(built) == json.dumps(want)  # the same keys, values and order


def test_identity_entry_keys_and_order() -> None:
    grants = IdentityGrants(
        "ann", "local_user", ("read",), (("write", ("p", "p.q")),),
        (RoleAssignment("admin", None, ["p"], {}),
         RoleAssignment("viewer", True, (), {"since": "2020"})), None)
    assert identity_entry(grants, "App") == {
        "identity": "ann", "identity_type": "local_user",
        "application_permissions": [
            {"application": "App", "permission": "read", "apply_to_application": True},
            {"application": "App", "resources": ["p", "p.q"], "permission": "write"}],
        "role_assignments": [
            {"application": "App", "role": "admin", "apply_to_application": False,
             "resources": ["p"]},
            {"application": "App", "role": "viewer", "apply_to_application": True,
             "custom_properties": {"since": "2020"}}]}
    empty = IdentityGrants("g", "local_group", (), (), (), None)
    assert list(identity_entry(empty, "App")) == ["identity", "identity_type"]
