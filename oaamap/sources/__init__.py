"""Stage 4: sources. Named record streams behind the SOURCE_KINDS registry.

A source kind is a factory `(name, config, ctx) -> SourcePlan` registered under the key that selects
it in a mapping (`csv`, `json`, `http`, `sql`). The factory runs at plan time (stage 3): it checks
its configuration, compiles its templates and expressions, and reports mistakes to `ctx`. The plan
it returns reads nothing until `read()` is called (stage 4).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import ErrorCollector, MappingError, Origin, RowRef, Span, Warning_
from ..expressions import Expression
from ..templating import Template, compile_template

__all__ = [
    "FALSE_TEXTS",
    "PROGRESS_EVERY",
    "SOURCE_KINDS",
    "ConditionalSource",
    "PlanContext",
    "ReadContext",
    "Record",
    "SourceFactory",
    "SourcePlan",
    "plan_source",
    "register_source_kind",
]

PROGRESS_EVERY = 10_000  # records between two progress reports


class Record:
    """One record of a source: its data (a JSON-like dict), its origin and its row number.

    A plain slotted class rather than a frozen dataclass: sources create millions of these and a
    frozen dataclass's `__init__` costs twice as much.
    """

    __slots__ = ("data", "origin", "row")

    def __init__(self, data: dict[str, Any], origin: Origin, row: int) -> None:
        self.data = data
        self.origin = origin
        self.row = row

    @property
    def ref(self) -> RowRef:
        """The record's location: `file:line`, `file[#n]`, `GET url page N[#n]`, `source:row`."""
        return RowRef(self.origin, self.row)

    def __repr__(self) -> str:
        return f"Record({self.ref}, {self.data!r})"


class SourcePlan(Protocol):
    """A planned source: knows its name and span, and reads its records on demand."""

    @property
    def name(self) -> str:
        """The source's name in the mapping."""
        ...

    @property
    def span(self) -> Span | None:
        """Where the source is declared."""
        ...

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Names of the sources whose records this one needs (fan-out parents)."""
        ...

    def read(self, ctx: ReadContext) -> Iterator[Record]:
        """Yield the records in a deterministic order.

        Raises:
            SourceError: the source cannot be read (file, network, database, bad format).
        """
        ...


@dataclass
class PlanContext:
    """What a source factory may use at plan time: locations, error reporting, compilers.

    Attributes:
        base_dir: the mapping file's folder; relative paths are resolved against it.
        collector: where mapping errors and warnings go (all are reported at once).
        span_of: the Span of a document path such as ("sources", "users", "http", "url").
        key_span_of: the Span of the key at a document path (for unexpected keys).
        template_names: the names every configuration string may use (`env`, `vars`).
        compile_expression: compiles a JMESPath at a document path, reporting mistakes with
            their file:line:col; returns None when the expression is invalid.
        source_names: every source declared in the mapping (for `for_each` checks).
        secrets: the environment variables the mapping's `secrets:` lets any string read.
    """

    base_dir: Path
    collector: ErrorCollector
    span_of: Callable[[tuple[Any, ...]], Span | None]
    key_span_of: Callable[[tuple[Any, ...]], Span | None]
    compile_expression: Callable[[str, tuple[Any, ...]], Expression | None]
    template_names: frozenset[str] = frozenset({"env", "vars"})
    source_names: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()

    def error(
        self, message: str, path: tuple[Any, ...], *, hint: str | None = None,
        expression: str | None = None,
    ) -> None:
        """Report a mistake at a document path."""
        self.collector.add(
            MappingError(message, self.span_of(path), hint=hint, expression=expression,
                         path=_json_path(path))
        )

    def template(
        self, text: str, path: tuple[Any, ...], extra_names: Iterable[str] = (), *,
        credential: bool = False,
    ) -> Template:
        """Compile a configuration string; a mistake is reported and a constant returned.

        `credential` marks a credential position (auth setting, secret header, SQL url), which
        may read secret-looking environment variables without `secrets:` listing them.
        """
        span = self.span_of(path)
        try:
            return compile_template(str(text), span, self.template_names | set(extra_names),
                                    credential=credential, secrets=self.secrets)
        except MappingError as e:
            e.path = _json_path(path)
            self.collector.add(e)
            return Template(str(text), span)

    def expression(self, text: str, path: tuple[Any, ...]) -> Expression | None:
        """Compile a JMESPath expression at a document path; None (and an error) when invalid."""
        return self.compile_expression(text, path)


@dataclass
class ReadContext:
    """What a source may use while reading: the template context and the other sources' records.

    Attributes:
        render_context: `env` and `vars` for configuration strings.
        records_of: the records of another (already read) source, by name.
        warnings: where non-fatal findings go.
        options: run options a source may honour (e.g. `http_concurrency` overrides).
        notes: facts about the run worth showing that are not warnings (a source disabled by
            `when:`, requests answered with an `ignore_status`); `--warnings-as-errors`
            ignores them.
        disabled: the sources whose `when:` was false, with the condition's text.
    """

    render_context: Mapping[str, Any]
    records_of: Callable[[str], list[Record]]
    warnings: list[Warning_] = field(default_factory=list)
    options: Mapping[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    disabled: dict[str, str] = field(default_factory=dict)

    def warn(self, message: str, ref: RowRef | None = None) -> None:
        """Record a non-fatal finding about the data."""
        self.warnings.append(Warning_(message, ref=ref))

    def note(self, message: str) -> None:
        """Record a fact about the run that is not a problem (shown, never fails a run)."""
        self.notes.append(message)


SourceFactory = Callable[[str, Mapping[str, Any], PlanContext], SourcePlan]

SOURCE_KINDS: dict[str, SourceFactory] = {}


def register_source_kind(kind: str, factory: SourceFactory) -> None:
    """Register a source kind under the mapping key that selects it.

    Raises:
        ValueError: the kind is already registered.
    """
    if kind in SOURCE_KINDS and not isinstance(SOURCE_KINDS[kind], _Deferred):
        raise ValueError(f"source kind `{kind}` is already registered")
    SOURCE_KINDS[kind] = factory


# Keys every source kind accepts beside its own (`when:`); the kinds never see them.
COMMON_KEYS = ("when",)
# What a rendered `when:` reads as false (vars are strings: `--var app=false`).
FALSE_TEXTS = frozenset({"", "false", "0", "no", "off", "none"})


@dataclass(frozen=True)
class ConditionalSource:
    """A source with `when:`: the condition is rendered (over `env` and `vars`) before anything
    is read, or, when it reads a context record, once the context sources are read; when it is
    false the source yields no record and sends no request or query.

    Attributes:
        inner: the planned source of its kind.
        when: the condition, a Jinja expression (or a `{{ ... }}` template).
    """

    inner: SourcePlan
    when: Template

    @property
    def name(self) -> str:
        """The source's name."""
        return self.inner.name

    @property
    def span(self) -> Span | None:
        """Where the source is declared."""
        return self.inner.span

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The inner source's parents (read only when the source is enabled)."""
        return self.inner.depends_on

    def enabled(self, context: Mapping[str, Any]) -> bool:
        """The condition's value.

        Raises:
            MappingError: the condition uses an undefined value.
        """
        return self.when.render(context).strip().lower() not in FALSE_TEXTS

    def read(self, ctx: ReadContext) -> Iterator[Record]:
        """The inner source's records, or none (and a note) when the condition is false."""
        if not self.enabled(ctx.render_context):
            ctx.disabled[self.name] = _condition_text(self.when.text)
            ctx.note(f"source `{self.name}` is disabled (`when: "
                     f"{_condition_text(self.when.text)}` is false): no records read")
            return
        yield from self.inner.read(ctx)


def _condition_text(text: str) -> str:
    inner = text.strip()
    if inner.startswith("{{") and inner.endswith("}}"):
        inner = inner[2:-2].strip()
    return inner


def plan_source(kind: str, name: str, config: Mapping[str, Any], ctx: PlanContext) -> SourcePlan:
    """Plan a source of a registered kind, with the keys every kind accepts (`when:`).

    Example:
        >>> plan_source("csv", "users", {"csv": "u.csv", "when": "vars.hr == 'yes'"}, ctx)
    """
    plan = SOURCE_KINDS[kind](name, config, ctx)
    if config.get("when") is None:
        return plan
    path = ("sources", name, "when")
    raw = config["when"]
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, str) and raw.strip():
        text = raw.strip()
    else:
        ctx.error("`when` must be a Jinja expression over `vars` and `env` (a string), "
                  f"got {type(raw).__name__}", path)
        return plan
    if "{{" not in text and "{%" not in text:
        text = f"{{{{ {text} }}}}"
    return ConditionalSource(plan, ctx.template(text, path))


class _Deferred:
    """A built-in kind whose module is imported on first use (requests and SQLAlchemy take a
    fifth of a second to import, which a CSV-only run should not pay)."""

    def __init__(self, kind: str, module: str) -> None:
        self.kind = kind
        self.module = module

    def __call__(self, name: str, config: Mapping[str, Any], ctx: PlanContext) -> SourcePlan:
        importlib.import_module(self.module)  # registers the real factory in its place
        return SOURCE_KINDS[self.kind](name, config, ctx)


def _json_path(path: tuple[Any, ...]) -> str:
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _load_builtin_kinds() -> None:
    # Imported for their registration side effect; kept last so the registry exists first.
    from . import csv_source, derived, json_source  # noqa: F401

    for kind, module in (("http", "http"), ("sql", "sql_source")):
        if importlib.util.find_spec(f"{__name__}.{module}") is not None:
            SOURCE_KINDS[kind] = _Deferred(kind, f"{__name__}.{module}")


_load_builtin_kinds()
