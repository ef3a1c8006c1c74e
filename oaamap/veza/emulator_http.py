"""The emulator's HTTP layer: body limits, bearer-key check, fault injection, Veza-shaped errors.

A `ThreadingHTTPServer` whose TLS handshake (when enabled) happens in each connection's thread,
so one slow client cannot stall the others.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import emulator_push as _push  # noqa: F401  (registers :push and :parts)
from .emulator_routes import Call, dispatch
from .emulator_store import KEEP_REQUESTS, ApiError, RequestRecord, Store

__all__ = ["LOST", "EmulatorServer", "FaultInjector", "Faults", "error_body"]

LOST = 0  # the status logged for a request whose answer was dropped by `lose_next`

_CODES = {400: "InvalidArgument", 401: "Unauthenticated", 404: "NotFound", 413: "InvalidArgument",
          429: "ResourceExhausted", 500: "Internal", 503: "Unavailable"}
_BIG_FIELDS = ("json_data", "data", "icon_base64")


@dataclass(frozen=True)
class Faults:
    """Injected failures: rates of 429 (with `Retry-After`) and 500 answers, and added latency.

    Attributes:
        rate_429 / rate_500: probability per API request, 0 to 1.
        retry_after: seconds sent in `Retry-After` with each 429.
        latency: seconds added before each answer.
        seed: seed of the random draw, for reproducible runs.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    retry_after: float = 1.0
    latency: float = 0.0
    seed: int | None = None


@dataclass
class _Scripted:
    status: int
    count: int
    retry_after: float | None
    path_contains: str | None


@dataclass
class _Lost:
    count: int
    path_contains: str | None
    applied: bool
    operation: str | None = None


@dataclass
class FaultInjector:
    """Draws the random faults and serves scripted ones (`fail_next`) first."""

    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self._scripted: list[_Scripted] = []
        self._lost: list[_Lost] = []

    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None,
                  path_contains: str | None = None) -> None:
        """Answer the next `count` requests (whose path contains `path_contains`) with `status`."""
        with self._lock:
            self._scripted.append(_Scripted(status, count, retry_after, path_contains))

    def lose_next(self, count: int = 1, *, path_contains: str | None = None,
                  applied: bool = True, operation: str | None = None) -> None:
        """Drop the connection of the next `count` matching requests without an answer.

        With `applied` the request is processed first (its answer is lost on the way back);
        without, the connection is dropped before the request is processed. `operation`
        matches the `operation` of a multipart body (`start`, `upload`, `complete`).
        """
        with self._lock:
            self._lost.append(_Lost(count, path_contains, applied, operation))

    def lose(self, path: str, applied: bool, body: Any = None) -> bool:
        """True when the answer to this request to `path` must be lost (at this stage)."""
        operation = body.get("operation") if isinstance(body, dict) else None
        with self._lock:
            for lost in self._lost:
                if lost.count > 0 and lost.applied == applied and (
                        lost.operation is None or lost.operation == operation) and (
                        lost.path_contains is None or lost.path_contains in path):
                    lost.count -= 1
                    return True
        return False

    def draw(self, path: str) -> tuple[int, float | None] | None:
        """The fault for a request to `path`, if any: (status, Retry-After seconds or None)."""
        with self._lock:
            for s in self._scripted:
                if s.count > 0 and (s.path_contains is None or s.path_contains in path):
                    s.count -= 1
                    return s.status, s.retry_after
            roll = self._rng.random()
        if roll < self.faults.rate_429:
            return 429, self.faults.retry_after
        if roll < self.faults.rate_429 + self.faults.rate_500:
            return 500, None
        return None


def error_body(status: int, code: str, message: str,
               violations: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """An error answer in Veza's shape (google.rpc details with field violations)."""
    details: list[dict[str, Any]] = []
    if violations:
        details.append({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "field_violations": [{"field": f, "description": d} for f, d in violations],
        })
    if status == 400:
        details.append({
            "@type": "type.googleapis.com/errorstatus.v1.UserFacingErrorInfo",
            "reason": "INVALID_ARGUMENTS", "metadata": {},
            "message": "Request includes invalid arguments.",
            "resolution": "Correct the fields listed in the details and send the request again.",
        })
    return {"code": code, "message": message, "request_id": str(uuid.uuid4()),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "details": details}


class EmulatorServer(ThreadingHTTPServer):
    """The HTTP(S) server: holds the store, the key, the faults and the TLS context."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, store: Store, api_key: str,
                 faults: FaultInjector, max_body_bytes: int,
                 ssl_context: ssl.SSLContext | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.api_key = api_key
        self.faults = faults
        self.max_body_bytes = max_body_bytes
        self.ssl_context = ssl_context
        self.log = log

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake in the connection's own thread, then serve it."""
        if self.ssl_context is not None:
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
        super().finish_request(request, client_address)


def _summary(body: Any) -> dict[str, Any] | None:
    """A small copy of a request body for the request log (big fields replaced by lengths)."""
    if not isinstance(body, dict):
        return None
    return {k: (f"<{len(v)} chars>" if k in _BIG_FIELDS and isinstance(v, str) else v)
            for k, v in body.items()}


class _Handler(BaseHTTPRequestHandler):
    """One connection; every method goes through `_handle`."""

    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    server_version = "oaamap-emulator"
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms stalls

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log is not None:
            self.server.log(f"{self.address_string()} {format % args}")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        remaining, chunks = length, []
        while remaining > 0:  # drained even when too large, so the client reads our answer
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)
            if length <= self.server.max_body_bytes:
                chunks.append(chunk)
        if length > self.server.max_body_bytes:
            raise ApiError(400, "InvalidArgument", "request body too large",
                           [("body", f"{length:,} bytes is over the limit of "
                                     f"{self.server.max_body_bytes:,} bytes")])
        return b"".join(chunks)

    def _authorized(self) -> bool:
        scheme, _, key = (self.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and key.strip() == self.server.api_key

    def _handle(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query,
                                                           keep_blank_values=True).items()}
        body: Any = None
        extra: dict[str, str] = {}
        lost = False
        try:
            raw = self._read_body()
            body = _decode_body(raw)
            if not self._authorized():
                raise ApiError(401, "Unauthenticated", "Unauthorized: missing or invalid API key")
            lost = self.server.faults.lose(url.path, applied=False, body=body)
            if not lost:
                self._inject_fault(url.path, extra)
                status, answer = dispatch(self.command, url.path, lambda args: Call(
                    self.command, url.path, params, body, self.server.store, args,
                    self.server.max_body_bytes))
                lost = self.server.faults.lose(url.path, applied=True, body=body)
        except ApiError as e:
            status, answer = e.status, error_body(e.status, e.code, e.message, e.violations)
        except Exception as e:  # a bug in the emulator: answer like Veza would, log it
            status, answer = 500, error_body(500, "Internal", f"internal error: {e!r}")
        log = self.server.store.requests
        log.append(RequestRecord(self.command, url.path, url.query,
                                 int(self.headers.get("Content-Length") or 0),
                                 LOST if lost else status, _summary(body)))
        if len(log) > KEEP_REQUESTS:
            del log[:-KEEP_REQUESTS]
        if lost:
            self._drop()
        else:
            self._send(status, answer, extra)

    def _drop(self) -> None:
        """Reset the connection: the client sees its answer lost (a connection reset)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _inject_fault(self, path: str, headers: dict[str, str]) -> None:
        latency = self.server.faults.faults.latency
        if latency > 0:
            time.sleep(latency)
        fault = self.server.faults.draw(path)
        if fault is None:
            return
        status, retry_after = fault
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        message = "rate limit exceeded" if status == 429 else "injected failure"
        raise ApiError(status, _CODES.get(status, "Unknown"), message)

    def _send(self, status: int, answer: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(answer).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _decode_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ApiError(400, "InvalidArgument", "request body is not valid UTF-8",
                       [("body", f"invalid UTF-8 at byte {e.start}")]) from e
    except ValueError as e:
        raise ApiError(400, "InvalidArgument", "request body is not valid JSON",
                       [("body", str(e))]) from e
