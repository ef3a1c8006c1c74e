"""The error tree of oaamap, with the locations (Span, RowRef) errors point at and their rendering.

Every error the CLI expects to show derives from `OaamapError`. Errors store fields; `__str__`
formats them. Code never builds a location string by hand at the raise site: it passes a `Span` or a
`RowRef`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .redact import mask_secrets, mask_text, sanitize_url

__all__ = [
    "ContextRecordError",
    "DataError",
    "DataErrors",
    "ErrorCollector",
    "MappingError",
    "MappingErrors",
    "OaamapError",
    "Origin",
    "OutputError",
    "PayloadError",
    "PayloadErrors",
    "PushError",
    "RowRef",
    "SourceError",
    "Span",
    "Warning_",
    "WarningsAsErrors",
    "excerpt",
    "mask_secrets",
    "sanitize_url",
]


@dataclass(frozen=True, slots=True)
class Span:
    """A position in a mapping file: 1-based line and column, with the source line for carets."""

    file: str
    line: int
    column: int
    length: int = 1
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def shifted(self, columns: int, length: int = 1) -> Span:
        """The same line, `columns` further right (a position inside a scalar)."""
        return Span(self.file, self.line, self.column + columns, length, self.text)

    def caret(self) -> str:
        """The source line and a caret under the span, compiler style; '' without source text."""
        if not self.text:
            return ""
        gutter = f"{self.line:>5} | "
        pad = " " * (len(gutter) - 2) + "| "
        marks = "^" * max(1, self.length)
        return f"{gutter}{self.text}\n{pad}{' ' * (self.column - 1)}{marks}"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a stream of records comes from: a file, an HTTP page, a SQL query.

    `style` says how a record number is shown: `line` (`data/users.csv:37`) or `index`
    (`teams.json[#3]`).
    """

    source: str
    where: str
    style: str = "line"

    def ref(self, row: int) -> RowRef:
        """The RowRef of record `row` of this origin."""
        return RowRef(self, row)


@dataclass(frozen=True, slots=True)
class RowRef:
    """One record of a source: its origin and its CSV line, record index or row number."""

    origin: Origin
    row: int

    @property
    def source(self) -> str:
        """The name of the source in the mapping file."""
        return self.origin.source

    def __str__(self) -> str:
        if self.origin.style == "index":
            return f"{self.origin.where}[#{self.row}]"
        return f"{self.origin.where}:{self.row}"


class OaamapError(Exception):
    """Base of every error oaamap reports to its user.

    `warnings` carries the warnings of a failed run, which often explain the failure.
    """

    exit_code = 1
    warnings: list[Warning_] = []  # noqa: RUF012  (replaced per instance, never mutated)

    def render(self) -> str:
        """The full, multi-line rendering shown by the CLI."""
        return str(self)


def excerpt(value: Any, limit: int = 200) -> str:
    """A one-line JSON excerpt of a record, secrets masked, truncated to `limit` characters."""
    try:
        text = json.dumps(mask_secrets(value), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    text = mask_text(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class MappingError(OaamapError, ValueError):
    """A mistake in a mapping file, located at `file:line:col`, with the expression and a hint."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        expression: str | None = None,
        hint: str | None = None,
        path: str | None = None,
        severity: str = "error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.expression = expression
        self.hint = hint
        self.path = path
        self.severity = severity

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.severity}: {self.message}{hint}"

    def render(self) -> str:
        """The error line, the source line with a caret, and the document path."""
        lines = [str(self)]
        if self.span is not None and self.span.text:
            lines.append(self.span.caret())
        elif self.expression:
            lines.append(f"      | {self.expression}")
        if self.path:
            lines.append(f"  at {self.path}")
        return "\n".join(lines)


class MappingErrors(OaamapError, ValueError):
    """Every mistake found in one mapping file, reported at once."""

    exit_code = 2

    def __init__(self, errors: Sequence[MappingError], file: str = "", max_shown: int = 20) -> None:
        self.errors = list(errors)
        self.file = file
        self.max_shown = max_shown
        super().__init__(self.summary())

    def summary(self) -> str:
        """`oaamap: N errors in FILE`."""
        n = len(self.errors)
        return f"oaamap: {n} error{'s' if n != 1 else ''} in {self.file or 'the mapping'}"

    def __str__(self) -> str:
        shown = [str(e) for e in self.errors[: self.max_shown]]
        more = len(self.errors) - len(shown)
        if more > 0:
            shown.append(f"... and {more} more")
        return "\n".join([*shown, self.summary()])

    def render(self) -> str:
        """Each error with its caret, then the summary line."""
        shown = [e.render() for e in self.errors[: self.max_shown]]
        more = len(self.errors) - len(shown)
        if more > 0:
            shown.append(f"... and {more} more")
        return "\n".join([*shown, self.summary()])


class OutputError(OaamapError):
    """The payload cannot be written where `-o` asks: a usage error, raised before any data is read
    when the folder is missing or unwritable."""

    exit_code = 2

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"oaamap: cannot write the payload to `{path}`: {reason}; "
                         "nothing was written")


class SourceError(OaamapError):
    """A source could not be read: a missing file, an HTTP failure, a database error."""

    exit_code = 3

    def __init__(
        self,
        source: str,
        message: str,
        *,
        location: str | None = None,
        status: int | None = None,
        body: str | None = None,
        ref: RowRef | None = None,
    ) -> None:
        self.source = source
        self.message = mask_text(message)
        self.location = mask_text(location) if location else location
        self.status = status
        self.body = mask_text(body) if body else body
        self.ref = ref
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" ({self.location})" if self.location else ""
        at = f"{self.ref}: " if self.ref else ""
        status = f" [HTTP {self.status}]" if self.status is not None else ""
        body = f"\n  response: {self.body[:500]}" if self.body else ""
        return f"{at}error: source `{self.source}`{where}: {self.message}{status}{body}"


class ContextRecordError(SourceError):
    """A `context:` source did not yield exactly one record (`records` is how many it yielded;
    `ref` locates the second one when there are several)."""

    def __init__(self, source: str, records: int, ref: RowRef | None = None) -> None:
        self.records = records
        super().__init__(
            source, f"a `context:` source must yield exactly one record, got {records:,} "
            + ("(check its path, query or filter)" if records == 0 else
               "(select the one record, e.g. with `records:` or a query)"), ref=ref)


class DataError(OaamapError):
    """A record a rule cannot turn into a valid entity: names the row, the rule and the value."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        ref: RowRef | None = None,
        *,
        expression: str | None = None,
        span: Span | None = None,
        record: Any = None,
    ) -> None:
        self.message = message
        self.ref = ref
        self.expression = expression
        self.span = span
        self.record = record
        super().__init__(str(self))

    def __str__(self) -> str:
        # Without a row (a finding about the whole source), the rule's place locates it.
        where = self.ref if self.ref is not None else self.span
        return f"{where}: error: {self.message}" if where is not None else \
            f"error: {self.message}"

    def render(self) -> str:
        """The error line, the rule that failed and an excerpt of the record."""
        lines = [str(self)]
        if self.expression:
            at = f"   ({self.span})" if self.span else ""
            lines.append(f"  rule: {self.expression}{at}")
        elif self.span:
            lines.append(f"  rule at {self.span}")
        if self.record is not None:
            lines.append(f"  record: {excerpt(self.record)}")
        return "\n".join(lines)


class DataErrors(OaamapError):
    """Every data error of a run, reported at once."""

    exit_code = 4

    def __init__(self, errors: Sequence[OaamapError], max_shown: int = 20) -> None:
        self.errors = list(errors)
        self.max_shown = max_shown
        super().__init__(str(self))

    def summary(self) -> str:
        """`oaamap: N data errors`."""
        n = len(self.errors)
        return f"oaamap: {n} data error{'s' if n != 1 else ''}; nothing was written or pushed"

    def __str__(self) -> str:
        return "\n".join([*(str(e) for e in self.errors[: self.max_shown]), self.summary()])

    def render(self) -> str:
        """Each error rendered, capped, then the summary."""
        shown = [e.render() for e in self.errors[: self.max_shown]]
        if len(self.errors) > self.max_shown:
            shown.append(f"... and {len(self.errors) - self.max_shown} more")
        return "\n".join([*shown, self.summary()])


class PayloadError(OaamapError):
    """The compiled payload breaks Veza's rules: names the JSON pointer and the row it came from."""

    exit_code = 4

    def __init__(self, message: str, pointer: str = "", ref: RowRef | None = None) -> None:
        self.message = message
        self.pointer = pointer
        self.ref = ref
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.ref}: " if self.ref is not None else ""
        at = f" (at {self.pointer})" if self.pointer else ""
        return f"{where}error: {self.message}{at}"


class PayloadErrors(DataErrors):
    """Every violation found in a compiled payload."""

    def summary(self) -> str:
        """`oaamap: the payload breaks N rules`."""
        n = len(self.errors)
        return f"oaamap: the payload breaks {n} rule{'s' if n != 1 else ''}; nothing was pushed"


class PushError(OaamapError):
    """Veza refused or failed a request: status, sanitized URL and the start of the response."""

    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        body: str | None = None,
        code: str | None = None,
        details: Sequence[str] = (),
        request_id: str | None = None,
    ) -> None:
        # Texts from the server (and the request id it echoes) may carry a secret: masked here,
        # so that the spool record and every rendering are clean.
        self.message = mask_text(message)
        self.status = status
        self.url = mask_text(sanitize_url(url)) if url else None
        self.body = mask_text(body[:500]) if body else None
        self.code = code
        self.details = [mask_text(str(d)) for d in details]
        self.request_id = mask_text(str(request_id)) if request_id is not None else None
        super().__init__(str(self))

    def __str__(self) -> str:
        status = f" [HTTP {self.status}]" if self.status is not None else ""
        code = f" {self.code}:" if self.code else ""
        url = f" ({self.url})" if self.url else ""
        lines = [f"error: push failed{status}{url}:{code} {self.message}"]
        lines += [f"  - {d}" for d in self.details]
        if self.request_id:
            lines.append(f"  request id: {self.request_id}")
        if self.body and not self.details:
            lines.append(f"  response: {self.body}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Warning_:
    """A non-fatal finding, with the place it concerns (a Span, a RowRef, or neither).

    `changes_payload` marks a finding that made the payload differ from what the data says (rows
    skipped, a conflicting value resolved, a grant or an entity dropped): `-q` still shows it.
    """

    message: str
    span: Span | None = None
    ref: RowRef | None = None
    changes_payload: bool = False

    def __str__(self) -> str:
        return self.render("warning")

    def render(self, severity: str = "warning") -> str:
        """`file:line:col: warning: message` (or `error:` when warnings are treated as errors)."""
        where = self.span or self.ref
        return f"{where}: {severity}: {self.message}" if where else f"{severity}: {self.message}"


class WarningsAsErrors(OaamapError):
    """A run with warnings under `--warnings-as-errors` (or `--strict`): each shown as an error."""

    exit_code = 4

    def __init__(self, findings: Sequence[Warning_], max_shown: int = 20) -> None:
        self.findings = list(findings)
        self.max_shown = max_shown
        super().__init__(self.summary())

    def summary(self) -> str:
        """`oaamap: N warnings treated as errors; nothing was written or pushed`."""
        n = len(self.findings)
        return (f"oaamap: {n} warning{'s' if n != 1 else ''} treated as error"
                f"{'s' if n != 1 else ''} (--warnings-as-errors or --strict); nothing was "
                "written or pushed")

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        """Each warning rendered as an error, capped, then the summary."""
        shown = [w.render("error") for w in self.findings[: self.max_shown]]
        if len(self.findings) > self.max_shown:
            shown.append(f"... and {len(self.findings) - self.max_shown} more")
        return "\n".join([*shown, self.summary()])


@dataclass
class ErrorCollector:
    """Collects mapping errors so a whole file is checked before one `MappingErrors` is raised."""

    file: str
    errors: list[MappingError] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)

    def add(self, error: MappingError) -> None:
        """Record one error."""
        self.errors.append(error)

    def extend(self, errors: Iterable[MappingError]) -> None:
        """Record several errors."""
        self.errors.extend(errors)

    def warn(self, message: str, span: Span | None = None) -> None:
        """Record a warning about the mapping."""
        self.warnings.append(Warning_(message, span=span))

    def raise_if_any(self) -> None:
        """Raise `MappingErrors` (sorted by position) when any error was recorded."""
        if self.errors:
            self.errors.sort(
                key=lambda e: (e.span.line, e.span.column) if e.span else (10**9, 0)
            )
            raise MappingErrors(self.errors, self.file)
