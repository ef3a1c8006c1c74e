"""Sending requests for the `http` source: session, timeouts, retries with backoff, clear errors.

Every request has a connect/read timeout, a total deadline for the response headers (2x the
timeout, so a server trickling header bytes is cut off), a deadline for the whole body (10x the
timeout) and a limit on the decoded body size (`max_body_bytes`, gzip/deflate bombs included),
and is retried a bounded number of times on connection errors, timeouts, 408, 429, 5xx and a 403
that is a rate limit (with `Retry-After`, or GitHub's `X-RateLimit-Remaining: 0`), waiting an
exponential backoff or what the server asks (capped). Everything that fails ends in one
`SourceError` naming the source, the method, the redacted URL, the status and the start of the
body. Nothing here logs or raises a secret: URLs are sanitized and every text passes the Redactor.
"""

from __future__ import annotations

import contextlib
import email.utils
import http
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters
import requests.auth
import urllib3.exceptions

from ... import __version__
from ...bounded_http import (
    BodyTooLarge,
    check_declared_length,
    collect,
    enforce_header_deadline,
    late_headers,
)
from ...errors import SourceError, mask_secrets, sanitize_url
from ...limits import MAX_BODY_BYTES, load_json
from .auth import Refreshable
from .redact import Redactor, install_log_filter
from .request import Request, Response

__all__ = ["HttpClient", "RetryPolicy", "make_session"]

log = logging.getLogger("oaamap.http")

install_log_filter()

RETRY_STATUSES = frozenset({408, 429})
_BODY_LIMIT = 500
_DEADLINE_FACTOR = 10
# The headers get twice `timeout` in total: a silent server still trips the (clearer) read
# timeout first, a trickling one is cut off.
_HEADER_FACTOR = 2


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before trying a failed request again.

    Attributes:
        retries: attempts after the first (0 = no retry).
        backoff_base: the first wait in seconds; it doubles with each retry (plus up to 10% jitter).
        backoff_max: the longest backoff wait.
        retry_after_max: the longest `Retry-After` honoured; a server asking for more fails the
            request at once rather than being hammered or waited on for hours.
    """

    retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0

    @classmethod
    def from_options(cls, retries: int, options: Mapping[str, Any]) -> RetryPolicy:
        """The policy for a source: its `retries`, and run options or environment overrides
        (`http_backoff_base` / `OAAMAP_HTTP_BACKOFF_BASE`, `http_retry_after_max` /
        `OAAMAP_HTTP_RETRY_AFTER_MAX`)."""
        base = _option(options, "http_backoff_base", "OAAMAP_HTTP_BACKOFF_BASE", cls.backoff_base)
        cap = _option(options, "http_retry_after_max", "OAAMAP_HTTP_RETRY_AFTER_MAX",
                      cls.retry_after_max)
        return cls(retries=retries, backoff_base=base, retry_after_max=cap)

    def backoff(self, attempt: int) -> float:
        """The wait before retry number `attempt + 1`."""
        delay = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        return delay * (1 + random.random() / 10)


def _option(options: Mapping[str, Any], key: str, env: str, default: float) -> float:
    value = options.get(key)
    if value is None:
        value = os.environ.get(env)
    return default if value is None or value == "" else float(value)


class _Session(requests.Session):
    """A session that, like requests does for `Authorization`, drops every credential header on
    a redirect to another host (or port, or scheme): the api_key header and the headers the
    source declares secret, besides `Authorization`, `Cookie` and `Proxy-Authorization`."""

    def __init__(self, secret_headers: Iterable[str] = ()) -> None:
        super().__init__()
        self.secret_headers = frozenset(h.lower() for h in secret_headers) | _ALWAYS_SECRET

    def rebuild_auth(self, prepared_request: requests.PreparedRequest,
                     response: requests.Response) -> None:
        """Strip the credential headers when the redirect leaves the original origin; refuse a
        307/308 that would resend a body (a token request's client secret) to another origin."""
        if response.request is not None and self.should_strip_auth(  # type: ignore[no-untyped-call]
                str(response.request.url), str(prepared_request.url)):
            if prepared_request.body is not None:
                target = sanitize_url(str(prepared_request.url))
                raise CrossOriginRedirect(
                    f"a {response.status_code} redirect to {target} would resend the request "
                    "body (it may carry credentials) to another host")
            for name in list(prepared_request.headers):
                if name.lower() in self.secret_headers:
                    del prepared_request.headers[name]
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]


class CrossOriginRedirect(requests.exceptions.InvalidURL):
    """A redirect that would carry a request body to another origin (never retried)."""


_ALWAYS_SECRET = frozenset({"authorization", "proxy-authorization"})


def make_session(pool_size: int, secret_headers: Iterable[str] = ()) -> requests.Session:
    """A session with a connection pool sized for the fan-out and no urllib3-level retries,
    which never carries `secret_headers` (names) to another host on a redirect."""
    session = _Session(secret_headers)
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 4),
                                            max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = f"oaamap/{__version__}"
    return session


class _Stopped(Exception):
    """The read was abandoned (another chain failed, or the consumer stopped)."""


class _Deadline(requests.exceptions.Timeout):
    """The whole response did not arrive within the deadline."""


@dataclass(frozen=True)
class _Failure:
    reason: str
    status: int | None = None
    body: str | None = None
    retry_after: float | None = None


class HttpClient:
    """Sends the requests of one source read; shared by the fan-out threads.

    Args:
        source: the source's name, for errors and logs.
        session: the shared session.
        policy: retries and waits.
        timeout: seconds for connecting and for each wait for data.
        redactor: the run's known secrets.
        stop: set when the read is abandoned; waits are cut short and no new attempt starts.
        max_body_bytes: the largest decoded body accepted (default `limits.MAX_BODY_BYTES`).
    """

    def __init__(self, source: str, session: requests.Session, policy: RetryPolicy,
                 timeout: float, redactor: Redactor, stop: threading.Event,
                 max_body_bytes: int | None = None) -> None:
        self.source, self.session, self.policy = source, session, policy
        self.timeout, self.redact, self.stop = timeout, redactor, stop
        self.max_body_bytes = max_body_bytes or MAX_BODY_BYTES
        enforce_header_deadline(session, timeout * _HEADER_FACTOR)

    def send(self, request: Request, auth: requests.auth.AuthBase | None, where: str,
             accept: frozenset[int] = frozenset()) -> Response:
        """Send `request` (with retries) and return the successful response.

        Args:
            request: what to send.
            auth: applied to every attempt (refreshed once after a 401 when Refreshable).
            where: how errors name the request, e.g. `GET https://... page 2`.
            accept: error statuses returned as they are (`ignore_status`), without a retry;
                a rate-limited 403 is still waited for and retried.

        Raises:
            SourceError: a refused request, or retries exhausted.
        """
        def build() -> requests.Request:
            return requests.Request(request.method, request.url, params=request.params,
                                    headers=request.headers, json=request.json, auth=auth)
        return self._exchange(build, where, auth, accept)

    def call_json(self, method: str, url: str, headers: Mapping[str, str], where: str
                  ) -> tuple[Any, Response]:
        """Send a bodiless request with `headers` (an auth flow's own calls) and return its
        decoded JSON body and the response.

        Raises:
            SourceError: refused, kept failing, or not JSON.
        """
        def build() -> requests.Request:
            return requests.Request(method, url, headers={"Accept": "application/json",
                                                          **headers})
        response = self._exchange(build, where, None)
        return self.decode_json(response, where), response

    def post_token(self, url: str, form: Mapping[str, str], basic: tuple[str, str] | None) -> Any:
        """POST a token request (form-encoded) and return its decoded JSON body.

        Raises:
            SourceError: the token endpoint refused, kept failing, or answered something else
                than JSON.
        """
        where = f"POST {sanitize_url(url)} (token request)"
        auth = requests.auth.HTTPBasicAuth(*basic) if basic else None

        def build() -> requests.Request:
            return requests.Request("POST", url, data=dict(form), auth=auth,
                                    headers={"Accept": "application/json"})
        response = self._exchange(build, where, None)
        return self.decode_json(response, where)

    def decode_json(self, response: Response, where: str) -> Any:
        """The body as JSON.

        Raises:
            SourceError: the body is not JSON (its start and content type are shown).
        """
        from ..json_source import STRICT_JSON  # refuses NaN/Infinity, as JSON itself does

        try:
            return load_json(response.content, **STRICT_JSON)
        except (ValueError, UnicodeDecodeError) as e:
            kind = response.headers.get("Content-Type", "no content type")
            raise SourceError(
                self.source, f"the response is not JSON ({kind}): {e}", location=self.redact(where),
                status=response.status, body=self._excerpt(response.content) or "(empty)",
            ) from e

    def _exchange(self, build: Callable[[], requests.Request], where: str,
                  auth: requests.auth.AuthBase | None,
                  accept: frozenset[int] = frozenset()) -> Response:
        attempt, refreshed = 0, False
        while True:
            if self.stop.is_set():
                raise _Stopped()
            log.debug("source `%s`: %s", self.source, self.redact(where))
            try:
                outcome = self._attempt(build, accept)
            except BodyTooLarge as e:
                # Not retried: the same request would bring the same body.
                raise SourceError(self.source, f"{e} (raise `max_body_bytes` if the answer is "
                                  "legitimate)", location=self.redact(where)) from None
            if isinstance(outcome, Response):
                return outcome
            failure, prepared = outcome
            if failure.status == 401 and not refreshed and isinstance(auth, Refreshable) \
                    and prepared is not None and auth.refresh(prepared):
                refreshed = True
                continue
            self._wait_or_fail(failure, attempt, where)
            attempt += 1

    def _attempt(self, build: Callable[[], requests.Request], accept: frozenset[int] = frozenset()
                 ) -> Response | tuple[_Failure, requests.PreparedRequest | None]:
        prepared = None
        try:
            prepared = self.session.prepare_request(build())
            # stream=True: the body is read below, under a deadline.
            settings = self.session.merge_environment_settings(prepared.url, {}, True, None, None)
            with self.session.send(prepared, timeout=(self.timeout, self.timeout),
                                   allow_redirects=True, **settings) as raw:
                content = self._read(raw)
                response = Response(raw.status_code, raw.url or "", raw.headers, content)
        except requests.exceptions.RequestException as e:
            if isinstance(e, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema |
                          requests.exceptions.InvalidSchema):
                return _Failure(f"invalid URL: {self.redact(str(e))}", status=-1), prepared
            return _Failure(self._describe(e)), prepared
        if 200 <= response.status < 300:
            return response
        wait = _rate_limit_wait(response.headers)
        if response.status in accept and not (response.status == 403 and wait is not None):
            return response
        reason = _reason(response.status)
        if response.status == 403 and wait is not None:
            reason += " (rate limited)"
        return _Failure(reason, response.status, self._excerpt(response.content), wait), prepared

    def _read(self, raw: requests.Response) -> bytes:
        limit = self.timeout * _DEADLINE_FACTOR
        check_declared_length(raw.headers, self.max_body_bytes)
        return collect(_chunks(raw), self.max_body_bytes, time.monotonic() + limit, _Deadline,
                       limit)

    def _wait_or_fail(self, failure: _Failure, attempt: int, where: str) -> None:
        retryable = failure.status is None or failure.status in RETRY_STATUSES or \
            failure.status >= 500 or (failure.status == 403 and failure.retry_after is not None)
        if not retryable:
            raise self._error(failure, where, _refusal_hint(failure.status))
        if attempt >= self.policy.retries:
            attempts = f"{attempt + 1} attempt{'s' if attempt else ''}"
            raise self._error(failure, where, f"gave up after {attempts} "
                              f"(`retries: {self.policy.retries}`)")
        delay = self.policy.backoff(attempt)
        if failure.retry_after is not None:
            if failure.retry_after > self.policy.retry_after_max:
                raise self._error(failure, where, f"the server asks to wait "
                                  f"{failure.retry_after:g} s (Retry-After), more than the "
                                  f"{self.policy.retry_after_max:g} s allowed "
                                  "(OAAMAP_HTTP_RETRY_AFTER_MAX)")
            delay = failure.retry_after
        log.warning("source `%s`: %s: %s; retry %d of %d in %.1f s", self.source,
                    self.redact(where), failure.reason, attempt + 1, self.policy.retries, delay)
        if self.stop.wait(delay):
            raise _Stopped()

    def _error(self, failure: _Failure, where: str, detail: str) -> SourceError:
        status = failure.status if failure.status and failure.status > 0 else None
        return SourceError(self.source, f"{failure.reason}; {detail}",
                           location=self.redact(where), status=status, body=failure.body)

    def _describe(self, e: requests.exceptions.RequestException) -> str:
        late = late_headers(e)
        if isinstance(e, requests.exceptions.ConnectTimeout):
            text = f"could not connect within {self.timeout:g} s"
        elif isinstance(e, _Deadline):
            text = str(e)
        elif late is not None:
            text = str(late)
        elif isinstance(e, requests.exceptions.Timeout):
            text = f"no data within {self.timeout:g} s (timeout)"
        else:
            text = f"connection failed: {_root_cause(e)}"
        return self.redact(sanitize_url(text))

    def _excerpt(self, content: bytes) -> str | None:
        if not content:
            return None
        text = content[: _BODY_LIMIT * 8].decode("utf-8", errors="replace")
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            text = json.dumps(mask_secrets(load_json(content)), ensure_ascii=False)
        text = self.redact(text).replace("\r", " ").replace("\n", " ").strip()
        return text if len(text) <= _BODY_LIMIT else text[: _BODY_LIMIT - 3] + "..."


def _chunks(raw: requests.Response) -> Iterator[bytes]:
    """The body as it arrives. `read1` returns whatever bytes are there (so the deadline is
    checked while a server trickles); urllib3 1.x lacks it and falls back to `iter_content`."""
    read1 = getattr(raw.raw, "read1", None)
    if read1 is None:
        yield from raw.iter_content(64 * 1024)
        return
    while True:
        try:
            chunk = read1(64 * 1024, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError as e:
            raise requests.exceptions.ReadTimeout(e) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise requests.exceptions.ChunkedEncodingError(e) from e
        if not chunk:
            return
        yield chunk


def _root_cause(e: BaseException) -> str:
    # requests wraps urllib3's MaxRetryError, which wraps the socket-level error; the innermost
    # reason is the useful part ("Failed to establish a new connection: [Errno 111] ...").
    cause = e
    for _ in range(6):
        inner = getattr(cause, "reason", None)
        if inner is None and cause.args and isinstance(cause.args[0], BaseException):
            inner = cause.args[0]
        if not isinstance(inner, BaseException):
            break
        cause = inner
    text = str(cause)
    # urllib3 prefixes some messages with the connection object's repr.
    return text.split(">: ", 1)[-1] if text.startswith("<") else text


def _reason(status: int) -> str:
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _refusal_hint(status: int | None) -> str:
    if status == -1:
        return "check `url`"
    if status in (401, 403):
        return "the server refused the credentials; check `auth` and the token's permissions"
    if status == 404:
        return "not found; check `url` (and the fan-out parent's fields it uses)"
    return "the server refused the request (not retried)"


def _rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds a rate-limited response asks to wait: `Retry-After`, or for a 403 with
    `X-RateLimit-Remaining: 0` (GitHub's primary rate limit) the time until `X-RateLimit-Reset`."""
    wait = _retry_after(headers.get("Retry-After"))
    if wait is None and headers.get("X-RateLimit-Remaining") == "0":
        try:
            wait = max(0.0, float(headers.get("X-RateLimit-Reset", "")) - time.time())
        except ValueError:
            wait = None
    return wait


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
