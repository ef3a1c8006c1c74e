"""Plan-time checks of source configuration values (http, sql), each reporting to the PlanContext.

The JSON Schema of the language checks the same shapes; these checks repeat them so that a source
factory never trusts its input (the schema may lag behind a new key) and so that messages can say
what the key means ("`limit` of `offset` pagination must be an integer of at least 1").
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import MappingError
from . import PlanContext

__all__ = [
    "check_keys",
    "did_you_mean",
    "expect_int",
    "expect_mapping",
    "expect_number",
    "expect_one_key",
    "expect_text",
]

Path = tuple[Any, ...]


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A "did you mean `x`?" hint for a misspelt name, or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def check_keys(
    ctx: PlanContext, value: Mapping[str, Any], path: Path, allowed: Iterable[str],
    required: Iterable[str] = (), what: str = "",
) -> bool:
    """Report unexpected keys (at the key) and missing required keys; True when all is well."""
    allowed = tuple(allowed)
    ok = True
    for key in value:
        if key not in allowed:
            ok = False
            hint = did_you_mean(str(key), allowed) or f"expected one of: {', '.join(allowed)}"
            ctx.collector.add(MappingError(
                f"unexpected key `{key}` in {what}", ctx.key_span_of((*path, key)) or
                ctx.span_of(path), hint=hint, path=_json_path((*path, key))))
    for key in required:
        if key not in value:
            ok = False
            ctx.error(f"{what} needs `{key}`", path)
    return ok


def expect_mapping(ctx: PlanContext, value: Any, path: Path, what: str) -> Mapping[str, Any] | None:
    """`value` when it is a mapping, else an error and None."""
    if isinstance(value, Mapping):
        return value
    ctx.error(f"{what} must be a mapping, got {_kind(value)}", path)
    return None


def expect_text(ctx: PlanContext, value: Any, path: Path, what: str) -> str | None:
    """`value` as a non-empty string (a number is converted), else an error and None."""
    if isinstance(value, bool) or value is None or isinstance(value, Mapping | list):
        ctx.error(f"{what} must be a string, got {_kind(value)}", path)
        return None
    text = str(value)
    if not text:
        ctx.error(f"{what} must not be empty", path)
        return None
    return text


def expect_int(
    ctx: PlanContext, value: Any, path: Path, what: str, minimum: int, maximum: int | None = None
) -> int | None:
    """`value` as an integer within bounds, else an error and None."""
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.error(f"{what} must be an integer, got {_kind(value)}", path)
        return None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        ctx.error(f"{what} must be {bounds}, got {value}", path)
        return None
    return value


def expect_number(ctx: PlanContext, value: Any, path: Path, what: str) -> float | None:
    """`value` as a positive number, else an error and None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        ctx.error(f"{what} must be a positive number of seconds, got `{value}`", path)
        return None
    return float(value)


def expect_one_key(
    ctx: PlanContext, value: Any, path: Path, what: str, choices: Iterable[str]
) -> tuple[str, Any] | None:
    """The single `(key, value)` of a one-key mapping whose key is one of `choices`, else None."""
    choices = tuple(choices)
    listed = ", ".join(choices)
    mapping = expect_mapping(ctx, value, path, what)
    if mapping is None:
        return None
    if len(mapping) != 1:
        ctx.error(f"{what} must have exactly one key, one of: {listed}; got {len(mapping)}", path)
        return None
    key, inner = next(iter(mapping.items()))
    if key not in choices:
        hint = did_you_mean(str(key), choices) or f"expected one of: {listed}"
        ctx.collector.add(MappingError(
            f"unknown {what} kind `{key}`", ctx.key_span_of((*path, key)) or ctx.span_of(path),
            hint=hint, path=_json_path((*path, key))))
        return None
    return str(key), inner


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"the number `{value}`"
    return f"`{value}`"


def _json_path(path: Path) -> str:
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out
