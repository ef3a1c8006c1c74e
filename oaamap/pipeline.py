"""The only module that knows the order of the stages: load, validate, plan, read, evaluate, build,
compile, check. (Pushing is stage 9, in `veza/`, run by the CLI after a successful compile.)"""

from __future__ import annotations

import functools
import gc
import itertools
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Any, TextIO

from .build import Builder
from .check import SchemaCheck, check_entities
from .errors import (
    ContextRecordError,
    DataError,
    DataErrors,
    MappingError,
    MappingErrors,
    OaamapError,
    PayloadErrors,
    Warning_,
    WarningsAsErrors,
)
from .evaluate import Evaluation
from .expressions import _text, key_values, parse_key_path
from .loader import load
from .model import EntitySet, MappingPlan, RuleRow
from .planner import plan
from .redact import VEZA_KEY_VAR
from .sources import PROGRESS_EVERY, ConditionalSource, ReadContext, Record
from .sources.files import resolve
from .templates import compile_payload, iter_json, skeleton
from .templating import Template

__all__ = ["CompileOptions", "CompileResult", "compile_mapping", "plan_mapping"]

ProgressHook = Callable[[str, int], None]
# Larger payloads spool to a temporary file. 1 MB, not more: a memory spool rolls over by copying
# itself, and the 16 MB it was cost the serialise stage 9-12 MB of peak RSS on the bench payload.
SPOOL_IN_MEMORY = 1024 * 1024


@dataclass(frozen=True)
class CompileOptions:
    """How a compile runs.

    Attributes:
        on_data_error: `fail` (default: every data error is collected and the run fails),
            `skip` (the row is skipped with a warning) or `warn` (skipped and counted).
        strict: a conflicting value for one entity is an error, not a warning; implies
            `warnings_as_errors`.
        warnings_as_errors: a run with any warning fails (`WarningsAsErrors`, exit 4).
        progress: called with (source, records read so far) every 10,000 records.
        source_options: passed to sources (e.g. `http_concurrency`).
        limit: read at most this many records of each source (`compile --limit`, a trial).
        observe: called with each rule row before it is built (`explain` collects provenance
            this way; None, the default, costs nothing).
    """

    on_data_error: str = "fail"
    strict: bool = False
    warnings_as_errors: bool = False
    progress: ProgressHook | None = None
    source_options: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None
    observe: Callable[[RuleRow], None] | None = None


@dataclass(frozen=True)
class CompileResult:
    """A compiled, checked payload and what it is for."""

    template: str
    provider: str
    provider_icon: Path | None
    data_source: str
    entities: EntitySet
    spool: IO[bytes] = field(repr=False)  # the compact JSON, ASCII
    warnings: list[Warning_] = field(default_factory=list)
    # The sections the mapping has rules for: an empty one on a first push is suspicious.
    rule_sections: frozenset[str] = frozenset()
    # Facts about the run that are not warnings (disabled sources, ignored HTTP statuses).
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Entities per kind (the shrink guard compares these between pushes)."""
        return self.entities.counts()

    @property
    def records(self) -> Mapping[str, int]:
        """Records read per source."""
        return self.entities.records

    def payload_json(self) -> str:
        """The compact JSON Veza's push endpoint takes in `json_data` (as the SDK serialises)."""
        self.spool.seek(0)
        return self.spool.read().decode("ascii")

    @cached_property
    def payload(self) -> dict[str, Any]:
        """The payload as JSON data (parsed from the compact text; for tests and tools)."""
        loaded: dict[str, Any] = json.loads(self.payload_json())
        return loaded

    def write(self, stream: TextIO, indent: int | None = None) -> None:
        """Write the payload as JSON (compact by default, as pushed) to a text stream."""
        if indent is None:
            self.spool.seek(0)
            while chunk := self.spool.read(1024 * 1024):
                stream.write(chunk.decode("ascii"))
        else:
            json.dump(self.payload, stream, indent=indent)
        stream.write("\n")


def plan_mapping(path: Path | str, variables: Mapping[str, str] | None = None
                 ) -> tuple[MappingPlan, list[Warning_]]:
    """Stages 1-3: load, validate and plan a mapping file; reads no data.

    Raises:
        MappingErrors: every mistake in the file.
    """
    return plan(load(path), variables, Path(path).resolve().parent)


def render_context(mapping: MappingPlan) -> dict[str, Any]:
    """`env` and the rendered `vars` (each var may use env and the vars before it)."""
    # The planner refuses VEZA_API_KEY in every string; it is not even there to be rendered.
    env = {k: v for k, v in os.environ.items() if k != VEZA_KEY_VAR}
    context: dict[str, Any] = {"env": env, "vars": {}}
    errors: list[MappingError] = []
    for name, template in mapping.variables.items():
        try:
            context["vars"][name] = template.render(context)
        except MappingError as e:
            errors.append(e)
    if errors:
        raise MappingErrors(errors, mapping.file)
    return context


class _Records:
    """Reads each source once: streams a source with a single consumer, keeps the others.

    A source used by several rules, by `lookup()` or as a fan-out parent is read once and its
    records kept in memory, so every consumer sees one snapshot and no API is called twice.
    """

    def __init__(self, mapping: MappingPlan, ctx: ReadContext, progress: ProgressHook | None,
                 limit: int | None = None):
        self.mapping = mapping
        self.limit = limit
        self.ctx = ctx
        self.progress = progress
        self.kept: dict[str, list[Record]] = {}
        self.counts: dict[str, int] = {}
        self.uses: dict[str, int] = {}
        for rule in mapping.rules:
            if rule.source:
                self.uses[rule.source] = self.uses.get(rule.source, 0) + 1
        for source, _key in mapping.lookups:
            self.uses[source] = self.uses.get(source, 0) + 2
        for planned in mapping.sources.values():
            for parent in planned.depends_on:
                self.uses[parent] = self.uses.get(parent, 0) + 2
        for name in mapping.context:  # read first, and kept for the rules that use it too
            self.uses[name] = self.uses.get(name, 0) + 2
        self.indexes: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
        self.errors: list[DataError] = []

    def of(self, name: str) -> Iterable[Record] | list[Record]:
        """The records of a source: a stream for its only consumer, else the kept list.

        A CSV source's stream also offers its rows' cells (`CellStream`), which rules read
        without a record per row; it counts its rows itself.
        """
        if name in self.kept:
            return self.kept[name]
        if self.uses.get(name, 0) > 1:
            self.kept[name] = list(self._read(name))
            return self.kept[name]
        read_cells = getattr(self.mapping.sources[name], "read_cells", None)
        if read_cells is not None and self.limit is None:
            stream: Iterable[Record] = read_cells(self.ctx, functools.partial(self._count, name))
            return stream
        return self._read(name)

    def _count(self, name: str, count: int) -> None:
        # A CellStream's report: rows so far, or (zero or negative) the total at the end.
        if count <= 0:
            self.counts[name] = -count
        if self.progress is not None:
            self.progress(name, count)

    def kept_list(self, name: str) -> list[Record]:
        result = self.of(name)
        return result if isinstance(result, list) else list(result)

    def _read(self, name: str) -> Iterator[Record]:
        count = 0
        progress = self.progress
        source = self.mapping.sources[name].read(self.ctx)
        stream: Iterable[Record] = source
        if self.limit is not None:
            stream = itertools.islice(source, self.limit)
        try:
            for record in stream:
                count += 1
                if progress is not None and count % PROGRESS_EVERY == 0:
                    progress(name, count)
                yield record
        finally:
            close = getattr(source, "close", None)
            if self.limit is not None and close is not None:
                close()  # a trial stops early: release the source's file or connection
        self.counts[name] = count
        if progress is not None:
            progress(name, -count)

    def index(self, source: str, key_field: str) -> Mapping[str, list[dict[str, Any]]]:
        key = (source, key_field)
        if key not in self.indexes:
            records = self.kept_list(source)
            steps = parse_key_path(key_field)
            self.indexes[key] = _index(records, steps)
            top = steps[0][0]
            if records and not any(top in r.data for r in records):
                fields = ", ".join(f"`{f}`" for f in list(records[0].data)[:30])
                self.errors.append(DataError(
                    f"lookup('{source}', '{key_field}', ...): no record of source `{source}` "
                    f"has a field `{top}`, so every lookup would be null (the records "
                    f"have: {fields})", span=self.mapping.lookups.get(key)))
        return self.indexes[key]


def _index(records: list[Record], steps: tuple[tuple[str, bool], ...]
           ) -> dict[str, list[dict[str, Any]]]:
    """Records by the lower-cased text of each value at a key path: a record whose list holds
    several values is under each (once per value, in record order)."""
    table: dict[str, list[dict[str, Any]]] = {}
    simple = len(steps) == 1 and not steps[0][1]
    name = steps[0][0]
    for record in records:
        if simple:  # the common `lookup('people', 'email', ...)`: one field, one value
            value = record.data.get(name)
            if value is not None:
                table.setdefault(_text(value).lower(), []).append(record.data)
            continue
        for text in dict.fromkeys(_text(v).lower() for v in key_values(record.data, steps)):
            table.setdefault(text, []).append(record.data)
    return table


def _evaluate_and_build(mapping: MappingPlan, context: dict[str, Any],
                        options: CompileOptions, records: _Records,
                        evaluation: Evaluation) -> EntitySet:
    builder = Builder(mapping.template, strict=options.strict,
                      definitions=mapping.active_definitions(context), rules=mapping.rules)
    header = evaluation.static_row(mapping.header)
    if header is not None:
        builder.add(header)
    for rule in mapping.rules:
        if rule.derived:
            handle = builder.handler(rule)
            sink = builder.grant_sink(rule) or builder.entity_sink(rule)
            if options.observe is not None:
                handle, sink = _observed(handle, options.observe), None
            produced = evaluation.feed(rule, records.of(str(rule.source)), handle, sink)
            evaluation.produced(rule, produced)
        else:
            row = evaluation.static_row(rule)
            if row is not None:
                if options.observe is not None:
                    options.observe(row)
                builder.add(row)
        builder.rule_done(rule)
    for name in mapping.sources:
        if name not in records.counts and name in records.kept:
            records.counts[name] = len(records.kept[name])
    evaluation.finish()
    entities = builder.finish(records.counts,
                              sum(evaluation.skipped.values()) + evaluation.rejected)
    if evaluation.errors or builder.errors or records.errors:
        raise DataErrors([*records.errors, *evaluation.errors, *builder.errors])
    evaluation.warnings.extend(builder.warnings)
    return entities


def _observed(handle: Callable[[RuleRow], None], observe: Callable[[RuleRow], None]
              ) -> Callable[[RuleRow], None]:
    def observed(row: RuleRow) -> None:
        observe(row)
        handle(row)
    return observed


def compile_mapping(path: Path | str, variables: Mapping[str, str] | None = None,
                    options: CompileOptions | None = None) -> CompileResult:
    """Stages 1-8: a mapping file to a checked OAA payload.

    Raises:
        MappingErrors: the mapping is wrong (exit 2).
        SourceError: a source could not be read (exit 3).
        DataErrors: records could not be turned into entities (exit 4).
        PayloadErrors: the payload breaks Veza's rules (exit 4).

    Example:
        >>> result = compile_mapping("examples/app-csv/mapping.yaml")
        >>> result.template
        'application'
    """
    options = options or CompileOptions()
    mapping, warnings = plan_mapping(path, variables)
    try:
        result = _compile_planned(mapping, warnings, options)
    except OaamapError as e:
        # The warnings often explain the failure (a misspelt field is always null): keep them.
        e.warnings = [*warnings, *getattr(e, "warnings", [])]
        raise
    if result.warnings and (options.warnings_as_errors or options.strict):
        result.spool.close()
        raise WarningsAsErrors(result.warnings)
    return result


@dataclass(frozen=True)
class _Names:
    """The rendered configuration strings a result carries: where the payload goes."""

    provider: str
    provider_icon: Path | None
    data_source: str


def _render_configuration(mapping: MappingPlan, context: dict[str, Any],
                          names: frozenset[str] | None = None) -> _Names:
    """Render every configuration string that needs no record, before any record is read.

    A typo in `data_source` or in a source's URL must fail the run (exit 2) before a single
    request is made, not after minutes of reading. Strings that use a fan-out parent are rendered
    per parent record, when read. Called twice when the mapping has `context:` sources: before
    they are read (the strings that use only `env` and `vars`), then after (all the others,
    before any other source is read).

    Raises:
        MappingErrors: every configuration string that cannot be rendered.
    """
    allowed = names if names is not None else _CONFIGURATION_NAMES
    errors: list[MappingError] = []

    def rendered(template: Template | None) -> str | None:
        if template is None:
            return None
        try:
            return template.render(context)
        except MappingError as e:
            errors.append(e)
            return None

    def ready(template: Template | None) -> Template | None:
        return template if template is not None and template.names <= allowed else None

    provider = rendered(ready(mapping.provider))
    icon = rendered(ready(mapping.provider_icon))
    data_source = rendered(ready(mapping.data_source))
    static = [mapping.header, *(rule for rule in mapping.rules if not rule.derived)]
    for template in _templates([*static, *_live_sources(mapping, context, errors, allowed)]):
        if template.names <= allowed:
            rendered(template)
    if errors:
        raise MappingErrors(errors, mapping.file)
    return _Names(str(provider), resolve(mapping.base_dir, icon) if icon is not None else None,
                  str(data_source))


_CONFIGURATION_NAMES = frozenset({"env", "vars"})


def _live_sources(mapping: MappingPlan, context: Mapping[str, Any],
                  errors: list[MappingError], allowed: frozenset[str]) -> list[Any]:
    """The sources whose configuration is rendered before anything is read. A source disabled by
    `when:` (or fanning out over one) contributes only its condition: its settings may well use
    variables that are unset precisely because it is off (`auth: github_app` without the app).
    A condition over a context record not read yet (names outside `allowed`) is undecided: the
    source (and what fans out over it) waits for the pass after the context sources are read."""
    off: set[str] = set()
    undecided: set[str] = set()
    for name, source in mapping.sources.items():
        if isinstance(source, ConditionalSource):
            if not source.when.names <= allowed:
                undecided.add(name)
                continue
            try:
                if not source.enabled(context):
                    off.add(name)
            except MappingError as e:
                errors.append(e)
                off.add(name)

    def disabled(name: str, seen: frozenset[str] = frozenset()) -> bool:
        source = mapping.sources.get(name)
        if name in off or name in undecided:
            return True
        return source is not None and name not in seen and any(
            disabled(parent, seen | {name}) for parent in source.depends_on)

    live: list[Any] = []
    for name, source in mapping.sources.items():
        if not disabled(name):
            live.append(source)
        elif isinstance(source, ConditionalSource) and name not in undecided:
            live.append(source.when)
    return live


def _templates(value: Any) -> Iterator[Template]:
    """Every Template inside planned rules and sources (dataclasses, mappings and sequences)."""
    if isinstance(value, Template):
        yield value
    elif is_dataclass(value) and not isinstance(value, type):
        for item in fields(value):
            yield from _templates(getattr(value, item.name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _templates(item)
    elif isinstance(value, list | tuple | frozenset | set):
        for item in value:
            yield from _templates(item)


def _compile_planned(mapping: MappingPlan, warnings: list[Warning_],
                     options: CompileOptions) -> CompileResult:
    context = render_context(mapping)
    names = _render_configuration(mapping, context)
    ctx = ReadContext(render_context=context, records_of=lambda n: records.kept_list(n),
                      options=options.source_options)
    records = _Records(mapping, ctx, options.progress, options.limit)
    if mapping.context:
        try:
            _read_context(mapping, records, context)
        except OaamapError as e:
            e.warnings = [*ctx.warnings]
            raise
        names = _render_configuration(
            mapping, context, _CONFIGURATION_NAMES | frozenset(mapping.context))
    mapping.functions.bind_lookups(records.index)
    mapping.functions.bind_vars(context["vars"])
    evaluation = Evaluation(mapping.template, context, options.on_data_error)
    # Building millions of small containers: the cyclic GC would rescan them all repeatedly.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        entities = _evaluate_and_build(mapping, context, options, records, evaluation)
        spool = _serialise_checked(entities)
    except OaamapError as e:
        e.warnings = [*ctx.warnings, *evaluation.warnings]
        raise
    finally:
        if gc_was_enabled:
            # The model is millions of objects without reference cycles (refcounting frees
            # them); frozen, the cyclic GC's first full pass does not have to walk them all.
            gc.freeze()
            gc.enable()
    return CompileResult(
        template=mapping.template, provider=names.provider, provider_icon=names.provider_icon,
        data_source=names.data_source, entities=entities, spool=spool,
        warnings=[*warnings, *ctx.warnings, *evaluation.warnings,
                  *_summary_warnings(evaluation)],
        rule_sections=frozenset(rule.section for rule in mapping.rules),
        notes=[*ctx.notes, *_disabled_rule_notes(mapping, ctx.disabled)],
    )


def _disabled_rule_notes(mapping: MappingPlan, disabled: Mapping[str, str]) -> list[str]:
    """One note per rule over a source disabled by `when:` (or fanning out over one)."""
    def cause(name: str, seen: frozenset[str] = frozenset()) -> str | None:
        if name in disabled:
            return name
        source = mapping.sources.get(name)
        for parent in source.depends_on if source is not None and name not in seen else ():
            found = cause(parent, seen | {name})
            if found is not None:
                return found
        return None

    out = []
    for rule in mapping.rules:
        off = cause(rule.source) if rule.source else None
        if off is not None:
            via = "" if off == rule.source else f" (it fans out over `{off}`)"
            out.append(f"{rule.label} reads no records: its source `{rule.source}` is disabled"
                       f"{via} by `when: {disabled[off]}`")
    return out


def _serialise_checked(entities: EntitySet) -> IO[bytes]:
    """Stages 7-8: compile the payload and write its compact JSON to a spool, checking the model
    and every entity against the payload schema on the way.

    Raises:
        PayloadErrors: every violation found; nothing of the payload is returned.
    """
    problems = [*entities.problems, *check_entities(entities)]
    payload = compile_payload(entities)
    schema = SchemaCheck(entities)
    schema.skeleton(skeleton(payload))
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115  (returned open, owned by the result)
        max_size=SPOOL_IN_MEMORY, mode="w+b")
    floats = any("NUMBER" in types.values() for types in entities.property_types.values())
    for piece in iter_json(payload, schema, floats=floats):
        spool.write(piece)
    problems += schema.problems
    if problems:
        spool.close()
        raise PayloadErrors(problems)
    return spool


def _read_context(mapping: MappingPlan, records: _Records, context: dict[str, Any]) -> None:
    """Read each `context:` source, in order, into the configuration strings' context under its
    name (a context source may use the ones before it).

    Raises:
        ContextRecordError: a context source yielded no record or more than one.
    """
    for name in mapping.context:
        found = records.kept_list(name)
        if len(found) != 1:
            raise ContextRecordError(name, len(found), found[1].ref if len(found) > 1 else None)
        context[name] = found[0].data


def _summary_warnings(evaluation: Evaluation) -> list[Warning_]:
    out = []
    if evaluation.policy == "warn" and evaluation.rejected:
        n = evaluation.rejected
        out.append(Warning_(f"{n} row{'s' if n != 1 else ''} with data errors "
                            f"{'were' if n != 1 else 'was'} skipped", changes_payload=True))
    return out
