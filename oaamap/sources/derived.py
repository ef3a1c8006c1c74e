"""The `derive` source kind: records made from another source's records, with no new read.

Three modes, one per key:

- `each: {NAME: EXPR}`: one record per element of the list EXPR of each parent record,
  `{PARENT: <parent record>, NAME: <element>}` (with `index: I`, also `I: <its position>`);
- `distinct: {NAME: EXPR}`: one record per distinct value of EXPR over all parent records (each
  element when it is a list), first-seen order, `{NAME: <value>, records: [<parents>]}`;
- `recurse: {NAME: EXPR}`: a walk of the trees whose roots are the parent records and whose
  children are EXPR of each node, depth first, `{NAME: <node>, PARENT: <parent node>, depth: N,
  ancestors: [<root>, ..., <parent node>]}`, with a depth bound and cycle detection.

A derived record's location is its parent's plus the element's place:
`data/repos.json[#3] members[#2]`, so data errors stay located.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jmespath.exceptions

from ..errors import DataError, DataErrors, Origin, RowRef, Span
from ..expressions import Expression
from . import PlanContext, ReadContext, Record, register_source_kind
from .checks import check_keys, did_you_mean, expect_int, expect_mapping

__all__ = ["DEFAULT_MAX_DEPTH", "MAX_DEPTH", "DeriveSource", "plan_derive"]

MODES = ("each", "distinct", "recurse")
OPTIONS = ("from", "parent", *MODES, "case", "key", "max_depth", "index")
DEFAULT_MAX_DEPTH = 32
MAX_DEPTH = 1000  # the largest `max_depth` a mapping may ask for
CASES = ("insensitive", "sensitive")
RESERVED = frozenset({"depth", "records"})
# `recurse` records also hold the path from the root (sub-resource paths are built from it).
RESERVED_RECURSE = frozenset({"ancestors"})

Path = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class DeriveSource:
    """A planned `derive` source (see the module docstring for the three modes).

    Attributes:
        name: the source's name.
        span: where it is declared.
        parent_source: the source whose records it derives from (`from:`).
        mode: `each`, `distinct` or `recurse`.
        alias: the NAME of the mode's `{NAME: EXPR}`.
        expression: the mode's EXPR.
        parent_name: the key holding the parent record (`each`) or parent node (`recurse`).
        case_sensitive: `distinct` compares text values with their case.
        key: `recurse`: a node's identity, for cycle detection.
        max_depth: `recurse`: the deepest level allowed (roots are level 0).
        index_name: `each`: the field holding the element's position in its list (from 0), or
            None (no such field).
    """

    name: str
    span: Span | None
    parent_source: str
    mode: str
    alias: str
    expression: Expression
    parent_name: str = "parent"
    case_sensitive: bool = False
    key: Expression | None = None
    max_depth: int = DEFAULT_MAX_DEPTH
    index_name: str | None = None

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The source it derives from."""
        return (self.parent_source,)

    def read(self, ctx: ReadContext) -> Iterator[Record]:
        """Yield the derived records in parent order, then element (or walk) order.

        Raises:
            DataErrors: EXPR fails on a record, a tree is deeper than `max_depth`, or a node
                repeats one of its ancestors (a cycle).
        """
        readers = {"each": self._each, "distinct": self._distinct, "recurse": self._recurse}
        yield from readers[self.mode](ctx.records_of(self.parent_source))

    def _eval(self, expression: Expression, data: Any, ref: RowRef) -> Any:
        try:
            return expression.search(data)
        except jmespath.exceptions.JMESPathError as e:
            raise self._error(f"`{expression.text}`: {e}", ref, data) from e

    def _error(self, message: str, ref: RowRef, data: Any) -> DataErrors:
        return DataErrors([DataError(f"source `{self.name}`: {message}", ref,
                                     expression=None, span=self.span, record=data)])

    def _elements(self, data: Any, ref: RowRef) -> list[Any]:
        value = self._eval(self.expression, data, ref)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def _each(self, parents: list[Record]) -> Iterator[Record]:
        label = f" {self.expression.text}"
        for parent in parents:
            elements = self._elements(parent.data, parent.ref)
            if not elements:
                continue
            origin = Origin(self.name, f"{parent.ref}{label}", "index")
            for index, element in enumerate(elements):
                data = {self.parent_name: parent.data, self.alias: element}
                if self.index_name is not None:
                    data[self.index_name] = index
                yield Record(data, origin, index)

    def _distinct(self, parents: list[Record]) -> Iterator[Record]:
        found: dict[Any, tuple[Any, list[dict[str, Any]], RowRef, int]] = {}
        for parent in parents:
            for index, value in enumerate(self._elements(parent.data, parent.ref)):
                if value is None:
                    continue
                key = self._distinct_key(value)
                entry = found.get(key)
                if entry is None:
                    found[key] = (value, [parent.data], parent.ref, index)
                elif entry[1][-1] is not parent.data:
                    entry[1].append(parent.data)
        for value, records, ref, index in found.values():
            origin = Origin(self.name, f"{ref} {self.expression.text}", "index")
            yield Record({self.alias: value, "records": records}, origin, index)

    def _distinct_key(self, value: Any) -> Any:
        if isinstance(value, str):
            return value if self.case_sensitive else value.lower()
        if isinstance(value, list | dict):
            return ("json", json.dumps(value, sort_keys=True, default=str))
        return (type(value).__name__, value)

    def _recurse(self, roots: list[Record]) -> Iterator[Record]:
        for root in roots:
            # A root is located where its parent source's record is.
            origin = Origin(self.name, root.origin.where, root.origin.style)
            yield Record({self.alias: root.data, self.parent_name: None, "depth": 0,
                          "ancestors": []}, origin, root.row)
            yield from self._walk(root.data, root.ref, [(root.data, self._key(root.data,
                                                                                root.ref))])

    def _walk(self, node: Any, ref: RowRef, ancestors: list[tuple[Any, Any]]) -> Iterator[Record]:
        children = self._elements(node, ref)
        if not children:
            return
        depth = len(ancestors)
        origin = Origin(self.name, f"{ref} {self.expression.text}", "index")
        if depth > self.max_depth:
            raise self._error(f"the tree is deeper than `max_depth: {self.max_depth}` under "
                              f"{ref}; raise `max_depth` (at most {MAX_DEPTH}) if the data is "
                              "really that deep", origin.ref(0), children[0])
        for index, child in enumerate(children):
            child_ref = origin.ref(index)
            key = self._key(child, child_ref)
            self._check_cycle(child, key, child_ref, ancestors)
            yield Record({self.alias: child, self.parent_name: node, "depth": depth,
                          "ancestors": [ancestor for ancestor, _ in ancestors]}, origin, index)
            ancestors.append((child, key))
            yield from self._walk(child, child_ref, ancestors)
            ancestors.pop()

    def _key(self, node: Any, ref: RowRef) -> Any:
        if self.key is None:
            return None
        value = self._eval(self.key, node, ref)
        return value.lower() if isinstance(value, str) else value

    def _check_cycle(self, node: Any, key: Any, ref: RowRef,
                     ancestors: list[tuple[Any, Any]]) -> None:
        for depth, (ancestor, ancestor_key) in enumerate(ancestors):
            if node is ancestor or (key is not None and key == ancestor_key):
                shown = f"`{self.key.text}` = `{key}`" if self.key is not None else "the node"
                raise self._error(f"a cycle: the record at {ref} repeats its ancestor at depth "
                                  f"{depth} ({shown}); a tree cannot contain itself", ref, node)


def plan_derive(name: str, config: Mapping[str, Any], ctx: PlanContext) -> DeriveSource | Any:
    """Plan a `derive` source from its mapping entry (`derive: {from, each|distinct|recurse}`).

    Every mistake is reported to `ctx` with its document path.

    Example:
        >>> plan_derive("members", {"derive": {"from": "repos", "each": {"m": "members"}}}, ctx)
    """
    base: Path = ("sources", name, "derive")
    spec = expect_mapping(ctx, config.get("derive"), base, f"`derive` of source `{name}`") or {}
    check_keys(ctx, spec, base, OPTIONS, ("from",), "a `derive` source")
    parent_source = _plan_from(name, spec.get("from"), ctx, (*base, "from"))
    modes = [m for m in MODES if m in spec]
    if len(modes) != 1:
        ctx.error(f"a `derive` source needs exactly one of `each`, `distinct`, `recurse` (has "
                  f"{', '.join(f'`{m}`' for m in modes) or 'none'})", base)
        return _Invalid(name)
    mode = modes[0]
    _check_mode_options(spec, mode, ctx, base)
    parent_name = str(spec.get("parent", "parent"))
    named = _plan_named(spec[mode], mode, parent_name, ctx, (*base, mode))
    if named is None or parent_source is None:
        return _Invalid(name)
    alias, expression = named
    key = ctx.expression(str(spec["key"]), (*base, "key")) if "key" in spec else None
    max_depth = (expect_int(ctx, spec["max_depth"], (*base, "max_depth"), "`max_depth`", 1,
                            MAX_DEPTH) if "max_depth" in spec else None)
    return DeriveSource(
        name=name, span=ctx.span_of(("sources", name)), parent_source=parent_source, mode=mode,
        alias=alias, expression=expression, parent_name=parent_name,
        case_sensitive=spec.get("case") == "sensitive", key=key,
        max_depth=max_depth or DEFAULT_MAX_DEPTH, index_name=_index_name(spec, alias, parent_name,
                                                                         ctx, (*base, "index")))


def _index_name(spec: Mapping[str, Any], alias: str, parent_name: str, ctx: PlanContext,
                path: Path) -> str | None:
    """`index: NAME` (`each`): the field that holds the element's position in its list."""
    name = spec.get("index")
    if name is None:
        return None
    if not isinstance(name, str) or not name.isidentifier() or name in (alias, parent_name):
        ctx.error(f"`index` must be a field name other than `{alias}` and `{parent_name}`, got "
                  f"`{name}`", path)
        return None
    return name


def _plan_from(name: str, value: Any, ctx: PlanContext, path: Path) -> str | None:
    if not isinstance(value, str) or not value:
        ctx.error("`from` must name a source", path)
        return None
    if value == name:
        ctx.error(f"source `{name}` cannot derive from itself (use `recurse:` to walk a tree "
                  "inside its records)", path)
        return None
    if ctx.source_names and value not in ctx.source_names:
        ctx.error(f"`from` names an unknown source `{value}`", path,
                  hint=did_you_mean(value, ctx.source_names)
                  or f"sources: {', '.join(sorted(ctx.source_names))}")
        return None
    return value


def _check_mode_options(spec: Mapping[str, Any], mode: str, ctx: PlanContext,
                        base: Path) -> None:
    allowed = {"case": ("distinct",), "key": ("recurse",), "max_depth": ("recurse",),
               "parent": ("each", "recurse"), "index": ("each",)}
    for option, modes in allowed.items():
        if option in spec and mode not in modes:
            ctx.error(f"`{option}` applies to {' and '.join(f'`{m}`' for m in modes)}, not to "
                      f"`{mode}`", (*base, option))
    if "case" in spec and spec["case"] not in CASES:
        ctx.error(f"`case` must be `insensitive` (the default) or `sensitive`, got "
                  f"`{spec['case']}`", (*base, "case"))
    parent = spec.get("parent")
    if parent is not None and (not isinstance(parent, str) or not parent.isidentifier()):
        ctx.error(f"`parent` must be a field name, got `{parent}`", (*base, "parent"))
    elif mode == "recurse" and parent in {"depth", *RESERVED_RECURSE}:
        ctx.error(f"`parent` cannot be `{parent}`: a `recurse` record holds its own `{parent}`",
                  (*base, "parent"))


def _plan_named(value: Any, mode: str, parent_name: str, ctx: PlanContext,
                path: Path) -> tuple[str, Expression] | None:
    mapping = expect_mapping(ctx, value, path, f"`{mode}` ({{NAME: EXPR}})")
    if mapping is None:
        return None
    if len(mapping) != 1:
        ctx.error(f"`{mode}` must have exactly one entry {{NAME: EXPR}}, got {len(mapping)}",
                  path)
        return None
    alias, text = next(iter(mapping.items()))
    alias = str(alias)
    taken = (RESERVED | ({parent_name} if mode != "distinct" else set())
             | (RESERVED_RECURSE if mode == "recurse" else set()))
    if not alias.isidentifier() or alias in taken:
        ctx.error(f"`{mode}` name `{alias}` must be a field name other than "
                  f"{', '.join(f'`{t}`' for t in sorted(taken))}", (*path, alias))
        return None
    if not isinstance(text, str) or not text:
        ctx.error(f"`{mode}` needs a JMESPath expression for `{alias}`", (*path, alias))
        return None
    expression = ctx.expression(text, (*path, alias))
    return (alias, expression) if expression is not None else None


@dataclass(frozen=True, slots=True)
class _Invalid:
    """What a wrong `derive` entry plans to: the run stops at plan time, so it is never read."""

    name: str
    span: Span | None = None

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Nothing: the mapping has errors."""
        return ()

    def read(self, ctx: ReadContext) -> Iterator[Record]:
        """Never called (the planner raises the errors first)."""
        return iter(())


register_source_kind("derive", plan_derive)
