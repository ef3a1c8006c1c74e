"""`keep_repeated_items: [identities]`: a rule's identities are appended with their repeats, as
the SDK's `add_identities` / `add_identity` send them (Veza's GitHub connector: verified emails,
then the user map's, `bob@acme.test` twice)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from helpers import write_case

from oaamap.errors import MappingErrors
from oaamap.evaluate import Evaluation
from oaamap.pipeline import compile_mapping, plan_mapping, render_context
from oaamap.rowgen import FALLBACK

HEAD = """\
oaamap: 1
template: application
provider: P
data_source: D
application: {name: App, type: app}
"""

PEOPLE = [{"login": "bob", "emails": ["b@x", "r@x"], "mapped": ["b@x"]},
          {"login": "ann", "emails": ["a@x", "a@x"], "mapped": []}]


def _case(tmp_path: Path, rules: str) -> Path:
    return write_case(tmp_path, HEAD + textwrap.dedent(rules), {
        "people.json": json.dumps(PEOPLE),
        "map.json": json.dumps([{"login": "ann", "email": "a@x"}, {"login": "bob",
                                                                  "email": "r@x"}])})


def test_repeats_within_a_row_and_across_rules_are_kept(tmp_path: Path) -> None:
    path = _case(tmp_path, """\
        sources:
          people: {json: people.json}
          mapped: {json: map.json}
        users:
          - from: people
            name: login
            identities: "[emails, mapped][]"
            keep_repeated_items: [identities]
          - from: mapped
            merge: first
            name: login
            identities: "[email]"
            keep_repeated_items: [identities]
        """)
    users = compile_mapping(path).payload["applications"][0]["local_users"]
    assert [(u["name"], u["identities"]) for u in users] == [
        ("bob", ["b@x", "r@x", "b@x", "r@x"]), ("ann", ["a@x", "a@x", "a@x"])]


def test_without_it_each_element_is_kept_once(tmp_path: Path) -> None:
    path = _case(tmp_path, """\
        sources:
          people: {json: people.json}
          mapped: {json: map.json}
        users:
          - {from: people, name: login, identities: "[emails, mapped][]"}
          - {from: mapped, merge: first, name: login, identities: "[email]",
             keep_repeated_items: [identities]}
        """)
    users = compile_mapping(path).payload["applications"][0]["local_users"]
    # The first rule de-duplicates its own rows; the second appends its elements as they are.
    assert [(u["name"], u["identities"]) for u in users] == [
        ("bob", ["b@x", "r@x", "r@x"]), ("ann", ["a@x", "a@x"])]


def test_both_row_paths_agree(tmp_path: Path) -> None:
    path = _case(tmp_path, """\
        sources:
          people: {json: people.json}
        users:
          - from: people
            name: login
            identities: "[emails, mapped][]"
            keep_repeated_items: [identities]
            keep_null_items: [identities]
        """)
    mapping, _ = plan_mapping(path)
    rule = mapping.rules[0]
    from oaamap.sources import ReadContext
    context = ReadContext(render_context=render_context(mapping), records_of=lambda n: [])
    records = list(mapping.sources["people"].read(context))
    evaluation = Evaluation("application", render_context(mapping))
    compiled = evaluation._compile(rule)
    for record in records:
        slow = evaluation._row(compiled, record, record.data)
        fast = compiled.fast(record.data, record) if compiled.fast is not None else None
        assert slow is not None
        if fast is not None:
            assert fast is not FALLBACK and fast.values == slow.values
    assert [r.values["identities"] for r in evaluation.rows(rule, records)] == [
        ["b@x", "r@x", "b@x"], ["a@x", "a@x"]]


def test_only_identities_may_keep_repeats(tmp_path: Path) -> None:
    path = write_case(tmp_path, HEAD + textwrap.dedent("""\
        sources:
          people: {csv: people.csv}
        users:
          - {from: people, name: login, keep_repeated_items: [groups]}
        """), {"people.csv": "login\nann\n"})
    with pytest.raises(MappingErrors) as info:
        plan_mapping(path)
    assert [str(e).replace(str(path), "m.yaml") for e in info.value.errors] == [
        "m.yaml:9:55: error: `groups` cannot keep repeated elements in `users`; "
        "keep_repeated_items takes: identities"]
