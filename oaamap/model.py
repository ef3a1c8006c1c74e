"""The IR between stages: the compiled mapping (rules) and the entity model (what the rules built).

Everything is frozen. Objects built from the mapping carry a Span; objects built from data carry the
RowRef of the record that first produced them (their provenance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .errors import PayloadError, RowRef, Span
from .expressions import Expression, OaamapFunctions
from .sources import FALSE_TEXTS, Record, SourcePlan
from .templating import Template

__all__ = [
    "Entity",
    "EntitySet",
    "Granted",
    "IdentityGrants",
    "MappingPlan",
    "PropertySpec",
    "RoleAssignment",
    "Rule",
    "RuleRow",
    "TagSpec",
    "resource_tree",
]


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """A custom property of a rule: its name, value (expression or constant) and declared type.

    `keep_null` / `keep_empty`: a null / `""` value is sent as such instead of being omitted.
    """

    name: str
    value: Any
    type: str | None
    span: Span | None
    keep_null: bool = False
    keep_empty: bool = False


@dataclass(frozen=True, slots=True)
class TagSpec:
    """Tags of a rule: a list of (key, value) with constant keys, or one expression of a list."""

    pairs: tuple[tuple[str, Any], ...] = ()
    expression: Expression | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of a section: static (constants) or derived (`from:` a source).

    For a derived rule, `fields` values are Expressions; for a static one they are constants in
    which Jinja strings are Templates (rendered once per run).
    """

    section: str
    index: int
    span: Span | None
    source: str | None
    fields: Mapping[str, Any]
    field_spans: Mapping[str, Span | None]
    properties: tuple[PropertySpec, ...] = ()
    tags: TagSpec = TagSpec()
    where: Expression | None = None
    each: tuple[str, Expression] | None = None
    merge: str | None = None
    keep_null_items: frozenset[str] = frozenset()
    keep_repeated_items: frozenset[str] = frozenset()
    unchecked_refs: frozenset[str] = frozenset()

    @property
    def derived(self) -> bool:
        """True when the rule runs over the records of a source."""
        return self.source is not None

    @property
    def label(self) -> str:
        """`users[2]`: how messages name the rule."""
        return f"{self.section}[{self.index}]"


@dataclass(frozen=True)
class MappingPlan:
    """A checked mapping, ready to run: templates compiled, expressions compiled, sources planned.

    `rules` are in file order (sections as they appear in the file, then entries in order).
    `context`: the sources read first, each yielding exactly one record that configuration strings
    read by the source's name. `definitions`: the declared custom property definitions, scope
    (`users`, `resources:repo`, ...) -> {name: TYPE}, in declared order.
    """

    file: str
    base_dir: Path
    template: str
    provider: Template
    provider_icon: Template | None
    data_source: Template
    variables: Mapping[str, Template]
    sources: Mapping[str, SourcePlan]
    header: Rule
    rules: tuple[Rule, ...]
    functions: OaamapFunctions = field(repr=False, compare=False)
    lookups: Mapping[tuple[str, str], Span | None] = field(default_factory=dict)
    context: tuple[str, ...] = ()
    definitions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # scope -> {name: condition}: definitions declared only when their `when:` renders true
    definition_conditions: Mapping[str, Mapping[str, Template]] = field(default_factory=dict)

    def active_definitions(self, context: Mapping[str, Any]) -> dict[str, dict[str, str]]:
        """The declared definitions whose `when:` (if any) renders true in `context`."""
        out: dict[str, dict[str, str]] = {}
        for scope, names in self.definitions.items():
            conditions = self.definition_conditions.get(scope, {})
            out[scope] = {name: kind for name, kind in names.items()
                          if name not in conditions
                          or conditions[name].render(context).strip().lower() not in FALSE_TEXTS}
        return out


@dataclass(slots=True)
class RuleRow:
    """What one rule made of one record: field values, properties and tags, with the record's ref.

    Mutable and short-lived: the builder consumes it at once (stage 5 -> 6 on a hot path).
    """

    rule: Rule
    values: dict[str, Any]
    properties: dict[str, Any]
    tags: list[tuple[str, str]]
    record: Record | None

    @property
    def ref(self) -> RowRef | None:
        """The record's location, built only when needed (most rows never need it)."""
        return self.record.ref if self.record is not None else None


@dataclass(frozen=True, slots=True)
class Entity:
    """One user, group, role, resource, permission, employee...: merged values and provenance.

    Attributes:
        section: the mapping section (`users`, `resources`, ...).
        key: the identifier (id if given, else name) as first written; references use it.
        values: rule key -> normalised value (str, bool, list of str, list of dict).
        properties: custom property name -> value.
        tags: (key, value) pairs, deduplicated, first-seen order.
        ref: the record that first produced it (None for static rules).
        span: the rule that first produced it.
    """

    section: str
    key: str
    values: Mapping[str, Any]
    properties: Mapping[str, Any]
    tags: tuple[tuple[str, str], ...]
    ref: RowRef | None
    span: Span | None


def resource_tree(resources: Sequence[Entity]) -> tuple[list[Entity], dict[str, list[Entity]]]:
    """Top-level resources and each resource's children (keyed by lower-cased parent key), in
    section order. A resource whose `parent` names no resource is top-level; resources whose
    parents form a cycle are in neither (stage 8 reports the cycle).
    """
    known = {e.key.lower() for e in resources}
    roots: list[Entity] = []
    children: dict[str, list[Entity]] = {}
    for entity in resources:
        parent = str(entity.values.get("parent", "")).lower()
        if parent and parent in known:
            children.setdefault(parent, []).append(entity)
        else:
            roots.append(entity)
    return roots, children


class RoleAssignment(NamedTuple):
    """A role held by an identity: app-wide and/or on resources (dotted keys), with properties."""

    role: str
    apply_to_application: bool | None
    resources: Sequence[str]  # the builder's own list of keys (not copied into a tuple)
    properties: Mapping[str, Any]


class IdentityGrants(NamedTuple):
    """Everything one identity holds in an application (an `identity_to_permissions` entry)."""

    identity: str
    identity_type: str
    app_permissions: tuple[str, ...]
    resource_permissions: tuple[tuple[str, Sequence[str]], ...]
    role_assignments: tuple[RoleAssignment, ...]
    ref: RowRef | None


@dataclass(frozen=True)
class Granted:
    """Every role, permission (as written) and resource key (as in the payload) the grants name,
    and whether any role assignment has properties: what stage 8 checks once per distinct name
    instead of walking every grant."""

    roles: frozenset[str]
    permissions: frozenset[str]
    resource_keys: frozenset[str]
    properties: bool = True


@dataclass(frozen=True)
class EntitySet:
    """Every entity a run built, per section in first-appearance order, plus grants and types.

    Attributes:
        header: the application / idp / system entity.
        sections: section name -> entities (a tuple, or a section packed once its last rule
            ran, decoded on access: `packed.PackedEntities`).
        grants: application identities' grants, in the SDK's order (users, groups, idp, creds);
            the builder's is rebuilt from its compact log each time it is iterated.
        property_types: definition scope (`users`, `resources:repo`, `role_assignments`, ...) ->
            {property name: TYPE}.
        resource_keys: lower-cased resource identifier -> dotted payload key (`repo1.main`).
        uses_ids: section -> True when its entities are emitted with ids (the id rule).
        records: records read per source; skipped: rule rows skipped for a null identifier.
        problems: reference errors the builder found (checked with the rest in stage 8).
    """

    template: str
    header: Entity
    sections: Mapping[str, Sequence[Entity]]
    grants: Sequence[IdentityGrants] = ()
    property_types: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    resource_keys: Mapping[str, str] = field(default_factory=dict)
    uses_ids: Mapping[str, bool] = field(default_factory=dict)
    records: Mapping[str, int] = field(default_factory=dict)
    skipped: int = 0
    problems: tuple[PayloadError, ...] = ()
    # `section.field` -> lower-cased names that rules with `unchecked_refs` may leave undefined
    unchecked_refs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # The names the grants use, when the builder knows them (else stage 8 collects them).
    granted: Granted | None = None

    def counts(self) -> dict[str, int]:
        """Entities per section (and grants), for summaries and the shrink guard."""
        out = {name: len(items) for name, items in self.sections.items()}
        if self.template == "application":
            out["identity_to_permissions"] = len(self.grants)
        return out
