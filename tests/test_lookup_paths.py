"""lookup()/lookup_all() on a nested key path and on list membership (issue 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_case

from oaamap.errors import DataErrors, MappingErrors
from oaamap.expressions import (
    ExpressionError,
    OaamapFunctions,
    compile_expression,
    key_values,
    parse_key_path,
)
from oaamap.pipeline import compile_mapping

HEAD = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  people: {json: people.json}
  groups: {json: groups.json}
application: {name: App, type: app}
"""
PEOPLE = [{"id": "u1", "login": "ann", "profile": {"email": "U1@X"}},
          {"id": "u2", "login": "bob", "profile": {"email": "u2@x"}},
          {"id": 3, "login": "cy", "profile": {}}]
GROUPS = [{"gid": "g1", "members": ["u1", "U2"], "admins": [{"id": "u1"}]},
          {"gid": "g2", "members": ["u1", "u1"], "admins": []},
          {"gid": "g3", "members": [3.0]}]


def _compile(tmp_path: Path, rules: str) -> dict:
    path = write_case(tmp_path, HEAD + rules, {"people.json": json.dumps(PEOPLE),
                                               "groups.json": json.dumps(GROUPS)})
    return compile_mapping(path).payload


@pytest.mark.parametrize(("key", "steps"), [
    ("email", (("email", False),)),
    ("profile.email", (("profile", False), ("email", False))),
    ("members[]", (("members", True),)),
    ("admins[].id", (("admins", True), ("id", False))),
    ("user id", (("user id", False),)),
])
def test_key_paths_parse(key: str, steps: tuple) -> None:
    """A key is fields separated by `.`, each optionally followed by `[]`."""
    assert parse_key_path(key) == steps


def test_key_values_follow_lists_and_nested_objects() -> None:
    """`[]` flattens a list; a missing step gives nothing; without `[]` a list is one value."""
    record = {"a": [{"b": 1}, {"b": None}, {"c": 2}, "x"], "p": {"q": "v"}, "l": [1, 2]}
    assert key_values(record, parse_key_path("a[].b")) == [1]
    assert key_values(record, parse_key_path("p.q")) == ["v"]
    assert key_values(record, parse_key_path("p.z")) == []
    assert key_values(record, parse_key_path("l")) == [[1, 2]]
    assert key_values(record, parse_key_path("l[]")) == [1, 2]


@pytest.mark.parametrize(("text", "key"), [
    ("lookup('s', 'a..b', v)", "a..b"),
    ("lookup_all('s', 'members[0]', v)", "members[0]"),
    ("lookup('s', 'a[]b', v)", "a[]b"),
    ("concat(x, lookup('s', '.a', v))", ".a"),
])
def test_bad_key_paths_are_mapping_errors_at_the_key(text: str, key: str) -> None:
    """A malformed key is refused when the expression is compiled, pointing at the key."""
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, OaamapFunctions())
    assert (info.value.position, info.value.length) == (text.index(f"'{key}'") + 1, len(key))
    assert "a key is field names separated by `.`" in info.value.message


def test_bad_key_path_is_located_in_the_mapping(tmp_path: Path) -> None:
    """The planner reports the key with its file:line:col."""
    path = write_case(tmp_path, HEAD + "users:\n  - {from: people, name: login, email: "
                      "\"lookup('groups', 'members[0]', id).gid\"}\n", {})
    with pytest.raises(MappingErrors) as info:
        compile_mapping(path)
    assert str(info.value.errors[0]).startswith(
        f"{path}:10:59: error: `lookup()` key `members[0]`: a key is field names")


def test_lookup_on_a_nested_key_path(tmp_path: Path) -> None:
    """`profile.email` matches the nested value, case-insensitively, as text."""
    payload = _compile(tmp_path, """\
users:
  - from: groups
    each: {m: members}
    name: "lookup('people', 'profile.email', concat(m, '@x')).login || m"
""")
    names = [u["name"] for u in payload["applications"][0]["local_users"]]
    assert names == ["ann", "bob", "3"]


def test_lookup_all_on_list_membership(tmp_path: Path) -> None:
    """`members[]`: the records whose list holds the value (each record once), in source order;
    numbers match as text (`3` and `3.0`); `admins[].id` reads a field of listed objects."""
    payload = _compile(tmp_path, """\
users:
  - from: people
    id: id
    name: login
    groups: "lookup_all('groups', 'members[]', id)[].gid"
    properties:
      admin_of: {value: "lookup_all('groups', 'admins[].id', id)[].gid", type: STRING_LIST}
groups:
  - {from: groups, name: gid}
""")
    users = payload["applications"][0]["local_users"]
    assert [(u["id"], u.get("groups")) for u in users] == [
        ("u1", ["g1", "g2"]), ("u2", ["g1"]), ("3", ["g3"])]
    assert [u["custom_properties"].get("admin_of") for u in users] == [["g1"], [], []]


def test_lookup_on_membership_of_several_records_is_ambiguous(tmp_path: Path) -> None:
    """lookup() (not _all) of a value two records list is a data error, as for plain keys."""
    with pytest.raises(DataErrors, match="2 records of `groups` have members\\[\\] = `u1`"):
        _compile(tmp_path, "users:\n  - {from: people, name: login, "
                 "email: \"lookup('groups', 'members[]', id).gid\"}\n")


def test_a_key_path_whose_first_field_no_record_has_is_an_error(tmp_path: Path) -> None:
    """The "field no record has" rule checks the path's first field."""
    with pytest.raises(DataErrors, match="no record of source `groups` has a field `membres`"):
        _compile(tmp_path, "users:\n  - {from: people, name: login, "
                 "email: \"lookup_all('groups', 'membres[]', id)[0].gid\"}\n")
