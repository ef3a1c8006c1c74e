"""Stage 5 helper: one generated Python function per derived rule, for the common rows.

A rule's row is computed by the generic loop in `evaluate.py` (every field's closure, its
normaliser, null handling, errors). That loop costs about a microsecond per row over a hand-written
function, which is a second per million grant rows. This module writes that hand-written function:
top-level field references become `data.get(...)`, `&&`/`||`/`!` and list multi-selects are
inlined, and strings take the fast path. Anything unusual — a null identifier or required field, a
value that needs normalising and fails, any exception — returns FALLBACK, and the generic loop
evaluates the row again, so it alone decides skips and reports errors: the two paths cannot disagree
on what is kept.

The same function can read a CSV row's cells by column index instead of a record dict (`columns`):
then no dict and no record are made per row. Only top-level fields of the header, the inlined
operators and calls of registered functions (without `&expr` arguments) can be read that way; a
rule with anything else gets no cell function (`NotInlinable`) and reads records.

A rule's properties and tags are computed by the same function (`extras`), so a row that is
handed to a sink needs no record at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .expressions import RFC3339, Expression, _is_false, _text, compile_node, direct_call
from .language import FieldSpec

__all__ = ["FALLBACK", "Extras", "NotInlinable", "RowFunction", "fresh_list",
           "generate_row_function"]

FALLBACK = object()
RowFunction = Callable[[dict[str, Any], Any], Any]
_DIRECT = frozenset({"str", "ref"})
_LISTS = frozenset({"str_list", "ref_list", "enum_list"})


class NotInlinable(Exception):
    """A rule's expressions need the record dict: no cell function for it."""


@dataclass(frozen=True)
class Extras:
    """A rule's properties and tags, as the generated function computes them.

    Attributes:
        properties: (name, expression, cast or None, keep_null, keep_empty) per property.
        tag_pairs: (key, expression or constant) per tag; tag_list: the `tags:` expression's
            conversion of the record into (key, value) pairs (record dicts only).
        tag_expression: the `tags:` expression, if any.
    """

    properties: tuple[tuple[str, Any, Callable[[Any], Any] | None, bool, bool], ...] = ()
    tag_pairs: tuple[tuple[str, Any], ...] = ()
    tag_expression: Expression | None = None
    tag_list: Callable[[Any], list[tuple[str, str]]] | None = None

    @property
    def any(self) -> bool:
        """Whether the rule has properties or tags (the sink then takes them too)."""
        return bool(self.properties or self.tag_pairs or self.tag_expression is not None)


def _get(value: Any, key: str) -> Any:
    try:
        return value.get(key)
    except AttributeError:
        return None


class _Writer:
    """Builds the source of one row function and the namespace it runs in."""

    def __init__(self, columns: Mapping[str, int] | None = None,
                 nulls: frozenset[str] = frozenset({""})) -> None:
        self.names: dict[str, Any] = {"_get": _get, "_false": _is_false, "FALLBACK": FALLBACK,
                                      "_nulls": nulls, "_text": _text}
        self.counter = 0
        self.columns = columns
        self.only_empty = nulls == frozenset({""})

    def column(self, key: str) -> int:
        """The index of a top-level field's cell."""
        assert self.columns is not None
        index = self.columns.get(key)
        if index is None:
            raise NotInlinable(key)  # the generic path reports a field no record has
        return index

    def cell(self, key: str) -> str:
        """A top-level field read from the row's cells (an empty or null-value cell is null)."""
        index = self.column(key)
        if self.only_empty:
            return f"(data[{index}] or None)"
        t = self.temp()
        return f"(None if ({t} := data[{index}]) in _nulls else {t})"

    def bind(self, value: Any) -> str:
        self.counter += 1
        name = f"_n{self.counter}"
        self.names[name] = value
        return name

    def temp(self) -> str:
        self.counter += 1
        return f"_t{self.counter}"

    def expression(self, expr: Expression) -> str:
        if expr.parsed is None and expr.constant:
            return f"{self.bind(expr.evaluate)}(None)"  # a literal: reads no record
        if expr.parsed is None or expr.functions is None:
            if self.columns is not None:
                raise NotInlinable(expr.text)
            return f"{self.bind(expr.evaluate)}(data)"
        return self.node(expr.parsed, "data", expr)

    def node(self, node: dict[str, Any], var: str, expr: Expression) -> str:
        kind = node["type"]
        children = node.get("children", [])
        if kind == "field":
            key = node["value"]
            if var != "data":
                return f"_get({var}, {key!r})"
            return self.cell(key) if self.columns is not None else f"data.get({key!r})"
        if kind == "subexpression" and all(c["type"] == "field" for c in children):
            out = var
            for child in children:
                out = self.node(child, out, expr)
            return out
        if kind == "literal":
            return self.bind(node["value"])
        if kind in ("current", "identity"):
            if var == "data" and self.columns is not None:
                raise NotInlinable("@")
            return var
        if kind == "multi_select_list" and var == "data":
            return "[" + ", ".join(self.node(c, var, expr) for c in children) + "]"
        if kind in ("and_expression", "or_expression"):
            left, right = (self.node(c, var, expr) for c in children)
            t = self.temp()
            # A string's truth is tested inline (the common case), anything else by _false.
            false = f"(not {t} if ({t} := {left}).__class__ is str else _false({t}))"
            if kind == "and_expression":
                return f"({t} if {false} else {right})"
            return f"({right} if {false} else {t})"
        if kind == "not_expression":
            return f"_false({self.node(children[0], var, expr)})"
        assert expr.functions is not None
        if kind == "function_expression" and var == "data" and \
                all(c["type"] != "expref" for c in children):
            # The registered function itself, on inlined arguments (jmespath's type checks and
            # errors kept: a raise makes the row FALLBACK, and the generic loop reports it).
            call = self.bind(direct_call(expr.functions, node["value"]))
            return f"{call}(" + ", ".join(self.node(c, var, expr) for c in children) + ")"
        if var == "data" and self.columns is not None:
            raise NotInlinable(kind)
        return f"{self.bind(compile_node(node, expr.functions))}({var})"

    def value(self, value: Any) -> str:
        """An expression's code, or a bound constant."""
        return self.expression(value) if isinstance(value, Expression) else self.bind(value)


def fresh_list(expr: Any) -> bool:
    """Whether an expression's list value is made anew for every row (a multi-select such as
    `[a, b]`, or `x && [x]`), so that whoever receives it may keep it without a copy."""
    parsed = getattr(expr, "parsed", None)
    return parsed is not None and _fresh(parsed)


def _fresh(node: dict[str, Any]) -> bool:
    kind = node["type"]
    children = node.get("children", [])
    if kind == "multi_select_list":
        return True
    if kind == "and_expression":
        # The left value is the result only when false: null, "", [] or false (never kept).
        return _fresh(children[1])
    if kind == "or_expression":
        return _fresh(children[0]) and _fresh(children[1])
    return False


def _one_cell_list(parsed: dict[str, Any] | None) -> str | None:
    """The field of an expression `[field]` or `field && [field]` (a one-item list of a field,
    null when it is), else None."""
    def listed(node: dict[str, Any]) -> str | None:
        children = node.get("children", [])
        if node["type"] == "multi_select_list" and len(children) == 1 and \
                children[0]["type"] == "field":
            return str(children[0]["value"])
        return None

    if parsed is None:
        return None
    if parsed["type"] == "and_expression":
        left, right = parsed["children"]
        name = listed(right)
        return name if left["type"] == "field" and left["value"] == name else None
    return listed(parsed)


def _field_block(writer: _Writer, key: str, expr: Expression, spec: FieldSpec,
                 normalise: Callable[[Any, FieldSpec], Any], must_have: bool,
                 target: str | None = None, kept: bool = False) -> list[str]:
    """The lines that compute one field into `target` (default: `values[key]`); `kept`: a list
    field with its own normaliser (no shortcut)."""
    on_null = "return FALLBACK" if must_have else "pass"
    target = target or f"values[{key!r}]"
    parsed = expr.parsed
    if writer.columns is not None and writer.only_empty and spec.kind in _DIRECT and \
            parsed is not None and parsed["type"] == "field":
        # A cell is a string, empty when null: nothing to test but its emptiness.
        return [f"v = data[{writer.column(parsed['value'])}]",
                "if v:", f"    {target} = v", "else:", f"    {on_null}"]
    cell = _one_cell_list(parsed) if writer.columns is not None and writer.only_empty and \
        spec.kind in _LISTS and not spec.choices and not kept else None
    if cell is not None:
        # `[x]` or `x && [x]` of a cell: a list of its text, or null when it is empty (what the
        # list normaliser makes of `[null]`).
        return [f"v = data[{writer.column(cell)}]",
                "if v:", f"    {target} = [v]", "else:", f"    {on_null}"]
    norm, spec_name = writer.bind(normalise), writer.bind(spec)
    if spec.kind in _DIRECT:
        fast = "v.__class__ is str and v"
    elif spec.kind == "bool":
        fast = "v.__class__ is bool"
    elif spec.kind == "timestamp":
        # Already RFC 3339 (what the normaliser returns unchanged) needs no parsing.
        fast = f"v.__class__ is str and {writer.bind(RFC3339.fullmatch)}(v) is not None"
    elif spec.kind in _LISTS and not spec.choices:
        fast = "v.__class__ is list and len(v) == 1 and v[0].__class__ is str and v[0]"
    else:
        fast = "False"
    return [
        f"v = {writer.expression(expr)}",
        f"if {fast}:",
        f"    {target} = v",
        "elif v is None or v == '' or v == []:",
        f"    {on_null}",
        "else:",
        f"    v = {norm}(v, {spec_name})",
        "    if v is None:",
        f"        {on_null}",
        "    else:",
        f"        {target} = v",
    ]


def _extras_block(writer: _Writer, extras: Extras) -> list[str]:
    # The generic loop's `_properties` and `_tags`, in their order.
    lines = ["props = {}"]
    for name, expr, cast, keep_null, keep_empty in extras.properties:
        kept_null = f"    props[{name!r}] = v" if keep_null else "    pass"
        kept_empty = f"    props[{name!r}] = v" if keep_empty else "    pass"
        cast_code = f"{writer.bind(cast)}(v)" if cast is not None else "v"
        lines += [f"v = {writer.value(expr)}",
                  "if v is None:", kept_null,
                  "elif v == '':", kept_empty,
                  "else:", f"    props[{name!r}] = {cast_code}"]
    lines.append("tags = []")
    for key, expr in extras.tag_pairs:
        lines += [f"v = {writer.value(expr)}",
                  "if v is not None:", f"    tags.append(({key!r}, _text(v)))"]
    if extras.tag_expression is not None:
        if writer.columns is not None or extras.tag_list is None:
            raise NotInlinable("tags")
        lines.append(f"tags.extend({writer.bind(extras.tag_list)}"
                     f"({writer.bind(extras.tag_expression.evaluate)}(data)))")
    return lines


def generate_row_function(
    fields: Mapping[str, Expression], specs: Mapping[str, FieldSpec],
    normalisers: Mapping[str, Callable[[Any, FieldSpec], Any]], identifier: str,
    one_of: tuple[tuple[str, ...], ...], make_row: Callable[..., Any],
    defer: tuple[str, ...] = (),
    columns: Mapping[str, int] | None = None,
    nulls: frozenset[str] = frozenset({""}),
    extras: Extras | None = None,
    kept_items: frozenset[str] = frozenset(),
) -> RowFunction:
    """The fast row function of a rule: `(data, record) -> what make_row returns | FALLBACK`.

    Args:
        fields: the rule's field expressions.
        specs: each field's FieldSpec; normalisers: each field's normaliser.
        identifier: the field whose null value skips the row (left to the generic path).
        one_of: groups of which one field must be present (else the generic path).
        make_row: builds the RuleRow from the values and the record, or hands them to a sink:
            `make_row(values, record)`, or with `extras` that have properties or tags
            `make_row(values, record, properties, tags)`; a sink with `fields` takes those
            fields as arguments instead (`make_row(*fields, record)`).
        defer: fields whose null value is left to the generic path too (it counts them: an IdP
            identity falling back to the name).
        columns: read a row's cells (`data` is a list) instead of a record dict: column name ->
            index.
        nulls: with `columns`, the cell texts that are null.
        extras: the rule's properties and tags, computed here.
        kept_items: list fields with their own normaliser (`keep_null_items`,
            `keep_repeated_items`): no shortcut for their one-item lists.

    Raises:
        NotInlinable: with `columns`, an expression needs the record dict.
    """
    extras = extras or Extras()
    writer = _Writer(columns, nulls)
    # A sink that names its fields takes them as arguments, in that order: no dict per row.
    positional: tuple[str, ...] | None = getattr(make_row, "fields", None)
    if positional is not None and (extras.any or not set(fields) <= set(positional)):
        raise ValueError("a positional sink takes every field of the rule and no extras")
    slots = {key: f"_f{i}" for i, key in enumerate(positional or ())}
    if positional:
        body = ["try:", "    " + " = ".join([*slots.values(), "None"])]
    else:
        body = ["try:", "    values = {}"]
    for key, expr in fields.items():
        must_have = key == identifier or key in defer or specs[key].required
        block = _field_block(writer, key, expr, specs[key], normalisers[key], must_have,
                             slots.get(key), key in kept_items)
        body += ["    " + line for line in block]
    body += ["except Exception:", "    return FALLBACK"]
    for group in one_of:
        # Only the rule's own fields can be present; a group with a field that is always set
        # (the identifier, or a required one) needs no test.
        present = [k for k in group if k in fields]
        if any(k == identifier or k in defer or specs[k].required for k in present):
            continue
        test = " or ".join(f"{slots[k]} is not None" if positional else f"{k!r} in values"
                           for k in present) or "False"
        body += [f"if not ({test}):", "    return FALLBACK"]
    if positional:
        body.append(f"return {writer.bind(make_row)}({', '.join(slots.values())}, record)")
    elif extras.any:
        body += ["try:", *("    " + line for line in _extras_block(writer, extras)),
                 "except Exception:", "    return FALLBACK",
                 f"return {writer.bind(make_row)}(values, record, props, tags)"]
    else:
        body.append(f"return {writer.bind(make_row)}(values, record)")
    source = "def row(data, record):\n" + "\n".join("    " + line for line in body) + "\n"
    namespace = dict(writer.names)
    exec(compile(source, "<oaamap rule row>", "exec"), namespace)  # our own source, no input
    row: RowFunction = namespace["row"]
    return row
