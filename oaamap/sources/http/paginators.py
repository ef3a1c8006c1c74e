"""Pagination of the `http` source: the PAGINATOR_TYPES registry and the built-in paginators.

A paginator follows dlt's protocol: `init_request` prepares the first request, `update_state` reads
each page, `has_next_page` says whether to go on, and `update_request` turns the request into the
next one. Every built-in kind has an explicit stop condition; the chain that drives a paginator
(`source.py`) also stops one that repeats a request or runs past `max_pages`, so no configuration
can loop forever.

A paginator kind is registered as a planner `(value, ctx, path) -> factory | None` that checks its
configuration at plan time and returns a factory making a fresh paginator for each request chain.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urljoin

import requests

from ...expressions import Expression
from .. import PlanContext
from ..checks import check_keys, expect_int, expect_mapping, expect_text
from .request import Page, Request

__all__ = [
    "PAGINATOR_TYPES",
    "CursorPaginator",
    "GraphQLPaginator",
    "GraphQLVariablesPaginator",
    "LinkHeaderPaginator",
    "NextUrlPaginator",
    "OffsetPaginator",
    "PagePaginator",
    "PaginationError",
    "Paginator",
    "PaginatorFactory",
    "PaginatorPlanner",
    "register_paginator",
]

Path = tuple[Any, ...]


class PaginationError(ValueError):
    """A page that a paginator cannot follow (e.g. a next link that is not a string)."""


class Paginator(Protocol):
    """One chain's pagination state."""

    def init_request(self, request: Request) -> None:
        """Prepare the first request (e.g. add `offset=0`)."""

    def update_state(self, page: Page) -> None:
        """Read a page: remember where the next one is, or that there is none.

        Raises:
            PaginationError: the page says where to go in a form the paginator cannot follow.
        """

    def update_request(self, request: Request) -> None:
        """Turn the previous request (a copy) into the next one."""

    @property
    def has_next_page(self) -> bool:
        """False once the stop condition is met."""


PaginatorFactory = Callable[[], Paginator]
PaginatorPlanner = Callable[[Any, PlanContext, Path], "PaginatorFactory | None"]

PAGINATOR_TYPES: dict[str, PaginatorPlanner] = {}


def register_paginator(name: str, planner: PaginatorPlanner) -> None:
    """Register a pagination kind under the key that selects it in `paginate:`.

    Raises:
        ValueError: the name is taken.
    """
    if name in PAGINATOR_TYPES:
        raise ValueError(f"paginator `{name}` is already registered")
    PAGINATOR_TYPES[name] = planner


def _set_param(request: Request, name: str, value: Any, in_body: bool) -> None:
    if in_body:
        if not isinstance(request.json, dict):
            request.json = {}
        request.json[name] = value
    else:
        request.params[name] = str(value)


def _absolute(page: Page, link: Any, what: str) -> str | None:
    if link is None or link == "":
        return None
    if not isinstance(link, str):
        raise PaginationError(f"{what} is a {type(link).__name__} (`{link}`), not a URL")
    return urljoin(page.response.url, link)


class _FollowsUrl:
    """Base of the paginators that follow a complete next URL (it replaces URL and params)."""

    def __init__(self) -> None:
        self._next: str | None = None

    def init_request(self, request: Request) -> None:
        """Nothing to prepare: the first request is the configured one."""

    def update_request(self, request: Request) -> None:
        """The next URL is complete: it replaces the URL and the query parameters."""
        assert self._next is not None
        request.url, request.params = self._next, {}

    @property
    def has_next_page(self) -> bool:
        """True while the last page gave a next URL."""
        return self._next is not None


class LinkHeaderPaginator(_FollowsUrl):
    """Follows the RFC 8288 `Link` header's `rel="next"` (or another rel); stops without one."""

    def __init__(self, rel: str = "next") -> None:
        super().__init__()
        self.rel = rel

    def update_state(self, page: Page) -> None:
        """Find the link with the relation in the `Link` header(s)."""
        self._next = None
        header = page.response.headers.get("Link")
        if not header:
            return
        for link in requests.utils.parse_header_links(header):
            if self.rel in str(link.get("rel", "")).split():
                self._next = _absolute(page, link.get("url"), f'the `Link` rel="{self.rel}"')
                return


class NextUrlPaginator(_FollowsUrl):
    """Follows a URL found in the body by a JMESPath; stops when it is null or empty."""

    def __init__(self, next_url: Expression) -> None:
        super().__init__()
        self.expression = next_url

    def update_state(self, page: Page) -> None:
        """Evaluate the expression; a relative URL resolves against the page's URL."""
        value = self.expression.search(page.body)
        self._next = _absolute(page, value, f"`next_url: {self.expression.text}`")


class CursorPaginator:
    """Sends the cursor a JMESPath finds in the body as a parameter; stops when null or empty."""

    def __init__(self, param: str, next_cursor: Expression, in_body: bool = False) -> None:
        self.param = param
        self.expression = next_cursor
        self.in_body = in_body
        self._cursor: Any = None

    def init_request(self, request: Request) -> None:
        """The first request carries no cursor."""

    def update_state(self, page: Page) -> None:
        """Read the next cursor."""
        value = self.expression.search(page.body)
        if isinstance(value, bool | dict | list):
            raise PaginationError(
                f"`next: {self.expression.text}` is a {type(value).__name__}, not a cursor")
        self._cursor = None if value == "" else value

    def update_request(self, request: Request) -> None:
        """Put the cursor in the query (or the JSON body with `in: body`)."""
        _set_param(request, self.param, self._cursor, self.in_body)

    @property
    def has_next_page(self) -> bool:
        """True while the body gave a cursor."""
        return self._cursor is not None


class OffsetPaginator:
    """`offset`/`limit` parameters; stops on a short page, or when `has_more` is falsy if given.

    The offset advances by the number of records received, so a server that caps the page size
    below `limit` is still read whole when `has_more` is set.
    """

    def __init__(self, param: str, limit_param: str, limit: int, start: int = 0,
                 has_more: Expression | None = None, in_body: bool = False) -> None:
        self.param, self.limit_param, self.limit = param, limit_param, limit
        self.has_more, self.in_body = has_more, in_body
        self.offset = start
        self._more = True

    def init_request(self, request: Request) -> None:
        """Add the first offset and the limit."""
        _set_param(request, self.param, self.offset, self.in_body)
        _set_param(request, self.limit_param, self.limit, self.in_body)

    def update_state(self, page: Page) -> None:
        """Advance the offset; decide whether there is more."""
        count = len(page.records)
        self.offset += count
        if self.has_more is not None:
            flag = self.has_more.search(page.body)
            self._more = count > 0 and flag not in (None, False, "", 0, [], {})
        else:
            self._more = count >= self.limit

    def update_request(self, request: Request) -> None:
        """Send the new offset."""
        _set_param(request, self.param, self.offset, self.in_body)

    @property
    def has_next_page(self) -> bool:
        """False after a short (or `has_more`-false) page."""
        return self._more


class PagePaginator:
    """A page-number parameter starting at `start`; stops on an empty page."""

    def __init__(self, param: str, start: int = 1, in_body: bool = False) -> None:
        self.param, self.page, self.in_body = param, start, in_body
        self._more = True

    def init_request(self, request: Request) -> None:
        """Ask for the first page."""
        _set_param(request, self.param, self.page, self.in_body)

    def update_state(self, page: Page) -> None:
        """Go on while pages have records."""
        self._more = len(page.records) > 0
        self.page += 1

    def update_request(self, request: Request) -> None:
        """Ask for the next page number."""
        _set_param(request, self.param, self.page, self.in_body)

    @property
    def has_next_page(self) -> bool:
        """False after an empty page."""
        return self._more


class GraphQLPaginator:
    """GraphQL cursor pagination (Relay connections): the page info read at `page_info`
    (`{hasNextPage, endCursor}`) says whether there is more; the cursor goes into the body's
    `variables` under the name `cursor` (e.g. `$after`). The first request sends the variable as
    written in the body (null when absent)."""

    def __init__(self, variable: str, page_info: Expression) -> None:
        self.variable, self.page_info = variable, page_info
        self._cursor: str | None = None

    def init_request(self, request: Request) -> None:
        """Make sure the body has a `variables` object."""
        if isinstance(request.json, dict) and not isinstance(request.json.get("variables"), dict):
            request.json["variables"] = {}

    def update_state(self, page: Page) -> None:
        """Read `hasNextPage` and `endCursor` at the page info path."""
        info = self.page_info.search(page.body)
        if not isinstance(info, dict):
            raise PaginationError(f"`page_info: {self.page_info.text}` is "
                                  f"{'null' if info is None else type(info).__name__}, not an "
                                  "object with `hasNextPage` and `endCursor`")
        more = info.get("hasNextPage")
        if not isinstance(more, bool):
            raise PaginationError(f"`hasNextPage` at `{self.page_info.text}` is `{more}`, "
                                  "not true or false")
        cursor = info.get("endCursor")
        if more and (not isinstance(cursor, str) or not cursor):
            raise PaginationError(f"`hasNextPage` is true but `endCursor` at "
                                  f"`{self.page_info.text}` is `{cursor}`, not a cursor")
        self._cursor = cursor if more else None

    def update_request(self, request: Request) -> None:
        """Send the cursor as the variable."""
        assert isinstance(request.json, dict)
        request.json["variables"][self.variable] = self._cursor

    @property
    def has_next_page(self) -> bool:
        """True while the page info says `hasNextPage: true`."""
        return self._cursor is not None


class GraphQLVariablesPaginator:
    """GraphQL paging whose next request is computed from the whole answer: `next` is a JMESPath
    over `{response: <the body>, variables: <this request's variables>}` that yields the object of
    variables to set for the next request (merged into the body's `variables`), or null / false
    to stop. For queries that page several connections at once (an outer connection one item at
    a time, nested ones re-queried while they have more), e.g. Veza's GitHub connector."""

    def __init__(self, next_variables: Expression) -> None:
        self.expression = next_variables
        self._next: dict[str, Any] | None = None

    def init_request(self, request: Request) -> None:
        """Make sure the body has a `variables` object."""
        if isinstance(request.json, dict) and not isinstance(request.json.get("variables"), dict):
            request.json["variables"] = {}

    def update_state(self, page: Page) -> None:
        """Evaluate `next` over the answer and the variables that produced it."""
        body = page.request.json if isinstance(page.request.json, dict) else {}
        variables = body.get("variables") if isinstance(body.get("variables"), dict) else {}
        value = self.expression.search({"response": page.body, "variables": variables})
        if value is None or value is False:
            self._next = None
            return
        if not isinstance(value, dict) or not value:
            raise PaginationError(f"`next: {self.expression.text}` is `{value}`, not an object of "
                                  "variables (or null to stop)")
        self._next = value

    def update_request(self, request: Request) -> None:
        """Set the next variables."""
        assert isinstance(request.json, dict) and self._next is not None
        request.json["variables"].update(self._next)

    @property
    def has_next_page(self) -> bool:
        """True while `next` gave variables."""
        return self._next is not None


# --- planners: check the configuration at plan time, return a factory ---------------------------

def _plan_link_header(value: Any, ctx: PlanContext, path: Path) -> PaginatorFactory | None:
    rel = "next" if value is None or value is True else expect_text(
        ctx, value, path, '`link_header` (the link relation, e.g. "next")')
    return functools.partial(LinkHeaderPaginator, rel) if rel else None


def _plan_next_url(value: Any, ctx: PlanContext, path: Path) -> PaginatorFactory | None:
    text = expect_text(ctx, value, path, "`next_url` (a JMESPath to the next URL)")
    expression = ctx.expression(text, path) if text else None
    return functools.partial(NextUrlPaginator, expression) if expression else None


def _in_body(ctx: PlanContext, config: Mapping[str, Any], path: Path) -> bool:
    where = str(config.get("in", "query"))
    if where not in ("query", "body"):
        ctx.error(f"`in` must be `query` or `body`, got `{where}`", (*path, "in"))
    return where == "body"


def _plan_cursor(value: Any, ctx: PlanContext, path: Path) -> PaginatorFactory | None:
    config = expect_mapping(ctx, value, path, "`cursor` pagination")
    if config is None or not check_keys(ctx, config, path, ("param", "next", "in"),
                                        ("param", "next"), "`cursor` pagination"):
        return None
    param = expect_text(ctx, config["param"], (*path, "param"), "`param` of `cursor`")
    text = expect_text(ctx, config["next"], (*path, "next"), "`next` of `cursor`")
    expression = ctx.expression(text, (*path, "next")) if text else None
    in_body = _in_body(ctx, config, path)
    if param is None or expression is None:
        return None
    return functools.partial(CursorPaginator, param, expression, in_body)


def _plan_offset(value: Any, ctx: PlanContext, path: Path) -> PaginatorFactory | None:
    keys = ("param", "limit_param", "limit", "start", "has_more", "in")
    config = expect_mapping(ctx, value, path, "`offset` pagination")
    if config is None or not check_keys(ctx, config, path, keys, ("limit",), "`offset` pagination"):
        return None
    param = expect_text(ctx, config.get("param", "offset"), (*path, "param"), "`param`")
    limit_param = expect_text(ctx, config.get("limit_param", "limit"), (*path, "limit_param"),
                              "`limit_param`")
    limit = expect_int(ctx, config["limit"], (*path, "limit"), "`limit` of `offset`", 1)
    start = expect_int(ctx, config.get("start", 0), (*path, "start"), "`start` of `offset`", 0)
    has_more = None
    if config.get("has_more") is not None:
        text = expect_text(ctx, config["has_more"], (*path, "has_more"), "`has_more`")
        has_more = ctx.expression(text, (*path, "has_more")) if text else None
    in_body = _in_body(ctx, config, path)
    if param is None or limit_param is None or limit is None or start is None or \
            (config.get("has_more") is not None and has_more is None):
        return None
    return functools.partial(OffsetPaginator, param, limit_param, limit, start, has_more, in_body)


def _plan_page(value: Any, ctx: PlanContext, path: Path) -> PaginatorFactory | None:
    config = expect_mapping(ctx, value, path, "`page` pagination")
    if config is None or not check_keys(ctx, config, path, ("param", "start", "in"), (),
                                        "`page` pagination"):
        return None
    param = expect_text(ctx, config.get("param", "page"), (*path, "param"), "`param` of `page`")
    start = expect_int(ctx, config.get("start", 1), (*path, "start"), "`start` of `page`", 0)
    in_body = _in_body(ctx, config, path)
    if param is None or start is None:
        return None
    return functools.partial(PagePaginator, param, start, in_body)


def _plan_graphql(value: Any, ctx: PlanContext, path: Path) -> PaginatorFactory | None:
    config = expect_mapping(ctx, value, path, "`graphql` pagination")
    if config is None or not check_keys(ctx, config, path, ("cursor", "page_info"),
                                        ("cursor", "page_info"), "`graphql` pagination"):
        return None
    variable = expect_text(ctx, config["cursor"], (*path, "cursor"),
                           "`cursor` of `graphql` (the query variable, e.g. `after`)")
    if variable is not None and not variable.lstrip("$").isidentifier():
        ctx.error(f"`cursor` must name a GraphQL variable, got `{variable}`", (*path, "cursor"))
        variable = None
    text = expect_text(ctx, config["page_info"], (*path, "page_info"), "`page_info` (a JMESPath)")
    expression = ctx.expression(text, (*path, "page_info")) if text else None
    if variable is None or expression is None:
        return None
    return functools.partial(GraphQLPaginator, variable.lstrip("$"), expression)


def _plan_graphql_variables(value: Any, ctx: PlanContext, path: Path
                            ) -> PaginatorFactory | None:
    config = expect_mapping(ctx, value, path, "`graphql_variables` pagination")
    if config is None or not check_keys(ctx, config, path, ("next",), ("next",),
                                        "`graphql_variables` pagination"):
        return None
    text = expect_text(ctx, config["next"], (*path, "next"),
                       "`next` of `graphql_variables` (a JMESPath over `response` and `variables`)")
    expression = ctx.expression(text, (*path, "next")) if text else None
    return functools.partial(GraphQLVariablesPaginator, expression) if expression else None


register_paginator("link_header", _plan_link_header)
register_paginator("next_url", _plan_next_url)
register_paginator("cursor", _plan_cursor)
register_paginator("offset", _plan_offset)
register_paginator("page", _plan_page)
register_paginator("graphql", _plan_graphql)
register_paginator("graphql_variables", _plan_graphql_variables)
