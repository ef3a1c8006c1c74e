"""Stage 9, the push: a client of Veza's OAA REST API (providers, data sources, push, multipart).

Every request goes through `VezaClient.request`, which retries 429 and 5xx answers with exponential
backoff that honours `Retry-After`, and turns any other error answer into a `PushError` built from
Veza's error body (code, message, field violations, request id). The API key lives only in an
`AuthBase` object whose repr hides it, and it is scrubbed from every error text.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests
import urllib3

from .. import __version__, limits
from ..bounded_http import BodyTooLarge, check_declared_length, collect, enforce_header_deadline
from ..errors import OaamapError, PushError
from ..redact import mask_text, remember, sanitize_url

__all__ = [
    "APPLIED",
    "MAX_BODY_BYTES",
    "MAX_PARTS",
    "NOT_APPLIED",
    "PROVIDER_TEMPLATES",
    "UNKNOWN",
    "ClientSettings",
    "ConnectionLost",
    "DataSourceRef",
    "ProviderRef",
    "PushCheck",
    "PushInterrupted",
    "PushLostError",
    "PushOutcome",
    "VezaClient",
    "VezaConfigError",
    "judge_push",
    "load_icon",
    "normalize_url",
    "read_api_key",
    "read_key_file",
    "settings_from_env",
    "warning_messages",
]

MAX_BODY_BYTES = 100_000_000
MAX_PARTS = 99
MAX_ICON_BYTES = 64_000
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PROVIDER_TEMPLATES = (
    "application", "identity_provider", "hris", "secret_store", "principal", "entity_enrichment",
)
NAME_PATTERN = re.compile(r"^[ @#$%&*:()!,a-zA-Z0-9_'\"=.-]*$")
API = "/api/v1/providers/custom"
APPLIED, NOT_APPLIED, UNKNOWN = "applied", "not applied", "unknown"
_FAILED_STATUS = re.compile(r"fail|error", re.IGNORECASE)
CHECK_RETRIES = 2  # the look at the data source after a lost answer: quick, the user waits


class VezaConfigError(OaamapError):
    """The push is not configured well enough to start: no URL, no key, a bad icon or name."""

    exit_code = 2

    def __init__(self, setting: str, message: str, hint: str | None = None) -> None:
        self.setting = setting
        self.message = message
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"oaamap: error: {self.setting}: {self.message}{hint}"


@dataclass(frozen=True)
class ClientSettings:
    """How to reach Veza and how hard to try.

    Attributes:
        url: base URL, normalized by `normalize_url`.
        api_key: the bearer key (never shown by repr).
        verify: TLS verification: True, False (`--insecure`) or a CA bundle path.
        connect_timeout / read_timeout: seconds, per request; `read_timeout` also bounds the
            total wait for an answer's headers and, separately, for its body.
        max_body_bytes: the largest answer read (decoded); a larger one is a PushError.
        max_retries: retries after the first attempt, for 429, 5xx and connection errors.
        backoff_base / backoff_cap: the n-th retry waits `min(cap, base * 2**n)` seconds.
        retry_after_cap: longest `Retry-After` honoured, in seconds.
        compression: gzip+base64 the payload on `:push`.
        multipart_threshold: payloads above this many bytes go through `:parts`.
        part_size: bytes of raw JSON per part (raised when needed to stay within 99 parts).
        page_size: `page_size` of list requests.
    """

    url: str
    api_key: str = field(repr=False)
    verify: bool | str = True
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    compression: bool = True
    multipart_threshold: int = 50_000_000
    part_size: int = 50_000_000
    page_size: int = 250
    max_body_bytes: int = limits.MAX_BODY_BYTES


@dataclass(frozen=True)
class ProviderRef:
    """A provider found or created in Veza."""

    id: str
    name: str
    template: str
    created: bool = False


@dataclass(frozen=True)
class DataSourceRef:
    """A data source found or created under a provider, with its state at that moment.

    `status` and `updated_at` (when Veza serves them) tell later whether a push whose answer
    was lost reached Veza.
    """

    id: str
    name: str
    created: bool = False
    status: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class PushCheck:
    """Whether Veza holds a push whose answer was lost, from the data source's state.

    Attributes:
        verdict: `APPLIED`, `NOT_APPLIED` or `UNKNOWN`.
        evidence: what Veza's data source showed (or why it could not be read).
    """

    verdict: str
    evidence: str

    def sentence(self) -> str:
        """`the push was applied (...)`, `... was not applied (...)`, `unknown ...: check Veza`."""
        if self.verdict == APPLIED:
            return f"the push was applied ({self.evidence})"
        if self.verdict == NOT_APPLIED:
            return f"the push was not applied ({self.evidence})"
        return f"unknown whether the push was applied ({self.evidence}): check Veza"


class ConnectionLost(PushError):
    """No answer from Veza (connection refused, reset or timed out), retries exhausted.

    `maybe_received` is False only when no attempt ever reached the server (connection refused
    or connect timeout), so nothing can have been applied.
    """

    def __init__(self, message: str, *, url: str, maybe_received: bool) -> None:
        self.maybe_received = maybe_received
        super().__init__(message, url=url, code="CONNECTION")


class PushLostError(PushError):
    """The answer to the push was lost, and Veza's data source does not show it applied."""

    def __init__(self, data_source: str, cause: str, check: PushCheck, url: str | None) -> None:
        self.data_source = data_source
        self.cause = cause
        self.check = check
        super().__init__(
            f"the answer to the push to data source `{data_source}` was lost ({cause}); "
            f"{check.sentence()}", url=url, code="ANSWER_LOST")


class PushInterrupted(OaamapError):
    """Ctrl-C during a push: what Veza has, told from the data source's state (exit 130)."""

    exit_code = 130

    def __init__(self, data_source: str, check: PushCheck) -> None:
        self.data_source = data_source
        self.check = check
        super().__init__(str(self))

    def __str__(self) -> str:
        return (f"oaamap: interrupted during the push to data source `{self.data_source}`: "
                f"{self.check.sentence()}")


@dataclass(frozen=True)
class PushOutcome:
    """What one push did: where it went, how it was sent, and Veza's warnings."""

    provider: ProviderRef
    data_source: DataSourceRef
    warnings: list[str]
    multipart: bool
    parts: int
    bytes_sent: int
    retries: int = 0
    answer_lost: bool = False


def normalize_url(url: str) -> str:
    """`https://` added when no scheme is given, trailing slashes removed.

    Raises:
        VezaConfigError: the URL is empty or not http(s).
    """
    url = url.strip()
    if not url:
        raise VezaConfigError("VEZA_URL", "no Veza URL", "set VEZA_URL, e.g. https://acme.vezacloud.com")
    if "://" not in url:
        url = f"https://{url}"
    scheme, rest = url.split("://", 1)
    if scheme.lower() not in ("http", "https"):
        raise VezaConfigError("VEZA_URL", f"unsupported scheme `{scheme}`", "use https://")
    return f"{scheme.lower()}://{rest}".rstrip("/")


def load_icon(path: Path) -> str:
    """The base64 text of a provider icon, checked to be a PNG or SVG under 64 KB.

    Raises:
        VezaConfigError: the file is missing, too large, or neither PNG nor SVG.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise VezaConfigError("provider icon", f"cannot read `{path}`: {e.strerror}") from e
    if len(data) >= MAX_ICON_BYTES:
        raise VezaConfigError(
            "provider icon", f"`{path}` is {len(data):,} bytes", "Veza takes icons under 64 KB"
        )
    if not (data.startswith(b"\x89PNG\r\n\x1a\n") or b"<svg" in data[:4096].lower()):
        raise VezaConfigError("provider icon", f"`{path}` is neither a PNG nor an SVG file")
    return base64.b64encode(data).decode("ascii")


def check_name(kind: str, name: str) -> None:
    """Raise `VezaConfigError` unless `name` is a valid provider or data source name."""
    if not name or not NAME_PATTERN.fullmatch(name):
        raise VezaConfigError(
            kind, f"`{name}` is not a valid name",
            "use letters, digits, spaces and @#$%&*:()!,_'\"=.- (no `/`)",
        )


class _BearerAuth(requests.auth.AuthBase):
    """Adds the bearer header to each prepared request; its repr never shows the key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["authorization"] = f"Bearer {self._key}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth ***>"

    def scrub(self, text: str) -> str:
        """`text` with every occurrence of the key replaced by `***`."""
        return text.replace(self._key, "***") if self._key else text


def _excerpt(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _detail_lines(details: Any) -> list[str]:
    """Readable lines from google.rpc-style `details` (field violations, user-facing info)."""
    lines: list[str] = []
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, Mapping):
            lines.append(str(detail))
            continue
        for violation in detail.get("field_violations") or []:
            lines.append(f"{violation.get('field', '?')}: {violation.get('description', '')}")
        if "reason" in detail or "resolution" in detail:
            parts = [detail.get("reason"), detail.get("message"), detail.get("resolution")]
            lines.append(" - ".join(str(p) for p in parts if p))
        elif not detail.get("field_violations"):
            extra = {k: v for k, v in detail.items() if k != "@type"}
            if extra:
                lines.append(json.dumps(extra, ensure_ascii=False))
    return lines


def _retry_after(response: requests.Response | None) -> float | None:
    """Seconds asked by a `Retry-After` header (a number or an HTTP date), if any."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _auth_hint(status: int | None) -> str:
    if status in (401, 403):
        return "; check the API key in VEZA_API_KEY or --api-key-file, and that it may push"
    return ""


class VezaClient:
    """A client of Veza's OAA API, with retries, paging and readable errors.

    Args:
        settings: where and how to connect.
        session: a `requests.Session` to use (tests mount adapters on it).
        notify: called with a one-line note on each retry (the CLI prints it).
        sleep: the sleep function (tests replace it).

    Example:
        >>> client = VezaClient(ClientSettings("https://acme.vezacloud.com", key))  # doctest: +SKIP
        >>> client.push_payload("My App", "my-app", "application", payload_json)  # doctest: +SKIP
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        session: requests.Session | None = None,
        notify: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._auth = _BearerAuth(settings.api_key)
        remember(settings.api_key)
        self.session = session or requests.Session()
        self.session.headers["user-agent"] = f"oaamap/{__version__} python-requests"
        enforce_header_deadline(self.session, settings.read_timeout)
        self._notify = notify or (lambda _message: None)
        self._sleep = sleep
        self.retries = 0
        self._payload_sent = False

    def __repr__(self) -> str:
        return f"VezaClient(url={self.settings.url!r}, api_key='***')"

    # -- transport -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        max_retries: int | None = None,
        resend_lost: bool = True,
    ) -> dict[str, Any]:
        """Send one API request, retrying 429/5xx and connection errors; the decoded JSON answer.

        Query strings are encoded with `+` for spaces, as Veza expects. With `resend_lost` off,
        a request that may have reached Veza is not sent again when its answer is lost (a
        multipart `complete` cannot be repeated).

        Raises:
            ConnectionLost: no answer, retries exhausted.
            PushError: an error answer, or a non-JSON success.
        """
        url = self.settings.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode("utf-8") if body is not None else None
        limit = self.settings.max_retries if max_retries is None else max_retries
        attempt, maybe_received = 0, False
        while True:
            response, failure = self._send(method, url, data)
            status = response.status_code if response is not None else None
            lost = failure is not None and not _never_sent(failure)
            maybe_received = maybe_received or lost
            retryable = failure is not None or status in RETRY_STATUSES
            if not retryable or attempt >= limit or (lost and not resend_lost):
                break
            delay = self._delay(attempt, response)
            attempt += 1
            self.retries += 1
            self._note_retry(method, url, status, failure, attempt, limit, delay)
            self._sleep(delay)
        if response is None:
            raise ConnectionLost(
                f"cannot reach Veza: {self._scrub(str(failure))}", url=url,
                maybe_received=maybe_received,
            ) from failure
        return self._decode(method, url, response)

    def _note_retry(self, method: str, url: str, status: int | None,
                    failure: Exception | None, attempt: int, limit: int, delay: float) -> None:
        why = f"HTTP {status}" if status is not None else type(failure).__name__
        self._notify(f"{why} from {method} {self._scrub(url)}; retry {attempt} of "
                     f"{limit} in {delay:.1f} s")

    def _send(
        self, method: str, url: str, data: bytes | None
    ) -> tuple[requests.Response | None, Exception | None]:
        headers = {"content-type": "application/json"} if data is not None else {}
        try:
            response = self.session.request(
                method, url, data=data, headers=headers, auth=self._auth, stream=True,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                verify=self.settings.verify,
                # A redirect would carry the payload (and, on the same host, the key) elsewhere.
                allow_redirects=False,
            )
            if response._content is False:  # type: ignore[comparison-overlap]  # not read yet
                with response:
                    self._read_body(response)
        except (requests.ConnectionError, requests.Timeout) as e:
            return None, e
        except BodyTooLarge as e:
            raise PushError(f"{method} answered with a body too large to read: {e}",
                            status=response.status_code, url=url, code="RESPONSE_TOO_LARGE"
                            ) from None
        return response, None

    def _read_body(self, response: requests.Response) -> None:
        """Read the streamed body within `max_body_bytes` and `read_timeout` in total."""
        limit, seconds = self.settings.max_body_bytes, self.settings.read_timeout
        check_declared_length(response.headers, limit)
        body = collect(response.iter_content(64 * 1024), limit, time.monotonic() + seconds,
                       requests.Timeout, seconds)
        # What requests itself stores once a body is read: .content/.text/.json() use it.
        response._content = body
        response._content_consumed = True  # type: ignore[attr-defined]

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        asked = _retry_after(response)
        if asked is not None:
            return min(asked, self.settings.retry_after_cap)
        return min(self.settings.backoff_cap, self.settings.backoff_base * 2.0**attempt)

    def _scrub(self, text: str) -> str:
        return mask_text(self._auth.scrub(text))

    def _decode(self, method: str, url: str, response: requests.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise self._error(method, url, response)
        if response.is_redirect:
            target = sanitize_url(response.headers.get("Location", "?"))
            raise PushError(
                f"{method} was redirected to {target}; oaamap never follows a redirect with the "
                "API key and the payload (check VEZA_URL: the tenant's own https:// URL)",
                status=response.status_code, url=url, code="REDIRECT")
        try:
            decoded = response.json() if response.content else {}
        except (ValueError, RecursionError):  # a hostile answer nested too deeply
            decoded = None
        if not isinstance(decoded, dict):
            raise PushError(
                f"{method} answered with something that is not a JSON object",
                status=response.status_code, url=url,
                body=self._scrub(_excerpt(response.text)),
            )
        return decoded

    def _error(self, method: str, url: str, response: requests.Response) -> PushError:
        """A `PushError` from Veza's error body `{code, message, details, request_id}`."""
        text = self._scrub(response.text or "")
        try:
            decoded = response.json()
        except (ValueError, RecursionError):
            decoded = None
        if not isinstance(decoded, dict):
            return PushError(
                f"{method} failed: {response.reason or 'error'}{_auth_hint(response.status_code)}",
                status=response.status_code, url=url, body=_excerpt(text),
            )
        code = decoded.get("code")
        message = str(decoded.get("message") or response.reason or "error")
        return PushError(
            self._scrub(message) + _auth_hint(response.status_code),
            status=response.status_code, url=url, body=_excerpt(text),
            code=str(code) if code is not None else None,
            details=[self._scrub(line) for line in _detail_lines(decoded.get("details"))],
            request_id=decoded.get("request_id"),
        )

    def list_all(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a paged list endpoint (`values`, `has_more`, `next_page_token`)."""
        query = {"page_size": self.settings.page_size, **(params or {})}
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            page = self.request("GET", path, params=query)
            items.extend(v for v in page.get("values") or [] if isinstance(v, dict))
            token = page.get("next_page_token") or ""
            if not page.get("has_more") or not token or token in seen:
                return items
            seen.add(token)
            query = {**query, "page_token": token}

    # -- providers and data sources --------------------------------------------------------

    def _find_by_name(self, path: str, name: str) -> dict[str, Any] | None:
        # Veza's filter syntax has no escape for `"`: such names are matched on the full list.
        params = {} if '"' in name else {"filter": f'name eq "{name}"'}
        matches = [item for item in self.list_all(path, params) if item.get("name") == name]
        if len(matches) > 1:
            raise PushError(f"Veza has {len(matches)} entries named `{name}`", url=path)
        return matches[0] if matches else None

    def find_provider(self, name: str) -> dict[str, Any] | None:
        """The custom provider called `name`, or None."""
        return self._find_by_name(API, name)

    def create_provider(self, name: str, template: str) -> dict[str, Any]:
        """Create a custom provider for `template`; the provider object."""
        answer = self.request("POST", API, body={"name": name, "custom_template": template})
        return dict(answer.get("value", answer))

    def set_provider_icon(self, provider_id: str, icon_base64: str) -> None:
        """Upload the provider's icon (base64 of a PNG or SVG file)."""
        self.request("POST", f"{API}/{provider_id}:icon", body={"icon_base64": icon_base64})

    def provider_icon(self, provider_id: str) -> str | None:
        """The provider's current icon as base64, or None when it has none."""
        try:
            answer = self.request("GET", f"{API}/{provider_id}:icon")
        except PushError as e:
            if e.status == 404:
                return None
            raise
        value = answer.get("value", answer)
        return value.get("icon_base64") or None if isinstance(value, dict) else None

    def ensure_provider(self, name: str, template: str, icon: Path | None = None) -> ProviderRef:
        """Find the provider `name` or create it; check its template; upload the icon if new.

        Raises:
            PushError: the provider exists with another template, or an API error.
            VezaConfigError: a bad name or icon.
        """
        check_name("provider", name)
        icon_b64 = load_icon(icon) if icon is not None else None
        found, created = self.find_provider(name), False
        if found is None:
            found, created = self._create_or_find(
                API, name, lambda: self.create_provider(name, template)
            )
        actual = found.get("custom_template") or template
        if actual != template:
            raise PushError(
                f"provider `{name}` exists with template `{actual}`, but the mapping is for "
                f"`{template}`", url=API, code="TEMPLATE_MISMATCH",
            )
        if icon_b64 is not None and (created or self.provider_icon(found["id"]) != icon_b64):
            self.set_provider_icon(found["id"], icon_b64)
        return ProviderRef(str(found["id"]), name, template, created)

    def _create_or_find(
        self, path: str, name: str, create: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        # A create retried after a lost answer may meet its own first attempt: look again.
        try:
            return create(), True
        except PushError as e:
            if e.status not in (400, 409):
                raise
            found = self._find_by_name(path, name)
            if found is None:
                raise
            return found, False

    def find_data_source(self, provider_id: str, name: str) -> dict[str, Any] | None:
        """The data source `name` of a provider, or None."""
        return self._find_by_name(f"{API}/{provider_id}/datasources", name)

    def create_data_source(self, provider_id: str, name: str) -> dict[str, Any]:
        """Create a data source under a provider; the data source object."""
        path = f"{API}/{provider_id}/datasources"
        answer = self.request("POST", path, body={"name": name, "id": provider_id})
        return dict(answer.get("value", answer))

    def ensure_data_source(self, provider_id: str, name: str) -> DataSourceRef:
        """Find the data source `name` under the provider or create it."""
        check_name("data source", name)
        found, created = self.find_data_source(provider_id, name), False
        if found is None:
            found, created = self._create_or_find(
                f"{API}/{provider_id}/datasources", name,
                lambda: self.create_data_source(provider_id, name),
            )
        return DataSourceRef(str(found["id"]), name, created, _text(found.get("status")),
                             _text(found.get("updated_at")))

    # -- push ------------------------------------------------------------------------------

    def push(self, provider_id: str, data_source_id: str, json_data: str) -> dict[str, Any]:
        """POST `:push` with the payload text, gzip+base64 unless compression is off."""
        body: dict[str, Any] = {"id": provider_id, "data_source_id": data_source_id}
        if self.settings.compression:
            packed = gzip.compress(json_data.encode("utf-8"), compresslevel=9, mtime=0)
            body["json_data"] = base64.b64encode(packed).decode("ascii")
            body["compression_type"] = "GZIP"
        else:
            body["json_data"] = json_data
        path = f"{API}/{provider_id}/datasources/{data_source_id}:push"
        self._payload_sent = True
        return self.request("POST", path, body=body)

    def part_size_for(self, size: int) -> int:
        """The part size to use for `size` bytes: the setting, raised to keep within 99 parts.

        Raises:
            PushError: even 99 parts would each exceed Veza's body limit.
        """
        part = max(1, self.settings.part_size, math.ceil(size / MAX_PARTS))
        if math.ceil(part / 3) * 4 > MAX_BODY_BYTES - 1024:
            raise PushError(
                f"payload of {size:,} bytes needs parts over Veza's 100 MB body limit",
                code="OVERSIZE",
            )
        return part

    def push_parts(
        self, provider_id: str, data_source_id: str, json_data: str
    ) -> tuple[dict[str, Any], int]:
        """Multipart upload through `:parts` (start, upload 1..N, complete); answer and N."""
        raw = json_data.encode("utf-8")
        part = self.part_size_for(len(raw))
        path = f"{API}/{provider_id}/datasources/{data_source_id}:parts"
        started = self.request("POST", path, body={"operation": "start"})
        upload_id = started.get("upload_id") or (started.get("value") or {}).get("upload_id")
        if not upload_id:
            raise PushError("Veza did not return an upload_id for the multipart upload", url=path)
        count = 0
        for offset in range(0, len(raw), part):
            count += 1
            chunk = base64.b64encode(raw[offset:offset + part]).decode("ascii")
            self.request("POST", path, body={
                "operation": "upload", "upload_id": upload_id,
                "sequence_number": count, "data": chunk,
            })
        body = {"operation": "complete", "upload_id": upload_id, "sequence_count": count}
        self._payload_sent = True
        return self.request("POST", path, body=body, resend_lost=False), count

    def push_payload(
        self,
        provider: str,
        data_source: str,
        template: str,
        json_data: str,
        *,
        icon: Path | None = None,
    ) -> PushOutcome:
        """Find or create the provider and data source, then push the payload text.

        Uses `:parts` above `multipart_threshold` bytes, `:push` otherwise. When the answer to
        the push is lost, or on Ctrl-C once the payload was sent, the data source's state tells
        whether Veza has the payload (`check_push`).

        Returns:
            Where it went, how, and Veza's warnings (none when the answer was lost but the
            data source shows the push applied: `answer_lost` is then set).

        Raises:
            PushLostError: the answer was lost and the push is not known to be applied.
            PushInterrupted: Ctrl-C; says whether the push was applied.
        """
        retries_before = self.retries
        self._payload_sent = False
        try:
            provider_ref = self.ensure_provider(provider, template, icon)
            source_ref = self.ensure_data_source(provider_ref.id, data_source)
        except KeyboardInterrupt:
            raise PushInterrupted(data_source, PushCheck(
                NOT_APPLIED, "interrupted before the payload was sent")) from None
        size = len(json_data.encode("utf-8"))
        multipart = size > self.settings.multipart_threshold
        lost = False
        try:
            if multipart:
                answer, parts = self.push_parts(provider_ref.id, source_ref.id, json_data)
            else:
                answer, parts = self.push(provider_ref.id, source_ref.id, json_data), 0
        except ConnectionLost as e:
            check = self._check_after(provider_ref.id, source_ref, e.maybe_received)
            if check.verdict != APPLIED:
                raise PushLostError(data_source, e.message, check, e.url) from e
            answer, lost = {}, True
            parts = math.ceil(size / self.part_size_for(size)) if multipart else 0
        except KeyboardInterrupt:
            check = self._check_after(provider_ref.id, source_ref, reached=True)
            raise PushInterrupted(data_source, check) from None
        return PushOutcome(
            provider_ref, source_ref, warning_messages(answer), multipart=multipart,
            parts=parts, bytes_sent=size, retries=self.retries - retries_before,
            answer_lost=lost,
        )

    def _check_after(self, provider_id: str, before: DataSourceRef, reached: bool) -> PushCheck:
        """The verdict after a lost answer or a Ctrl-C; `reached`: the last request may have
        arrived (False: it was refused or timed out while connecting)."""
        if not self._payload_sent:
            # Neither `:push` nor the multipart `complete` left: nothing can have been applied.
            return PushCheck(NOT_APPLIED, "it stopped before the multipart `complete` was sent")
        if not reached:
            return PushCheck(NOT_APPLIED, "the payload never reached Veza")
        try:
            return self.check_push(provider_id, before)
        except KeyboardInterrupt:
            return PushCheck(UNKNOWN, "interrupted again while reading the data source's state")

    def check_push(self, provider_id: str, before: DataSourceRef) -> PushCheck:
        """Whether Veza holds a push sent after `before` was read, from the data source's state.

        Applied: its `updated_at` changed (or its status went from never pushed to SUCCESS) and
        its status is not a failure. Not applied: nothing changed, or Veza reports a failure.
        Unknown: the state cannot be read, Veza is still processing, or Veza serves neither
        `updated_at` nor a telling status.
        """
        path = f"{API}/{provider_id}/datasources/{before.id}"
        try:
            answer = self.request("GET", path, max_retries=CHECK_RETRIES)
        except PushError as e:
            return PushCheck(UNKNOWN, f"cannot read the data source's state: {e.message}")
        now = answer.get("value", answer)
        now = now if isinstance(now, Mapping) else {}
        return judge_push(before, _text(now.get("status")), _text(now.get("updated_at")))


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _never_sent(failure: Exception) -> bool:
    """True when the request cannot have reached the server (refused, connect timeout)."""
    if isinstance(failure, requests.ConnectTimeout):
        return True
    reason = getattr(failure.args[0], "reason", None) if failure.args else None
    # urllib3's NewConnectionError (refused, no route) is a ConnectTimeoutError too.
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)


def judge_push(before: DataSourceRef, status: str | None, updated_at: str | None) -> PushCheck:
    """The verdict on a push from the data source's state before it and now (see `check_push`)."""
    shown = f"status {status or '?'}, last update {updated_at or '?'}"
    if status is not None and _FAILED_STATUS.search(status):
        return PushCheck(NOT_APPLIED, f"Veza's data source `{before.name}` reports {shown}")
    if updated_at is not None and updated_at != before.updated_at:
        if status in (None, "SUCCESS"):
            return PushCheck(APPLIED, f"Veza's data source `{before.name}` was updated: {shown}")
        return PushCheck(UNKNOWN, f"Veza's data source `{before.name}` received it and is still "
                                  f"processing it: {shown}")
    if updated_at is not None:
        return PushCheck(NOT_APPLIED, f"Veza's data source `{before.name}` shows no push since "
                                      f"the one of {updated_at}")
    if before.status == "PENDING" and status == "SUCCESS":
        return PushCheck(APPLIED, f"Veza's data source `{before.name}` went from PENDING to "
                                  "SUCCESS")
    if before.status == "PENDING" and status == "PENDING" and before.updated_at is None:
        return PushCheck(NOT_APPLIED, f"Veza's data source `{before.name}` has still never "
                                      "received a push (status PENDING)")
    return PushCheck(UNKNOWN, f"Veza's data source `{before.name}` does not tell when it was "
                              f"last updated ({shown})")


def warning_messages(answer: Mapping[str, Any]) -> list[str]:
    """The `message` of each entry of a push answer's `warnings`."""
    inner = answer.get("value")
    value: Mapping[str, Any] = inner if isinstance(inner, Mapping) else answer
    warnings: Sequence[Any] = value.get("warnings") or []
    return [str(w.get("message", w)) if isinstance(w, Mapping) else str(w) for w in warnings]


def read_key_file(path: Path, setting: str = "--api-key-file") -> str:
    """The key on the FIRST line of `path`, stripped (a trailing newline or comment lines after
    it are fine). The file's contents never appear in an error.

    Raises:
        VezaConfigError: the file cannot be read, is not text, or its first line is empty.
    """
    try:
        with path.open(encoding="utf-8") as stream:
            first = stream.readline().strip()
    except OSError as e:
        raise VezaConfigError(setting, f"cannot read `{path}`: {e.strerror}") from e
    except ValueError as e:
        raise VezaConfigError(setting, f"`{path}` is not a UTF-8 text file") from e
    if not first:
        raise VezaConfigError(setting, f"the first line of `{path}` is empty",
                              "put the API key alone on the first line")
    remember(first)
    return first


def read_api_key(environ: Mapping[str, str], key_file: Path | None) -> str:
    """The API key from `--api-key-file` or `VEZA_API_KEY`.

    Raises:
        VezaConfigError: neither is set, the file is unreadable, or the key is empty.
    """
    if key_file is not None:
        key = read_key_file(key_file)
    else:
        key = environ.get("VEZA_API_KEY", "").strip()
    remember(key)
    if not key:
        raise VezaConfigError(
            "VEZA_API_KEY", "no API key",
            "set VEZA_API_KEY or pass --api-key-file FILE (never on the command line)",
        )
    return key


def settings_from_env(
    environ: Mapping[str, str] | None = None,
    *,
    url: str | None = None,
    api_key_file: Path | None = None,
    insecure: bool = False,
    ca_bundle: str | None = None,
    **overrides: Any,
) -> ClientSettings:
    """`ClientSettings` from `VEZA_URL`/`VEZA_API_KEY` (or the given URL and key file).

    Raises:
        VezaConfigError: the URL or the key is missing.
    """
    environ = os.environ if environ is None else environ
    base = normalize_url(url or environ.get("VEZA_URL", ""))
    key = read_api_key(environ, api_key_file)
    verify: bool | str = False if insecure else (ca_bundle or True)
    return ClientSettings(base, key, verify=verify, **overrides)
