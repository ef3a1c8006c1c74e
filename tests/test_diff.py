"""`oaamap.diff`: entity changes per kind and access changes in plain words."""

from __future__ import annotations

import copy
import json

from helpers import ROOT

from oaamap.diff import access_changes, diff_payloads


def _example(name: str) -> dict:
    return json.loads((ROOT / "examples" / name / "expected.json").read_text())


def test_identical_payloads_have_no_changes() -> None:
    payload = _example("app-csv")
    diff = diff_payloads("application", payload, copy.deepcopy(payload))
    assert not diff.changed and diff.as_json()["kinds"] == {} and diff.access == []


def test_idp_memberships_and_managers_in_plain_words() -> None:
    old = {"users": [{"name": "ann", "identity": "ann", "groups": [{"identity": "ops"}]},
                     {"name": "bo", "identity": "bo", "manager_id": "ann"}]}
    new = {"users": [{"name": "ann", "identity": "ann"},
                     {"name": "bo", "identity": "bo", "manager_id": "cy",
                      "groups": [{"identity": "dev"}]}]}
    assert [str(c) for c in access_changes("identity_provider", old, new)] == [
        "- ann: loses membership of group ops",
        "- bo: loses manager ann",
        "+ bo: manager cy",
        "+ bo: membership of group dev",
    ]


def test_application_access_names_roles_resources_and_groups() -> None:
    old = _example("app-csv")
    new = copy.deepcopy(old)
    grants = new["identity_to_permissions"]
    grants.append({"identity": "eng", "identity_type": "local_group", "application_permissions": [
        {"application": "Acme Portal", "resources": ["repo1.b-main"], "permission": "write"}]})
    grants[0]["role_assignments"] = grants[0]["role_assignments"][1:]
    changes = [str(c) for c in access_changes("application", old, new)]
    assert changes == ["- alice: loses role Administrator (app-wide)",
                       "+ group eng: permission write on branch main"]


def test_tag_changes_are_changes() -> None:
    old = _example("hris-csv")
    new = copy.deepcopy(old)
    new["employees"][0]["tags"] = [{"key": "vip", "value": ""}]
    diff = diff_payloads("hris", old, new)
    assert diff.as_json()["kinds"] == {"employees": {"added": [], "removed": [],
                                                     "changed": ["100001"]}}
    assert diff.access == []


def test_header_changes_are_named() -> None:
    old = _example("idp-csv")
    new = copy.deepcopy(old)
    new["name"] = "Other IdP"
    assert diff_payloads("identity_provider", old, new).header_changed == ["name"]
