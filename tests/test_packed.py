"""A section packed once its last rule ran reads back exactly as the entities it held."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import write_case

from oaamap.build import Builder
from oaamap.packed import EntityPacker, PackedEntities, entity_keys, json_safe
from oaamap.pipeline import compile_mapping

MAPPING = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  people: {csv: people.csv}
  more: {json: more.json}
application: {name: A, type: a}
roles:
  - {name: admin, permissions: []}
groups:
  - {name: d1}
  - {name: d2}
  - {name: d3}
  - {name: d4}
users:
  - {name: "Zed \\"the\\" admin", email: z@x, roles: [admin], properties: {level: 1}}
  - from: people
    id: id
    name: login
    email: email
    groups: "[dept]"
    roles: "role && [role]"
    properties:
      title: title
      level: {value: level, type: NUMBER}
    tags:
      - {key: dept, value: dept}
  - from: more
    id: id
    name: login
    groups: groups
    properties: {extra: {value: extra, type: NUMBER}}
"""

PEOPLE = ("id,login,email,dept,role,title,level\n"
          "u1,ann,a@x,d1,admin,Dev,3\n"
          "u2,bob,b@x,d2,,Ops,4\n"
          "u3,cy,,d1,admin,,12345678901234567890123\n")
MORE = ('[{"id": "U1", "login": "ann", "groups": ["d3", "d1"], "extra": 2.5},'
        ' {"id": "u4", "login": "dee", "groups": "d4", "extra": 123456789012345678901234567890}]')


def _compile(tmp_path: Path) -> Any:
    path = write_case(tmp_path, MAPPING, {"people.csv": PEOPLE, "more.json": MORE})
    return compile_mapping(path)


def test_packed_section_reads_back_as_unpacked(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Packed (users, groups, roles) or not, the entities, their order and the payload agree;
    values JSON cannot give back exactly (NaN, a big integer, infinity) stay unpacked."""
    packed = _compile(tmp_path)
    monkeypatch.setattr(Builder, "_last_rules", lambda self, rules: {})
    plain = _compile(tmp_path)
    users = packed.entities.sections["users"]
    assert isinstance(users, PackedEntities)
    assert isinstance(plain.entities.sections["users"], tuple)
    # zed, u1 (merged with U1) and u2 packed; u3 and u4 (integers beyond 64 bits) not
    assert [item.__class__ is str for item in users._items] == [True, True, True, False, False]
    for name, entities in plain.entities.sections.items():
        assert list(packed.entities.sections[name]) == list(entities), name
    assert list(users) == [users[i] for i in range(len(users))] == list(users[0:])
    assert list(entity_keys(users)) == [e.key for e in plain.entities.sections["users"]]
    assert packed.payload_json() == plain.payload_json()
    assert [w.message for w in packed.warnings] == [w.message for w in plain.warnings]


def test_sections_changed_after_their_rules_are_not_packed() -> None:
    """App assignments and access creds change users (and groups, creds) in `finish`."""
    rules = [type("R", (), {"section": s})() for s in
             ("users", "groups", "roles", "resources", "app_assignments")]
    builder = Builder("application", rules=rules)  # type: ignore[arg-type]
    assert set(builder.last_rule) == {"roles"}
    builder = Builder("application", rules=rules[:4])  # type: ignore[arg-type]
    assert set(builder.last_rule) == {"users", "groups", "roles"}


@pytest.mark.parametrize(("value", "safe"), [
    ("x", True), (None, True), (True, True), (2 ** 63 - 1, True), (2 ** 70, False),
    (1.5, True), (float("nan"), False), (float("inf"), False), ([1, ["a"]], True),
    ((1, 2), False), ({"a": {"b": 1}}, True), ({1: "a"}, False), ({"a": float("-inf")}, False),
])
def test_json_safe(value: Any, safe: bool) -> None:
    """Only what orjson gives back exactly is packed."""
    assert json_safe(value) is safe


def test_keys_read_escaped_keys() -> None:
    """A key with an escaped character is read by decoding its blob."""
    packer = EntityPacker("users")
    rule: Any = SimpleNamespace(span=None)
    items: list[Any] = [packer.pack(key, None, 1, rule, {"name": key}, None, None)
                        for key in ('plain', 'a "quoted" \\ key', 'ünï')]
    packed = PackedEntities(items, packer)
    assert list(packed.keys()) == ['plain', 'a "quoted" \\ key', 'ünï']
    assert [e.values["name"] for e in packed] == list(packed.keys())


def test_reference_errors_name_the_packed_entity(tmp_path: Path) -> None:
    """A packed user naming an undefined group is reported with its key, row and place."""
    from oaamap.errors import PayloadErrors

    path = write_case(tmp_path, MAPPING.replace("  - {name: d4}\n", ""),
                      {"people.csv": PEOPLE, "more.json": MORE})
    with pytest.raises(PayloadErrors) as caught:
        compile_mapping(path)
    [error] = [e for e in caught.value.errors if "`d4`" in str(e)]
    assert "users `u4` names groups `d4`" in str(error)
    assert str(error.ref).endswith("more.json[#1]") and "local_users/4" in str(error)


def test_values_without_entities(tmp_path: Path) -> None:
    """`entity_values` gives each entity's values, packed or not."""
    from oaamap.packed import entity_values

    users = _compile(tmp_path).entities.sections["users"]
    assert list(entity_values(users)) == [e.values for e in users]
    assert list(entity_values(tuple(users))) == [e.values for e in users]


CHECKED = """\
oaamap: 1
template: application
provider: P
data_source: D
sources:
  people: {csv: people.csv}
application: {name: A, type: a}
property_definitions:
  users: {level: NUMBER}
groups:
  - {name: d1}
users:
  - from: people
    name: login
    groups: "[dept]"
    properties:
      since: since
      title: title
"""
PEOPLE_OK = "login,dept,since,title\nann,d1,2020-01-02T03:04:05Z,Dev\nbob,d1,,Ops\n"


@pytest.mark.parametrize(("mapping", "people"), [
    (CHECKED, PEOPLE_OK.replace("bob,d1,", "bob,d2,")),                    # undefined group
    (CHECKED.replace("level: NUMBER", "level: NUMBER, since: TIMESTAMP"),
     PEOPLE_OK.replace(",,Ops", ",last tuesday,Ops")),                     # not a TIMESTAMP
    (CHECKED.replace("title: title", "level: title"), PEOPLE_OK),          # NUMBER given text
    (CHECKED.replace("title: title", "Bad-Name: title"), PEOPLE_OK),       # invalid name
    (CHECKED, PEOPLE_OK.replace("Ops", "x" * 5000)),                       # text too long
], ids=["reference", "timestamp", "number", "name", "long"])
def test_noted_packed_sections_report_what_unpacked_ones_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mapping: str, people: str) -> None:
    """Stage 8 skips a packed section only when what was noted as it was packed passes; any
    doubt and it checks every entity, with the messages an unpacked section gets (whichever
    stage catches a mistake, packing changes nothing of what is reported)."""
    from oaamap.errors import OaamapError

    def problems() -> tuple[str, list[str]]:
        path = write_case(tmp_path, mapping, {"people.csv": people})
        with pytest.raises(OaamapError) as caught:
            compile_mapping(path)
        errors = getattr(caught.value, "errors", [caught.value])
        return type(caught.value).__name__, sorted(str(e) for e in errors)

    packed = problems()
    monkeypatch.setattr(Builder, "_last_rules", lambda self, rules: {})
    assert packed[1] and packed == problems()


@pytest.mark.parametrize(("kinds", "declared", "longest", "fine"), [
    ({"title": {str}}, {}, 10, True),
    ({"title": {str, int, type(None)}}, {}, 10, True),        # undeclared: any value
    ({"title": {str}}, {}, 4097, False),                      # a text too long
    ({"Title": {str}}, {"title": "STRING"}, 10, True),        # declared names match any case
    ({"level": {int, float}}, {"level": "NUMBER"}, 0, True),
    ({"level": {int, bool}}, {"level": "NUMBER"}, 0, False),  # a bool is no number
    ({"on": {bool, type(None)}}, {"on": "BOOLEAN"}, 0, True),  # a kept null
    ({"on": {str}}, {"on": "BOOLEAN"}, 0, False),
    ({"since": {str}}, {"since": "TIMESTAMP"}, 0, False),     # needs the values: checked one by one
    ({"tags_": {list}}, {"tags_": "STRING_LIST"}, 0, False),  # needs the items
    ({"bad-name": {str}}, {}, 0, False),
])
def test_packed_properties_fine(kinds: dict[str, set[type]], declared: dict[str, str],
                                longest: int, fine: bool) -> None:
    """What is noted of a packed section's properties passes only when no entity can fail."""
    from oaamap.check import _packed_properties_fine, _PropertyRules

    packer = EntityPacker("users")
    packer.property_kinds, packer.longest_text = kinds, longest
    assert _packed_properties_fine(packer, "users", _PropertyRules({"users": declared})) is fine


def test_a_noted_section_that_passes_is_not_decoded(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The property and reference checks read no entity of a packed section whose notes pass."""
    from oaamap.check import _entity_checks, _references

    result = compile_mapping(write_case(tmp_path, CHECKED, {"people.csv": PEOPLE_OK}))
    users = result.entities.sections["users"]
    assert isinstance(users, PackedEntities) and users.noted is not None
    decoded: list[str] = []
    original = EntityPacker.entity

    def entity(self: EntityPacker, blob: str) -> Any:
        decoded.append(blob)
        return original(self, blob)

    monkeypatch.setattr(EntityPacker, "entity", entity)
    monkeypatch.setattr(PackedEntities, "values", lambda self: decoded.append("values") or [])
    assert [*_entity_checks(result.entities), *_references(result.entities)] == []
    assert not [blob for blob in decoded if blob in users._items or blob == "values"]
