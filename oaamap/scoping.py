"""Stage 6 helper: sub-resource identity scoped to the parent, as in Veza's payload.

A sub-resource is identified by its parent and its own id (or name): two parents may each have a
child `main`. Its identity is its **path**, the own identifiers from the top-level resource down
joined by `.` (`repo1.main`), which is also its key in the payload. A reference to a resource (a
sub-resource's `parent`, a grant's `resources`) is resolved as a path first, then as an own id
when exactly one resource has that id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import PayloadError, RowRef

__all__ = ["ResourceScope", "ambiguous_references", "scope_drafts", "scope_resources"]

_RESOURCES = "/applications/0/resources"


class Draft(Protocol):
    """A resource being built (the builder's draft): its identifier, values and first row."""

    key: str
    values: dict[str, Any]
    ref: RowRef | None


@dataclass
class ResourceScope:
    """Where each resource sits, once parents are resolved.

    Attributes:
        paths: per resource (input order), its path, or None when its parent does not resolve
            (unknown, ambiguous or in a cycle: the resource keeps its own identifier).
        parents: per resource, the parent's path (None for top-level or unresolved ones).
        aliases: lower-cased own id -> path, for sub-resources whose own id no other resource
            has (a reference may use it).
        ambiguous: lower-cased own id -> the paths of the several resources that have it.
        duplicates: (path, index) of a resource whose path another resource already has (its
            parent was named in two ways).
        ambiguous_parents: (index, parent reference, candidate paths) of sub-resources whose
            parent reference is an own id several resources share.
    """

    paths: list[str | None]
    parents: list[str | None]
    aliases: dict[str, str] = field(default_factory=dict)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    duplicates: list[tuple[str, int]] = field(default_factory=list)
    ambiguous_parents: list[tuple[int, str, list[str]]] = field(default_factory=list)


def scope_resources(items: Sequence[tuple[str, str | None]]) -> ResourceScope:
    """Resolve every resource's parent and compute its path.

    Args:
        items: per resource, in section order, (own identifier as written, parent reference as
            written or None for a top-level resource).

    Returns:
        The paths, parents, own-id aliases and the problems found.

    Example:
        >>> scope_resources([("r1", None), ("main", "r1"), ("r2", None), ("main", "r2")]).paths
        ['r1', 'r1.main', 'r2', 'r2.main']
    """
    own_index: dict[str, list[int]] = {}
    for index, (own, _parent) in enumerate(items):
        own_index.setdefault(own.lower(), []).append(index)
    scope = ResourceScope([own if parent is None else None for own, parent in items],
                          [None] * len(items))
    by_path = {own.lower(): i for i, (own, parent) in enumerate(items) if parent is None}
    pending = [i for i, (_own, parent) in enumerate(items) if parent is not None]
    # One pass per level of depth: a child resolves once its parent has a path.
    while pending:
        waiting = [i for i in pending if not _place(i, items, own_index, by_path, scope)]
        if len(waiting) == len(pending):
            break
        pending = waiting
    for index in pending:
        reference = str(items[index][1])
        candidates = own_index.get(reference.lower(), [])
        if len(candidates) > 1:
            scope.ambiguous_parents.append(
                (index, reference, [scope.paths[c] or items[c][0] for c in candidates]))
    _aliases(items, own_index, scope)
    return scope


def _place(index: int, items: Sequence[tuple[str, str | None]], own_index: dict[str, list[int]],
           by_path: dict[str, int], scope: ResourceScope) -> bool:
    reference = str(items[index][1]).lower()
    parent = by_path.get(reference)
    if parent is None:
        candidates = own_index.get(reference, [])
        if len(candidates) != 1:
            return False
        parent = candidates[0]
    parent_path = scope.paths[parent]
    if parent_path is None or parent == index:
        return False
    path = f"{parent_path}.{items[index][0]}"
    scope.paths[index], scope.parents[index] = path, parent_path
    if path.lower() in by_path:
        scope.duplicates.append((path, index))
    else:
        by_path[path.lower()] = index
    return True


def _aliases(items: Sequence[tuple[str, str | None]], own_index: dict[str, list[int]],
             scope: ResourceScope) -> None:
    for own, indexes in own_index.items():
        paths = [scope.paths[i] or items[i][0] for i in indexes]
        if len(indexes) > 1:
            scope.ambiguous[own] = paths
        elif items[indexes[0]][1] is not None and scope.paths[indexes[0]] is not None:
            scope.aliases[own] = str(paths[0])


def scope_drafts(drafts: Sequence[Draft]) -> tuple[ResourceScope, list[PayloadError]]:
    """Give each resolved sub-resource its path as key and its parent's path as `parent`.

    Returns:
        The scope, and a problem for each sub-resource defined twice or whose parent reference
        is an own id several resources share.
    """
    scope = scope_resources([(d.key, None if d.values.get("parent") is None
                              else str(d.values["parent"])) for d in drafts])
    for draft, path, parent in zip(drafts, scope.paths, scope.parents, strict=True):
        if path is not None and parent is not None:
            draft.key, draft.values["parent"] = path, parent
    problems = [PayloadError(
        f"sub-resource `{path}` is defined twice, its parent named in two ways (name the parent "
        "the same way in every rule: its path, or its own id)", _RESOURCES, drafts[index].ref)
        for path, index in scope.duplicates]
    problems += [PayloadError(
        f"resources `{drafts[index].key}` names parent `{reference}`, the id of {len(paths)} "
        f"resources ({', '.join(f'`{p}`' for p in paths)}); name the parent by its path",
        _RESOURCES, drafts[index].ref) for index, reference, paths in scope.ambiguous_parents]
    return scope, problems


def ambiguous_references(scope: ResourceScope,
                         grants: Iterable[tuple[RowRef | None, Iterable[str]]],
                         resource_keys: Mapping[str, str],
                         spelling: Mapping[str, str]) -> list[PayloadError]:
    """A problem for each grant target (lower-cased) that is an own id several resources share
    and no path: reported once, at the first grant naming it.

    Args:
        scope: the resolved resources.
        grants: per identity's grants, its first row and the lower-cased targets it names.
        resource_keys: lower-cased paths and unique own ids -> payload keys.
        spelling: lower-cased reference -> as first written.
    """
    if not scope.ambiguous:
        return []
    problems: list[PayloadError] = []
    reported: set[str] = set()
    for ref, targets in grants:
        for target in targets:
            paths = scope.ambiguous.get(target)
            if paths is None or target in resource_keys or target in reported:
                continue
            reported.add(target)
            problems.append(PayloadError(
                f"a grant names resource `{spelling.get(target, target)}`, the id of "
                f"{len(paths)} resources ({', '.join(f'`{p}`' for p in paths)}); name one by "
                "its path (`parent.child`)", "/identity_to_permissions", ref))
    return problems
