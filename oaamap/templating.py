"""Jinja for configuration strings: sandboxed, StrictUndefined, compiled once, rendered late."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

from .errors import MappingError, Span

__all__ = ["ENVIRONMENT", "Template", "compile_template"]

ENVIRONMENT = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


@dataclass(frozen=True, slots=True)
class Template:
    """A configuration string: constant, or a compiled Jinja template with the names it uses."""

    text: str
    span: Span | None = None
    names: frozenset[str] = frozenset()
    compiled: Any = field(default=None, compare=False, repr=False)

    @property
    def is_constant(self) -> bool:
        """True when the text has no Jinja syntax and renders to itself."""
        return self.compiled is None

    def render(self, context: Mapping[str, Any]) -> str:
        """Render with `context` (env, vars, fan-out parent).

        Raises:
            MappingError: a name, attribute or key used by the template is undefined, or a
                sandbox rule was broken; located at the template's span.
        """
        if self.compiled is None:
            return self.text
        try:
            return str(self.compiled.render(context))
        except jinja2.UndefinedError as e:
            raise MappingError(
                f"template `{self.text}` uses an undefined value: {e.message}",
                self.span,
                expression=self.text,
                hint="set the environment variable or var, or give a default: "
                "`{{ env.X | default('...') }}`",
            ) from e
        except jinja2.TemplateError as e:
            raise MappingError(
                f"template `{self.text}` failed: {e}", self.span, expression=self.text
            ) from e


def _has_syntax(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def compile_template(text: str, span: Span | None, allowed: Iterable[str]) -> Template:
    """Compile a configuration string once, checking its syntax and the variables it uses.

    Args:
        text: the string from the mapping file.
        span: where the string starts, for errors.
        allowed: the top-level names this string may use (e.g. `env`, `vars`, a fan-out parent).

    Raises:
        MappingError: a Jinja syntax error, or a variable that is not allowed here.
    """
    if not _has_syntax(text):
        return Template(text, span)
    from .limits import MAX_EXPRESSION_DEPTH, too_deep_at

    if too_deep_at(text, MAX_EXPRESSION_DEPTH) is not None:
        raise MappingError(f"the template nests brackets deeper than {MAX_EXPRESSION_DEPTH} "
                           "levels", span, expression=text[:120])
    try:
        ast = ENVIRONMENT.parse(text)
    except jinja2.TemplateSyntaxError as e:
        where = span
        if span is not None and e.lineno and e.lineno > 1:
            where = Span(span.file, span.line + e.lineno - 1, span.column, 1, "")
        raise MappingError(
            f"Jinja syntax error: {e.message}", where, expression=text
        ) from e
    except RecursionError:  # deep without brackets (e.g. `not not not ...`)
        raise MappingError("the template is nested too deeply to compile", span,
                           expression=text[:120]) from None
    names = frozenset(jinja2.meta.find_undeclared_variables(ast))
    allowed_set = frozenset(allowed)
    unknown = sorted(names - allowed_set)
    if unknown:
        raise MappingError(
            f"unknown template variable `{unknown[0]}` in `{text}`",
            span,
            expression=text,
            hint=f"available here: {', '.join(sorted(allowed_set))}",
        )
    return Template(text, span, names, ENVIRONMENT.from_string(ast))
