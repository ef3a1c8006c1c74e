"""The planned `http` source and its read: request chains, pagination, fan-out, records."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests.auth

from ...errors import MappingError, Origin, SourceError, Span, excerpt
from ...expressions import Expression
from ...redact import mask_text, remember
from ...templating import Template
from .. import ReadContext, Record
from ..json_source import shape_problem
from .auth import AuthChoice, AuthSpec, AuthTools
from .client import HttpClient, RetryPolicy, make_session
from .fanout import ordered_map
from .paginators import PaginationError, PaginatorFactory
from .recursion import Recursion
from .redact import Redactor
from .request import Page, Request

__all__ = ["HttpSource"]

# A body is a JSON-like tree whose strings are templates.
BodyTree = Any


@dataclass(frozen=True)
class HttpSource:
    """A planned `http` source (see `plan.plan_http` for what each field comes from)."""

    name: str
    span: Span | None
    url: Template
    method: str = "GET"
    headers: tuple[tuple[str, Template], ...] = ()
    secret_headers: tuple[str, ...] = ()
    params: tuple[tuple[str, Template | tuple[Template, ...]], ...] = ()
    body: BodyTree = None
    auth: AuthSpec | AuthChoice | None = None
    records: Expression | None = None
    paginator: PaginatorFactory | None = None
    for_each: tuple[str, str] | None = None
    concurrency: int = 8
    timeout: float = 30.0
    retries: int = 5
    max_pages: int = 10_000
    max_body_bytes: int | None = None  # None: limits.MAX_BODY_BYTES
    ignore_status: frozenset[int] = frozenset()
    status_field: str | None = None
    recurse: Recursion | None = None  # fan out over its own records too (trees)

    @property
    def is_graphql(self) -> bool:
        """A GraphQL request: a POST whose body's `query` is a string (an `errors` answer fails
        it); a search body whose `query` is an object (Elasticsearch) is not one."""
        return self.method == "POST" and isinstance(self.body, Mapping) \
            and isinstance(self.body.get("query"), Template)

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The fan-out parent source, if any."""
        return (self.for_each[1],) if self.for_each else ()

    def read(self, ctx: ReadContext) -> Iterator[Record]:
        """Yield the records: page by page, or for a fan-out parent by parent, then page by page.

        Raises:
            SourceError: a request failed after its retries, a body is not JSON, `records`
                selects no list of objects, or pagination does not advance or stop.
            MappingError: a template uses an undefined variable.
        """
        run = _Run.start(self, ctx)
        try:
            if self.for_each is None:
                yield from self._chain(run, ctx.render_context, None)
            else:
                yield from self._fan_out(run, ctx)
            self._note_ignored(run, ctx)
        finally:
            run.close()

    def _note_ignored(self, run: _Run, ctx: ReadContext) -> None:
        if not run.ignored:
            return
        counts = ", ".join(f"{n:,} answered {status}" for status, n in sorted(run.ignored.items()))
        total = sum(run.ignored.values())
        kept = f"one record each holding `{self.status_field}`" if self.status_field else \
            "no records from them"
        ctx.note(f"source `{self.name}`: {total:,} request{'s' if total != 1 else ''} ignored by "
                 f"`ignore_status` ({counts}): {kept}")

    def _fan_out(self, run: _Run, ctx: ReadContext) -> Iterator[Record]:
        assert self.for_each is not None
        alias, parent_source = self.for_each
        concurrency = int(ctx.options.get("http_concurrency") or self.concurrency)

        def chain(parent: Record) -> list[Record]:
            return list(self._chain(run, {**ctx.render_context, alias: parent.data}, parent))

        for records in ordered_map(chain, ctx.records_of(parent_source), concurrency, run.stop,
                                   name=f"oaamap-{self.name}"):
            if self.recurse is None:
                yield from records
            else:
                yield from self.recurse.walk(self.name, alias, records, chain)

    def _chain(self, run: _Run, context: Mapping[str, Any],
               parent: Record | None) -> Iterator[Record]:
        request = self._request(context, parent)
        paginator = self.paginator() if self.paginator is not None else None
        if paginator is not None:
            paginator.init_request(request)
        seen: dict[str, int] = {}
        number = 1
        while True:
            where = f"{request.method} {run.redact(request.shown_url())} page {number}"
            self._check_advances(request, seen, number, where)
            response = run.client.send(request, run.auth, where, self.ignore_status)
            origin = Origin(self.name, where, "index")
            if not 200 <= response.status < 300:
                yield from self._ignored(run, response.status, origin, parent)
                return
            body = run.client.decode_json(response, where)
            if self.is_graphql:
                _check_graphql(self.name, body, where)
            records = self._select(run, body, origin, parent)
            if self.status_field is not None:
                self._add_status(run, records, response.status, origin)
            yield from (Record(item, origin, index) for index, item in enumerate(records))
            if paginator is None:
                return
            try:
                paginator.update_state(Page(number, request, response, body, records))
            except PaginationError as e:
                raise SourceError(self.name, f"cannot follow the pagination: {e}",
                                  location=where) from e
            if not paginator.has_next_page or number >= run.ctx.options.get(
                    "http_pages", number + 1):  # `oaamap preview`: one page is enough
                return
            if number >= self.max_pages:
                raise SourceError(self.name, f"pagination did not stop after {self.max_pages} "
                                  "pages; check `paginate`, or raise `max_pages`", location=where)
            request = request.copy()
            paginator.update_request(request)
            number += 1

    def _ignored(self, run: _Run, status: int, origin: Origin,
                 parent: Record | None) -> Iterator[Record]:
        """A response with a status in `ignore_status`: no records, or with `status_field` one
        record holding the status (and the fan-out parent), so that a probe always answers."""
        with run.lock:
            run.ignored[status] = run.ignored.get(status, 0) + 1
        if self.status_field is None:
            return
        data: dict[str, Any] = {self.status_field: status}
        if parent is not None and self.for_each is not None:
            data[self.for_each[0]] = parent.data
        yield Record(data, origin, 0)

    def _add_status(self, run: _Run, records: list[dict[str, Any]], status: int,
                    origin: Origin) -> None:
        name = self.status_field
        assert name is not None
        for index, item in enumerate(records):
            if name in item:
                run.warn_once("status", f"source `{self.name}`: records have a field `{name}`; "
                              "`status_field` replaces it", origin.ref(index))
            item[name] = status

    def _check_advances(self, request: Request, seen: dict[str, int], number: int,
                        where: str) -> None:
        key = request.fingerprint()
        if key in seen:
            raise SourceError(self.name, f"pagination does not advance: page {number} would "
                              f"repeat the request of page {seen[key]}; check `paginate`",
                              location=where)
        seen[key] = number

    def _request(self, context: Mapping[str, Any], parent: Record | None) -> Request:
        try:
            url = self.url.render(context).strip()
            headers = {k: v.render(context) for k, v in self.headers}
            remember(*(v for k, v in headers.items() if k.lower() in self.secret_headers))
            params = {k: _render_param(v, context) for k, v in self.params}
            body = _render_body(self.body, context)
        except MappingError as e:
            if parent is None:
                raise
            raise SourceError(self.name, f"cannot build the request for parent record "
                              f"{parent.ref}: {e.message}", ref=parent.ref) from e
        if not url.lower().startswith(("http://", "https://")):
            raise SourceError(self.name, f"`url` renders to `{url[:200]}`, which is not an "
                              "http(s) URL", ref=parent.ref if parent else None)
        if not any(k.lower() == "accept" for k in headers):
            headers["Accept"] = "application/json"
        return Request(self.method, url, params, headers, body)

    def _select(self, run: _Run, body: Any, origin: Origin,
                parent: Record | None) -> list[dict[str, Any]]:
        selected = self.records.search(body) if self.records is not None else body
        if selected is None:
            raise SourceError(self.name, f"`records: {self.records.text if self.records else '@'}`"
                              " selects nothing (null) in the response", location=origin.where,
                              body=excerpt(body, 500))
        if self.records is None and isinstance(selected, dict) and self.paginator is not None:
            run.warn_once("whole-body", f"source `{self.name}`: `records` is not set, so each "
                          "response object is one record; set `records:` to the list to read")
        if isinstance(selected, dict):
            problem = shape_problem(selected, self.records.text if self.records else None)
            if problem is not None:
                raise SourceError(self.name, f"the response's records are {problem}",
                                  location=origin.where, body=excerpt(body, 500))
        items = selected if isinstance(selected, list) else [selected]
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise SourceError(self.name, f"record is {_json_kind(item)}, not an object: "
                                  f"`{excerpt(item, 80)}`", ref=origin.ref(index))
            if parent is not None and self.for_each is not None:
                alias = self.for_each[0]
                if alias in item:
                    run.warn_once("alias", f"source `{self.name}`: records have a field `{alias}`;"
                                  f" the fan-out parent replaces it", origin.ref(index))
                item[alias] = parent.data
        return items


def _check_graphql(source: str, body: Any, where: str) -> None:
    """A GraphQL answer with a top-level `errors` member failed, whatever its HTTP status."""
    if not isinstance(body, Mapping) or not body.get("errors"):
        return
    errors = body["errors"] if isinstance(body["errors"], list) else [body["errors"]]
    first = errors[0]
    message = first.get("message") if isinstance(first, Mapping) else first
    detail = f"`{mask_text(str(message))[:300]}`"
    if isinstance(first, Mapping):
        if first.get("type"):
            detail += f" (type {first['type']})"
        if first.get("path"):
            detail += " at " + ".".join(str(p) for p in first["path"])
    more = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
    raise SourceError(source, f"the GraphQL query failed: {detail}{more}", location=where,
                      body=excerpt(body, 500))


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else f"a {type(value).__name__}"


def _render_param(value: Template | tuple[Template, ...], context: Mapping[str, Any]) -> Any:
    if isinstance(value, tuple):
        return [v.render(context) for v in value]
    return value.render(context)


def _render_body(tree: BodyTree, context: Mapping[str, Any]) -> Any:
    if isinstance(tree, Template):
        return tree.render(context)
    if isinstance(tree, Mapping):
        return {k: _render_body(v, context) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [_render_body(v, context) for v in tree]
    return tree


@dataclass
class _Run:
    """The state of one read: session, client, auth, secrets, the stop event, warnings."""

    ctx: ReadContext
    session: requests.Session
    client: HttpClient
    redact: Redactor
    stop: threading.Event
    auth: requests.auth.AuthBase | None = None
    warned: set[str] = field(default_factory=set)
    ignored: dict[int, int] = field(default_factory=dict)  # status -> requests (ignore_status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, source: HttpSource, ctx: ReadContext) -> _Run:
        concurrency = int(ctx.options.get("http_concurrency") or source.concurrency)
        session = make_session(concurrency + 2, source.secret_headers)
        redactor, stop = Redactor(), threading.Event()
        policy = RetryPolicy.from_options(source.retries, ctx.options)
        client = HttpClient(source.name, session, policy, source.timeout, redactor, stop,
                            source.max_body_bytes)
        run = cls(ctx, session, client, redactor, stop)
        if source.auth is not None:
            try:
                tools = AuthTools(source.name, redactor, client.post_token, client.call_json)
                run.auth = source.auth.build(ctx.render_context, tools)
            except BaseException:
                session.close()
                raise
        return run

    def warn_once(self, key: str, message: str, ref: Any = None) -> None:
        with self.lock:
            if key in self.warned:
                return
            self.warned.add(key)
        self.ctx.warn(message, ref)

    def close(self) -> None:
        self.stop.set()
        self.session.close()
