"""Planning an `http` source: check its configuration, compile its templates and expressions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ...redact import is_secret_header
from ...templating import Template
from .. import PlanContext
from ..checks import (
    check_keys,
    did_you_mean,
    expect_int,
    expect_mapping,
    expect_number,
    expect_one_key,
    expect_text,
)
from .auth import plan_auth
from .paginators import PAGINATOR_TYPES, PaginatorFactory
from .recursion import Recursion, plan_recurse
from .source import HttpSource

__all__ = ["OPTIONS", "plan_http"]

OPTIONS = ("url", "method", "headers", "secret_headers", "params", "body", "auth", "records",
           "paginate", "for_each", "concurrency", "timeout", "retries", "max_pages",
           "ignore_status", "status_field", "recurse")
METHODS = ("GET", "POST")
RESERVED_NAMES = frozenset({"env", "vars"})
# Limits on what the server may send (docs/language.md, "Limits on untrusted input").
LIMIT_OPTIONS = ("max_body_bytes",)

Path = tuple[Any, ...]


def plan_http(name: str, config: Mapping[str, Any], ctx: PlanContext) -> HttpSource:
    """Plan an `http` source from its mapping entry (`http: {url, ...}`).

    Every mistake is reported to `ctx` with its document path; the returned plan is only read
    when no error was reported.

    Example:
        >>> plan_http("repos", {"http": {"url": "https://api.example.test/repos"}}, ctx)
    """
    base: Path = ("sources", name, "http")
    spec = expect_mapping(ctx, config.get("http"), base, f"`http` of source `{name}`") or {}
    check_keys(ctx, spec, base, OPTIONS + LIMIT_OPTIONS, ("url",), "an `http` source")
    for_each = _plan_for_each(name, spec.get("for_each"), ctx, (*base, "for_each"))
    names = _parent_alias(spec.get("for_each"))
    method = _plan_method(spec.get("method", "GET"), ctx, (*base, "method"))
    url_text = expect_text(ctx, spec["url"], (*base, "url"), "`url`") if "url" in spec else None
    secret = _plan_secret_headers(spec, ctx, (*base, "secret_headers"))
    source = HttpSource(
        name=name,
        span=ctx.span_of(("sources", name)),
        url=ctx.template(url_text, (*base, "url"), names) if url_text else Template(""),
        method=method,
        headers=_plan_headers(spec.get("headers"), ctx, (*base, "headers"), names, secret),
        secret_headers=_secret_header_names(spec, secret),
        params=_plan_params(spec.get("params"), ctx, (*base, "params"), names),
        body=_plan_body(spec, method, ctx, base, names),
        auth=plan_auth(spec["auth"], ctx, (*base, "auth")) if "auth" in spec else None,
        records=_plan_records(spec.get("records"), ctx, (*base, "records")),
        paginator=_plan_paginate(spec, ctx, (*base, "paginate")),
        for_each=for_each,
        ignore_status=_plan_ignore_status(spec.get("ignore_status"), ctx,
                                          (*base, "ignore_status")),
        status_field=_plan_status_field(spec.get("status_field"), ctx, (*base, "status_field"),
                                        names),
        recurse=_plan_recursion(spec, ctx, base),
        **_plan_limits(spec, ctx, base),
    )
    for kind in ("graphql", "graphql_variables"):
        if isinstance(spec.get("paginate"), Mapping) and kind in spec["paginate"] \
                and not source.is_graphql:
            ctx.error(f"`paginate: {kind}` needs `method: POST` and a `body` with the `query` "
                      "(and its `variables`)", (*base, "paginate", kind))
    _lint(source, spec, ctx, base)
    return source


def _plan_for_each(name: str, value: Any, ctx: PlanContext, path: Path) -> tuple[str, str] | None:
    if value is None:
        return None
    mapping = expect_mapping(ctx, value, path, "`for_each` ({NAME: SOURCE})")
    if mapping is None:
        return None
    if len(mapping) != 1:
        ctx.error(f"`for_each` must name exactly one parent as {{NAME: SOURCE}}, got "
                  f"{len(mapping)} entries", path)
        return None
    alias, parent = next(iter(mapping.items()))
    alias, parent = str(alias), str(parent)
    if not alias.isidentifier() or alias in RESERVED_NAMES:
        ctx.error(f"`for_each` name `{alias}` must be a template variable name other than "
                  "`env` and `vars`", (*path, alias))
        return None
    if parent == name:
        ctx.error(f"source `{name}` cannot fan out over itself", (*path, alias))
        return None
    if ctx.source_names and parent not in ctx.source_names:
        ctx.error(f"`for_each` names an unknown source `{parent}`", (*path, alias),
                  hint=did_you_mean(parent, ctx.source_names)
                  or f"sources: {', '.join(sorted(ctx.source_names))}")
        return None
    return alias, parent


# Statuses `ignore_status` may not list: a 401 is a credential problem (and refreshes a token),
# a 429 a rate limit that is waited for.
_NEVER_IGNORED = {401: "a 401 means the credentials were refused; fix `auth`",
                  429: "a 429 is a rate limit: it is waited for and retried"}


def _plan_ignore_status(value: Any, ctx: PlanContext, path: Path) -> frozenset[int]:
    """The error statuses whose requests yield no records instead of failing the read."""
    if value is None:
        return frozenset()
    values = value if isinstance(value, list) else [value]
    out = set()
    for index, item in enumerate(values):
        at = (*path, index) if isinstance(value, list) else path
        if isinstance(item, bool) or not isinstance(item, int) or not 400 <= item <= 599:
            ctx.error(f"`ignore_status` takes HTTP error statuses (400-599), got `{item}`", at)
        elif item in _NEVER_IGNORED:
            ctx.error(f"`ignore_status` cannot list {item}: {_NEVER_IGNORED[item]}", at)
        else:
            out.add(item)
    return frozenset(out)


def _plan_status_field(value: Any, ctx: PlanContext, path: Path,
                       names: tuple[str, ...]) -> str | None:
    """The record field that receives the HTTP status of the response it came from."""
    if value is None:
        return None
    text = expect_text(ctx, value, path, "`status_field` (a field name)")
    if text is None:
        return None
    if not text.isidentifier() or text in names:
        ctx.error(f"`status_field` must be a field name (letters, digits, `_`) other than the "
                  f"fan-out parent's, got `{text}`", path)
        return None
    return text


def _plan_recursion(spec: Mapping[str, Any], ctx: PlanContext, base: Path) -> Recursion | None:
    if "recurse" not in spec:
        return None
    if spec.get("for_each") is None:
        ctx.error("`recurse` needs `for_each`: the first level fans out over another source, "
                  "the next ones over this source's own records", (*base, "recurse"))
        return None
    return plan_recurse(spec["recurse"], ctx, (*base, "recurse"))


def _parent_alias(value: Any) -> tuple[str, ...]:
    # The declared name is usable in templates even when `for_each` itself is wrong, so that one
    # mistake is reported once rather than again by every template that uses the parent.
    if isinstance(value, Mapping) and len(value) == 1:
        return (str(next(iter(value))),)
    return ()


def _plan_method(value: Any, ctx: PlanContext, path: Path) -> str:
    method = str(value).upper()
    if method not in METHODS:
        ctx.error(f"`method` must be GET or POST, got `{value}`", path)
        return "GET"
    return method


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _plan_secret_headers(spec: Mapping[str, Any], ctx: PlanContext, path: Path) -> frozenset[str]:
    """The lower-cased names listed in `secret_headers:`, each of which must be a header."""
    value = spec.get("secret_headers")
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        ctx.error("`secret_headers` must be a list of header names", path)
        return frozenset()
    declared = {str(k).lower() for k in (spec.get("headers") or {})} \
        if isinstance(spec.get("headers"), Mapping) else set()
    for index, name in enumerate(value):
        if name.lower() not in declared:
            ctx.error(f"`secret_headers` names `{name}`, which is not one of `headers`",
                      (*path, index), hint=did_you_mean(name, sorted(declared)))
    return frozenset(v.lower() for v in value)


def _secret_header_names(spec: Mapping[str, Any], secret: frozenset[str]) -> tuple[str, ...]:
    """Every header that carries a credential: listed, named like one, or the api_key header.
    They are never sent on after a redirect to another host."""
    headers: Mapping[str, Any] = spec.get("headers") or {}
    if not isinstance(headers, Mapping):
        headers = {}
    names = {str(k).lower() for k in headers if str(k).lower() in secret or is_secret_header(k)}
    auth = spec.get("auth")
    if isinstance(auth, Mapping) and isinstance(auth.get("api_key"), Mapping):
        header = auth["api_key"].get("header")
        if isinstance(header, str):
            names.add(header.lower())
    return tuple(sorted(names))


def _plan_headers(value: Any, ctx: PlanContext, path: Path, names: tuple[str, ...],
                  secret: frozenset[str] = frozenset()) -> tuple[tuple[str, Template], ...]:
    if value is None:
        return ()
    mapping = expect_mapping(ctx, value, path, "`headers`") or {}
    out = []
    for key, raw in mapping.items():
        text = _scalar(raw)
        if text is None:
            ctx.error(f"header `{key}` must be a string", (*path, key))
            continue
        credential = str(key).lower() in secret or is_secret_header(str(key))
        out.append((str(key), ctx.template(text, (*path, key), names, credential=credential)))
    return tuple(out)


def _plan_params(value: Any, ctx: PlanContext, path: Path, names: tuple[str, ...]
                 ) -> tuple[tuple[str, Template | tuple[Template, ...]], ...]:
    if value is None:
        return ()
    mapping = expect_mapping(ctx, value, path, "`params`") or {}
    out: list[tuple[str, Template | tuple[Template, ...]]] = []
    for key, raw in mapping.items():
        values = raw if isinstance(raw, list) else [raw]
        texts = [_scalar(v) for v in values]
        if any(t is None for t in texts):
            ctx.error(f"query parameter `{key}` must be a string, a number or a list of them",
                      (*path, key))
            continue
        templates = tuple(ctx.template(str(t), (*path, key), names) for t in texts)
        out.append((str(key), templates if isinstance(raw, list) else templates[0]))
    return tuple(out)


def _plan_body(spec: Mapping[str, Any], method: str, ctx: PlanContext, base: Path,
               names: tuple[str, ...]) -> Any:
    if spec.get("body") is None:
        return None
    if method != "POST":
        ctx.error("`body` needs `method: POST`", (*base, "body"))
        return None
    if not isinstance(spec["body"], Mapping | list):
        ctx.error("`body` must be a mapping or a list (it is sent as JSON)", (*base, "body"))
        return None
    return _compile_tree(spec["body"], ctx, (*base, "body"), names)


def _compile_tree(value: Any, ctx: PlanContext, path: Path, names: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return ctx.template(value, path, names)
    if isinstance(value, Mapping):
        return {str(k): _compile_tree(v, ctx, (*path, k), names) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile_tree(v, ctx, (*path, i), names) for i, v in enumerate(value)]
    return value


def _plan_records(value: Any, ctx: PlanContext, path: Path) -> Any:
    if value is None:
        return None
    text = expect_text(ctx, value, path, "`records` (a JMESPath)")
    return ctx.expression(text, path) if text else None


def _plan_paginate(spec: Mapping[str, Any], ctx: PlanContext,
                   path: Path) -> PaginatorFactory | None:
    if spec.get("paginate") is None:
        return None
    chosen = expect_one_key(ctx, spec["paginate"], path, "pagination", PAGINATOR_TYPES)
    if chosen is None:
        return None
    kind, value = chosen
    return PAGINATOR_TYPES[kind](value, ctx, (*path, kind))


def _plan_limits(spec: Mapping[str, Any], ctx: PlanContext, base: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    checks: dict[str, Callable[[Any, Path], float | None]] = {
        "concurrency": lambda v, p: expect_int(ctx, v, p, "`concurrency`", 1, 64),
        "retries": lambda v, p: expect_int(ctx, v, p, "`retries`", 0, 20),
        "max_pages": lambda v, p: expect_int(ctx, v, p, "`max_pages`", 1),
        "max_body_bytes": lambda v, p: expect_int(ctx, v, p, "`max_body_bytes`", 1),
        "timeout": lambda v, p: expect_number(ctx, v, p, "`timeout`"),
    }
    for key, check in checks.items():
        if spec.get(key) is not None:
            value = check(spec[key], (*base, key))
            if value is not None:
                out[key] = value
    return out


def _lint(source: HttpSource, spec: Mapping[str, Any], ctx: PlanContext, base: Path) -> None:
    """Warn about configurations that run but are almost certainly mistakes."""
    if "concurrency" in spec and source.for_each is None:
        ctx.collector.warn("`concurrency` has no effect without `for_each`",
                           ctx.span_of((*base, "concurrency")))
    if source.for_each is not None:
        alias = source.for_each[0]
        templates = [source.url, *(t for _, t in source.headers)]
        for _, value in source.params:
            templates += list(value) if isinstance(value, tuple) else [value]
        templates += _tree_templates(source.body)
        if not any(alias in t.names for t in templates):
            ctx.collector.warn(f"the fan-out parent `{alias}` is used in no url, header, param "
                               "or body: every parent would send the same request",
                               ctx.span_of((*base, "for_each")))


def _tree_templates(tree: Any) -> list[Template]:
    if isinstance(tree, Template):
        return [tree]
    if isinstance(tree, Mapping):
        return [t for v in tree.values() for t in _tree_templates(v)]
    if isinstance(tree, list):
        return [t for v in tree for t in _tree_templates(v)]
    return []
