"""The `json` source kind: a JSON document with a `records` JMESPath, or a JSON Lines file."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, DataErrors, Origin, RowRef, SourceError, Span
from ..expressions import Expression
from ..limits import MAX_JSON_DEPTH, load_json
from ..templating import Template
from . import PlanContext, ReadContext, Record, register_source_kind
from .files import locate_decode_error, open_text, resolve

OPTIONS = ("json", "records", "lines", "encoding")
_LINES_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True, slots=True)
class JsonSource:
    """A planned JSON or JSON Lines source."""

    name: str
    span: Span | None
    path: Template
    base_dir: Path
    records: Expression | None = None
    lines: bool | None = None
    encoding: str = "utf-8-sig"

    @property
    def depends_on(self) -> tuple[str, ...]:
        """JSON files depend on no other source."""
        return ()

    def read(self, ctx: ReadContext) -> Iterator[Record]:
        """Yield the records: the elements the `records` expression selects, or one per line.

        Raises:
            SourceError: the file is missing or is not JSON, or what `records` selects cannot
                be records (a scalar, a list of non-objects, an object holding records).
            DataErrors: a record holds NaN or Infinity, or the file cannot be decoded (with
                the line).
        """
        path = resolve(self.base_dir, self.path.render(ctx.render_context))
        lines = self.lines if self.lines is not None else path.suffix.lower() in _LINES_SUFFIXES
        with open_text(self.name, str(path), self.encoding) as (handle, shown):
            if lines:
                yield from self._lines(handle, Origin(self.name, shown, "line"))
            else:
                yield from self._document(handle, Origin(self.name, shown, "index"))

    def _lines(self, handle: Any, origin: Origin) -> Iterator[Record]:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                guard = _NonFinite()
                try:
                    value = load_json(line, MAX_JSON_DEPTH, **guard.options)
                except ValueError as e:
                    raise SourceError(self.name, f"line is not JSON: {e}", location=origin.where,
                                      ref=origin.ref(number)) from e
                items = self._select(value, origin, number)
                for item in items:
                    if guard.seen:
                        self._check_finite(item, guard, origin.ref(number))
                    yield Record(item, origin, number)
        except UnicodeDecodeError as e:
            raise self._undecodable(handle, origin, e) from None

    def _document(self, handle: Any, origin: Origin) -> Iterator[Record]:
        guard = _NonFinite()
        try:
            document = load_json(handle.read(), MAX_JSON_DEPTH, **guard.options)
        except UnicodeDecodeError as e:
            raise self._undecodable(handle, origin, e) from None
        except ValueError as e:
            raise SourceError(self.name, f"the file is not JSON: {e}",
                              location=origin.where) from e
        for index, item in enumerate(self._select(document, origin, None)):
            if guard.seen:
                self._check_finite(item, guard, origin.ref(index))
            yield Record(item, origin, index)

    def _check_finite(self, item: dict[str, Any], guard: _NonFinite, ref: RowRef) -> None:
        where = _non_finite_path(item)
        if where is not None:
            raise DataErrors([DataError(
                f"source `{self.name}`: `{where[1]}` at `{where[0]}` is not a number JSON or "
                "Veza accept (NaN and Infinity never reach a payload); fix the export, or drop "
                "the field", ref, record=item)])

    def _undecodable(self, handle: Any, origin: Origin, error: UnicodeDecodeError) -> DataErrors:
        found = locate_decode_error(handle.name, self.encoding) if isinstance(
            getattr(handle, "name", None), str) else None
        line, column, reason = found or (0, 0, error.reason)
        return DataErrors([DataError(
            f"source `{self.name}`: cannot decode the line as {self.encoding} at byte {column} "
            f"({reason}); set `encoding:` on the source", Origin(self.name, origin.where,
                                                               "line").ref(line))])

    def _select(self, value: Any, origin: Origin, line: int | None) -> list[dict[str, Any]]:
        selected = self.records.search(value) if self.records is not None else value
        what = f"`records: {self.records.text}`" if self.records else "the document"
        ref = origin.ref(line) if line else None
        if selected is None:
            raise SourceError(self.name, f"{what} selects nothing (null) in {describe(value)}",
                              location=origin.where, ref=ref)
        problem = shape_problem(selected, self.records.text if self.records else None)
        if problem is not None:
            raise SourceError(self.name, f"{what} is {problem}", location=origin.where, ref=ref)
        return selected if isinstance(selected, list) else [selected]


def describe(value: Any, depth: int = 0) -> str:
    """A short description of a JSON value's shape: `a list of 3 strings`, `an object with keys
    `a`, `b``."""
    if isinstance(value, dict):
        keys = ", ".join(f"`{k}`" for k in list(value)[:5]) + (", ..." if len(value) > 5 else "")
        return f"an object with keys {keys}" if value else "an empty object"
    if isinstance(value, list):
        if not value:
            return "an empty list"
        kinds = sorted({_KINDS.get(type(v), type(v).__name__) for v in value})
        return f"a list of {len(value)} {' and '.join(k + 's' for k in kinds)}"
    return f"{_ARTICLES.get(type(value), 'a value')} `{json.dumps(value)[:40]}`"


def shape_problem(selected: Any, records: str | None) -> str | None:
    """Why `selected` cannot be a source's records (a scalar, a list of non-objects, an object
    that is a container of records rather than one record), with the `records:` that fixes it;
    None when it can be."""
    base = records or "@"
    if isinstance(selected, list):
        bad = next((v for v in selected if not isinstance(v, dict)), _OK)
        if bad is _OK:
            return None
        if isinstance(bad, list) and all(isinstance(x, dict) for v in selected
                                         if isinstance(v, list) for x in v):
            return (f"{describe(selected)}, not a list of objects; flatten it with "
                    f"`records: \"{_join(base, '[]')}\"`")
        return (f"{describe(selected)}, not a list of objects: each record must be an object; "
                f"to make one of each element use `records: \"{_join(base, '[*].{value: @}')}\"`"
                " and read `value`")
    if not isinstance(selected, dict):
        return (f"{describe(selected)}, not an object or a list of objects; point `records:` "
                "at the list of records")
    if not selected or any(not isinstance(v, dict | list | None) for v in selected.values()) \
            or all(v is None for v in selected.values()):
        return None  # an object with scalar fields: one record
    lists = [k for k, v in selected.items() if isinstance(v, list) and v
             and all(isinstance(x, dict) for x in v)]
    if all(isinstance(v, dict) for v in selected.values()):
        fix = (f"`records: \"values({base})\"` gives one record per value (keep the key in "
               "each value: it is not a field)")
        return (f"an object keyed by {_first_keys(selected)} whose values are all objects: read "
                f"as one record it would define one entity, not {len(selected)}; {fix}, or "
                f"`records: \"[{base}]\"` if it really is one record")
    hint = (f"e.g. `records: {_join(records, _quoted(lists[0]))}`" if lists
            else "point `records:` at the list of records")
    return (f"an object of objects and lists with no field of its own "
            f"({_first_keys(selected)}): it holds records rather than being one; {hint}, or "
            f"`records: \"[{base}]\"` if it really is one record")


def _first_keys(value: dict[str, Any]) -> str:
    return ", ".join(f"`{k}`" for k in list(value)[:3]) + (", ..." if len(value) > 3 else "")


def _quoted(key: str) -> str:
    return key if key.isidentifier() else json.dumps(key)


def _join(base: str | None, tail: str) -> str:
    if not base or base == "@":
        return tail if not tail.startswith(".") else tail[1:]
    return f"{base}{tail}" if tail.startswith("[") else f"{base}.{tail}"


_OK = object()
_KINDS = {bool: "boolean", str: "string", int: "number", float: "number", list: "list",
          dict: "object", type(None): "null"}
_ARTICLES = {bool: "a boolean", str: "a string", int: "a number", float: "a number",
             type(None): "null"}


class _NonFinite:
    """Notes NaN/Infinity while parsing (Python's json accepts `NaN`, `Infinity`, `1e999`; JSON
    and Veza do not); records are searched for them only when one was seen."""

    def __init__(self) -> None:
        self.seen = False
        self.options = {"parse_constant": self._constant, "parse_float": self._float}

    def _constant(self, text: str) -> float:
        self.seen = True
        return float(text)

    def _float(self, text: str) -> float:
        value = float(text)
        if value in _INFINITIES:
            self.seen = True
        return value


_INFINITIES = (math.inf, -math.inf)


def _non_finite_path(value: Any, path: str = "@") -> tuple[str, str] | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path, "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite_path(item, key if path == "@" else f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _non_finite_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def refuse_non_finite(text: str) -> float:
    """A `parse_constant`/`parse_float` for json.loads that refuses NaN and infinities.

    Raises:
        ValueError: `NaN`, `Infinity`, `-Infinity`, or a number too large for a float.
    """
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"`{text}` is not a JSON number (NaN and Infinity are refused)")
    return value


STRICT_JSON: dict[str, Any] = {"parse_constant": refuse_non_finite,
                               "parse_float": refuse_non_finite}


def plan_json(name: str, config: Mapping[str, Any], ctx: PlanContext) -> JsonSource:
    """Plan a `json` source from its mapping entry (`json: path`, records, lines, encoding)."""
    base = ("sources", name)
    records = None
    if config.get("records") is not None:
        records = ctx.expression(str(config["records"]), (*base, "records"))
    lines = config.get("lines")
    return JsonSource(
        name=name,
        span=ctx.span_of(base),
        path=ctx.template(str(config["json"]), (*base, "json")),
        base_dir=ctx.base_dir,
        records=records,
        lines=bool(lines) if lines is not None else None,
        encoding=str(config.get("encoding", "utf-8-sig")),
    )


register_source_kind("json", plan_json)
