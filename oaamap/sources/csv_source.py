"""The `csv` source kind: a CSV file with a header row (or `columns:`), streamed; an empty cell is
null."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, DataErrors, Origin, RowRef, SourceError, Span
from ..templating import Template
from . import PlanContext, ReadContext, Record, register_source_kind
from .files import NulByte, locate_decode_error, locate_offset, open_text, resolve

OPTIONS = ("columns", "csv", "delimiter", "encoding", "null_values", "quotechar")


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
    columns: tuple[str, ...] = ()

    @property
    def depends_on(self) -> tuple[str, ...]:
        """CSV files depend on no other source."""
        return ()

    def read(self, ctx: ReadContext) -> Iterator[Record]:
        """Yield one record per data row; the row number is the row's first physical line.

        A row with fewer cells than the header gets null for the missing ones (as an exporter
        that drops trailing empty cells writes them).

        Raises:
            SourceError: the file is missing or unreadable, or has no usable header.
            DataErrors: the file is malformed at a line (a row with more cells than the header,
                a quote never closed, text after a closing quote, a NUL byte, bytes the encoding
                cannot decode): nothing of the file is trusted.
        """
        path = resolve(self.base_dir, self.path.render(ctx.render_context))
        with open_text(self.name, str(path), self.encoding, forbid_nul=True) as (handle, shown):
            origin = Origin(self.name, shown, "line")
            # strict: a quote never closed or text after a closing quote is an error, not a
            # silently merged or altered cell.
            reader = csv.reader(handle, delimiter=self.delimiter, quotechar=self.quotechar,
                                strict=True)
            try:
                yield from self._rows(reader, origin)
            except NulByte as e:
                line, column = locate_offset(path, e.offset)
                raise self._error(origin.ref(line), f"a NUL byte at column {column}: this is "
                                  "not a text file (or not in its `encoding:`)") from None
            except UnicodeDecodeError as e:
                line, column, reason = locate_decode_error(path, self.encoding) or (0, 0, e.reason)
                raise self._error(origin.ref(line), f"cannot decode the line as "
                                  f"{self.encoding} at byte {column} ({reason}); set `encoding:` "
                                  "on the source") from None

    def _error(self, ref: RowRef, message: str) -> DataErrors:
        return DataErrors([DataError(f"source `{self.name}`: {message}", ref)])

    def _rows(self, reader: Any, origin: Origin) -> Iterator[Record]:
        line = 0  # the last physical line of the last complete row
        try:
            header = list(self.columns) or self._header(reader, origin)
            width = len(header)
            nulls = self.null_values
            only_empty = nulls == frozenset({""})
            line = reader.line_num
            for cells in reader:
                start, line = line + 1, reader.line_num
                if not cells:
                    continue
                if len(cells) > width:
                    raise self._error(origin.ref(start), f"row has {len(cells)} cells but the "
                                      f"{'header' if not self.columns else '`columns:`'} has "
                                      f"{width}; quote cells that contain `{self.delimiter}`")
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
            raise self._error(origin.ref(line + 1), _malformed(e, line + 1, reader.line_num)) \
                from e

    def _header(self, reader: Any, origin: Origin) -> list[str]:
        """The header row (consumed), its names trimmed and checked."""
        first: list[str] | None = next(reader, None)
        if first is None:
            raise SourceError(self.name, "the file is empty: a header row is required (or name "
                              "the columns with `columns:`)", location=origin.where)
        header = [h.strip() for h in first]
        self._check_header(header, origin)
        return header

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


def _malformed(error: csv.Error, start: int, end: int) -> str:
    """What a csv module error means for the user, and how to fix the file."""
    text = str(error)
    if text == "unexpected end of data":
        return (f"a quoted cell of the row starting on line {start} is never closed: it swallows "
                f"the file to its end (line {end}); close it, or double a quote inside a quoted "
                "cell")
    if text.startswith("field larger than field limit"):
        return (f"a cell starting on line {start} is longer than {csv.field_size_limit():,} "
                f"characters (read up to line {end}): most likely a quote that is never closed "
                "swallows the lines after it")
    if "expected after" in text:
        return (f"text follows the closing quote of a quoted cell ({text}); quote the whole "
                'cell and double each quote inside it, e.g. `"say ""hi"" now"`')
    return f"malformed CSV: {text}"


def plan_csv(name: str, config: Mapping[str, Any], ctx: PlanContext) -> CsvSource:
    """Plan a `csv` source from its entry (`csv: path`, delimiter, encoding, null_values,
    columns)."""
    base = ("sources", name)
    delimiter = str(config.get("delimiter", ","))
    if delimiter == "\\t":
        delimiter = "\t"
    if len(delimiter) != 1:
        ctx.error(f"delimiter must be one character, got `{delimiter}`", (*base, "delimiter"))
        delimiter = ","
    nulls = frozenset({"", *(str(v) for v in config.get("null_values", []) or [])})
    columns = tuple(str(c).strip() for c in config.get("columns") or ())
    for index, column in enumerate(columns):
        if not column or column in columns[:index]:
            ctx.error(f"column name `{column}` is {'empty' if not column else 'repeated'}",
                      (*base, "columns", index))
    return CsvSource(
        name=name,
        span=ctx.span_of(base),
        path=ctx.template(str(config["csv"]), (*base, "csv")),
        base_dir=ctx.base_dir,
        delimiter=delimiter,
        quotechar=str(config.get("quotechar", '"')),
        encoding=str(config.get("encoding", "utf-8-sig")),
        null_values=nulls,
        columns=columns,
    )


register_source_kind("csv", plan_csv)
