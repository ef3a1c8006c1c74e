"""Helpers for the source tests: plan a source from YAML (with real spans), read its records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from oaamap.errors import ErrorCollector, MappingError
from oaamap.expressions import ExpressionError, OaamapFunctions, compile_expression
from oaamap.loader import Document, load_text
from oaamap.sources import SOURCE_KINDS, PlanContext, ReadContext, Record

FUNCTIONS = OaamapFunctions()


def make_context(doc: Document, base_dir: Path | None = None,
                 other_sources: Sequence[str] = ()) -> tuple[PlanContext, ErrorCollector]:
    """A PlanContext over a loaded document, as the planner makes it (real spans)."""
    collector = ErrorCollector("test.yaml")

    def expression(text: str, path: tuple[Any, ...]) -> Any:
        try:
            return compile_expression(text, FUNCTIONS)
        except ExpressionError as e:
            collector.add(MappingError(e.message, doc.expression_span(path, e.position),
                                       expression=text))
            return None

    names = frozenset([*doc.data["sources"], *other_sources])
    ctx = PlanContext(base_dir=base_dir or Path.cwd(), collector=collector, span_of=doc.span,
                      key_span_of=doc.key_span, compile_expression=expression,
                      source_names=names)
    return ctx, collector


def plan_yaml(text: str, base_dir: Path | None = None,
              other_sources: Sequence[str] = ()) -> tuple[dict[str, Any], ErrorCollector]:
    """Plan every source of a `sources:` YAML document; returns the plans and the collector."""
    doc = load_text(text, "test.yaml")
    ctx, collector = make_context(doc, base_dir, other_sources)
    plans = {}
    for name, config in doc.data["sources"].items():
        kind = next(k for k in config if k in SOURCE_KINDS)
        plans[name] = SOURCE_KINDS[kind](name, config, ctx)
    return plans, collector


def plan_one(text: str, **kwargs: Any) -> Any:
    """The single source of a YAML document; fails the test on any planning error."""
    plans, collector = plan_yaml(text, **kwargs)
    assert not collector.errors, [str(e) for e in collector.errors]
    assert len(plans) == 1
    return next(iter(plans.values()))


def errors_of(text: str, **kwargs: Any) -> list[str]:
    """The rendered planning errors of a YAML document."""
    _, collector = plan_yaml(text, **kwargs)
    return [str(e) for e in collector.errors]


def read_all(plan: Any, *, parents: Mapping[str, list[Record]] | None = None,
             options: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
             vars: Mapping[str, Any] | None = None, ctx: ReadContext | None = None) -> list[Record]:
    """Read every record of a planned source."""
    return list(plan.read(ctx or read_context(parents=parents, options=options, env=env,
                                              vars=vars)))


def read_context(*, parents: Mapping[str, list[Record]] | None = None,
                 options: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                 vars: Mapping[str, Any] | None = None) -> ReadContext:
    parents = dict(parents or {})
    return ReadContext(render_context={"env": dict(env or {}), "vars": dict(vars or {})},
                       records_of=lambda name: parents[name], options=dict(options or {}))


def data(records: list[Record]) -> list[dict[str, Any]]:
    return [r.data for r in records]
