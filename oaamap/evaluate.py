"""Stage 5: (Rule, Record) -> RuleRow. Evaluates expressions, normalises values, reports errors.

Values are normalised to the field's kind here (a number id becomes a string, a date becomes RFC
3339, a single string in a list field becomes a one-element list), so the builder only merges.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

import jmespath.exceptions

from .errors import DataError, RowRef, Span, Warning_
from .expressions import _FALSE, _TRUE, Expression, FunctionError, _is_false, _text, to_rfc3339
from .language import IDP_PROVIDER_TYPES, TEMPLATES, FieldSpec
from .model import Rule, RuleRow
from .rowgen import FALLBACK, Extras, NotInlinable, RowFunction, generate_row_function
from .sources import Record
from .templating import Template

__all__ = ["Evaluation", "identifier_key"]

_SKIP = object()
# The builder's merge of one row from its values and record (the generated fast path's target):
# `sink(values, record)`, or `sink(values, record, properties, tags)` for a rule with either.
RowSink = Callable[..., None]
_KEYS_SHOWN = 30


class ValueProblem(ValueError):
    """A value that does not fit its field; the caller adds the row and the rule."""


def _str(value: Any, spec: FieldSpec) -> Any:
    if type(value) is str:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueProblem(f"expected a string, got {_kind(value)} `{_short(value)}`")
    return _text(value)


def _bool(value: Any, spec: FieldSpec) -> Any:
    if isinstance(value, bool):
        return value
    raise ValueProblem(f"expected a boolean, got {_kind(value)} `{_short(value)}`; "
                       "convert it with to_bool(...)")


def _timestamp(value: Any, spec: FieldSpec) -> Any:
    try:
        return to_rfc3339(value)
    except FunctionError as e:
        raise ValueProblem(str(e).replace("to_rfc3339: ", "") +
                           "; convert it with to_rfc3339(value, '<strftime format>')") from e


_CANONICAL: dict[tuple[str, ...], dict[str, str]] = {}


def canonical(text: str, choices: tuple[str, ...]) -> str:
    """The canonical spelling of an enumerated value, matched case-insensitively.

    Veza's SDK only takes its enum members, so `dataread` is emitted as `DataRead`.

    Raises:
        ValueProblem: the value is none of the choices.
    """
    table = _CANONICAL.get(choices)
    if table is None:
        table = _CANONICAL[choices] = {c.lower(): c for c in choices}
    found = table.get(text.lower())
    if found is None:
        raise ValueProblem(f"`{text}` is not one of {', '.join(choices)}")
    return found


def _enum(value: Any, spec: FieldSpec) -> Any:
    return canonical(_str(value, spec), spec.choices)


def _list(value: Any, spec: FieldSpec) -> Any:
    if type(value) is list and len(value) == 1 and not spec.choices:
        only = value[0]
        if type(only) is str and only:
            return value  # the common `[field]` / `x && [x]` case
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if item is None or item == "":
            continue
        text = item if type(item) is str else _str(item, spec)
        if spec.choices:
            text = canonical(text, spec.choices)
        if text not in out:
            out.append(text)
    return out or None


def _list_keeping(nulls: bool, repeats: bool) -> Callable[[Any, FieldSpec], Any]:
    """The normaliser of a list field named in `keep_null_items` (null elements kept, once, as
    the SDK sends `add_identity(None)`) and/or `keep_repeated_items` (repeated elements kept, as
    `add_identities` does not de-duplicate); "" elements are still dropped."""
    def normalise(value: Any, spec: FieldSpec) -> Any:
        items = value if isinstance(value, list) else [value]
        out: list[Any] = []
        for item in items:
            if item == "" or (item is None and not nulls):
                continue
            text = item if item is None or type(item) is str else _str(item, spec)
            if repeats or text not in out:
                out.append(text)
        return out or None
    return normalise


def _objects(value: Any, spec: FieldSpec) -> Any:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if item is None:
            continue
        if not isinstance(item, dict):
            raise ValueProblem(f"expected objects with {', '.join(spec.members)}, got "
                               f"{_kind(item)} `{_short(item)}`")
        unknown = set(item) - set(spec.members)
        if unknown:
            raise ValueProblem(f"unknown member `{sorted(unknown)[0]}` (expected "
                               f"{', '.join(spec.members)})")
        if item.get(spec.members[0]) is None:
            continue
        out.append({k: (_boolean(v) if k == "primary" else _text(v))
                    for k, v in item.items() if v is not None})
    return out or None


def _object(value: Any, spec: FieldSpec) -> Any:
    objects = _objects(value, spec)
    if not objects:
        return None
    obj = objects[0]
    if obj.get("provider_type") is not None:
        obj["provider_type"] = canonical(obj["provider_type"], IDP_PROVIDER_TYPES)
    return obj


NORMALIZERS: dict[str, Callable[[Any, FieldSpec], Any]] = {
    "str": _str, "ref": _str, "bool": _bool, "timestamp": _timestamp, "enum": _enum,
    "str_list": _list, "ref_list": _list, "enum_list": _list, "objects": _objects,
    "object": _object,
}


def _kind(value: Any) -> str:
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    try:
        text = str(value).strip()
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError as e:
        raise ValueProblem(f"`{_short(value)}` is not a number") from e


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueProblem(f"`{_short(value)}` is not a boolean")


PROPERTY_CASTS: dict[str, Callable[[Any], Any]] = {
    "STRING": lambda v: v if isinstance(v, str) else _text(v),
    "NUMBER": _number,
    "BOOLEAN": _boolean,
    "STRING_LIST": lambda v: [_text(x) for x in (v if isinstance(v, list) else [v])
                              if x is not None],
    "TIMESTAMP": lambda v: _timestamp(v, FieldSpec("timestamp")),
}

# The field that identifies an entity of each section (first present wins).
IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "users": ("id", "identity", "name"), "groups": ("id", "identity", "name"),
    "roles": ("id", "name"), "resources": ("id", "name"), "permissions": ("name",),
    "access_creds": ("id",), "apps": ("id",), "employees": ("id",),
    "grants": ("user", "group", "idp", "access_cred"),
    "app_assignments": ("user", "group"),
}


def identifier_key(rule: Rule, template: str = "application") -> str:
    """The field whose null value makes a row of `rule` skipped (its identifier).

    An IdP user's or group's `identity` falls back to its name (as in Veza's SDK), so there the
    name is what must not be null.
    """
    if template == "identity_provider" and rule.section in ("users", "groups"):
        return "name"
    for key in IDENTIFIERS.get(rule.section, ("name",)):
        if key in rule.fields:
            return key
    return "name"


def render_constant(value: Any, context: Mapping[str, Any]) -> Any:
    """A static rule's constant with its Jinja strings rendered."""
    if isinstance(value, Template):
        return value.render(context)
    if isinstance(value, list):
        return [render_constant(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render_constant(v, context) for k, v in value.items()}
    return value


@dataclass
class _Compiled:
    """A rule prepared for the hot loop: (key, evaluate, normalise, required) per field.

    Also what the run learnt about the rule, checked by `Evaluation.finish`: the fields no record
    had yet (`pending`), the keys records had, the rows it produced, the rows skipped for a null
    identifier, and (IdP users and groups) the rows whose `identity` fell back to the name.
    """

    rule: Rule
    fields: list[tuple[str, Callable[[Any], Any], Callable[[Any, FieldSpec], Any], FieldSpec,
                       bool]]
    identifier: str
    # The generated row function for a CSV header's columns (None: record dicts), null texts
    # and sink (None: it returns RuleRows).
    generate: Callable[[Mapping[str, int] | None, frozenset[str], RowSink | None],
                       RowFunction] = field(repr=False)
    pending: set[str] = field(default_factory=set)
    fast: RowFunction = field(init=False, repr=False)  # over record dicts, making RuleRows
    first_keys: tuple[str, ...] | None = None
    fallback_key: str | None = None
    seen_keys: dict[str, None] = field(default_factory=dict)
    produced: int = -1
    null_rows: int = 0
    fallbacks: int = 0

    def __post_init__(self) -> None:
        self.fast = self.generate(None, frozenset({""}), None)

    def function(self, sink: RowSink | None) -> RowFunction:
        """The row function over record dicts: it makes RuleRows, or hands rows to `sink`."""
        return self.fast if sink is None else self.generate(None, frozenset({""}), sink)


@dataclass
class Evaluation:
    """Evaluates rules over records for one run; collects data errors and skips per policy.

    Attributes:
        template: the mapping's template (selects the field vocabulary).
        context: `env` and `vars` for static rules' Jinja strings.
        policy: `fail` (collect every error, fail the run), `skip` (warn and skip the row) or
            `warn` (skip the row, count it).
    """

    template: str
    context: Mapping[str, Any]
    policy: str = "fail"
    max_errors: int = 1000
    errors: list[DataError] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    _compiled: list[_Compiled] = field(default_factory=list, repr=False)
    _groups: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict, repr=False)

    def _spec(self, rule: Rule) -> dict[str, FieldSpec]:
        return TEMPLATES[self.template].sections[rule.section].fields

    def static_row(self, rule: Rule) -> RuleRow | None:
        """The row of a static rule (its constants, rendered and normalised)."""
        specs = self._spec(rule)
        values = {}
        for key, raw in rule.fields.items():
            value = render_constant(raw, self.context)
            normalised = self._normalise(value, key, specs[key], rule, None, {})
            if normalised is not None and normalised is not _SKIP:
                values[key] = normalised
        props = self._properties(rule, render_constant, None, self.context)
        tags = [(k, str(render_constant(v, self.context))) for k, v in rule.tags.pairs]
        if props is _SKIP:
            return None
        if not TEMPLATES[self.template].sections[rule.section].single and \
                values.get(identifier_key(rule, self.template)) is None:
            self._count_skip(rule)
            return None
        return RuleRow(rule, values, props, tags, None)

    def feed(self, rule: Rule, records: Iterable[Record], handle: Callable[[RuleRow], None],
             sink: RowSink | None = None) -> int:
        """Evaluate a derived rule over its records, handing each row to `handle`.

        `sink`: the builder's merge of a row given as (values, record), or (values, record,
        properties, tags) for a rule with properties or tags: the generated row function calls
        it instead of making a RuleRow (a row it cannot decide still goes through the generic
        loop and `handle`).

        Returns:
            the number of rows produced (handled or sunk).
        """
        compiled = self._compile(rule)
        self._compiled.append(compiled)
        if rule.where is not None or rule.each is not None:
            return self._feed_generic(compiled, records, handle)
        if hasattr(records, "cells"):
            return self._feed_cells(compiled, records, handle, sink)
        return self._feed_records(compiled, records, handle, compiled.function(sink))

    def rows(self, rule: Rule, records: Iterable[Record]) -> Iterator[RuleRow]:
        """The rows of a derived rule over the records of its source, in record order."""
        out: list[RuleRow] = []
        self.feed(rule, records, out.append)
        return iter(out)

    def _feed_generic(self, compiled: _Compiled, records: Iterable[Record],
                      handle: Callable[[RuleRow], None]) -> int:
        # A rule with `where` or `each`: the generic loop only.
        rule = compiled.rule
        where = rule.where.evaluate if rule.where is not None else None
        count = 0
        for record in records:
            data = record.data
            if compiled.pending:
                self._track_fields(compiled, data)
            if where is not None:
                try:
                    if _is_false(where(data)):
                        continue
                except (jmespath.exceptions.JMESPathError, ValueError, RecursionError) as e:
                    self._error(rule, record.ref, f"`where` failed: {e}",
                                getattr(rule.where, "text", None), rule.field_spans.get("where"),
                                data)
                    continue
            for item in self._expand(rule, record, data):
                row = self._row(compiled, record, item)
                if row is not None:
                    handle(row)
                    count += 1
        return count

    def _feed_records(self, compiled: _Compiled, records: Iterable[Record],
                      handle: Callable[[RuleRow], None], fast: RowFunction) -> int:
        # The common case (no `where`, no `each`): the generated function returns a RuleRow, or
        # None when it handed the row to a sink, or FALLBACK for the generic loop to decide.
        row_of = self._row
        count = 0
        for record in records:
            data = record.data
            if compiled.pending:
                self._track_fields(compiled, data)
            row = fast(data, record)
            if row is FALLBACK:
                row = row_of(compiled, record, data)
                if row is None:
                    continue
            if row is not None:
                handle(row)
            count += 1
        return count

    def _feed_cells(self, compiled: _Compiled, stream: Any, handle: Callable[[RuleRow], None],
                    sink: RowSink | None) -> int:
        # A CSV stream (`CellStream`): the generated function reads each row's cells by column
        # index. A sink gets the stream's current-row view (no record per row); a RuleRow keeps
        # a record of its own (its dict built only if ever read).
        cells = stream.cells()
        first = next(cells, None)
        if first is None:
            return 0
        rows = itertools.chain((first,), cells)
        fast = self._cell_function(compiled, stream.header, stream.nulls, sink)
        if fast is None:
            return self._feed_records(compiled, map(stream.record, rows), handle,
                                      compiled.function(sink))
        # Every record has every header column: the first stands for all.
        self._track_fields(compiled, dict.fromkeys(stream.header))
        row_of = self._row
        current = stream.current if sink is not None else None
        lazy = stream.lazy_record
        count = 0
        for row_cells in rows:
            record = current or lazy(row_cells)
            row = fast(row_cells, record)
            if row is FALLBACK:
                if record is current:
                    record = lazy(row_cells)
                row = row_of(compiled, record, record.data)
                if row is None:
                    continue
            if row is not None:
                handle(row)
            count += 1
        return count

    def _cell_function(self, compiled: _Compiled, header: tuple[str, ...],
                       nulls: frozenset[str], sink: RowSink | None = None) -> RowFunction | None:
        columns = {name: index for index, name in enumerate(header)}
        if compiled.pending - set(columns):
            return None  # a field no record has: the record path reports it
        try:
            return compiled.generate(columns, nulls, sink)
        except NotInlinable:
            return None

    def _expand(self, rule: Rule, record: Record, data: dict[str, Any]
                ) -> Iterable[dict[str, Any]]:
        if rule.each is None:
            return (data,)
        name, expr = rule.each
        try:
            items = expr.evaluate(data)
        except (jmespath.exceptions.JMESPathError, ValueError, RecursionError) as e:
            self._error(rule, record.ref, f"`each` failed: {e}", expr.text,
                        rule.field_spans.get("each"), data)
            return ()
        if items is None:
            return ()
        return ({**data, name: item} for item in (items if isinstance(items, list) else [items]))

    def _compile(self, rule: Rule) -> _Compiled:
        specs = self._spec(rule)
        # The same normaliser on both paths (generated and generic): they cannot disagree.
        normalisers = {k: _list_keeping(k in rule.keep_null_items, k in rule.keep_repeated_items)
                       if k in rule.keep_null_items or k in rule.keep_repeated_items
                       else NORMALIZERS[specs[k].kind] for k in rule.fields}
        # `direct`: a non-empty string needs no normalisation for these kinds (the hot path).
        fields = [(k, e.evaluate, normalisers[k], specs[k], specs[k].kind in ("str", "ref"))
                  for k, e in rule.fields.items()]
        pending: set[str] = set()
        for expr in [*rule.fields.values(), *(p.value for p in rule.properties),
                     *(v for _, v in rule.tags.pairs), rule.tags.expression, rule.where]:
            if expr is not None and hasattr(expr, "root_fields"):
                pending |= expr.root_fields
        if rule.each is not None:
            pending |= rule.each[1].root_fields
            pending.discard(rule.each[0])
        identifier = identifier_key(rule, self.template)
        fallback = _fallback_key(rule, self.template)
        extras = _extras(rule)

        def make_row(values: dict[str, Any], record: Any, props: dict[str, Any] | None = None,
                     tags: list[tuple[str, str]] | None = None) -> RuleRow:
            return RuleRow(rule, values, {} if props is None else props,
                           [] if tags is None else tags, record)

        def generate(columns: Mapping[str, int] | None = None,
                     nulls: frozenset[str] = frozenset({""}),
                     sink: RowSink | None = None) -> RowFunction:
            return generate_row_function(
                rule.fields, specs, normalisers, identifier, self._one_of(rule),
                sink or make_row, defer=(fallback,) if fallback else (), columns=columns,
                nulls=nulls, extras=extras,
                kept_items=rule.keep_null_items | rule.keep_repeated_items)

        return _Compiled(rule, fields, identifier, generate, pending, fallback_key=fallback)

    def _track_fields(self, compiled: _Compiled, data: dict[str, Any]) -> None:
        # Runs only while some field read by the rule has not been seen in any record yet.
        if compiled.first_keys is None:
            compiled.first_keys = tuple(data)
        if len(compiled.seen_keys) < _KEYS_SHOWN:
            compiled.seen_keys.update(dict.fromkeys(data))
        compiled.pending = {f for f in compiled.pending if f not in data}

    def produced(self, rule: Rule, rows: int) -> None:
        """Record how many rows a derived rule produced (its rows were consumed by the builder)."""
        for compiled in reversed(self._compiled):
            if compiled.rule is rule:
                compiled.produced = rows
                return

    def finish(self) -> None:
        """Fail the run for rules that silently lost every row or read a field no record has.

        For each derived rule whose source had records: a field no record had (the expression is
        always null), an identifier null in every row (the rule defines nothing), or an IdP
        `identity` null in every row (every identity would fall back to the name) is a data error.
        """
        for compiled in self._compiled:
            if compiled.first_keys is None:
                continue  # an empty source: nothing was lost
            missing = [self._missing_field(compiled, name) for name in compiled.pending]
            self.errors += sorted(missing, key=lambda e: (e.span.line, e.span.column)
                                  if e.span else (0, 0))
            lost = self._all_null(compiled, compiled.pending)
            if lost is not None:
                self.errors.append(lost)
        self._compiled.clear()

    def _missing_field(self, compiled: _Compiled, name: str) -> DataError:
        rule = compiled.rule
        key, expr, span = _expression_reading(rule, name)
        fields = list(compiled.seen_keys or dict.fromkeys(compiled.first_keys or ()))
        shown = ", ".join(f"`{f}`" for f in fields[:_KEYS_SHOWN])
        more = ", ..." if len(fields) >= _KEYS_SHOWN else ""
        return DataError(
            f"{rule.label}: no record of source `{rule.source}` has a field `{name}`, so "
            f"`{key}` would be null in every row (the records have: {shown or 'no fields'}"
            f"{more}); fix the name, or write `@.{name}` to read a field that may be absent "
            "from every record", None, expression=getattr(expr, "text", None), span=span)

    def _all_null(self, compiled: _Compiled, missing: Set[str]) -> DataError | None:
        rule = compiled.rule
        if compiled.produced == 0 and compiled.null_rows:
            key, rows = compiled.identifier, compiled.null_rows
            what = f"so the rule defines no {rule.section}"
        elif compiled.fallback_key and compiled.produced > 0 and \
                compiled.fallbacks >= compiled.produced:
            key, rows = compiled.fallback_key, compiled.fallbacks
            what = ("so every one would be identified by its name (`identity` falls back to "
                    "`name` only per row)")
        else:
            return None
        expr = rule.fields.get(key)
        if missing & getattr(expr, "root_fields", frozenset()):
            return None  # the missing field is the cause, and is reported
        return DataError(
            f"{rule.label}: `{key}` is null in every row of source `{rule.source}` ({rows:,} "
            f"row{'s' if rows != 1 else ''}), {what}", None,
            expression=getattr(expr, "text", None), span=rule.field_spans.get(key) or rule.span)

    def _row(self, compiled: _Compiled, record: Record, data: dict[str, Any]) -> RuleRow | None:
        values: dict[str, Any] = {}
        key = ""
        try:
            for key, evaluate, normalise, spec, direct in compiled.fields:
                value = evaluate(data)
                kind = type(value)
                if kind is str:
                    if value:
                        if direct:
                            values[key] = value
                            continue
                    else:
                        value = None
                elif kind is list and not value:
                    value = None
                if value is not None:
                    value = normalise(value, spec)
                if value is None:
                    if key == compiled.identifier:
                        self._count_skip(compiled.rule)
                        compiled.null_rows += 1
                        return None
                    if key == compiled.fallback_key:
                        compiled.fallbacks += 1
                        continue
                    if spec.required:
                        self._required_null(compiled.rule, key, record, data)
                        return None
                    continue
                values[key] = value
        except (jmespath.exceptions.JMESPathError, ValueError, RecursionError) as e:
            rule = compiled.rule
            self._error(rule, record.ref, f"`{key}`: {e}", getattr(rule.fields[key], "text", None),
                        rule.field_spans.get(key), data)
            return None
        return self._finish_row(compiled.rule, values, record, data)

    def _finish_row(self, rule: Rule, values: dict[str, Any], record: Record,
                    data: dict[str, Any]) -> RuleRow | None:
        for group in self._one_of(rule):
            if values.keys().isdisjoint(group):
                self._count_skip(rule)  # e.g. a grant row whose role cell is empty
                return None
        props: Any = {}
        if rule.properties:
            props = self._properties(rule, None, record, data)
            if props is _SKIP:
                return None
        tags: list[tuple[str, str]] = []
        if rule.tags.pairs or rule.tags.expression is not None:
            evaluated = self._tags(rule, record, data)
            if evaluated is None:
                return None
            tags = evaluated
        return RuleRow(rule, values, props, tags, record)

    def _one_of(self, rule: Rule) -> tuple[tuple[str, ...], ...]:
        groups = self._groups.get(rule.section)
        if groups is None:
            groups = self._groups[rule.section] = TEMPLATES[self.template].sections[
                rule.section].one_of
        return groups

    def _required_null(self, rule: Rule, key: str, record: Record,
                       data: dict[str, Any]) -> None:
        expr = rule.fields[key]
        self._error(rule, record.ref, f"required field `{key}` of `{rule.section}` is null",
                    getattr(expr, "text", None), rule.field_spans.get(key), data)

    def _normalise(self, value: Any, key: str, spec: FieldSpec, rule: Rule,
                   record: Record | None, data: Any,
                   normalise: Callable[[Any, FieldSpec], Any] | None = None) -> Any:
        if value is None:
            return None
        try:
            return (normalise or NORMALIZERS[spec.kind])(value, spec)
        except ValueProblem as e:
            expr = rule.fields.get(key)
            self._error(rule, record.ref if record else None, f"`{key}`: {e}",
                        getattr(expr, "text", None), rule.field_spans.get(key), data)
            return _SKIP

    def _properties(self, rule: Rule, render: Any, record: Record | None, data: Any) -> Any:
        out: dict[str, Any] = {}
        for prop in rule.properties:
            try:
                # A derived rule's constant that is no string (`count: 7`) is kept as is.
                value = (render(prop.value, data) if render is not None
                         else prop.value.evaluate(data) if isinstance(prop.value, Expression)
                         else prop.value)
                if value is None or value == "":
                    # Omitted unless kept: the SDK sends what `set_property` was given.
                    if prop.keep_null if value is None else prop.keep_empty:
                        out[prop.name] = value
                    continue
                out[prop.name] = PROPERTY_CASTS[prop.type](value) if prop.type else value
            except (jmespath.exceptions.JMESPathError, ValueError, RecursionError) as e:
                self._error(rule, record.ref if record else None,
                            f"property `{prop.name}`: {e}", getattr(prop.value, "text", None),
                            prop.span, data)
                return _SKIP
        return out

    def _tags(self, rule: Rule, record: Record, data: Any) -> list[tuple[str, str]] | None:
        out = []
        try:
            for key, expr in rule.tags.pairs:
                value = expr.evaluate(data) if hasattr(expr, "evaluate") else expr
                if value is not None:
                    out.append((key, _text(value)))
            if rule.tags.expression is not None:
                out.extend(_tag_list(rule.tags.expression.evaluate(data)))
        except (jmespath.exceptions.JMESPathError, ValueError, RecursionError) as e:
            self._error(rule, record.ref, f"`tags`: {e}", None, rule.field_spans.get("tags"),
                        data)
            return None
        return out

    def _count_skip(self, rule: Rule) -> None:
        self.skipped[rule.label] = self.skipped.get(rule.label, 0) + 1

    def _error(self, rule: Rule, ref: RowRef | None, message: str, expression: str | None,
               span: Any, data: Any) -> None:
        self.rejected += 1
        error = DataError(f"{rule.label}: {message}", ref, expression=expression, span=span,
                          record=data if data else None)
        if self.policy == "fail":
            if len(self.errors) < self.max_errors:
                self.errors.append(error)
        elif self.policy == "skip":
            self.warnings.append(Warning_(f"row skipped: {message}", ref=ref,
                                          changes_payload=True))


def _extras(rule: Rule) -> Extras:
    """A rule's properties and tags for its generated row function (the generic loop's
    `_properties` and `_tags`, with the same casts)."""
    return Extras(
        properties=tuple((p.name, p.value, PROPERTY_CASTS[p.type] if p.type else None,
                          p.keep_null, p.keep_empty) for p in rule.properties),
        tag_pairs=rule.tags.pairs, tag_expression=rule.tags.expression, tag_list=_tag_list)


def _fallback_key(rule: Rule, template: str) -> str | None:
    """The field whose null value falls back to another per row (an IdP identity to its name)."""
    if template == "identity_provider" and rule.section in ("users", "groups") and \
            "identity" in rule.fields:
        return "identity"
    return None


def _expression_reading(rule: Rule, name: str) -> tuple[str, Any, Span | None]:
    """The first key of `rule` whose expression reads the record field `name`, it and its span."""
    spans = rule.field_spans
    candidates = [*((k, e, spans.get(k)) for k, e in rule.fields.items()),
                  *((f"properties.{p.name}", p.value, p.span) for p in rule.properties),
                  *((f"tags.{k}", e, spans.get("tags")) for k, e in rule.tags.pairs),
                  ("tags", rule.tags.expression, spans.get("tags")),
                  ("where", rule.where, spans.get("where"))]
    if rule.each is not None:
        candidates.append(("each", rule.each[1], spans.get("each")))
    for key, expr, span in candidates:
        if name in getattr(expr, "root_fields", ()):
            return key, expr, span or rule.span
    return rule.section, None, rule.span


def _tag_list(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, dict) or item.get("key") is None:
            raise ValueProblem(f"tags must be objects with `key` and `value`, got `{_short(item)}`")
        if item.get("value") is None and "value" in item:
            continue
        out.append((_text(item["key"]), _text(item.get("value", ""))))
    return out
