"""What a run would change: the difference between two payloads of one template.

Three uses, one model of a payload's entities (`KINDS`, per template):

* `diff_payloads` counts entities added, removed and changed per kind (`oaamap plan`);
* `access_changes` tells who gains and loses which access, in plain words;
* `incremental_payload` writes the difference as a Veza incremental payload
  (`"incremental_change": true` and an `operation` on each changed entity, as Veza's OAA
  documentation describes them), or says why it cannot (`NotIncremental`: then a full push).

The entity kinds and the identifier of each (compared case-insensitively, as Veza does) are the
ones Veza's documentation lists for incremental updates; where the documentation is silent (HRIS
payloads, IdP apps) the same rules are applied to the template's entity lists.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KINDS",
    "ROOTS",
    "AccessChange",
    "KindDiff",
    "NotIncremental",
    "PayloadDiff",
    "access_changes",
    "canonical",
    "diff_payloads",
    "entity_key",
    "incremental_payload",
    "operation_count",
]

OPERATION = "operation"
TAGS = "tags"


@dataclass(frozen=True)
class Kind:
    """One list of entities in a payload.

    Attributes:
        label: how plans name the kind (`local_users`, `resources`).
        key: the fields that identify an entity; `a|b` means `a`, or `b` when `a` is absent.
        children: nested entity lists: field -> kind id in `KINDS`.
        resource_field: a list of resource references changed with `add_resource` and
            `delete_resource` (role assignments, application permissions).
        implicit: the entity exists through its children (an `identity_to_permissions` entry):
            it has no operation of its own and disappears when its lists are empty.
    """

    label: str
    key: tuple[str, ...]
    children: Mapping[str, str] = field(default_factory=dict)
    resource_field: str | None = None
    implicit: bool = False


_APP_CHILDREN = {name: name for name in (
    "local_users", "local_groups", "local_roles", "local_access_creds", "local_agents",
    "local_models")}

KINDS: dict[str, Kind] = {
    "applications": Kind("applications", ("name",),
                         {**_APP_CHILDREN, "resources": "resources"}),
    **{name: Kind(name, ("id|name",)) for name in _APP_CHILDREN},
    "resources": Kind("resources", ("id|name",), {"sub_resources": "resources"}),
    "permissions": Kind("permissions", ("name",)),
    "identity_to_permissions": Kind(
        "identity_to_permissions", ("identity", "identity_type"),
        {"role_assignments": "role_assignments",
         "application_permissions": "application_permissions"}, implicit=True),
    "role_assignments": Kind("role_assignments", ("application", "role"),
                             resource_field="resources"),
    "application_permissions": Kind("application_permissions",
                                    ("application", "permission", "apply_to_application"),
                                    resource_field="resources"),
    "domains": Kind("domains", ("name",)),
    "idp_users": Kind("users", ("identity|name",)),
    "idp_groups": Kind("groups", ("identity|name",)),
    "idp_apps": Kind("apps", ("id|name",)),
    "employees": Kind("employees", ("id",)),
    "hris_groups": Kind("groups", ("id",)),
}

# The entity lists at the top of each template's payload; every other top-level field (names,
# types, custom_property_definition, the HRIS system) is the payload's header.
ROOTS: dict[str, dict[str, str]] = {
    "application": {"applications": "applications", "permissions": "permissions",
                    "identity_to_permissions": "identity_to_permissions"},
    "identity_provider": {"domains": "domains", "users": "idp_users", "groups": "idp_groups",
                          "apps": "idp_apps"},
    "hris": {"employees": "employees", "groups": "hris_groups"},
}


class NotIncremental(Exception):
    """The change cannot be sent as an incremental payload (a full push is needed): `reason`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _field_value(item: Mapping[str, Any], spec: str) -> Any:
    for name in spec.split("|"):
        if name in item:
            return item[name]
    return None


def entity_key(kind: Kind, item: Mapping[str, Any]) -> tuple[str, ...]:
    """The identifier of an entity of `kind`, lower-cased (Veza compares ids that way)."""
    return tuple("" if (v := _field_value(item, spec)) is None else str(v).lower()
                 for spec in kind.key)


def _key_fields(kind: Kind, item: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in kind.key:
        for name in spec.split("|"):
            if name in item:
                out[name] = item[name]
                break
    return out


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _index(kind: Kind, items: Iterable[dict[str, Any]], strict: bool
           ) -> dict[tuple[str, ...], dict[str, Any]]:
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for item in items:
        key = entity_key(kind, item)
        if strict and key in found:
            raise NotIncremental(f"two {kind.label} share the identifier {'/'.join(key)}")
        found[key] = item
    return found


def _scalars(kind: Kind, item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items()
            if k not in kind.children and k not in (TAGS, OPERATION)}


def _header(template: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in ROOTS[template]}


# -- counting changes (plan) ------------------------------------------------------------------


@dataclass
class KindDiff:
    """Entities of one kind added, removed and changed (their identifiers, as written)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class PayloadDiff:
    """The difference between the last pushed payload and a new one."""

    kinds: dict[str, KindDiff]
    header_changed: list[str]
    access: list[AccessChange]

    @property
    def changed(self) -> bool:
        """True when the payloads differ in anything Veza keeps."""
        return bool(self.header_changed or any(self.kinds.values()) or self.access)

    def as_json(self) -> dict[str, Any]:
        """The plan as JSON data (`oaamap plan --json`)."""
        return {
            "changes": self.changed,
            "header_changed": self.header_changed,
            "kinds": {k: {"added": d.added, "removed": d.removed, "changed": d.changed}
                      for k, d in self.kinds.items() if d},
            "access": [{"change": a.sign, "identity": a.identity, "access": a.access,
                        "text": str(a)} for a in self.access],
        }


def _shown_key(kind: Kind, item: Mapping[str, Any]) -> str:
    return "/".join(str(v) for v in _key_fields(kind, item).values()) or "?"


def _walk(template: str, payload: Mapping[str, Any]
          ) -> Iterator[tuple[str, tuple[Any, ...], dict[str, Any], Kind, str]]:
    """Every entity of a payload: (kind label, path key, entity, kind, shown identifier)."""

    def walk(kind_id: str, items: Any, parent: tuple[Any, ...], owner: str
             ) -> Iterator[tuple[str, tuple[Any, ...], dict[str, Any], Kind, str]]:
        kind = KINDS[kind_id]
        for item in _items(items):
            path = (*parent, kind_id, entity_key(kind, item))
            shown = _shown_key(kind, item)
            if not kind.implicit:
                yield kind.label, path, item, kind, f"{owner}{shown}"
            for child_field, child in kind.children.items():
                yield from walk(child, item.get(child_field), path,
                                f"{shown}: " if kind.implicit else "")

    for root_field, kind_id in ROOTS[template].items():
        yield from walk(kind_id, payload.get(root_field), (), "")


def _comparable(kind: Kind, item: Mapping[str, Any]) -> Any:
    own = _scalars(kind, item)
    own[TAGS] = sorted(json.dumps(t, sort_keys=True) for t in _items(item.get(TAGS)))
    return canonical(own)


def diff_payloads(template: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> PayloadDiff:
    """Entities added, removed and changed per kind, and the access changes, from old to new."""
    before = {path: (label, item, kind, shown)
              for label, path, item, kind, shown in _walk(template, old)}
    after = {path: (label, item, kind, shown)
             for label, path, item, kind, shown in _walk(template, new)}
    kinds: dict[str, KindDiff] = {}
    for path, (label, _item, _kind, shown) in before.items():
        if path not in after:
            kinds.setdefault(label, KindDiff()).removed.append(shown)
    for path, (label, item, kind, shown) in after.items():
        found = before.get(path)
        if found is None:
            kinds.setdefault(label, KindDiff()).added.append(shown)
        elif _comparable(kind, found[1]) != _comparable(kind, item):
            kinds.setdefault(label, KindDiff()).changed.append(shown)
    order = [kind.label for kind in KINDS.values()]
    kinds = dict(sorted(kinds.items(), key=lambda item: order.index(item[0])))
    old_header, new_header = _header(template, old), _header(template, new)
    # Against nothing (a first push), the header is not a change: everything is new.
    header = sorted(k for k in {*old_header, *new_header}
                    if canonical(old_header.get(k)) != canonical(new_header.get(k))) if old else []
    return PayloadDiff(kinds, header, access_changes(template, old, new))


# -- access in plain words --------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class AccessChange:
    """`+ alice: role Admin on repo api` or `- bob: loses role Reader (app-wide)`."""

    identity: str
    access: str
    sign: str

    def __str__(self) -> str:
        verb = "" if self.sign == "+" else "loses "
        return f"{self.sign} {self.identity}: {verb}{self.access}"


def _resource_names(resources: Any, prefix: str = "", into: dict[str, str] | None = None
                    ) -> dict[str, str]:
    into = {} if into is None else into
    for r in _items(resources):
        own = str(r.get("id") or r.get("name"))
        path = f"{prefix}.{own}" if prefix else own
        into[path.lower()] = f"{r.get('resource_type', 'resource')} {r.get('name', own)}"
        _resource_names(r.get("sub_resources"), path, into)
    return into


def _where(targets: Any, names: Mapping[str, str], app_wide: bool) -> list[str]:
    places = [f"on {names.get(str(t).lower(), str(t))}" for t in targets or []]
    return (["(app-wide)"] if app_wide else []) + places


def _application_access(payload: Mapping[str, Any]) -> set[tuple[str, str]]:
    apps = _items(payload.get("applications"))
    names: dict[str, str] = {}
    people: dict[tuple[str, str], str] = {}
    roles: dict[str, str] = {}
    for app in apps:
        _resource_names(app.get("resources"), into=names)
        for kind, section in (("local_user", "local_users"), ("local_group", "local_groups")):
            for e in _items(app.get(section)):
                people[(kind, str(e.get("id") or e.get("name")).lower())] = str(e.get("name"))
        for role in _items(app.get("local_roles")):
            roles[str(role.get("id") or role.get("name")).lower()] = str(role.get("name"))
    found: set[tuple[str, str]] = set()
    for entry in _items(payload.get("identity_to_permissions")):
        kind = str(entry.get("identity_type"))
        identity = str(entry.get("identity"))
        who = people.get((kind, identity.lower()), identity)
        if kind == "local_group":
            who = f"group {who}"
        for ra in _items(entry.get("role_assignments")):
            role_name = roles.get(str(ra.get("role")).lower(), str(ra.get("role")))
            for place in _where(ra.get("resources"), names, bool(ra.get("apply_to_application"))):
                found.add((who, f"role {role_name} {place}"))
        for ap in _items(entry.get("application_permissions")):
            for place in _where(ap.get("resources"), names,
                                bool(ap.get("apply_to_application"))):
                found.add((who, f"permission {ap.get('permission')} {place}"))
    for app in apps:
        for user in _items(app.get("local_users")):
            for group in user.get("groups") or []:
                found.add((str(user.get("name")), f"membership of group {group}"))
    return found


def _member_access(payload: Mapping[str, Any], people: str, label: str = "name"
                   ) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for person in _items(payload.get(people)):
        for group in person.get("groups") or []:
            name = group.get("identity") or group.get("id") if isinstance(group, dict) else group
            found.add((str(person.get(label)), f"membership of group {name}"))
        if person.get("manager_id"):
            found.add((str(person.get(label)), f"manager {person['manager_id']}"))
    return found


_ACCESS: dict[str, Callable[[Mapping[str, Any]], set[tuple[str, str]]]] = {
    "application": _application_access,
    "identity_provider": lambda p: _member_access(p, "users"),
    "hris": lambda p: _member_access(p, "employees"),
}


def access_changes(template: str, old: Mapping[str, Any], new: Mapping[str, Any]
                   ) -> list[AccessChange]:
    """Who gains (`+`) and loses (`-`) which access between two payloads, sorted by identity."""
    read = _ACCESS.get(template)
    if read is None:
        return []
    before, after = read(old), read(new)
    changes = [AccessChange(who, what, "+") for who, what in after - before]
    changes += [AccessChange(who, what, "-") for who, what in before - after]
    return sorted(changes, key=lambda c: (c.identity.lower(), c.access, c.sign))


# -- the incremental payload ------------------------------------------------------------------


def _tag_set(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _items(item.get(TAGS))


def _minus(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {_token(t) for t in b}
    return [t for t in a if _token(t) not in seen]


def _token(value: Any) -> str:
    return json.dumps(canonical(value), sort_keys=True)


def _add(kind: Kind, item: dict[str, Any]) -> list[dict[str, Any]]:
    if kind.implicit:
        entry = _key_fields(kind, item)
        for child_field, child in kind.children.items():
            children = _items(item.get(child_field))
            if children:
                entry[child_field] = [op for c in children for op in _add(KINDS[child], c)]
        return [entry]
    return [{**copy.deepcopy(item), OPERATION: "add"}]


def _delete(kind: Kind, item: dict[str, Any]) -> dict[str, Any]:
    entry = _key_fields(kind, item)
    if kind.implicit:
        for child_field, child in kind.children.items():
            children = _items(item.get(child_field))
            if children:
                entry[child_field] = [_delete(KINDS[child], c) for c in children]
        return entry
    return {**entry, OPERATION: "delete"}


def _resource_ops(kind: Kind, old: dict[str, Any], new: dict[str, Any]
                  ) -> list[dict[str, Any]] | None:
    """`delete_resource`/`add_resource` entries when only the resource list changed."""
    name = kind.resource_field
    if name is None:
        return None
    before, after = old.get(name), new.get(name)
    rest_old = {k: v for k, v in _scalars(kind, old).items() if k != name}
    rest_new = {k: v for k, v in _scalars(kind, new).items() if k != name}
    if not (isinstance(before, list) and isinstance(after, list) and before and after
            and canonical(rest_old) == canonical(rest_new)):
        return None
    removed = [r for r in before if r not in after]
    added = [r for r in after if r not in before]
    ops = []
    if removed:
        ops.append({**_key_fields(kind, new), name: removed, OPERATION: "delete_resource"})
    if added:
        ops.append({**_key_fields(kind, new), name: added, OPERATION: "add_resource"})
    return ops


def _change(kind: Kind, old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    if not kind.implicit and set(old) != set(new):
        # A field that disappears cannot be removed by `modify` (it changes what it is given):
        # the entity is deleted and added again, as Veza's own example does.
        return [_delete(kind, old), *_add(kind, new)]
    child_ops: dict[str, list[dict[str, Any]]] = {}
    for child_field, child in kind.children.items():
        ops = _diff_list(KINDS[child], old.get(child_field), new.get(child_field))
        if ops:
            child_ops[child_field] = ops
    if kind.implicit:
        return [{**_key_fields(kind, new), **child_ops}] if child_ops else []
    out: list[dict[str, Any]] = []
    removed, added = _minus(_tag_set(old), _tag_set(new)), _minus(_tag_set(new), _tag_set(old))
    if removed:
        out.append({**_key_fields(kind, new), TAGS: removed, OPERATION: "delete_tag"})
    if added:
        out.append({**_key_fields(kind, new), TAGS: added, OPERATION: "add_tag"})
    scalars_changed = canonical(_scalars(kind, old)) != canonical(_scalars(kind, new))
    resource_ops = _resource_ops(kind, old, new) if scalars_changed else None
    if resource_ops is not None:
        scalars_changed = False
        out.extend(resource_ops)
    if scalars_changed:
        out.append({**copy.deepcopy(_scalars(kind, new)), **child_ops, OPERATION: "modify"})
    elif child_ops:
        # No operation: the entity only locates the changes of its children.
        out.append({**copy.deepcopy(_scalars(kind, new)), **child_ops})
    return out


def _diff_list(kind: Kind, old_items: Any, new_items: Any) -> list[dict[str, Any]]:
    old = _index(kind, _items(old_items), strict=True)
    new = _index(kind, _items(new_items), strict=True)
    ops = [_delete(kind, item) for key, item in old.items() if key not in new]
    for key, item in new.items():
        before = old.get(key)
        ops.extend(_add(kind, item) if before is None else _change(kind, before, item))
    return ops


def incremental_payload(template: str, old: Mapping[str, Any], new: Mapping[str, Any]
                        ) -> dict[str, Any]:
    """The incremental payload that turns `old` (what Veza holds) into `new`.

    It carries `new`'s header (names, types, custom property definitions) and, per entity list,
    only the entities to add, modify or delete, the tags to add or delete and the resources
    to add to or delete from an assignment.

    Raises:
        NotIncremental: the template has no incremental model, the header changed (property
            definitions, names, the HRIS system), or two entities share an identifier.
    """
    if template not in ROOTS:
        raise NotIncremental(f"no incremental update for the `{template}` template")
    old_header, new_header = _header(template, old), _header(template, new)
    if canonical(old_header) != canonical(new_header):
        changed = sorted(k for k in {*old_header, *new_header}
                         if canonical(old_header.get(k)) != canonical(new_header.get(k)))
        raise NotIncremental(f"the payload's {', '.join(changed)} changed")
    out: dict[str, Any] = {**copy.deepcopy(new_header), "incremental_change": True}
    for root_field, kind_id in ROOTS[template].items():
        ops = _diff_list(KINDS[kind_id], old.get(root_field), new.get(root_field))
        if ops:
            out[root_field] = ops
    return out


def operation_count(template: str, incremental: Mapping[str, Any]) -> int:
    """The number of entries with an operation in an incremental payload (its size in changes)."""

    def count(value: Any) -> int:
        if isinstance(value, dict):
            return (OPERATION in value) + sum(count(v) for v in value.values())
        if isinstance(value, list):
            return sum(count(v) for v in value)
        return 0

    return sum(count(incremental.get(root)) for root in ROOTS.get(template, {}))


def canonical(value: Any) -> Any:
    """`value` with the order of lists removed, for comparing what Veza keeps.

    Veza gives no meaning to the order of entities, tags or resource references; an incremental
    update appends what it adds, so the order differs from a full push of the same payload.
    """
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value
