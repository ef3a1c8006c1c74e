"""Stage 6: RuleRows -> EntitySet. Merges entities by case-insensitive identifier, collects grants.

Merging follows Veza's CSV semantics on purpose: list fields are unioned in first-seen order, a
scalar keeps its first non-null value, and a later different value is a warning naming both rows (an
error with `strict`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import DataError, PayloadError, RowRef, Warning_
from .evaluate import identifier_key
from .grantlog import SHIFT, Grantee, GrantLog, ReplayedGrants
from .language import TEMPLATES, SectionSpec, checked_references
from .model import Entity, EntitySet, Rule, RuleRow, resource_tree
from .packed import EntityPacker, PackedEntities, entity_keys, json_safe
from .rowgen import fresh_list
from .scoping import ambiguous_references, scope_drafts

__all__ = ["Builder"]

# Grant key -> (section of the identity, identity_type), in the SDK's identity_to_permissions order.
GRANT_IDENTITIES: dict[str, tuple[str | None, str]] = {
    "user": ("users", "local_user"), "group": ("groups", "local_group"), "idp": (None, "idp"),
    "access_cred": ("access_creds", "local_access_creds"),
}
MAX_CONFLICT_WARNINGS = 20
_LIST_KINDS = frozenset({"str_list", "ref_list", "enum_list", "objects"})


class _Draft:
    """An entity being merged (mutable until `Builder.finish`)."""

    __slots__ = ("key", "properties", "ref", "rule", "tags", "values")

    def __init__(self, key: str, ref: RowRef | None, rule: Rule,
                 values: dict[str, Any] | None = None,
                 properties: dict[str, Any] | None = None) -> None:
        self.key = key
        self.values: dict[str, Any] = {} if values is None else values
        # Created on first use: most entities have neither, and there may be millions.
        self.properties = properties
        self.tags: dict[tuple[str, str], None] | None = None
        self.ref = ref
        self.rule = rule


def _unique(items: list[Any]) -> list[Any]:
    """A new list of `items` without repeats (objects compared by their members)."""
    seen: set[Any] = set()
    out = []
    for item in items:
        k = _dedupe_key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def _dedupe_key(item: Any) -> Any:
    if isinstance(item, dict):
        return tuple(sorted((k, str(v)) for k, v in item.items() if k != "primary"))
    return item


@dataclass
class Builder:
    """Consumes rule rows in order and produces the EntitySet.

    Attributes:
        template: the mapping's template.
        strict: a conflicting value is an error instead of a warning.
    """

    template: str
    strict: bool = False
    definitions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # section -> lower-cased key -> its draft, or its JSON text once the section is packed
    drafts: dict[str, dict[str, _Draft | str]] = field(default_factory=dict)
    log: GrantLog = field(default_factory=lambda: GrantLog(
        [kind for _, kind in GRANT_IDENTITIES.values()]))
    assignments: list[RuleRow] = field(default_factory=list)
    declared_types: dict[tuple[str, str], str] = field(default_factory=dict)
    seen_types: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    type_order: dict[tuple[str, str], None] = field(default_factory=dict)
    warnings: list[Warning_] = field(default_factory=list)
    errors: list[DataError] = field(default_factory=list)
    header: Entity | None = None
    conflicts: int = 0
    targets_of: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    problems: list[PayloadError] = field(default_factory=list)
    unchecked: dict[str, set[str]] = field(default_factory=dict)
    declared_of: dict[int, dict[str, str | None]] = field(default_factory=dict)
    # The mapping's rules, in run order: a section whose last rule has run is packed (packed.py).
    rules: Sequence[Rule] = ()

    def __post_init__(self) -> None:
        self.sections: Mapping[str, SectionSpec] = TEMPLATES[self.template].sections
        self.list_fields = {name: frozenset(k for k, spec in section.fields.items()
                                            if spec.kind in _LIST_KINDS)
                            for name, section in self.sections.items()}
        for name, section in self.sections.items():
            if not section.single and name not in ("grants", "app_assignments"):
                self.drafts[name] = {}
        # Declared definitions come first, in declared order, under their declared spelling; a
        # property set under another letter case uses them (the SDK matches case-insensitively).
        self.defined: dict[tuple[str, str], str] = {}
        for scope, names in self.definitions.items():
            for name, kind in names.items():
                self.type_order[(scope, name)] = None
                self.declared_types[(scope, name)] = kind
                self.defined[(scope, name.lower())] = name
        self.packers: dict[str, EntityPacker] = {}
        self.last_rule = self._last_rules(self.rules)

    def _last_rules(self, rules: Sequence[Rule]) -> dict[str, Rule]:
        """The last rule of each section whose entities nothing changes after it: not
        resources (scoped in `finish`), not users or groups when app assignments are attached to
        them, not users or access creds when creds are linked to their users."""
        sections = {rule.section for rule in rules}
        fixed = {"resources"}
        if "app_assignments" in sections:
            fixed |= {"users", "groups"}
        if "access_creds" in sections:
            fixed |= {"users", "access_creds"}
        return {rule.section: rule for rule in rules
                if rule.section in self.drafts and rule.section not in fixed}

    def rule_done(self, rule: Rule) -> None:
        """A rule has run: when it is the last of its section, pack the section's entities."""
        if self.last_rule.get(rule.section) is rule:
            self._pack(rule.section)

    def _pack(self, section: str) -> None:
        packer = self._packer(section)
        drafts = self.drafts[section]
        for lower, draft in drafts.items():
            if type(draft) is _Draft and (not draft.properties or
                                              json_safe(draft.properties)):
                ref = draft.ref
                drafts[lower] = packer.pack(
                    draft.key, ref.origin if ref is not None else None,
                    ref.row if ref is not None else 0, draft.rule, draft.values,
                    draft.properties, draft.tags)

    def _drafts_of(self, section: str) -> list[_Draft]:
        """A section's drafts, in order (unpacked, if packed)."""
        drafts = [self._draft(section, lower) for lower in self.drafts.get(section, {})]
        return [draft for draft in drafts if draft is not None]

    def _packer(self, section: str) -> EntityPacker:
        packer = self.packers.get(section)
        if packer is None:
            packer = self.packers[section] = EntityPacker(section, tuple(
                key for key, _ in checked_references(self.template, section)))
        return packer

    def _draft(self, section: str, lower: str) -> _Draft | None:
        """The draft of an entity, unpacked if its section was packed."""
        drafts = self.drafts[section]
        draft = drafts.get(lower)
        if isinstance(draft, str):
            key, ref, rule, values, properties, tags = self.packers[section].unpack(draft)
            draft = drafts[lower] = _Draft(key, ref, rule, values, properties)
            draft.tags = dict.fromkeys(tags) if tags else None
        return draft

    def add(self, row: RuleRow) -> None:
        """Merge one row into the entity it identifies (or record its grant)."""
        self.handler(row.rule)(row)

    def handler(self, rule: Rule) -> Callable[[RuleRow], None]:
        """The merge of the rows of one rule (chosen once per rule)."""
        handle = self._section_handler(rule)
        if rule.unchecked_refs:
            return functools.partial(self._note_unchecked, handle)
        return handle

    def _note_unchecked(self, handle: Callable[[RuleRow], None], row: RuleRow) -> None:
        """Remember the names a rule with `unchecked_refs` may leave undefined, then merge."""
        for name in row.rule.unchecked_refs:
            value = row.values.get(name)
            names = self.unchecked.setdefault(f"{row.rule.section}.{name}", set())
            names.update(str(v).lower() for v in (value if isinstance(value, list) else [value])
                         if v is not None)
        handle(row)

    def _section_handler(self, rule: Rule) -> Callable[[RuleRow], None]:
        section = rule.section
        if section == "grants":
            holder, kind, what = self._grant_target(rule)
            return functools.partial(self._grant, holder, kind, what)
        if section == "app_assignments":
            return self.assignments.append
        if self.sections[section].single:
            return self._set_header
        return functools.partial(self._merge, section)

    def _set_header(self, row: RuleRow) -> None:
        self.header = self._entity(row.rule.section, _Draft("", row.ref, row.rule), row)

    def _merge(self, section: str, row: RuleRow) -> None:
        values = row.values
        key, lower = _identity(section, values, identifier_key(row.rule, self.template))
        drafts = self.drafts[section]
        draft = self._draft(section, lower)
        if draft is None:
            draft = drafts[lower] = _Draft(key, row.ref, row.rule)
        elif row.rule.merge == "first":
            self._merge_lists(section, draft, row)
            return
        list_fields = self.list_fields[section]
        current = draft.values
        for name, value in values.items():
            if name in list_fields:
                self._union(draft, name, value, name in row.rule.keep_repeated_items)
            elif name not in current:
                current[name] = value
            elif current[name] != value:
                self._scalar(draft, name, value, row, section)
        self._merge_rest(section, draft, row)

    def _merge_lists(self, section: str, draft: _Draft, row: RuleRow) -> None:
        """`merge: first` into an existing entity: its scalars and properties stay the first
        row's (no conflict); list fields, tags and roles still accumulate."""
        list_fields = self.list_fields[section]
        for name, value in row.values.items():
            if name in list_fields:
                self._union(draft, name, value, name in row.rule.keep_repeated_items)
        self._merge_rest(section, draft, row, properties=False)

    def _merge_rest(self, section: str, draft: _Draft, row: RuleRow,
                    properties: bool = True) -> None:
        values = row.values
        if properties and row.properties:
            self._merge_properties(draft, row, _scope(section, draft.values))
        if row.tags:
            if draft.tags is None:
                draft.tags = {}
            for tag in row.tags:
                draft.tags[tag] = None
        roles = values.get("roles") if section in ("users", "groups") else None
        if roles:
            self._roles(section, draft.key, roles, row)

    def _roles(self, section: str, key: str, roles: list[str], record: Any) -> None:
        """The roles a user or group row gives its entity (app-wide role grants)."""
        kind = "local_user" if section == "users" else "local_group"
        grantee = self.log.grantee(kind, key, lambda: record.ref)
        for role in roles:
            self.log.add(grantee, self.log.grant(True, role, None), ())

    # -- entity sections: the generated row function's sink ------------------------------

    def entity_sink(self, rule: Rule) -> Callable[..., None] | None:
        """The merge of one row of an entity section given as its values and record (and its
        properties and tags when the rule has any), for the evaluation's generated row function.

        The first row of an entity becomes its draft directly (no union, no conflict check);
        a later row of the same entity goes through the generic merge. Property types are
        noted once per (scope, property, value type), not per entity.

        Returns None for rules it does not serve (grants, assignments, single-entity sections,
        `unchecked_refs`).
        """
        section = rule.section
        if section not in self.drafts or rule.unchecked_refs:
            return None
        drafts = self.drafts[section]
        identifier = identifier_key(rule, self.template)
        # Lists the draft cannot keep as they are: shared (a constant, a record's own list) or
        # not deduplicated by the normaliser (objects).
        list_fields = tuple(k for k, expr in rule.fields.items()
                            if k in self.list_fields[section] and (
                                not fresh_list(expr) or k in rule.keep_repeated_items
                                or self.sections[section].fields[k].kind == "objects"))
        repeated = rule.keep_repeated_items
        declared = self._declared_of(rule)
        noted: set[tuple[str, str, type]] = set()
        last_kind: dict[str, type] = {}  # the type a property had last: most rows repeat it
        has_roles = section in ("users", "groups") and "roles" in rule.fields
        # The section's last rule: its entities are packed as they are made.
        packer = self._packer(section) if self.last_rule.get(section) is rule else None
        typed_scope = section == "resources"  # its properties are defined per resource type
        merge = self._merge

        def sink(values: dict[str, Any], record: Any, properties: dict[str, Any] | None = None,
                 tags: list[tuple[str, str]] | None = None) -> None:
            key, lower = _identity(section, values, identifier)
            if lower in drafts:
                merge(section, RuleRow(rule, values, properties or {}, tags or [], record))
                return
            for name in list_fields:
                value = values.get(name)
                if value is not None:
                    values[name] = value.copy() if name in repeated or \
                        value[0].__class__ is str else _unique(value)
            packable = packer is not None
            if properties:
                scope = _scope(section, values)
                for name, value in properties.items():
                    kind = value.__class__
                    if last_kind.get(name) is not kind or typed_scope:
                        last_kind[name] = kind
                        if (scope, name, kind) not in noted:
                            noted.add((scope, name, kind))
                            self._type_seen(scope, name, value, declared.get(name))
                    if kind is not str and packable:
                        packable = json_safe(value)
            if has_roles:
                roles = values.get("roles")
                if roles:
                    self._roles(section, key, roles, record)
            if packable:
                drafts[lower] = packer.pack(  # type: ignore[union-attr]  # packable: a packer
                    key, record.origin, record.row, rule, values, properties, tags)
                return
            draft = drafts[lower] = _Draft(key, record.ref, rule, values, properties or None)
            if tags:
                draft.tags = dict.fromkeys(tags)

        return sink

    def _declared_of(self, rule: Rule) -> dict[str, str | None]:
        """Each property's declared type in `rule` (computed once per rule)."""
        found = self.declared_of.get(id(rule))
        if found is None:
            found = self.declared_of[id(rule)] = {}
            for prop in rule.properties:
                found.setdefault(prop.name, prop.type)
        return found

    def _union(self, draft: _Draft, name: str, value: list[Any], repeats: bool = False) -> None:
        current = draft.values.get(name)
        if repeats:
            # `keep_repeated_items`: appended as the SDK's add_identities does, repeats and all.
            draft.values[name] = [*(current or ()), *value]
            return
        if current is None:
            # A str list is already deduplicated by the normaliser; copied because a constant's
            # list is shared by every row.
            draft.values[name] = value.copy() if type(value[0]) is str else _unique(value)
            return
        seen = {_dedupe_key(v) for v in current}
        for item in value:
            k = _dedupe_key(item)
            if k not in seen:
                seen.add(k)
                current.append(item)

    def _scalar(self, draft: _Draft, name: str, value: Any, row: RuleRow, section: str) -> None:
        current = draft.values.get(name)
        if current is None:
            draft.values[name] = value
        elif current != value and not (isinstance(value, str) and isinstance(current, str)
                                       and name in ("id", "identity", "name")
                                       and current.lower() == value.lower()):
            self._conflict(section, draft, name, current, value, row)

    def _conflict(self, section: str, draft: _Draft, name: str, first: Any, later: Any,
                  row: RuleRow) -> None:
        self.conflicts += 1
        outcome = "two rows give different values" if self.strict else "the first value is kept"
        message = (f"{section} `{draft.key}`: `{name}` is `{_shown(first)}` (from "
                   f"{draft.ref or draft.rule.label}) but `{_shown(later)}` here; {outcome}")
        if self.strict:
            self.errors.append(DataError(message, row.ref))
        elif self.conflicts <= MAX_CONFLICT_WARNINGS:
            self.warnings.append(Warning_(message, ref=row.ref, changes_payload=True))

    def _merge_properties(self, draft: _Draft, row: RuleRow, scope: str) -> None:
        declared = self._declared_of(row.rule)
        for name, value in row.properties.items():
            self._type_seen(scope, name, value, declared.get(name))
            if draft.properties is None:
                draft.properties = {}
            current = draft.properties.get(name)
            if current is None:
                draft.properties[name] = value
            elif current != value:
                self._conflict(row.rule.section, draft, f"properties.{name}", current, value, row)

    def _type_seen(self, scope: str, name: str, value: Any, declared: str | None) -> None:
        if self.defined and (scope, name.lower()) in self.defined:
            return  # defined under `property_definitions:` (name, type and place)
        key = (scope, name)
        self.type_order[key] = None
        if declared is not None:
            self.declared_types.setdefault(key, declared)
            return
        if value is None:
            return  # a kept null says nothing about the type
        kind = ("BOOLEAN" if isinstance(value, bool) else "NUMBER" if isinstance(value, int | float)
                else "STRING_LIST" if isinstance(value, list) else "STRING")
        self.seen_types.setdefault(key, set()).add(kind)

    # -- grants ----------------------------------------------------------------------------

    def grant_sink(self, rule: Rule) -> Callable[..., None] | None:
        """The merge of one grants row given as its identity, role or permission, resources,
        `apply_to_application` and record (no RuleRow, no dict), for a rule without properties:
        the evaluation's generated row function calls it directly (`sink.fields` names what it
        takes, in order).

        Returns None for rules it does not serve (other sections, `unchecked_refs`).
        """
        if rule.section != "grants" or rule.unchecked_refs or rule.properties:
            return None
        holder, kind, what = self._grant_target(rule)
        if not set(rule.fields) <= {holder, what, "resources", "apply_to_application"}:
            return None
        log = self.log
        spelled = log.by_spelling[kind]
        target_of = log.target_of
        is_role = what == "role"
        # This rule's grants without `apply_to_application`, by name as written (no tuple key).
        plain: dict[str, int] = {}

        # The identity of the last row and its grantee: exports list an identity's grants
        # together, and comparing two short strings is cheaper than a lookup in a big dict.
        last: str | None = None
        last_grantee = Grantee("", kind, None)  # never used: no identity equals None

        def sink(identity: str, name: str, resources: list[str] | None, apply: bool | None,
                 record: Any) -> None:
            nonlocal last, last_grantee
            if identity == last:
                grantee = last_grantee
            else:
                found = spelled.get(identity)
                grantee = found if found is not None else log.grantee(
                    kind, identity, lambda: record.ref)
                last, last_grantee = identity, grantee
            if resources and apply is None and len(resources) == 1:
                # The common row (one resource, no apply): `GrantLog.add` inlined.
                grant = plain.get(name)
                if grant is None:
                    grant = plain[name] = log.grant(is_role, name, None)
                target = target_of.get(resources[0])
                if target is None:
                    target = log.target(resources[0])
                grantee.log.append(grant << SHIFT | target)
                return
            self._log_grant(grantee, is_role, name, resources or [], apply, None, record)

        # The generated row function passes these fields as arguments (rowgen: positional).
        sink.fields = (holder, what, "resources", "apply_to_application")  # type: ignore[attr-defined]
        return sink

    def _grant(self, holder: str, kind: str, what: str, row: RuleRow) -> None:
        values = row.values
        grantee = self.log.grantee(kind, values[holder], lambda: row.ref)
        is_role = what == "role"
        if is_role and row.properties:
            for name, value in row.properties.items():
                self._type_seen("role_assignments", name, value,
                                self._declared_of(row.rule).get(name))
        self._log_grant(grantee, is_role, values[what], values.get("resources") or [],
                        values.get("apply_to_application"), row.properties if is_role else None,
                        row)

    def _log_grant(self, grantee: Grantee, is_role: bool, name: str, resources: list[str],
                   apply: bool | None, properties: Mapping[str, Any] | None, record: Any
                   ) -> None:
        if not resources and apply is False:
            self.warnings.append(Warning_(
                "grant applies to neither the application nor any resource; it grants "
                "nothing", ref=record.ref, changes_payload=True))
            return
        # A role's entry with no target is an app-wide grant (the log reads it so): its grant
        # stays the one the role's other rows use.
        self.log.add(grantee, self.log.grant(is_role, name, apply, properties), resources)

    def _grant_target(self, rule: Any) -> tuple[str, str, str]:
        # Per rule, once: which key names the identity, its identity type, role or permission.
        target = self.targets_of.get(id(rule))
        if target is None:
            holder = next(k for k in GRANT_IDENTITIES if k in rule.fields)
            what = "role" if "role" in rule.fields else "permission"
            target = self.targets_of[id(rule)] = (holder, GRANT_IDENTITIES[holder][1], what)
        return target

    # -- finish ----------------------------------------------------------------------------

    def finish(self, records: Mapping[str, int], skipped: int) -> EntitySet:
        """Freeze the drafts into the EntitySet (ids, resource keys, grants order, types)."""
        hidden = self.conflicts - MAX_CONFLICT_WARNINGS
        if hidden > 0 and not self.strict:
            self.warnings.append(Warning_(
                f"{hidden} more conflicting value{'s' if hidden != 1 else ''} (the first value "
                "of each entity was kept)", changes_payload=True))
        self._attach_assignments()
        self._link_access_creds()
        scope, problems = scope_drafts(self._drafts_of("resources"))
        self.problems += problems
        sections = {name: self._section(name, drafts) for name, drafts in self.drafts.items()}
        uses_ids = self._uses_ids(sections)
        resource_keys = _resource_keys(sections.get("resources", ()), uses_ids.get("resources"))
        resource_keys = {**{own: resource_keys[path.lower()] for own, path in
                            scope.aliases.items() if path.lower() in resource_keys},
                         **resource_keys}
        log = self.log
        keys = log.payload_keys(resource_keys)
        if scope.ambiguous:
            self.problems += ambiguous_references(
                scope, ((g.ref, log.targets_of(g)) for g in log.grantees),
                resource_keys, log.spelling)
        order, matched = self._grantees_in_order(sections)
        return EntitySet(
            template=self.template, header=self.header or _empty_header(self.template),
            sections=sections, grants=ReplayedGrants(log, order, keys),
            property_types=self._property_types(), resource_keys=resource_keys,
            uses_ids=uses_ids, records=dict(records), skipped=skipped,
            problems=(*self.problems, *self._dangling_grants(matched)),
            unchecked_refs={k: frozenset(v) for k, v in self.unchecked.items()},
            granted=log.granted(keys))

    def _section(self, name: str, drafts: dict[str, Any]) -> Sequence[Entity]:
        packer = self.packers.get(name)
        if packer is None:
            return tuple(self._entity(name, d) for d in drafts.values())
        return PackedEntities([d if d.__class__ is str else self._entity(name, d)
                               for d in drafts.values()], packer)

    def _entity(self, section: str, draft: _Draft, row: RuleRow | None = None) -> Entity:
        if row is not None:
            draft.values = dict(row.values)
            draft.properties = dict(row.properties)
            for name, value in row.properties.items():
                self._type_seen(section, name, value, self._declared_of(row.rule).get(name))
            draft.tags = dict.fromkeys(row.tags)
        return Entity(section, draft.key, draft.values, draft.properties or {},
                      tuple(draft.tags or ()),
                      draft.ref, draft.rule.span)

    def _attach_assignments(self) -> None:
        for row in self.assignments:
            values = row.values
            holder = "user" if "user" in values else "group"
            draft = self._draft(f"{holder}s", values[holder].lower())
            if draft is None:
                self.errors.append(DataError(
                    f"app assignment `{values.get('id')}` names {holder} `{values[holder]}` "
                    f"that no `{holder}s` rule defines", row.ref))
                continue
            for name, value in row.properties.items():
                self._type_seen("app_assignments", name, value,
                                self._declared_of(row.rule).get(name))
            assignment = {"id": values["id"], "name": values["name"], "app_id": values["app_id"],
                          "custom_properties": dict(row.properties)}
            current = draft.values.setdefault("app_assignments", [])
            if all(a["id"] != assignment["id"] for a in current):
                current.append(assignment)

    def _link_access_creds(self) -> None:
        for lower in list(self.drafts.get("access_creds", {})):
            cred = self._draft("access_creds", lower)
            assert cred is not None
            owner = cred.values.get("user")
            user = self._draft("users", str(owner).lower()) if owner is not None else None
            if user is not None:
                self._union(user, "access_creds", [cred.key])

    def _uses_ids(self, sections: Mapping[str, Sequence[Entity]]) -> dict[str, bool]:
        if self.template != "application":
            return {}
        identities = any("id" in e.values for s in ("users", "groups", "roles")
                         for e in sections.get(s, ()))
        return {"users": identities, "groups": identities, "roles": identities,
                "resources": any("id" in e.values for e in sections.get("resources", ()))}

    def _property_types(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for scope, name in self.type_order:
            declared = self.declared_types.get((scope, name))
            kinds = self.seen_types.get((scope, name), set())
            if declared is None and len(kinds) > 1:
                self.problems.append(PayloadError(
                    f"custom property `{name}` of {scope} has values of several types "
                    f"({', '.join(sorted(kinds))}); declare one: "
                    f"`{name}: {{value: ..., type: STRING}}`"))
                continue
            # Only kept nulls and no declared type: STRING, as a connector would define it.
            out.setdefault(scope, {})[name] = declared or next(iter(kinds), "STRING")
        return out

    def _grantees_in_order(self, sections: Mapping[str, Sequence[Entity]]
                           ) -> tuple[list[Grantee], int]:
        """The grantees in the SDK's order (local users, local groups, IdP identities, access
        credentials), each under its entity's spelling, and how many an entity defines
        (`_dangling_grants` needs that count only)."""
        log = self.log
        order: list[Grantee] = []
        idp = 0
        for section, kind in GRANT_IDENTITIES.values():
            if section is None:  # IdP identities: in the order grants first named them
                named = [g for g in log.grantees if g.kind == kind]
                order += named
                idp = len(named)
                continue
            for key in entity_keys(sections.get(section, ())):
                held = log.named(kind, key.lower())
                if held is not None:
                    held.identity = key
                    order.append(held)
        return order, len(order) - idp

    def _dangling_grants(self, matched: int) -> list[PayloadError]:
        """A grant of an identity no rule defines: looked for only when the grantees the
        entities matched are fewer than the grantees."""
        grantees = self.log.grantees
        if matched == sum(g.kind != "idp" for g in grantees):
            return []
        out = []
        for grantee in grantees:
            kind = grantee.kind
            if kind == "idp":
                continue
            section = next(s for s, k in GRANT_IDENTITIES.values() if k == kind)
            if grantee.identity.lower() not in self.drafts[str(section)]:
                out.append(PayloadError(
                    f"a grant names {kind.replace('local_', '')} `{grantee.identity}` that no "
                    f"`{section}` rule defines", "/identity_to_permissions", grantee.ref))
        return out


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _identity(section: str, values: Mapping[str, Any], identifier: str) -> tuple[str, str]:
    """An entity row's key (its `identity`, else its identifier) and the lower-cased key its
    draft is kept under: a sub-resource's within its parent (scoping.py resolves the parent)."""
    key = values.get("identity") or values[identifier]
    if key.__class__ is not str:
        key = str(key)
    lower = key.lower()
    if section == "resources" and values.get("parent") is not None:
        return key, f"{str(values['parent']).lower()}\x1f{lower}"
    return key, key if lower == key else lower  # one string, not two equal ones


def _scope(section: str, values: Mapping[str, Any]) -> str:
    """The property definition scope of an entity (resources: per resource type)."""
    return f"resources:{values.get('type', '')}" if section == "resources" else section


def _resource_keys(resources: Sequence[Entity], uses_ids: bool | None) -> dict[str, str]:
    """Lower-cased resource identifier -> payload key, dotted for sub-resources (`repo1.main`)."""
    def own(entity: Entity) -> str:
        return str(entity.values.get("id") or entity.values["name"]) if uses_ids else \
            str(entity.values["name"])

    roots, children = resource_tree(resources)
    # Resources in a parent cycle are unreachable from the roots: their own key (stage 8 fails
    # the run on the cycle).
    out = {e.key.lower(): own(e) for e in resources}
    stack = [(e, own(e)) for e in reversed(roots)]
    while stack:
        entity, key = stack.pop()
        out[entity.key.lower()] = key
        stack += [(c, f"{key}.{own(c)}") for c in reversed(children.get(entity.key.lower(), []))]
    return out


def _empty_header(template: str) -> Entity:
    return Entity(next(n for n, s in TEMPLATES[template].sections.items() if s.single), "", {},
                  {}, (), None, None)
