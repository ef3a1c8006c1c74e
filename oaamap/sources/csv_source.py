"""The `csv` source kind: a CSV file with a header row, streamed; an empty cell is null."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Origin, SourceError, Span
from ..templating import Template
from . import PlanContext, ReadContext, Record, register_source_kind
from .files import open_text, resolve

OPTIONS = ("csv", "delimiter", "encoding", "null_values", "quotechar")


@dataclass(frozen=True, slots=True)
class CsvSource:
    """A planned CSV source."""

    name: str
    span: Span | None
    path: Template
    base_dir: Path
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8-sig"
    null_values: frozenset[str] = frozenset({""})

    @property
    def depends_on(self) -> tuple[str, ...]:
        """CSV files depend on no other source."""
        return ()

    def read(self, ctx: ReadContext) -> Iterator[Record]:
        """Yield one record per data row; the row number is the row's first physical line.

        Raises:
            SourceError: the file is missing or unreadable, has no header, or a row has more
                cells than the header.
        """
        path = resolve(self.base_dir, self.path.render(ctx.render_context))
        with open_text(self.name, str(path), self.encoding) as (handle, shown):
            origin = Origin(self.name, shown, "line")
            reader = csv.reader(handle, delimiter=self.delimiter, quotechar=self.quotechar)
            yield from self._rows(reader, origin)

    def _rows(self, reader: Any, origin: Origin) -> Iterator[Record]:
        try:
            header = next(reader, None)
            if header is None:
                raise SourceError(self.name, "the file is empty: a header row is required",
                                  location=origin.where)
            header = [h.strip() for h in header]
            self._check_header(header, origin)
            width = len(header)
            nulls = self.null_values
            only_empty = nulls == frozenset({""})
            line = reader.line_num
            for cells in reader:
                start, line = line + 1, reader.line_num
                if not cells:
                    continue
                if len(cells) > width:
                    raise SourceError(
                        self.name, f"row has {len(cells)} cells but the header has {width}",
                        location=origin.where, ref=origin.ref(start))
                if only_empty:
                    data = dict(zip(header, cells, strict=False))
                    if "" in cells:
                        data = {k: v or None for k, v in data.items()}
                else:
                    data = {k: (None if v in nulls else v)
                            for k, v in zip(header, cells, strict=False)}
                if len(cells) < width:
                    data.update(dict.fromkeys(header[len(cells):]))
                yield Record(data, origin, start)
        except csv.Error as e:
            raise SourceError(self.name, f"malformed CSV: {e}", location=origin.where,
                              ref=origin.ref(reader.line_num)) from e
        except UnicodeDecodeError as e:
            raise SourceError(self.name, f"cannot decode the file as {self.encoding}: {e}; "
                              "set `encoding:` on the source", location=origin.where) from e

    def _check_header(self, header: list[str], origin: Origin) -> None:
        seen: set[str] = set()
        for column in header:
            if not column:
                raise SourceError(self.name, "the header has an empty column name",
                                  location=origin.where, ref=origin.ref(1))
            if column in seen:
                raise SourceError(self.name, f"the header repeats the column `{column}`",
                                  location=origin.where, ref=origin.ref(1))
            seen.add(column)


def plan_csv(name: str, config: Mapping[str, Any], ctx: PlanContext) -> CsvSource:
    """Plan a `csv` source from its entry (`csv: path`, delimiter, encoding, null_values)."""
    base = ("sources", name)
    delimiter = str(config.get("delimiter", ","))
    if delimiter == "\\t":
        delimiter = "\t"
    if len(delimiter) != 1:
        ctx.error(f"delimiter must be one character, got `{delimiter}`", (*base, "delimiter"))
        delimiter = ","
    nulls = frozenset({"", *(str(v) for v in config.get("null_values", []) or [])})
    return CsvSource(
        name=name,
        span=ctx.span_of(base),
        path=ctx.template(str(config["csv"]), (*base, "csv")),
        base_dir=ctx.base_dir,
        delimiter=delimiter,
        quotechar=str(config.get("quotechar", '"')),
        encoding=str(config.get("encoding", "utf-8-sig")),
        null_values=nulls,
    )


register_source_kind("csv", plan_csv)
