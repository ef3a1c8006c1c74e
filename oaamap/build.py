"""Stage 6: RuleRows -> EntitySet. Merges entities by case-insensitive identifier, collects grants.

Merging follows Veza's CSV semantics on purpose: list fields are unioned in first-seen order, a
scalar keeps its first non-null value, and a later different value is a warning naming both rows (an
error with `strict`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import DataError, PayloadError, RowRef, Warning_
from .evaluate import identifier_key
from .language import TEMPLATES, SectionSpec
from .model import Entity, EntitySet, IdentityGrants, RoleAssignment, RuleRow, resource_tree
from .scoping import ambiguous_references, scope_drafts

__all__ = ["Builder"]

SMALL_TARGETS = 32  # above this many resources, an assignment's targets become a dict
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

    def __init__(self, key: str, row: RuleRow) -> None:
        self.key = key
        self.values: dict[str, Any] = {}
        # Created on first use: most entities have neither, and there may be millions.
        self.properties: dict[str, Any] | None = None
        self.tags: dict[tuple[str, str], None] | None = None
        self.ref = row.ref
        self.rule = row.rule


class _Grants:
    """One identity's grants being collected: app permissions, resource permissions, roles."""

    __slots__ = ("app", "identity", "kind", "ref", "resources", "roles")

    def __init__(self, identity: str, kind: str, ref: RowRef | None) -> None:
        self.identity = identity
        self.kind = kind
        self.ref = ref
        # The shared empty dict until first written: most identities use one or two of the
        # three, and there may be millions.
        self.app: dict[str, str] = _UNUSED
        self.resources: dict[str, list[Any]] = _UNUSED
        self.roles: dict[str, list[Any]] = _UNUSED


_UNUSED: dict[str, Any] = {}  # never written: `_Grants` replaces it with its own dict first


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
    drafts: dict[str, dict[str, _Draft]] = field(default_factory=dict)
    grants: dict[tuple[str, str], _Grants] = field(default_factory=dict)
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
    # Grants by identity as written: one dict lookup per grant row instead of lower() + tuple.
    by_spelling: dict[str, dict[str, _Grants]] = field(
        default_factory=lambda: {kind: {} for _, kind in GRANT_IDENTITIES.values()})
    lowered: dict[str, str] = field(default_factory=dict)
    spelling: dict[str, str] = field(default_factory=dict)
    unchecked: dict[str, set[str]] = field(default_factory=dict)

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

    def add_all(self, rows: Iterable[RuleRow]) -> int:
        """Merge every row of one rule (the stage-5 stream): the handler is chosen once.

        Returns:
            the number of rows merged (the evaluation checks that a rule produced any).
        """
        handle = None
        count = 0
        for count, row in enumerate(rows, 1):  # noqa: B007  (the count is the result)
            if handle is None:
                handle = self._handler(row)
            handle(row)
        return count

    def add(self, row: RuleRow) -> None:
        """Merge one row into the entity it identifies (or record its grant)."""
        self._handler(row)(row)

    def _handler(self, row: RuleRow) -> Callable[[RuleRow], None]:
        handle = self._section_handler(row)
        if row.rule.unchecked_refs:
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

    def _section_handler(self, row: RuleRow) -> Callable[[RuleRow], None]:
        section = row.rule.section
        if section == "grants":
            holder, kind, what = self._grant_target(row.rule)
            return functools.partial(self._grant, holder, kind, what, self.by_spelling[kind])
        if section == "app_assignments":
            return self.assignments.append
        if self.sections[section].single:
            return self._set_header
        return functools.partial(self._merge, section)

    def _set_header(self, row: RuleRow) -> None:
        self.header = self._entity(row.rule.section, _Draft("", row), row)

    def _merge(self, section: str, row: RuleRow) -> None:
        values = row.values
        key = str(values.get("identity") or values[identifier_key(row.rule, self.template)])
        lower = key.lower()
        if section == "resources" and values.get("parent") is not None:
            # A sub-resource is identified within its parent (scoping.py resolves the parent).
            lower = f"{str(values['parent']).lower()}\x1f{lower}"
        drafts = self.drafts[section]
        draft = drafts.get(lower)
        if draft is None:
            draft = drafts[lower] = _Draft(key, row)
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
            self._merge_properties(draft, row, self._scope(section, draft))
        if row.tags:
            if draft.tags is None:
                draft.tags = {}
            for tag in row.tags:
                draft.tags[tag] = None
        roles = values.get("roles") if section in ("users", "groups") else None
        if roles:
            kind = "local_user" if section == "users" else "local_group"
            for role in roles:
                self._role(self._grants_of(kind, draft.key, row), role, [], True, {})

    def _union(self, draft: _Draft, name: str, value: list[Any], repeats: bool = False) -> None:
        current = draft.values.get(name)
        if repeats:
            # `keep_repeated_items`: appended as the SDK's add_identities does, repeats and all.
            draft.values[name] = [*(current or ()), *value]
            return
        if current is None:
            if type(value[0]) is str:
                # Already deduplicated by the normaliser; copied because a constant's list is
                # shared by every row.
                draft.values[name] = value.copy()
                return
            current = draft.values[name] = []
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

    def _scope(self, section: str, draft: _Draft) -> str:
        if section == "resources":
            return f"resources:{draft.values.get('type', '')}"
        return section

    def _merge_properties(self, draft: _Draft, row: RuleRow, scope: str) -> None:
        for name, value in row.properties.items():
            self._type_seen(scope, name, value, _declared(row, name))
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

    def _grants_of(self, kind: str, identity: str, row: RuleRow) -> _Grants:
        key = (kind, identity.lower())
        grants = self.grants.get(key)
        if grants is None:
            grants = self.grants[key] = _Grants(identity, kind, row.ref)
        return grants

    def _grant_target(self, rule: Any) -> tuple[str, str, str]:
        # Per rule, once: which key names the identity, its identity type, role or permission.
        target = self.targets_of.get(id(rule))
        if target is None:
            holder = next(k for k in GRANT_IDENTITIES if k in rule.fields)
            what = "role" if "role" in rule.fields else "permission"
            target = self.targets_of[id(rule)] = (holder, GRANT_IDENTITIES[holder][1], what)
        return target

    def _grant(self, holder: str, kind: str, what: str, by_spelling: dict[str, _Grants],
               row: RuleRow) -> None:
        values = row.values
        identity = values[holder]
        grants = by_spelling.get(identity)
        if grants is None:
            grants = by_spelling[identity] = self._grants_of(kind, identity, row)
        resources = values.get("resources") or []
        apply = values.get("apply_to_application")
        if not resources and apply is False:
            self.warnings.append(Warning_(
                "grant applies to neither the application nor any resource; it grants nothing",
                ref=row.ref, changes_payload=True))
            return
        if what == "role":
            properties = row.properties
            if properties:
                for name, value in properties.items():
                    self._type_seen("role_assignments", name, value, _declared(row, name))
            elif len(resources) == 1:
                # The common grant row (one resource, no properties): `_role` inlined, one
                # call less per row of a million.
                role = values["role"]
                lowered = self.lowered
                entry = grants.roles.get(lowered.get(role) or self._key(role))
                if entry is not None and type(entry[2]) is list \
                        and len(entry[2]) < SMALL_TARGETS:
                    if apply is not None:
                        entry[1] = apply
                    target = resources[0]
                    lower = lowered.get(target) or self._key(target)
                    targets = entry[2]
                    if lower not in targets:
                        targets.append(lower)
                    return
            self._role(grants, values["role"], resources, True if not resources else apply,
                       properties)
        else:
            self._permission(grants, values["permission"], resources, apply)

    def _key(self, reference: str) -> str:
        # One shared lower-cased string per distinct resource reference: a million grant rows
        # name the same few thousand resources, so each string is stored once.
        lower = self.lowered.get(reference)
        if lower is None:
            lower = self.lowered[reference] = reference.lower()
            self.spelling.setdefault(lower, reference)
        return lower

    def _targets(self, targets: list[str] | dict[str, None], resources: list[str]
                 ) -> list[str] | dict[str, None]:
        lowered = self.lowered
        for r in resources:
            lower = lowered.get(r) or self._key(r)
            if lower not in targets:
                if type(targets) is list:
                    targets.append(lower)
                    if len(targets) > SMALL_TARGETS:
                        targets = dict.fromkeys(targets)
                else:
                    targets[lower] = None  # type: ignore[call-overload]  # the dict form
        return targets

    def _role(self, grants: _Grants, role: str, resources: list[str], apply: bool | None,
              properties: Mapping[str, Any]) -> None:
        lower = self.lowered.get(role) or self._key(role)
        entry = grants.roles.get(lower)
        if entry is None:
            if grants.roles is _UNUSED:
                grants.roles = {}
            entry = grants.roles[lower] = [role, apply, [], None]
        elif apply is not None:
            entry[1] = apply
        if resources:
            targets = entry[2]
            if len(resources) == 1 and type(targets) is list and len(targets) < SMALL_TARGETS:
                # The common grant row (one resource): `_targets` inlined.
                target = resources[0]
                lower = self.lowered.get(target) or self._key(target)
                if lower not in targets:
                    targets.append(lower)
            else:
                entry[2] = self._targets(targets, resources)
        if properties:
            entry[3] = {**(entry[3] or {}), **properties}

    def _permission(self, grants: _Grants, permission: str, resources: list[str],
                    apply: bool | None) -> None:
        lower = permission.lower()
        if not resources or apply:
            if grants.app is _UNUSED:
                grants.app = {}
            grants.app.setdefault(lower, permission)
        if resources:
            entry = grants.resources.get(lower)
            if entry is None:
                if grants.resources is _UNUSED:
                    grants.resources = {}
                entry = grants.resources[lower] = [permission, []]
            entry[1] = self._targets(entry[1], resources)

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
        scope, problems = scope_drafts(list(self.drafts.get("resources", {}).values()))
        self.problems += problems
        sections = {name: tuple(self._entity(name, d) for d in drafts.values())
                    for name, drafts in self.drafts.items()}
        uses_ids = self._uses_ids(sections)
        resource_keys = _resource_keys(sections.get("resources", ()), uses_ids.get("resources"))
        resource_keys = {**{own: resource_keys[path.lower()] for own, path in
                            scope.aliases.items() if path.lower() in resource_keys},
                         **resource_keys}
        self.problems += ambiguous_references(
            scope, ((g.ref, [t for e in g.roles.values() for t in e[2]]
                     + [t for e in g.resources.values() for t in e[1]])
                    for g in self.grants.values()), resource_keys, self.spelling)
        grants, matched = self._identity_grants(sections, resource_keys)
        return EntitySet(
            template=self.template, header=self.header or _empty_header(self.template),
            sections=sections, grants=grants,
            property_types=self._property_types(), resource_keys=resource_keys,
            uses_ids=uses_ids, records=dict(records), skipped=skipped,
            problems=(*self.problems, *self._dangling_grants(matched)),
            unchecked_refs={k: frozenset(v) for k, v in self.unchecked.items()})

    def _entity(self, section: str, draft: _Draft, row: RuleRow | None = None) -> Entity:
        if row is not None:
            draft.values = dict(row.values)
            draft.properties = dict(row.properties)
            for name, value in row.properties.items():
                self._type_seen(section, name, value, _declared(row, name))
            draft.tags = dict.fromkeys(row.tags)
        return Entity(section, draft.key, draft.values, draft.properties or {},
                      tuple(draft.tags or ()),
                      draft.ref, draft.rule.span)

    def _attach_assignments(self) -> None:
        for row in self.assignments:
            values = row.values
            holder = "user" if "user" in values else "group"
            draft = self.drafts[f"{holder}s"].get(values[holder].lower())
            if draft is None:
                self.errors.append(DataError(
                    f"app assignment `{values.get('id')}` names {holder} `{values[holder]}` "
                    f"that no `{holder}s` rule defines", row.ref))
                continue
            for name, value in row.properties.items():
                self._type_seen("app_assignments", name, value, _declared(row, name))
            assignment = {"id": values["id"], "name": values["name"], "app_id": values["app_id"],
                          "custom_properties": dict(row.properties)}
            current = draft.values.setdefault("app_assignments", [])
            if all(a["id"] != assignment["id"] for a in current):
                current.append(assignment)

    def _link_access_creds(self) -> None:
        users = self.drafts.get("users", {})
        for cred in self.drafts.get("access_creds", {}).values():
            owner = cred.values.get("user")
            user = users.get(str(owner).lower()) if owner is not None else None
            if user is not None:
                self._union(user, "access_creds", [cred.key])

    def _uses_ids(self, sections: Mapping[str, tuple[Entity, ...]]) -> dict[str, bool]:
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

    def _identity_grants(self, sections: Mapping[str, tuple[Entity, ...]],
                         resource_keys: Mapping[str, str]
                         ) -> tuple[tuple[IdentityGrants, ...], int]:
        """The identities' grants in the SDK's order, and how many of them an entity defines
        (`_dangling_grants` needs that count only)."""
        out = []
        matched = 0
        # A reference to a resource no rule defines keeps its spelling (and is reported).
        final_keys = {**self.spelling, **resource_keys}
        for kind, identity, grants in self._grants_in_order(sections):
            matched += kind != "idp"
            frozen = _freeze_grants(grants, identity, final_keys)
            if frozen.app_permissions or frozen.resource_permissions or frozen.role_assignments:
                out.append(frozen)
            # The draft is no longer needed; releasing it now keeps the peak low.
            grants.roles = _UNUSED
            grants.resources = _UNUSED
        return tuple(out), matched

    def _grants_in_order(self, sections: Mapping[str, tuple[Entity, ...]]
                         ) -> Iterator[tuple[str, str, _Grants]]:
        """The SDK's order: local users, local groups, IdP identities, access credentials."""
        for section, kind in GRANT_IDENTITIES.values():
            if section is None:  # IdP identities: in the order grants first named them
                for (grant_kind, _), grants in self.grants.items():
                    if grant_kind == kind:
                        yield kind, grants.identity, grants
                continue
            for entity in sections.get(section, ()):
                held = self.grants.get((kind, entity.key.lower()))
                if held is not None:
                    yield kind, entity.key, held

    def _dangling_grants(self, matched: int) -> list[PayloadError]:
        """A grant of an identity no rule defines: looked for only when the grants the entities
        matched (in `_identity_grants`) are fewer than the grants."""
        if matched == sum(kind != "idp" for kind, _ in self.grants):
            return []
        out = []
        for (kind, lower), grants in self.grants.items():
            if kind == "idp":
                continue
            section = next(s for s, k in GRANT_IDENTITIES.values() if k == kind)
            if lower not in self.drafts[str(section)]:
                out.append(PayloadError(
                    f"a grant names {kind.replace('local_', '')} `{grants.identity}` that no "
                    f"`{section}` rule defines", "/identity_to_permissions", grants.ref))
        return out


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _declared(row: RuleRow, name: str) -> str | None:
    return next((p.type for p in row.rule.properties if p.name == name), None)




def _freeze_grants(grants: _Grants, identity: str, final_keys: Mapping[str, str]
                   ) -> IdentityGrants:
    def keys(targets: list[str] | dict[str, None]) -> list[str]:
        # The draft's list of lower-cased targets becomes the list of payload keys in place:
        # a million grants' keys are not copied (the draft is released right after).
        if type(targets) is not list:
            targets = list(targets)
        targets[:] = map(final_keys.__getitem__, targets)
        return targets

    roles = tuple(
        RoleAssignment(name, apply, keys(targets), props or {})
        for name, apply, targets, props in grants.roles.values() if apply or targets)
    return IdentityGrants(
        identity, grants.kind, tuple(grants.app.values()),
        tuple((name, keys(targets)) for name, targets in grants.resources.values()),
        roles, grants.ref)


def _resource_keys(resources: tuple[Entity, ...], uses_ids: bool | None) -> dict[str, str]:
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
