"""`oaamap explain`: why an identity has each of its accesses, down to the rule and the rows.

The compile runs with an observer (`CompileOptions.observe`) that keeps every rule row of the
identity sections and of `grants`; the normal compile keeps nothing of the kind. From them:

* the rows that built the identity's entity, in order, and what each merge did (a field set
  first, items added to a list, a later different value not kept);
* every grant of the identity, with the rule (`file:line:col`) and the source rows
  (`source:row`) that produced it, and the grants it has through its groups.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import OaamapError, RowRef, Span
from .evaluate import identifier_key
from .model import Entity, Rule, RuleRow
from .pipeline import CompileOptions, CompileResult, compile_mapping

__all__ = ["Explanation", "GrantExplained", "IdentityNotFound", "RowUse", "explain"]

# The section of the identities `--user` looks in, per template.
_PEOPLE = {"application": "users", "identity_provider": "users", "hris": "employees"}
# A grant row names its holder under one of these keys (build.GRANT_IDENTITIES).
_HOLDER = {"users": "user", "groups": "group"}
_KEPT_SECTIONS = frozenset({"users", "groups", "employees", "grants"})


class IdentityNotFound(OaamapError):
    """`--user NAME` matches no identity of the compiled payload."""

    exit_code = 4

    def __init__(self, name: str, section: str, examples: Sequence[str]) -> None:
        self.name = name
        self.section = section
        self.examples = list(examples)
        super().__init__(str(self))

    def __str__(self) -> str:
        some = ", ".join(self.examples[:5])
        return (f"oaamap: error: no {self.section} entry is `{self.name}` (by id, name, identity "
                f"or email); some are: {some or 'none'}")


@dataclass(frozen=True)
class RowUse:
    """One rule row: the rule (label, `file:line:col`), the source row, and its values."""

    rule: str
    span: Span | None
    ref: RowRef | None
    values: Mapping[str, Any]

    def where(self) -> str:
        """`data/users.csv:3 (rule users[1] at mapping.yaml:42:5)`."""
        at = f" at {self.span}" if self.span else ""
        return f"{self.ref or 'a constant'} (rule {self.rule}{at})"


@dataclass
class GrantExplained:
    """One access of the identity and the rows that granted it."""

    text: str
    via: str | None = None
    rows: list[RowUse] = field(default_factory=list)


@dataclass(frozen=True)
class Explanation:
    """An identity, the rows that built it, what each merge did, and its grants."""

    section: str
    entity: Entity
    rows: list[RowUse]
    merges: list[str]
    grants: list[GrantExplained]


class _Collector:
    """The observer: keeps the rows of identity sections and grants (explain only)."""

    def __init__(self) -> None:
        self.rows: list[tuple[Rule, RowUse]] = []

    def __call__(self, row: RuleRow) -> None:
        if row.rule.section in _KEPT_SECTIONS:
            self.rows.append((row.rule, RowUse(row.rule.label, row.rule.span, row.ref,
                                               dict(row.values))))


def _matches(entity: Entity, name: str) -> bool:
    wanted = name.lower()
    candidates = [entity.key, *(entity.values.get(k) for k in ("id", "name", "identity",
                                                                "email"))]
    return any(isinstance(c, str) and c.lower() == wanted for c in candidates)


def _row_key(rule: Rule, use: RowUse, template: str) -> str:
    """The identifier a row gives its entity (as the builder merges rows)."""
    values = use.values
    return str(values.get("identity") or values.get(identifier_key(rule, template))).lower()


def _merges(rows: Sequence[RowUse]) -> list[str]:
    """What each row after the first did to the entity (the builder's merge, replayed)."""
    current: dict[str, Any] = {}
    notes = []
    for number, use in enumerate(rows):
        did = []
        for name, value in use.values.items():
            if name not in current:
                current[name] = value
                if number:
                    did.append(f"set {name}")
            elif isinstance(value, list) and isinstance(current[name], list):
                added = [v for v in value if v not in current[name]]
                current[name] = [*current[name], *added]
                if added:
                    did.append(f"added {name} {', '.join(map(str, added))}")
            elif current[name] != value:
                did.append(f"kept {name} `{current[name]}` over `{value}`")
        if number and did:
            notes.append(f"{use.where()}: {'; '.join(did)}")
        elif number:
            notes.append(f"{use.where()}: nothing new")
    return notes


def _resource_label(result: CompileResult, reference: str) -> str:
    wanted = reference.lower()
    for entity in result.entities.sections.get("resources", ()):
        if entity.key.lower() == wanted or str(entity.values.get("name", "")).lower() == wanted:
            return f"{entity.values.get('type', 'resource')} {entity.values.get('name', reference)}"
    return reference


def _role_label(result: CompileResult, reference: str) -> str:
    wanted = reference.lower()
    for entity in result.entities.sections.get("roles", ()):
        if entity.key.lower() == wanted:
            return str(entity.values.get("name", reference))
    return reference


def _grant_texts(result: CompileResult, values: Mapping[str, Any]) -> list[str]:
    what = (f"role {_role_label(result, str(values['role']))}" if "role" in values
            else f"permission {values.get('permission')}")
    resources = values.get("resources") or []
    places = [f"on {_resource_label(result, str(r))}" for r in resources]
    if not resources or values.get("apply_to_application"):
        places.insert(0, "(app-wide)")
    return [f"{what} {place}" for place in places]


def _covers(text: str, resource: str | None, result: CompileResult) -> bool:
    if resource is None or text.endswith("(app-wide)"):
        return True
    return text.lower().endswith(f" {_resource_label(result, resource).lower()}")


def _grants(result: CompileResult, rows: Sequence[tuple[Rule, RowUse]], holder: str,
            key: str, via: str | None, resource: str | None) -> list[GrantExplained]:
    found: dict[str, GrantExplained] = {}
    for rule, use in rows:
        section = rule.section
        roles = use.values.get("roles") if section == f"{holder}s" else None
        if section == "grants" and str(use.values.get(holder, "")).lower() == key:
            texts = _grant_texts(result, use.values)
        elif roles and _row_key(rule, use, result.template) == key:
            texts = [f"role {_role_label(result, str(role))} (app-wide)" for role in roles]
        else:
            continue
        for text in texts:
            if _covers(text, resource, result):
                found.setdefault(text, GrantExplained(text, via)).rows.append(use)
    return list(found.values())


def explain(path: Path | str, user: str, resource: str | None = None,
            variables: Mapping[str, str] | None = None,
            options: CompileOptions | None = None) -> Explanation:
    """Compile with provenance and explain the identity `user` (id, name, identity or email).

    Raises:
        IdentityNotFound: no identity matches.
        MappingErrors / SourceError / DataErrors: as `compile_mapping`.
    """
    collector = _Collector()
    options = dataclasses.replace(options or CompileOptions(), observe=collector)
    result = compile_mapping(path, variables, options)
    people = _PEOPLE.get(result.template, "users")
    entities = result.entities.sections.get(people, ())
    entity = next((e for e in entities if _matches(e, user)), None)
    if entity is None:
        raise IdentityNotFound(user, people, [e.key for e in entities])
    key = entity.key.lower()
    own = [use for rule, use in collector.rows if rule.section == people
           and _row_key(rule, use, result.template) == key]
    holder = _HOLDER.get(people, "user")
    grants = _grants(result, collector.rows, holder, key, None, resource)
    for group in entity.values.get("groups") or []:
        name = group.get("id") if isinstance(group, dict) else group
        grants += _grants(result, collector.rows, "group", str(name).lower(),
                          f"group {name}", resource)
    return Explanation(people, entity, own, _merges(own), grants)
