"""HTTP answers read within bounds: a total deadline for the headers and a size limit for the body.

requests' `timeout` bounds each wait for data, not the whole wait: a server trickling one header
byte a second never trips it. The connections of a session prepared by `enforce_header_deadline()`
arm a watchdog while they wait for the status line and headers, and cut the socket when the
deadline passes. `collect` reads a streamed body (already decoded: urllib3 inflates gzip/deflate
in bounded steps) and stops as soon as it is larger than allowed, so a compression bomb costs at
most the limit in memory.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

__all__ = ["BodyTooLarge", "HeadersLate", "check_declared_length", "collect",
           "enforce_header_deadline", "late_headers"]


class HeadersLate(urllib3.exceptions.ReadTimeoutError):
    """The status line and headers did not all arrive within the deadline.

    A read timeout to urllib3 and requests (the connection is dropped, requests raises
    `ReadTimeout`); `late_headers()` finds it again to name the deadline.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.text = f"the response headers did not arrive within {seconds:g} s"
        super().__init__(None, "", self.text)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.seconds,))


class BodyTooLarge(Exception):
    """A response body is larger than allowed (decoded size, or its declared Content-Length)."""

    def __init__(self, size: int, limit: int, declared: bool = False) -> None:
        how = "declares" if declared else "is at least"
        super().__init__(f"the response {how} {size:,} bytes, more than the {limit:,} allowed")
        self.size = size
        self.limit = limit


class _Watchdog:
    """Shuts a socket down unless `disarm()` is called within `seconds`."""

    def __init__(self, sock: Any, seconds: float) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.fired = self.done = False
        self.timer = threading.Timer(seconds, self._cut)
        self.timer.daemon = True
        self.timer.start()

    def _cut(self) -> None:
        with self.lock:
            if self.done:
                return
            self.fired = True
        # The blocked read in the other thread then ends at once with an EOF or an error.
        with contextlib.suppress(OSError, TypeError, AttributeError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def disarm(self) -> bool:
        """Stop the watchdog; True when it had already cut the socket."""
        with self.lock:
            self.done = True
        self.timer.cancel()
        return self.fired


class _DeadlineMixin:
    """For urllib3 connections: wait for the response headers at most `header_deadline` s."""

    sock: Any
    header_deadline: float = 0.0

    def getresponse(self) -> Any:
        if not self.header_deadline or self.sock is None:
            return super().getresponse()  # type: ignore[misc]
        watchdog = _Watchdog(self.sock, self.header_deadline)
        try:
            response = super().getresponse()  # type: ignore[misc]
        except Exception as e:
            if watchdog.disarm():
                raise HeadersLate(self.header_deadline) from e
            raise
        if watchdog.disarm():
            response.close()
            raise HeadersLate(self.header_deadline)
        return response


@functools.lru_cache(maxsize=32)
def _pools(seconds: float) -> dict[str, type[urllib3.connectionpool.HTTPConnectionPool]]:
    """urllib3 pool classes whose connections have a header deadline of `seconds`."""
    plain = type("DeadlineConnection", (_DeadlineMixin, urllib3.connection.HTTPConnection),
                 {"header_deadline": seconds})
    tls = type("DeadlineTlsConnection", (_DeadlineMixin, urllib3.connection.HTTPSConnection),
               {"header_deadline": seconds})
    return {
        "http": type("DeadlinePool", (urllib3.connectionpool.HTTPConnectionPool,),
                     {"ConnectionCls": plain}),
        "https": type("DeadlineTlsPool", (urllib3.connectionpool.HTTPSConnectionPool,),
                      {"ConnectionCls": tls}),
    }


def enforce_header_deadline(session: requests.Session, seconds: float) -> None:
    """Give every response of `session` `seconds` in total for its status line and headers
    (each redirect hop afresh); a late one fails as a requests `ReadTimeout`.

    Call it before the session sends anything: pools that already exist keep their connections.
    """
    pools = _pools(float(seconds))
    for adapter in session.adapters.values():
        if isinstance(adapter, requests.adapters.HTTPAdapter):
            adapter.poolmanager.pool_classes_by_scheme = pools
            adapter.proxy_manager_for = _with_pools(  # type: ignore[method-assign]
                adapter.proxy_manager_for, pools)


def _with_pools(make: Callable[..., Any], pools: dict[str, Any]) -> Callable[..., Any]:
    def proxy_manager_for(proxy: str, **kwargs: Any) -> Any:
        manager = make(proxy, **kwargs)
        manager.pool_classes_by_scheme = pools
        return manager
    return proxy_manager_for


def late_headers(error: BaseException) -> HeadersLate | None:
    """The `HeadersLate` behind a requests or urllib3 error, if that is what it is."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        if isinstance(current, HeadersLate):
            return current
        seen.add(id(current))
        pending += [*current.args, getattr(current, "reason", None), current.__cause__,
                    current.__context__]
    return None


def check_declared_length(headers: Mapping[str, str], limit: int) -> None:
    """Refuse a response whose Content-Length alone is over `limit`, before reading it.

    Raises:
        BodyTooLarge: the declared length is larger than `limit`.
    """
    declared = headers.get("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge(int(declared), limit, declared=True)


def collect(chunks: Iterable[bytes], limit: int, deadline: float | None = None,
            late: type[Exception] = requests.exceptions.Timeout, seconds: float = 0.0) -> bytes:
    """The chunks joined, refusing more than `limit` bytes and, with a `deadline`
    (`time.monotonic()` value), a body still arriving after it.

    Raises:
        BodyTooLarge: more than `limit` bytes arrived.
        late: the deadline passed (its message says `seconds`).
    """
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(size, limit)
        parts.append(chunk)
        if deadline is not None and time.monotonic() > deadline:
            raise late(f"the response took longer than {seconds:g} s to arrive")
    return b"".join(parts)
