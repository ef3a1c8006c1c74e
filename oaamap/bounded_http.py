"""HTTP answers read within bounds: a total deadline for the headers and a size limit for the body.

requests' `timeout` bounds each wait for data, not the whole wait: a server trickling one header
byte a second never trips it. `DeadlineAdapter` arms a watchdog while a connection waits for the
status line and headers and cuts the socket when the deadline passes. `collect` reads a streamed
body (already decoded: urllib3 inflates gzip/deflate in bounded steps) and stops as soon as it is
larger than allowed, so a compression bomb costs at most the limit in memory.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool

__all__ = ["BodyTooLarge", "DeadlineAdapter", "HeadersTimeout", "check_declared_length",
           "collect"]


class HeadersTimeout(requests.exceptions.Timeout):
    """The status line and headers did not all arrive within the deadline."""


class BodyTooLarge(Exception):
    """A response body is larger than allowed (decoded size, or its declared Content-Length)."""

    def __init__(self, size: int, limit: int, declared: bool = False) -> None:
        how = "declares" if declared else "is at least"
        super().__init__(f"the response {how} {size:,} bytes, more than the {limit:,} allowed")
        self.size = size
        self.limit = limit


class _HeadersLate(Exception):
    # Deliberately not an OSError: urllib3 lets it through unwrapped, and the adapter renames it.
    pass


_state = threading.local()


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
    """For urllib3 connections: wait for the response headers at most the thread's deadline."""

    sock: Any

    def getresponse(self) -> Any:
        seconds = getattr(_state, "header_deadline", None)
        if not seconds or self.sock is None:
            return super().getresponse()  # type: ignore[misc]
        watchdog = _Watchdog(self.sock, seconds)
        try:
            response = super().getresponse()  # type: ignore[misc]
        except Exception as e:
            if watchdog.disarm():
                raise _HeadersLate(seconds) from e
            raise
        if watchdog.disarm():
            response.close()
            raise _HeadersLate(seconds)
        return response


class _Connection(_DeadlineMixin, urllib3.connection.HTTPConnection):
    pass


class _TlsConnection(_DeadlineMixin, urllib3.connection.HTTPSConnection):
    pass


class _Pool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


_POOLS = {"http": _Pool, "https": _TlsPool}


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter whose requests fail with `HeadersTimeout` when the response headers take
    longer than `header_timeout` seconds in total to arrive."""

    def __init__(self, header_timeout: float, **kwargs: Any) -> None:
        self.header_timeout = header_timeout
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The pool manager, with connections that honour the header deadline."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The proxy manager for `proxy`, with the same connections."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
             ) -> requests.Response:
        """Send `request`; see `requests.adapters.HTTPAdapter.send`.

        Raises:
            HeadersTimeout: the headers did not arrive within `header_timeout` seconds.
        """
        _state.header_deadline = self.header_timeout
        try:
            return super().send(request, *args, **kwargs)
        except _HeadersLate:
            raise HeadersTimeout(f"the response headers did not arrive within "
                                 f"{self.header_timeout:g} s", request=request) from None
        finally:
            _state.header_deadline = None


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
