"""Jinja for configuration strings: sandboxed, StrictUndefined, compiled once, rendered late.

`env` is read one variable at a time, by a constant name (`env.NAME`, `env['NAME']`), so that the
planner knows every variable a string reads and can refuse secrets where they do not belong:
`VEZA_API_KEY` never, a variable whose name looks secret (`redact.is_secret_name`) only in a
credential position or when the mapping lists it under `secrets:`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .errors import MappingError, Span
from .redact import SECRET_ENV_WORDS, VEZA_KEY_VAR, is_secret_name, remember

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import SandboxedEnvironment

__all__ = ["EnvUse", "Template", "compile_template", "env_use", "environment"]


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """The Jinja environment of configuration strings (sandboxed, StrictUndefined). Jinja is
    imported on first use: a mapping whose strings are all constants never loads it."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                keep_trailing_newline=True)


@dataclass(frozen=True, slots=True)
class Template:
    """A configuration string: constant, or a compiled Jinja template with the names it uses."""

    text: str
    span: Span | None = None
    names: frozenset[str] = frozenset()
    compiled: Any = field(default=None, compare=False, repr=False)
    env_names: frozenset[str] = frozenset()
    credential: bool = False

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
        import jinja2  # loaded already: the template was compiled with it

        if self.credential:
            # What a credential reads is a secret: masked wherever it would show.
            env = context.get("env")
            if isinstance(env, Mapping):
                remember(*(str(env[n]) for n in self.env_names if n in env))
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


def compile_template(text: str, span: Span | None, allowed: Iterable[str], *,
                     credential: bool = False, secrets: Iterable[str] = ()) -> Template:
    """Compile a configuration string once, checking its syntax and the variables it uses.

    Args:
        text: the string from the mapping file.
        span: where the string starts, for errors.
        allowed: the top-level names this string may use (e.g. `env`, `vars`, a fan-out parent).
        credential: the string is a credential (auth setting, secret header, SQL url): it may
            read secret-looking environment variables without listing them.
        secrets: the environment variables the mapping's `secrets:` allows anywhere.

    Raises:
        MappingError: a Jinja syntax error, a variable that is not allowed here, `env` read
            whole, `VEZA_API_KEY` read, or a secret-looking variable read outside a credential
            position without being listed.
    """
    if not _has_syntax(text):
        return Template(text, span)
    import jinja2
    import jinja2.meta

    from .limits import MAX_EXPRESSION_DEPTH, too_deep_at

    if too_deep_at(text, MAX_EXPRESSION_DEPTH) is not None:
        raise MappingError(f"the template nests brackets deeper than {MAX_EXPRESSION_DEPTH} "
                           "levels", span, expression=text[:120])
    try:
        ast = environment().parse(text)
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
    use = env_use(ast)
    _check_env(use, text, span, credential, frozenset(secrets))
    return Template(text, span, names, environment().from_string(ast), use.names, credential)


@dataclass(frozen=True, slots=True)
class EnvUse:
    """How a template reads `env`: the variables it names, and the first use that names none."""

    names: frozenset[str]
    whole: str | None = None


_DICT_ATTRIBUTES = frozenset(dir(dict))


def env_use(ast: nodes.Template) -> EnvUse:
    """The environment variables a parsed template reads as `env.NAME` or `env['NAME']`.

    Any other use of `env` (`{{ env }}`, `env | list`, `env.items()`, `env.get(...)`,
    `env[vars.x]`, `{% set e = env %}`) is reported in `whole`: it could read any variable.
    """
    names: set[str] = set()
    whole: list[str] = []
    _walk_env(ast, names, whole)
    return EnvUse(frozenset(names), whole[0] if whole else None)


def _is_env(node: nodes.Node) -> bool:
    from jinja2 import nodes

    return isinstance(node, nodes.Name) and node.name == "env"


def _walk_env(node: nodes.Node, names: set[str], whole: list[str]) -> None:
    from jinja2 import nodes

    if isinstance(node, nodes.Getattr) and _is_env(node.node):
        if node.attr in _DICT_ATTRIBUTES or node.attr.startswith("_"):
            whole.append(f"env.{node.attr}")
        else:
            names.add(node.attr)
        return
    if isinstance(node, nodes.Getitem) and _is_env(node.node):
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            names.add(node.arg.value)
            return
        whole.append("env[...] with a computed name")
    elif _is_env(node):
        whole.append("env")
        return
    for child in node.iter_child_nodes():
        _walk_env(child, names, whole)


def _check_env(use: EnvUse, text: str, span: Span | None, credential: bool,
               listed: frozenset[str]) -> None:
    if use.whole is not None:
        raise MappingError(
            f"`{use.whole}` would expose every environment variable, secrets included",
            _at(span, "env"), expression=text,
            hint="read one variable by its name: `{{ env.NAME }}` or `{{ env['NAME'] }}`")
    if any(name.upper() == VEZA_KEY_VAR for name in use.names):
        raise MappingError(
            f"a mapping never reads `{VEZA_KEY_VAR}`: it is oaamap's own credential for Veza",
            _at(span, next(n for n in use.names if n.upper() == VEZA_KEY_VAR)),
            expression=text,
            hint="give the source its own credential in another variable")
    if credential:
        return
    for name in sorted(use.names):
        if is_secret_name(name) and name not in listed:
            word = next(w for w in SECRET_ENV_WORDS if w in name.upper())
            raise MappingError(
                f"`env.{name}` looks like a secret (its name contains {word}) and is read "
                "outside a credential position, where it could reach a name, the payload or a "
                "message", _at(span, name), expression=text,
                hint=f"read it in `auth:`, a secret header or a SQL `url`; or, if it may be "
                f"used here, list it at the top of the mapping: `secrets: [{name}]`")


def _at(span: Span | None, needle: str) -> Span | None:
    """The span of `needle` inside the string on the span's line, else the span itself."""
    if span is None or not span.text:
        return span
    offset = span.text.find(needle, span.column - 1)
    if offset < 0:
        return span
    return span.shifted(offset - (span.column - 1), len(needle))
