"""The `json` source kind: a JSON document with a `records` JMESPath, or a JSON Lines file."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..errors import Origin, SourceError, Span
from ..expressions import Expression
from ..limits import load_json
from ..templating import Template
from . import PlanContext, ReadContext, Record, register_source_kind
from .files import open_text, resolve

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

    # A file is cheaper to read again than to keep in memory for a second rule.
    rereadable: ClassVar[bool] = True

    @property
    def depends_on(self) -> tuple[str, ...]:
        """JSON files depend on no other source."""
        return ()

    def read(self, ctx: ReadContext) -> Iterator[Record]:
        """Yield the records: the elements the `records` expression selects, or one per line.

        Raises:
            SourceError: the file is missing, is not JSON, or a record is not an object.
        """
        path = resolve(self.base_dir, self.path.render(ctx.render_context))
        lines = self.lines if self.lines is not None else path.suffix.lower() in _LINES_SUFFIXES
        with open_text(self.name, str(path), self.encoding) as (handle, shown):
            if lines:
                yield from self._lines(handle, Origin(self.name, shown, "line"))
            else:
                yield from self._document(handle, Origin(self.name, shown, "index"))

    def _lines(self, handle: Any, origin: Origin) -> Iterator[Record]:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = load_json(line)
            except ValueError as e:
                raise SourceError(self.name, f"line is not JSON: {e}", location=origin.where,
                                  ref=origin.ref(number)) from e
            for item in self._select(value, origin, number):
                yield Record(item, origin, number)

    def _document(self, handle: Any, origin: Origin) -> Iterator[Record]:
        try:
            document = load_json(handle.read())
        except ValueError as e:
            raise SourceError(self.name, f"the file is not JSON: {e}",
                              location=origin.where) from e
        for index, item in enumerate(self._select(document, origin, None)):
            yield Record(item, origin, index)

    def _select(self, value: Any, origin: Origin, line: int | None) -> list[dict[str, Any]]:
        selected = self.records.search(value) if self.records is not None else value
        if selected is None:
            where = f"`records: {self.records.text}`" if self.records else "the document"
            raise SourceError(self.name, f"{where} selects nothing (null)", location=origin.where,
                              ref=origin.ref(line) if line else None)
        items = selected if isinstance(selected, list) else [selected]
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                kind = type(item).__name__
                raise SourceError(self.name, f"record is a {kind}, not an object",
                                  location=origin.where,
                                  ref=origin.ref(line if line is not None else index))
        return items


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
