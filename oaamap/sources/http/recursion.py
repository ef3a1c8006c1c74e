"""Recursive fan-out: an `http` source that also fans out over its own records (trees such as
GitLab's subgroups of subgroups), depth first, with a depth bound and cycle detection."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jmespath.exceptions

from ...errors import SourceError
from ...expressions import Expression
from .. import PlanContext, Record
from ..checks import check_keys, expect_int

__all__ = ["DEFAULT_MAX_DEPTH", "MAX_DEPTH", "Recursion", "plan_recurse"]

DEFAULT_MAX_DEPTH = 32
MAX_DEPTH = 1000

# Reads the children of one record (one request chain with the record as the fan-out parent).
Children = Callable[[Record], list[Record]]


@dataclass(frozen=True, slots=True)
class Recursion:
    """`recurse:` of an `http` fan-out.

    Attributes:
        key: a record's identity (e.g. `id`); without it, the record's own fields.
        max_depth: the deepest level allowed; the records of the first fan-out are level 1.
    """

    key: Expression | None = None
    max_depth: int = DEFAULT_MAX_DEPTH

    def walk(self, source: str, alias: str, records: Iterable[Record],
             children: Children) -> Iterator[Record]:
        """Yield `records` and, after each, its descendants (pre-order).

        Raises:
            SourceError: a record repeats the identity of one of its ancestors (a cycle), or
                the tree goes deeper than `max_depth`.
        """
        for record in records:
            # With a `key`, the first level's parent (a record of the fan-out's parent source,
            # level 0) is an ancestor too when the key applies to it.
            parent = record.data.get(alias)
            root = self._key_of(source, parent, record) if self.key is not None else None
            ancestors = [root] if root is not None else []
            yield from self._walk(source, alias, [record], children, 1, ancestors,
                                  0 if ancestors else 1)

    def _walk(self, source: str, alias: str, records: Iterable[Record], children: Children,
              depth: int, ancestors: list[Any], first_level: int) -> Iterator[Record]:
        for record in records:
            identity = self._identity(source, alias, record)
            if identity in ancestors:
                shown = self.key.text if self.key is not None else "its fields"
                level = ancestors.index(identity) + first_level
                raise SourceError(source, f"a cycle: the record repeats one of its ancestors "
                                  f"(the same {shown}, at level {level}); a tree cannot contain "
                                  "itself", ref=record.ref)
            yield record
            below = children(record)
            if below and depth >= self.max_depth:
                raise SourceError(source, f"the tree is deeper than `max_depth: "
                                  f"{self.max_depth}` below this record; raise `max_depth` (at "
                                  f"most {MAX_DEPTH}) if the data is really that deep",
                                  ref=record.ref)
            ancestors.append(identity)
            yield from self._walk(source, alias, below, children, depth + 1, ancestors,
                                  first_level)
            ancestors.pop()

    def _identity(self, source: str, alias: str, record: Record) -> Any:
        if self.key is None:
            own = {k: v for k, v in record.data.items() if k != alias}
            return json.dumps(own, sort_keys=True, default=str)
        return self._key_of(source, record.data, record)

    def _key_of(self, source: str, data: Any, record: Record) -> Any:
        assert self.key is not None
        try:
            value = self.key.search(data)
        except jmespath.exceptions.JMESPathError as e:
            raise SourceError(source, f"`recurse: {{key: {self.key.text}}}`: {e}",
                              ref=record.ref) from e
        if value is None:
            return None
        return value.lower() if isinstance(value, str) else json.dumps(value, default=str)


def plan_recurse(value: Any, ctx: PlanContext, path: tuple[Any, ...]) -> Recursion | None:
    """Plan `recurse: true` or `recurse: {key: EXPR, max_depth: N}`."""
    if value is True:
        return Recursion()
    if value is False or value is None:
        return None
    if not isinstance(value, Mapping):
        ctx.error("`recurse` must be `true` or a mapping {key, max_depth}", path)
        return None
    check_keys(ctx, value, path, ("key", "max_depth"), (), "`recurse`")
    key = ctx.expression(str(value["key"]), (*path, "key")) if "key" in value else None
    depth = (expect_int(ctx, value["max_depth"], (*path, "max_depth"), "`max_depth`", 1,
                        MAX_DEPTH) if "max_depth" in value else None)
    return Recursion(key, depth or DEFAULT_MAX_DEPTH)
