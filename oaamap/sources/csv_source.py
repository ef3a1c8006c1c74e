"""The `csv` source kind: a CSV file with a header row (or `columns:`), streamed; an empty cell is
null."""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, DataErrors, Origin, RowRef, SourceError, Span
from ..templating import Template
from . import PROGRESS_EVERY, PlanContext, ReadContext, Record, register_source_kind
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
        return iter(self.read_cells(ctx))

    def read_cells(self, ctx: ReadContext, count: Callable[[int], None] | None = None
                   ) -> CellStream:
        """The rows as cell lists (`CellStream.cells`) or as records (iterating the stream).

        Args:
            count: called with the number of rows yielded so far, every `PROGRESS_EVERY` rows
                and once at the end with the negated total (the run's progress and counts).
        """
        return CellStream(self, ctx, count)

    def _cells(self, ctx: ReadContext, stream: CellStream) -> Iterator[list[str]]:
        path = resolve(self.base_dir, self.path.render(ctx.render_context))
        with open_text(self.name, str(path), self.encoding, forbid_nul=True) as (handle, shown):
            origin = stream.origin = Origin(self.name, shown, "line")
            # strict: a quote never closed or text after a closing quote is an error, not a
            # silently merged or altered cell.
            reader = csv.reader(handle, delimiter=self.delimiter, quotechar=self.quotechar,
                                strict=True)
            try:
                yield from self._rows(reader, origin, stream)
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

    def _rows(self, reader: Any, origin: Origin, stream: CellStream) -> Iterator[list[str]]:
        line = 0  # the last physical line of the last complete row
        count, every, report = 0, PROGRESS_EVERY, stream.count
        # The hot loop does the least per row: one width test, the row's first line, a count.
        next_report = every if report is not None else -1
        try:
            header = list(self.columns) or self._header(reader, origin)
            stream.start(header)
            width = len(header)
            line = reader.line_num
            for cells in reader:
                if len(cells) != width:
                    if not cells:
                        line = reader.line_num
                        continue
                    if len(cells) > width:
                        raise self._error(origin.ref(line + 1), self._too_wide(len(cells), width))
                stream.line = line + 1
                line = reader.line_num
                count += 1
                if count == next_report:
                    report(count)  # type: ignore[misc]  # next_report is -1 without a report
                    next_report += every
                yield cells
        except csv.Error as e:
            raise self._error(origin.ref(line + 1), _malformed(e, line + 1, reader.line_num)) \
                from e
        if report is not None:
            report(-count)

    def _too_wide(self, cells: int, width: int) -> str:
        named_by = "header" if not self.columns else "`columns:`"
        return (f"row has {cells} cells but the {named_by} has {width}; quote cells that contain "
                f"`{self.delimiter}`")

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


class CellStream:
    """One read of a CSV file: its rows as cell lists for a consumer that reads cells by column
    index (a rule's generated row function), or as records when iterated.

    Attributes (set once the header is read, i.e. after the first `next()` of `cells()`):
        header: the column names; width: their number.
        nulls: the cell texts that mean null; only_empty: whether that is just "".
        origin: the file, for row references; line: the first line of the last row yielded.
    """

    def __init__(self, source: CsvSource, ctx: ReadContext,
                 count: Callable[[int], None] | None) -> None:
        self.source = source
        self.ctx = ctx
        self.count = count
        self.header: tuple[str, ...] = ()
        self.width = 0
        self.nulls = source.null_values
        self.only_empty = self.nulls == frozenset({""})
        self.origin = Origin(source.name, source.name, "line")  # the file's, once opened
        self.line = 0
        # The record of the row just yielded, its dict built only if read.
        self.lazy_record: Callable[[list[str]], Record] = functools.partial(CellRecord, self)
        # Where the row just yielded is, for a consumer that needs no more of it.
        self.current = CurrentRow(self)

    def start(self, header: list[str]) -> None:
        """The header was read."""
        self.header = tuple(header)
        self.width = len(header)

    def cells(self) -> Iterator[list[str]]:
        """The data rows' cells as read (a short row has fewer cells than the header)."""
        return self.source._cells(self.ctx, self)

    def record(self, cells: list[str]) -> Record:
        """The record of the row just yielded: empty (or `null_values`) cells are null, missing
        trailing cells too."""
        return Record(self.data_of(cells), self.origin, self.line)

    def data_of(self, cells: list[str]) -> dict[str, Any]:
        """A row's record data."""
        header = self.header
        data: dict[str, Any]
        if self.only_empty:
            data = dict(zip(header, cells, strict=False))
            if "" in cells:
                data = {k: v or None for k, v in data.items()}
        else:
            nulls = self.nulls
            data = {k: (None if v in nulls else v) for k, v in zip(header, cells, strict=False)}
        if len(cells) < self.width:
            data.update(dict.fromkeys(header[len(cells):]))
        return data

    def __iter__(self) -> Iterator[Record]:
        record = self.record
        for cells in self.cells():
            yield record(cells)


class CellRecord(Record):
    """The record of the row a CellStream just yielded, its dict built only if something reads
    it: a rule row keeps its record for its location, and most never need more."""

    __slots__ = ("cells", "stream")

    def __init__(self, stream: CellStream, cells: list[str]) -> None:
        self.cells = cells
        self.stream = stream
        self.origin = stream.origin
        self.row = stream.line

    @property
    def data(self) -> dict[str, Any]:  # type: ignore[override]  # read-only: built from cells
        """The record's data, as `CellStream.record` builds it."""
        return self.stream.data_of(self.cells)


class CurrentRow:
    """The location of the row a CellStream just yielded: one object for every row, read at once
    (a row merged from its cells keeps a RowRef only when it creates something)."""

    __slots__ = ("stream",)

    def __init__(self, stream: CellStream) -> None:
        self.stream = stream

    @property
    def ref(self) -> RowRef:
        """The current row's `file:line`."""
        return self.origin.ref(self.row)

    @property
    def origin(self) -> Origin:
        """The stream's file (a Record's `origin`)."""
        return self.stream.origin

    @property
    def row(self) -> int:
        """The current row's first line (a Record's `row`)."""
        return self.stream.line


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
