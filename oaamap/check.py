"""Stage 8: the payload against its JSON Schema and Veza's rules; each violation with its row.

Checked before anything leaves the machine:
- the template's payload schema, entity by entity as the payload streams out (`SchemaCheck`):
  required and unknown keys, types, lengths (names and ids at most 512 characters, other strings at
  most 4096), property-name and tag-character patterns, enumerations;
- on the entity model (`check_entities`): property values of the declared type, references to
  groups, roles, permissions, resources, managers, departments and apps that exist, no cycles in
  nested groups, roles or resources.
Timestamps and required fields are checked where they are read (stage 5), with their row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from .errors import PayloadError, RowRef
from .expressions import RFC3339
from .language import checked_references, valid_property_name
from .model import Entity, EntitySet, Granted, resource_tree
from .packed import EntityPacker, PackedEntities, entity_keys, entity_values
from .payload_schema import PayloadValidator

__all__ = ["SchemaCheck", "check_entities"]

MAX_TEXT = 4096
MAX_REPORTED = 1000
TYPE_CHECKS = {
    "STRING": lambda v: isinstance(v, str),
    "NUMBER": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "BOOLEAN": lambda v: isinstance(v, bool),
    "STRING_LIST": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "TIMESTAMP": lambda v: isinstance(v, str) and RFC3339.match(v) is not None,
}
# Payload list that holds each section's entities (for JSON pointers).
POINTERS = {
    "application": {"users": "/applications/0/local_users",
                    "groups": "/applications/0/local_groups",
                    "roles": "/applications/0/local_roles",
                    "access_creds": "/applications/0/local_access_creds",
                    "resources": "/applications/0/resources", "permissions": "/permissions"},
    "identity_provider": {"users": "/users", "groups": "/groups", "apps": "/apps"},
    "hris": {"employees": "/employees", "groups": "/groups"},
}


def _pointer(es: EntitySet, section: str, index: int) -> str:
    base = POINTERS[es.template].get(section, f"/{section}")
    return f"{base}/{index}"






def _any(value: Any) -> bool:  # an undeclared property: any value
    return True


def _invalid(value: Any) -> bool:  # a property whose name is invalid
    return False


class _PropertyRules:
    """What property checks need, computed once per scope and per name rather than per entity:
    each scope's declared types by lower-cased name, and each name's validity."""

    def __init__(self, types: Mapping[str, Mapping[str, str]]) -> None:
        self.types = types
        self.scopes: dict[str, dict[str, str]] = {}
        self.names: dict[str, bool] = {}
        self.checks: dict[str, dict[str, Callable[[Any], bool]]] = {}  # scope -> name -> test

    def declared(self, scope: str) -> dict[str, str]:
        """Declared types of a scope; names are matched case-insensitively, as the SDK's
        set_property does."""
        found = self.scopes.get(scope)
        if found is None:
            found = self.scopes[scope] = {n.lower(): t
                                          for n, t in self.types.get(scope, {}).items()}
        return found

    def fine(self, entity: Entity, scope: str) -> bool:
        """Whether `_check_properties` would find nothing (the common case, tested first)."""
        checks = self.checks.get(scope)
        if checks is None:
            checks = self.checks[scope] = {}
        for name, value in entity.properties.items():
            check = checks.get(name)
            if check is None:
                check = checks[name] = self._check(scope, name)
            if check is not _any and (check is _invalid or (value is not None
                                                             and not check(value))):
                return False
            if isinstance(value, str) and len(value) > MAX_TEXT:
                return False
        return True

    def _check(self, scope: str, name: str) -> Callable[[Any], bool]:
        """The value test of a property of a scope: `_invalid` for an invalid name, `_any` for
        an undeclared one, else its declared type's test."""
        if not self.valid_name(name):
            return _invalid
        kind = self.declared(scope).get(name.lower())
        return TYPE_CHECKS[kind] if kind else _any

    def valid_name(self, name: str) -> bool:
        """The SDK's name rule (a regex), once per distinct name."""
        valid = self.names.get(name)
        if valid is None:
            valid = self.names[name] = valid_property_name(name)
        return valid


def _check_properties(entity: Entity, scope: str, rules: _PropertyRules,
                      pointer: str) -> Iterator[PayloadError]:
    if not entity.properties:
        return
    declared = rules.declared(scope)
    for name, value in entity.properties.items():
        if not rules.valid_name(name):
            yield PayloadError(f"property name `{name}` is invalid (the SDK checks "
                               "^[a-z][a-z_]*$ on the lower-cased name)", pointer, entity.ref)
        kind = declared.get(name.lower())
        if kind and value is not None and not TYPE_CHECKS[kind](value):
            yield PayloadError(f"property `{name}` of {entity.section} `{entity.key}` is "
                               f"declared {kind} but is `{value}`", pointer, entity.ref)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            yield PayloadError(f"property `{name}` is longer than {MAX_TEXT} characters",
                               pointer, entity.ref)








def _references(es: EntitySet) -> Iterator[PayloadError]:
    keys: dict[str, set[str]] = {}  # the lower-cased keys of each section that is referred to

    def existing(target: str) -> set[str]:
        if target not in keys:
            keys[target] = {k.lower() for k in entity_keys(es.sections.get(target, ()))}
        return keys[target]

    # The references that exist, per target section, as written: a million entities name the
    # same few thousand groups, each looked up (and lower-cased) once.
    known: dict[str, set[Any]] = {}
    for section, items in es.sections.items():
        references = checked_references(es.template, section)
        if not references:
            continue
        # per reference: the field, its target, the names known to exist, the unchecked ones
        plans = [(key, target, known.setdefault(target, set()), existing(target),
                  es.unchecked_refs.get(f"{section}.{key}", frozenset()))
                 for key, target in references]
        noted = items.noted if isinstance(items, PackedEntities) else None
        if noted is not None and all(_names_exist(noted.referenced[key], seen, defined, unchecked)
                                     for key, _, seen, defined, unchecked in plans):
            continue  # every name the packed entities use exists: no entity is decoded
        for index, values in enumerate(entity_values(items)):
            for key, target, seen, defined, unchecked in plans:
                value = values.get(key)
                if value is None:
                    continue
                for name in value if isinstance(value, list) else [value]:
                    if name in seen:
                        continue
                    lower = str(name).lower()
                    if lower in defined:
                        seen.add(name)
                    elif lower not in unchecked:
                        entity = items[index]
                        yield PayloadError(
                            f"{section} `{entity.key}` names {key} `{name}` but no "
                            f"`{target}` rule defines it", _pointer(es, section, index),
                            entity.ref)


def _names_exist(names: Iterable[Any], seen: set[Any], defined: set[str],
                 unchecked: frozenset[str]) -> bool:
    """Whether every name is known, defined (lower-cased) or allowed undefined."""
    return all(name in seen or str(name).lower() in defined or str(name).lower() in unchecked
               for name in names)


def _grant_references(es: EntitySet) -> Iterator[PayloadError]:
    roles = {e.key.lower() for e in es.sections.get("roles", ())}
    permissions = {e.key.lower() for e in es.sections.get("permissions", ())}
    resources = set(es.resource_keys.values())
    if _grants_all_known(es, roles, permissions, resources):
        return
    for index, grants in enumerate(es.grants):
        pointer = f"/identity_to_permissions/{index}"
        who = f"{grants.identity_type} `{grants.identity}`"
        for name in [*grants.app_permissions, *(p for p, _ in grants.resource_permissions)]:
            if name.lower() not in permissions:
                yield PayloadError(f"{who} is granted permission `{name}` that no `permissions` "
                                   "rule defines", pointer, grants.ref)
        for ra in grants.role_assignments:
            if ra.role.lower() not in roles:
                yield PayloadError(f"{who} is granted role `{ra.role}` that no `roles` rule "
                                   "defines", pointer, grants.ref)
        groups = [keys for _, keys in grants.resource_permissions]
        groups += [ra.resources for ra in grants.role_assignments]
        for keys in groups:
            if resources.issuperset(keys):  # the common case, checked in C
                continue
            for key in keys:
                if key not in resources:
                    yield PayloadError(f"{who} is granted access to resource `{key}` that no "
                                       "`resources` rule defines", pointer, grants.ref)


def _grants_all_known(es: EntitySet, roles: set[str], permissions: set[str],
                      resources: set[str]) -> bool:
    """Whether every granted role, permission and resource exists: each distinct name checked
    once (the grants name a few roles a million times); only then is no grant walked again."""
    granted = es.granted if es.granted is not None else _granted(es)
    return (roles.issuperset(r.lower() for r in granted.roles)
            and permissions.issuperset(p.lower() for p in granted.permissions)
            and resources.issuperset(granted.resource_keys))


def _granted(es: EntitySet) -> Granted:
    """The names an EntitySet's grants use, collected from the grants themselves."""
    roles: set[str] = set()
    permissions: set[str] = set()
    keys: set[str] = set()
    for grants in es.grants:
        permissions.update(grants.app_permissions)
        for name, targets in grants.resource_permissions:
            permissions.add(name)
            keys.update(targets)
        for assignment in grants.role_assignments:
            roles.add(assignment.role)
            keys.update(assignment.resources)
    return Granted(frozenset(roles), frozenset(permissions), frozenset(keys))


def _cycles(es: EntitySet, section: str, field_name: str) -> Iterator[PayloadError]:
    items = es.sections.get(section, ())
    edges = {e.key.lower(): [str(x).lower() for x in _as_list(e.values.get(field_name))]
             for e in items}
    by_key = {e.key.lower(): (i, e) for i, e in enumerate(items)}
    state: dict[str, int] = {}
    for start in edges:
        if state.get(start):
            continue
        stack = [(start, iter(edges[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                cycle = [*path[path.index(child):], child]
                index, entity = by_key[child]
                names = " -> ".join(by_key[c][1].key for c in cycle)
                yield PayloadError(f"nested {section} form a cycle: {names}",
                                   _pointer(es, section, index), entity.ref)
            elif child in edges and not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(edges[child])))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _entity_checks(es: EntitySet) -> Iterator[PayloadError]:
    header_scope = {"application": "application", "identity_provider": "idp",
                    "hris": "system"}[es.template]
    rules = _PropertyRules(es.property_types)
    yield from _check_properties(es.header, header_scope, rules, "")
    for section, items in es.sections.items():
        noted = items.noted if isinstance(items, PackedEntities) else None
        if noted is not None and _packed_properties_fine(noted, section, rules):
            continue
        for index, entity in enumerate(items):
            if not entity.properties:
                continue
            scope = (f"resources:{entity.values.get('type', '')}" if section == "resources"
                     else section)
            if not rules.fine(entity, scope):
                yield from _check_properties(entity, scope, rules, _pointer(es, section, index))


# Declared types whose test a value's type alone decides.
_TYPED_BY_CLASS: dict[str, frozenset[type]] = {
    "STRING": frozenset({str}), "NUMBER": frozenset({int, float}), "BOOLEAN": frozenset({bool}),
}


def _packed_properties_fine(noted: EntityPacker, section: str, rules: _PropertyRules) -> bool:
    """Whether `_check_properties` would find nothing in any entity of a packed section, from what
    was noted as they were packed: valid names, no text too long, and value types that a
    declared type accepts (a type that needs the values, e.g. TIMESTAMP, says no)."""
    if noted.longest_text > MAX_TEXT:
        return False
    declared = rules.declared(section)
    for name, kinds in noted.property_kinds.items():
        if not rules.valid_name(name):
            return False
        kind = declared.get(name.lower())
        if kind is None:
            continue
        accepted = _TYPED_BY_CLASS.get(kind)
        if accepted is None or not kinds <= accepted | {type(None)}:
            return False
    return True


@lru_cache(maxsize=4)
def _validator(template: str) -> PayloadValidator:
    return PayloadValidator(template)


TAG_MESSAGES = {
    "key": "tag key `{}` has characters Veza rejects (letters, digits and `_` only)",
    "value": "tag value `{}` has characters Veza rejects (letters, digits, spaces and "
             "`_ , @ . -` only)",
}


def _friendlier(violation: Any) -> str:
    parts = violation.pointer.split("/")
    if len(parts) > 2 and parts[-3] == "tags" and "does not match" in violation.message:
        value = violation.message.split("`")[1]
        return TAG_MESSAGES[parts[-1]].format(value)
    return str(violation.message)


MAX_NAME = 512  # the payload schema's maxLength of names and identifiers
MAX_KEY = 4096  # and of resource keys (dotted paths)


def _identity_entry_valid(item: dict[str, Any]) -> bool:
    """An `identity_to_permissions` entry that `templates.application.identity_entry` built: its
    keys, types and enumerations are right by construction (strings from normalised values, the
    identity type from GRANT_IDENTITIES, booleans from bool()), so only string lengths are left;
    role assignment properties (names and values from the data) get the whole schema."""
    if len(item["identity"]) > MAX_NAME:
        return False
    for grant in item.get("application_permissions", ()):
        if len(grant["permission"]) > MAX_NAME or len(grant["application"]) > MAX_NAME:
            return False
        resources = grant.get("resources")
        if resources and max(map(len, resources)) > MAX_KEY:
            return False
    for assignment in item.get("role_assignments", ()):
        if "custom_properties" in assignment or len(assignment["role"]) > MAX_NAME or \
                len(assignment["application"]) > MAX_NAME:
            return False
        resources = assignment.get("resources")
        if resources and max(map(len, resources)) > MAX_KEY:
            return False
    return True


MAX_TEXT_VALUE = 4096  # timestamps and property values
_USER_STRINGS = {"name": MAX_NAME, "email": MAX_NAME, "id": MAX_NAME,
                 "created_at": MAX_TEXT_VALUE, "last_login_at": MAX_TEXT_VALUE,
                 "deactivated_at": MAX_TEXT_VALUE, "password_last_changed_at": MAX_TEXT_VALUE}
_USER_LISTS = frozenset({"identities", "groups", "access_creds"})
_USER_TYPED = frozenset({"is_active", "user_type"})  # a bool; an enum member (canonical())
_PROPERTY_NAMES: dict[str, bool] = {}


def _property_name_valid(name: str) -> bool:
    """The schema's `propertyNames` test of custom properties, once per distinct name."""
    valid = _PROPERTY_NAMES.get(name)
    if valid is None:
        valid = _PROPERTY_NAMES[name] = _validator("application").is_valid(
            {name: ""}, "custom_properties")
    return valid


def _local_user_valid(item: dict[str, Any]) -> bool:
    """A `local_users` entry that `templates.application.user` built from normalised values: its
    keys and types are right by construction (strings, lists of strings, a bool, an enum member),
    so string lengths and property names are left; tags, owners, a null in a list and property
    values other than strings get the whole schema."""
    for key, value in item.items():
        limit = _USER_STRINGS.get(key)
        if limit is not None:
            if len(value) > limit:
                return False
        elif key in _USER_LISTS:
            for text in value:
                if text.__class__ is not str or len(text) > MAX_NAME:
                    return False
        elif key == "custom_properties":
            for name, text in value.items():
                if text.__class__ is not str or len(text) > MAX_TEXT_VALUE or \
                        not _property_name_valid(name):
                    return False
        elif key not in _USER_TYPED:
            return False
    return True


def _grant_names_fit(es: EntitySet) -> bool:
    """Whether every role, permission and application name and every resource key the grants use
    fits the schema's lengths, and no role assignment has properties: then an identity entry has
    only its identity left to test (checked once here instead of per entry)."""
    granted = es.granted
    if granted is None or granted.properties or es.template != "application":
        return False
    app = str(es.header.values.get("name", ""))
    return (len(app) <= MAX_NAME and all(len(n) <= MAX_NAME for n in granted.roles)
            and all(len(n) <= MAX_NAME for n in granted.permissions)
            and all(len(k) <= MAX_KEY for k in granted.resource_keys))


def _identity_fits(item: dict[str, Any]) -> bool:
    """`_identity_entry_valid` when `_grant_names_fit`: the identity's length is all that is
    left."""
    return len(item["identity"]) <= MAX_NAME


# Payload definitions whose items the template builds with the right shape: a test of what
# construction cannot guarantee. False means "not known valid": the schema then decides (and
# names each violation).
CONSTRUCTED: dict[str, Callable[[dict[str, Any]], bool]] = {
    "identity_to_permission": _identity_entry_valid,
    "local_user": _local_user_valid,
}


class SchemaCheck:
    """Checks a payload against its template's JSON Schema while it is being serialised.

    The skeleton (the payload with its big lists empty) is checked whole; then each item of a big
    list is checked against its `$defs` entry as it streams past (`__call__` is the item hook).
    """

    def __init__(self, entities: EntitySet) -> None:
        self.entities = entities
        self.validator = _validator(entities.template)
        self.problems: list[PayloadError] = []
        self.constructed = dict(CONSTRUCTED)
        if _grant_names_fit(entities):
            self.constructed["identity_to_permission"] = _identity_fits

    def skeleton(self, skeleton_payload: Mapping[str, Any]) -> None:
        """Check the payload with its Lazy lists empty."""
        self._report(self.validator.errors(skeleton_payload))

    def __call__(self, items: list[dict[str, Any]], definition: str, pointer: str,
                 start: int) -> None:
        """Check a batch of a big list's items (`items[0]` is at `{pointer}/{start}`)."""
        constructed = self.constructed.get(definition)
        if constructed is not None and all(map(constructed, items)):
            return
        is_valid = self.validator.is_valid
        for offset, item in enumerate(items):
            if constructed is not None and constructed(item):
                continue
            if not is_valid(item, definition):
                self._report(self.validator.errors(item, definition,
                                                   f"{pointer}/{start + offset}"))

    def _report(self, violations: Iterator[Any]) -> None:
        for violation in violations:
            if len(self.problems) < MAX_REPORTED:
                self.problems.append(PayloadError(_friendlier(violation), violation.pointer,
                                                  _ref_at(self.entities, violation.pointer)))


def _resource_at(es: EntitySet, pointer: str) -> RowRef | None:
    """The RowRef of `/applications/0/resources/i/sub_resources/j/...` (tree order)."""
    level, children = resource_tree(es.sections.get("resources", ()))
    parts = pointer.split("/")[4:]
    found: Entity | None = None
    while parts and parts[0].isdigit() and int(parts[0]) < len(level):
        found = level[int(parts[0])]
        if len(parts) < 3 or parts[1] != "sub_resources":
            break
        level, parts = children.get(found.key.lower(), []), parts[2:]
    return found.ref if found is not None else None


def _ref_at(es: EntitySet, pointer: str) -> RowRef | None:
    if pointer.startswith("/applications/0/resources/"):
        return _resource_at(es, pointer)
    for section, base in POINTERS[es.template].items():
        if pointer.startswith(base + "/"):
            index = pointer[len(base) + 1:].split("/", 1)[0]
            items: Sequence[Entity] = es.sections.get(section, ())
            if index.isdigit() and int(index) < len(items):
                return items[int(index)].ref
    if pointer.startswith("/identity_to_permissions/"):
        index = pointer.split("/")[2]
        if index.isdigit() and int(index) < len(es.grants):
            return es.grants[int(index)].ref
    return None


def check_entities(entities: EntitySet) -> list[PayloadError]:
    """Every violation of Veza's rules in the entity model (capped at 1,000); the payload schema
    is checked by `SchemaCheck` as the payload is serialised.

    Returns:
        The violations, each with a JSON pointer and, where known, the source row.
    """
    checks = [_entity_checks(entities), _references(entities)]
    if entities.template == "application":
        checks += [_grant_references(entities), _cycles(entities, "groups", "groups"),
                   _cycles(entities, "roles", "roles"), _cycles(entities, "resources", "parent")]
    elif entities.template == "identity_provider":
        checks.append(_cycles(entities, "groups", "groups"))
    out: list[PayloadError] = []
    seen: set[str] = set()
    for check in checks:
        for problem in check:
            text = str(problem)
            if text not in seen:
                seen.add(text)
                out.append(problem)
            if len(out) >= MAX_REPORTED:
                return out
    return out
