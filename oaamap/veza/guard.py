"""The push guards: what a payload holds (counts, entity ids) and the refusals built from them.

A full push replaces everything Veza holds for the data source, so a payload is compared with
the last one Veza accepted for the same (Veza URL, provider, data source):

* a kind whose count drops by more than `--max-shrink` is a `Shrink` (`--allow-shrink`);
* a kind whose ids are *replaced* by more than `--max-shrink`, even with an equal count, is a
  `Replacement` (`--allow-replace`); ids compare case-insensitively, as Veza does;
* on a first push, an entity kind that the mapping has rules for but that came out empty is an
  `EmptyKindsError` (`--allow-empty`).

This module only computes; `state.py` keeps the previous push, the CLI prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ..errors import OaamapError

__all__ = [
    "DEFAULT_MAX_SHRINK",
    "ID_KINDS",
    "EmptyKindsError",
    "GuardFindings",
    "ReplacedError",
    "Replacement",
    "Shrink",
    "ShrinkError",
    "compare",
    "find_replacements",
    "find_shrinks",
    "mask_id",
    "payload_counts",
    "payload_ids",
]

DEFAULT_MAX_SHRINK = 0.20
EXAMPLES_SHOWN = 3

# Entity kinds counted in each template's payload: the lists the shrink guard compares.
_APPLICATION_KINDS = (
    "local_users", "local_groups", "local_roles", "local_access_creds", "local_agents",
    "local_models", "resources",
)
_TOP_LEVEL_KINDS: dict[str, tuple[str, ...]] = {
    "application": ("permissions", "identity_to_permissions"),
    "identity_provider": ("users", "groups", "apps"),
    "hris": ("employees", "groups"),
}


# -- counts -----------------------------------------------------------------------------------


def _len(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def _count_resources(resources: Any) -> int:
    if not isinstance(resources, list):
        return 0
    return sum(
        1 + _count_resources(r.get("sub_resources")) for r in resources if isinstance(r, dict)
    )


def _apps(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [a for a in payload.get("applications") or [] if isinstance(a, dict)]


def payload_counts(template: str, payload: Mapping[str, Any]) -> dict[str, int]:
    """Entity counts of a payload, per kind (resources include sub-resources).

    Example:
        >>> payload_counts("hris", {"employees": [{}, {}], "groups": []})
        {'employees': 2, 'groups': 0}
    """
    counts: dict[str, int] = {}
    if template == "application":
        apps = _apps(payload)
        for kind in _APPLICATION_KINDS:
            counter = _count_resources if kind == "resources" else _len
            counts[kind] = sum(counter(app.get(kind)) for app in apps)
    for kind in _TOP_LEVEL_KINDS.get(template, ()):
        counts[kind] = _len(payload.get(kind))
    return counts


# -- entity ids -------------------------------------------------------------------------------


def _key(entity: Mapping[str, Any], *fields: str) -> str | None:
    for name in fields:
        value = entity.get(name)
        if value not in (None, ""):
            return str(value).casefold()
    return None


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _resource_ids(resources: Any, parent: str, into: set[str]) -> None:
    for resource in _items(resources):
        # A sub-resource without a unique id is known to Veza by its name under its parent.
        own = _key(resource, "id")
        name = _key(resource, "name")
        key = own or (f"{parent}/{name}" if parent else name)
        if key is None:
            continue
        into.add(key)
        _resource_ids(resource.get("sub_resources"), key, into)


def _application_ids(payload: Mapping[str, Any]) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {k: set() for k in (
        "local_users", "local_groups", "local_roles", "local_access_creds", "resources")}
    for app in _apps(payload):
        for kind in ("local_users", "local_groups", "local_roles"):
            ids[kind].update(k for e in _items(app.get(kind)) if (k := _key(e, "id", "name")))
        ids["local_access_creds"].update(
            k for e in _items(app.get("local_access_creds")) if (k := _key(e, "id")))
        _resource_ids(app.get("resources"), "", ids["resources"])
    return ids


def _idp_ids(payload: Mapping[str, Any]) -> dict[str, set[str]]:
    return {kind: {k for e in _items(payload.get(kind)) if (k := _key(e, "identity", "name"))}
            for kind in ("users", "groups")}


def _hris_ids(payload: Mapping[str, Any]) -> dict[str, set[str]]:
    return {kind: {k for e in _items(payload.get(kind)) if (k := _key(e, "id"))}
            for kind in ("employees", "groups")}


ID_KINDS: dict[str, Callable[[Mapping[str, Any]], dict[str, set[str]]]] = {
    "application": _application_ids,
    "identity_provider": _idp_ids,
    "hris": _hris_ids,
}


def payload_ids(template: str, payload: Mapping[str, Any]) -> dict[str, set[str]]:
    """The entity ids of a payload per kind, casefolded (an entity without `id` by its name).

    Example:
        >>> payload_ids("hris", {"employees": [{"id": "E1"}], "groups": []})
        {'employees': {'e1'}, 'groups': set()}
    """
    extract = ID_KINDS.get(template)
    return extract(payload) if extract is not None else {}


def mask_id(value: str, limit: int = 24) -> str:
    """An id shown in a message: its first characters only (ids are often emails).

    Example:
        >>> mask_id("alice@example.com")
        'alic***'
    """
    text = value[:limit]
    keep = max(1, min(4, len(text) // 3))
    return f"{text[:keep]}***"


# -- findings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shrink:
    """One entity kind that shrank: counts before and after, and the fraction dropped."""

    kind: str
    before: int
    after: int

    @property
    def fraction(self) -> float:
        """The share of `before` that is gone."""
        return (self.before - self.after) / self.before if self.before else 0.0

    def __str__(self) -> str:
        return f"{self.kind}: {self.before:,} -> {self.after:,} (-{self.fraction:.0%})"


def find_shrinks(
    before: Mapping[str, int], after: Mapping[str, int], max_shrink: float
) -> list[Shrink]:
    """The kinds whose count dropped by more than `max_shrink` (a fraction, 0.2 = 20%)."""
    shrinks = [Shrink(kind, int(n), int(after.get(kind, 0))) for kind, n in before.items() if n]
    return [s for s in shrinks if s.fraction > max_shrink + 1e-12]


@dataclass(frozen=True)
class Replacement:
    """One entity kind whose ids were replaced: ids before, how many are gone and came new."""

    kind: str
    before: int
    replaced: int
    examples: tuple[str, ...] = ()

    @property
    def fraction(self) -> float:
        """The share of the previous ids replaced by new ones."""
        return self.replaced / self.before if self.before else 0.0

    def __str__(self) -> str:
        shown = ", ".join(mask_id(e) for e in self.examples)
        more = f" (e.g. gone: {shown})" if shown else ""
        return (f"{self.kind}: {self.replaced:,} of {self.before:,} ids replaced by new ones "
                f"({self.fraction:.0%}){more}")


def find_replacements(
    before: Mapping[str, Iterable[str]], after: Mapping[str, Iterable[str]], max_shrink: float
) -> list[Replacement]:
    """The kinds where more than `max_shrink` of the previous ids were swapped for new ones.

    Ids that are only gone (a shrink) or only new (growth) are not replacements: a replacement
    is an id gone *and* another new one in its place, `min(gone, new)`.
    """
    found = []
    for kind, old_ids in before.items():
        old, new = set(old_ids), set(after.get(kind, ()))
        if not old:
            continue
        gone, added = old - new, new - old
        replaced = min(len(gone), len(added))
        if replaced / len(old) > max_shrink + 1e-12:
            found.append(Replacement(kind, len(old), replaced,
                                     tuple(sorted(gone)[:EXAMPLES_SHOWN])))
    return found


# -- comparing with what Veza may hold --------------------------------------------------------


class Previous(Protocol):
    """A previous push as the guards need it (`state.LastPush`)."""

    @property
    def counts(self) -> Mapping[str, int]: ...

    @property
    def payload(self) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class GuardFindings:
    """What the guards found; the caller refuses or, with an `--allow-*` flag, lets it through.

    `empty` is only filled on a first push (no previous push at all).
    """

    shrinks: list[Shrink]
    replacements: list[Replacement]
    empty: list[str]


_Finding = TypeVar("_Finding", Shrink, Replacement)


def _worst(found: list[_Finding]) -> list[_Finding]:
    """One finding per kind (the largest), when compared with two previous pushes."""
    best: dict[str, _Finding] = {}
    for item in found:
        if item.kind not in best or item.fraction > best[item.kind].fraction:
            best[item.kind] = item
    return list(best.values())


def compare(previous: Sequence[Previous], template: str, payload_json: str,
            counts: Mapping[str, int], empty_kinds: Sequence[str],
            max_shrink: float) -> GuardFindings:
    """Compare a payload with every push Veza may hold (the last confirmed one, and one whose
    outcome is unknown); `empty_kinds` count only when there is no previous push."""
    shrinks: list[Shrink] = []
    replacements: list[Replacement] = []
    new_ids: dict[str, set[str]] | None = None
    for prev in previous:
        shrinks += find_shrinks(prev.counts, counts, max_shrink)
        if prev.payload is not None:
            if new_ids is None:
                new_ids = payload_ids(template, json.loads(payload_json))
            replacements += find_replacements(payload_ids(template, prev.payload), new_ids,
                                              max_shrink)
    return GuardFindings(_worst(shrinks), _worst(replacements),
                         [] if previous else list(empty_kinds))


# -- refusals ---------------------------------------------------------------------------------


class _Refusal(OaamapError):
    """A guard refused a payload: what it saw per entity kind, and how to proceed."""

    exit_code = 5

    def __init__(self, data_source: str, items: Sequence[object], max_shrink: float) -> None:
        self.data_source = data_source
        self.items = list(items)
        self.max_shrink = max_shrink
        super().__init__(str(self))

    def headline(self) -> str:
        raise NotImplementedError

    def advice(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        lines = [f"error: refusing to push to data source `{self.data_source}`: "
                 f"{self.headline()}"]
        lines += [f"  - {item}" for item in self.items]
        lines.append(f"  nothing was pushed; {self.advice()}")
        return "\n".join(lines)


class ShrinkError(_Refusal):
    """A new payload drops more of an entity kind than allowed: it is not pushed."""

    def __init__(self, data_source: str, shrinks: list[Shrink], max_shrink: float) -> None:
        self.shrinks = shrinks
        super().__init__(data_source, shrinks, max_shrink)

    def headline(self) -> str:
        return (f"the payload drops more than {self.max_shrink:.0%} of its entities since the "
                "last successful push")

    def advice(self) -> str:
        return ("check the sources, or pass --allow-shrink if this is intended (or raise "
                "--max-shrink)")


class ReplacedError(_Refusal):
    """A new payload swaps more of an entity kind's ids for new ones than allowed."""

    def __init__(self, data_source: str, replacements: list[Replacement],
                 max_shrink: float) -> None:
        self.replacements = replacements
        super().__init__(data_source, replacements, max_shrink)

    def headline(self) -> str:
        return (f"more than {self.max_shrink:.0%} of the entity ids of a kind are replaced since "
                "the last successful push (Veza would delete the old entities and create new "
                "ones)")

    def advice(self) -> str:
        return ("check the id fields of the mapping, or pass --allow-replace if this is "
                "intended (or raise --max-shrink)")


class EmptyKindsError(OaamapError):
    """A first push in which entity kinds the mapping has rules for came out empty."""

    exit_code = 5

    def __init__(self, data_source: str, kinds: list[str], url: str,
                 reason: str = "although the mapping has rules for them") -> None:
        self.data_source = data_source
        self.kinds = kinds
        self.url = url
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        kinds = ", ".join(f"`{k}`" for k in self.kinds)
        return (
            f"error: refusing the first push to data source `{self.data_source}` at "
            f"{self.url}: no entities of {kinds}, {self.reason} (a misspelt field or an "
            "empty source?)\n"
            "  nothing was pushed; check the sources, or pass --allow-empty if this is intended"
        )
