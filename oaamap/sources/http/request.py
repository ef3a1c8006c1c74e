"""The HTTP request a chain sends and the page it gets back: what paginators read and change."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import requests

from ...errors import sanitize_url

__all__ = ["Page", "Request", "Response"]


@dataclass
class Request:
    """One request of a chain, before auth is applied; paginators change it between pages.

    Attributes:
        method: `GET` or `POST`.
        url: the absolute URL, possibly with a query string of its own.
        params: query parameters added to the URL (a list value repeats the parameter).
        headers: request headers (auth headers are added later, never stored here).
        json: the JSON body of a POST, or None.
    """

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None

    def copy(self) -> Request:
        """An independent copy (the body is deep-copied, so a paginator may edit it)."""
        return Request(self.method, self.url, dict(self.params), dict(self.headers),
                       copy.deepcopy(self.json))

    def full_url(self) -> str:
        """The URL with the query parameters encoded, exactly as it is sent (before auth)."""
        prepared = requests.PreparedRequest()
        prepared.prepare_url(self.url, self.params)
        return str(prepared.url)

    def shown_url(self) -> str:
        """The full URL with credentials and secret-looking query values masked."""
        return sanitize_url(self.full_url())

    def fingerprint(self) -> str:
        """What identifies the request for loop detection: method, full URL and body."""
        body = json.dumps(self.json, sort_keys=True, default=str) if self.json is not None else ""
        return f"{self.method} {self.full_url()} {body}"


@dataclass(frozen=True)
class Response:
    """A successful HTTP response, read whole (within the deadline).

    Attributes:
        status: the HTTP status code.
        url: the final URL (after redirects); relative next links resolve against it.
        headers: the response headers (case-insensitive mapping).
        content: the raw body.
    """

    status: int
    url: str
    headers: requests.structures.CaseInsensitiveDict[str]
    content: bytes

    def text_start(self, limit: int = 500) -> str:
        """The start of the body as text, for error messages (secrets are masked by the caller)."""
        return self.content[: limit * 4].decode("utf-8", errors="replace")[:limit]


@dataclass(frozen=True)
class Page:
    """One page of a chain: what a paginator's `update_state` reads.

    Attributes:
        number: 1-based page number within the chain.
        request: the request that produced the page.
        response: the HTTP response.
        body: the decoded JSON body.
        records: the records the `records` expression selected from the body.
    """

    number: int
    request: Request
    response: Response
    body: Any
    records: list[dict[str, Any]]
