"""The emulator's incremental updates: apply a payload with `"incremental_change": true`.

As Veza's OAA documentation describes them: a first push cannot be incremental; each entity to
change carries an `operation` (`add`, `modify`, `delete`; `add_tag`, `delete_tag` with only the
identifier and the tags; `add_resource`, `delete_resource` on assignments); an entity without an
operation only locates the changes of its children. The header fields the payload carries
(names, custom property definitions) replace the held ones. The result is validated as a full
payload would be, then held as the data source's payload.

Where the documentation is silent, the emulator chooses: `modify` replaces the fields it is
given and keeps the others; `add` of an existing entity, or any operation on a missing one, is
refused with a 400 naming the entity; identifiers compare case-insensitively.
"""

from __future__ import annotations

import copy
from typing import Any

from ..diff import KINDS, OPERATION, ROOTS, TAGS, Kind, canonical, entity_key
from .emulator_store import ApiError

__all__ = ["apply_incremental"]

_TAG_ONLY = frozenset({OPERATION, TAGS})


def _refuse(where: str, description: str) -> ApiError:
    return ApiError(400, "InvalidArgument", "Invalid incremental update", [(where, description)])


def _find(kind: Kind, items: list[dict[str, Any]], entry: dict[str, Any]) -> int | None:
    key = entity_key(kind, entry)
    for i, item in enumerate(items):
        if entity_key(kind, item) == key:
            return i
    return None


def _strip(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in entry.items() if k != OPERATION}


def _key_only(kind: Kind, entry: dict[str, Any]) -> set[str]:
    names = {name for spec in kind.key for name in spec.split("|")}
    return set(entry) - names - _TAG_ONLY


def _tags(held: dict[str, Any], entry: dict[str, Any], where: str, kind: Kind, add: bool
          ) -> None:
    extra = _key_only(kind, entry)
    if extra:
        raise _refuse(where, f"a tag operation carries only the identifier and the tags, not "
                             f"{', '.join(sorted(extra))}")
    tags = entry.get(TAGS)
    if not isinstance(tags, list):
        raise _refuse(where, "a tag operation needs `tags`")
    current = held.setdefault(TAGS, [])
    seen = [canonical(t) for t in current]
    for tag in tags:
        if add and canonical(tag) not in seen:
            current.append(copy.deepcopy(tag))
            seen.append(canonical(tag))
        elif not add:
            held[TAGS] = current = [t for t in current if canonical(t) != canonical(tag)]


def _resources(kind: Kind, held: dict[str, Any], entry: dict[str, Any], where: str, add: bool
               ) -> None:
    name = kind.resource_field
    if name is None:
        raise _refuse(where, f"{kind.label} have no resources to add or delete")
    given = entry.get(name)
    if not isinstance(given, list):
        raise _refuse(where, f"`{name}` must be a list")
    current = held.setdefault(name, [])
    if add:
        current.extend(r for r in given if r not in current)
    else:
        held[name] = [r for r in current if r not in given]


def _modify(kind: Kind, held: dict[str, Any], entry: dict[str, Any], where: str) -> None:
    if TAGS in entry:
        raise _refuse(where, "tags change with add_tag and delete_tag, not modify")
    for name, value in entry.items():
        if name == OPERATION or name in kind.children:
            continue
        held[name] = copy.deepcopy(value)
    _children(kind, held, entry, where)


def _children(kind: Kind, held: dict[str, Any], entry: dict[str, Any], where: str) -> None:
    for child_field, child in kind.children.items():
        if child_field in entry:
            items = held.setdefault(child_field, [])
            _apply_list(KINDS[child], items, entry[child_field], f"{where}.{child_field}")
            if kind.implicit and not items:
                del held[child_field]


def _apply_entry(kind: Kind, items: list[dict[str, Any]], entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise _refuse(where, "must be an object")
    operation = entry.get(OPERATION)
    at = _find(kind, items, entry)
    name = "/".join(entity_key(kind, entry))
    if operation == "add":
        if at is not None:
            raise _refuse(where, f"{kind.label} `{name}` already exists")
        items.append(_strip(entry))
        return
    if at is None:
        if operation is None and kind.implicit:
            items.append({k: v for k, v in _strip(entry).items() if k not in kind.children})
            at = len(items) - 1
        else:
            raise _refuse(where, f"{kind.label} `{name}` does not exist")
    held = items[at]
    if operation not in _HANDLERS:
        raise _refuse(where, f"unknown operation {operation!r} (add, modify, delete, add_tag, "
                             "delete_tag, add_resource, delete_resource)")
    if operation == "delete":
        del items[at]
        return
    _HANDLERS[operation](kind, held, entry, where)
    if kind.implicit and not any(f in held for f in kind.children):
        del items[at]


_HANDLERS: dict[Any, Any] = {
    None: _children,
    "modify": _modify,
    "delete": None,
    "add_tag": lambda k, h, e, w: _tags(h, e, w, k, True),
    "delete_tag": lambda k, h, e, w: _tags(h, e, w, k, False),
    "add_resource": lambda k, h, e, w: _resources(k, h, e, w, True),
    "delete_resource": lambda k, h, e, w: _resources(k, h, e, w, False),
}


def _apply_list(kind: Kind, items: list[dict[str, Any]], entries: Any, where: str) -> None:
    if not isinstance(entries, list):
        raise _refuse(where, "must be a list")
    for i, entry in enumerate(entries):
        _apply_entry(kind, items, entry, f"{where}[{i}]")


def apply_incremental(template: str, held: dict[str, Any] | None, update: dict[str, Any]
                      ) -> dict[str, Any]:
    """The payload that results from applying `update` to the payload `held`.

    Raises:
        ApiError: 400 when nothing is held yet, the template has no incremental update, or an
            operation is unknown or names an entity that is missing (or, for `add`, present).
    """
    if held is None:
        raise _refuse("incremental_change", "a first push cannot be an incremental update")
    roots = ROOTS.get(template)
    if roots is None:
        raise _refuse("incremental_change", f"no incremental update for `{template}`")
    result = copy.deepcopy(held)
    for name, value in update.items():
        if name == "incremental_change":
            continue
        if name in roots:
            kind_id = roots[name]
            items = result.setdefault(name, [])
            _apply_list(KINDS[kind_id], items, value, name)
        else:
            result[name] = copy.deepcopy(value)
    return result
