"""The emulator's endpoints (REFERENCE 6.3): a registry of (method, path pattern) -> handler.

A handler takes a `Call` and returns `(status, body)`; it raises `ApiError` for error answers.
List endpoints page like Veza (`page_size`, `page_token` -> `values`, `has_more`,
`next_page_token`) and take `filter=name eq "X"` (spaces encoded as `+`; a literal `+` is not a
space and makes the filter invalid, as on Veza).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .client import NAME_PATTERN, PROVIDER_TEMPLATES
from .emulator_store import ApiError, Store

__all__ = ["ROUTES", "Call", "Route", "dispatch", "route"]

MAX_ICON_BYTES = 64_000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass
class Call:
    """One API call as the handlers see it."""

    method: str
    path: str
    params: Mapping[str, str]
    body: Any
    store: Store
    args: Mapping[str, str]
    max_body_bytes: int = 100_000_000


Handler = Callable[[Call], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class Route:
    """A registered endpoint."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler


ROUTES: list[Route] = []
_ID = r"[^/:]+"
BASE = "/api/v1/providers/custom"


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    """Register `handler` for `method` on `path` (`{name}` segments become arguments)."""
    parts = re.split(r"\{(\w+)\}", path)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{_ID})" for i, p in enumerate(parts))
    pattern = re.compile(f"^{regex}$")

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, pattern, handler))
        return handler

    return register


def dispatch(method: str, path: str, make_call: Callable[[dict[str, str]], Call]
             ) -> tuple[int, dict[str, Any]]:
    """Run the handler registered for (method, path).

    Raises:
        ApiError: 404 for an unknown path, 405 for a known path with another method.
    """
    allowed = False
    for r in ROUTES:
        match = r.pattern.match(path)
        if match:
            if r.method == method:
                return r.handler(make_call(match.groupdict()))
            allowed = True
    if allowed:
        raise ApiError(405, "Unimplemented", f"method {method} not allowed on {path}")
    raise ApiError(404, "NotFound", f"no such endpoint: {path}")


# -- helpers ----------------------------------------------------------------------------------

_FILTER_TERM = re.compile(r'^\s*(\w+)\s+eq\s+"([^"]*)"\s*$')


def parse_filter(text: str) -> list[tuple[str, str]]:
    """`name eq "X" and state eq "Y"` -> [(name, X), (state, Y)].

    Raises:
        ApiError: 400 for any other syntax (including `+` where a space was meant).
    """
    terms = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _FILTER_TERM.match(part)
        if not match:
            raise ApiError(400, "InvalidArgument", f"invalid filter: {text}",
                           [("filter", 'expected: field eq "value" [and ...]')])
        terms.append((match.group(1), match.group(2)))
    return terms


def page(items: list[dict[str, Any]], params: Mapping[str, str]) -> dict[str, Any]:
    """One page of `items`, filtered, in Veza's list shape."""
    if params.get("filter"):
        terms = parse_filter(params["filter"])
        items = [i for i in items if all(str(i.get(k, "")) == v for k, v in terms)]
    try:
        size = int(params.get("page_size") or DEFAULT_PAGE_SIZE)
        start = int(base64.urlsafe_b64decode(params["page_token"]).decode().removeprefix("o:")) \
            if params.get("page_token") else 0
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise ApiError(400, "InvalidArgument", "invalid page_size or page_token",
                       [("page_token", str(e))]) from e
    size = max(1, min(size, MAX_PAGE_SIZE))
    end = start + size
    more = end < len(items)
    token = base64.urlsafe_b64encode(f"o:{end}".encode()).decode() if more else ""
    return {"values": items[start:end], "has_more": more, "next_page_token": token}


def body_object(call: Call) -> dict[str, Any]:
    """The request body, which must be a JSON object."""
    if not isinstance(call.body, dict):
        raise ApiError(400, "InvalidArgument", "the request body must be a JSON object")
    return call.body


def check_name(field: str, value: Any) -> str:
    """A valid provider or data source name, or a 400."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "InvalidArgument", f"{field} is required", [(field, "is required")])
    if not NAME_PATTERN.fullmatch(value) or len(value) > 512:
        raise ApiError(400, "InvalidArgument", f"invalid {field}",
                       [(field, "contains characters that are not allowed")])
    if value.startswith("."):
        # `.`, `..` and hidden names: path tricks (Veza's character set alone would allow them).
        raise ApiError(400, "InvalidArgument", f"invalid {field}",
                       [(field, "must not start with a dot")])
    return value


# -- providers --------------------------------------------------------------------------------


@route("GET", f"{BASE}/templates")
def list_templates(call: Call) -> tuple[int, dict[str, Any]]:
    """The custom templates (the SDK's connection test)."""
    return 200, page([{"id": t, "name": t} for t in PROVIDER_TEMPLATES], call.params)


@route("GET", BASE)
def list_providers(call: Call) -> tuple[int, dict[str, Any]]:
    """Providers, paged and filtered."""
    with call.store.lock:
        return 200, page(list(call.store.providers.values()), call.params)


@route("POST", BASE)
def create_provider(call: Call) -> tuple[int, dict[str, Any]]:
    """Create a provider from `{"name", "custom_template", ...options}`."""
    body = body_object(call)
    name = check_name("name", body.get("name"))
    template = body.get("custom_template")
    if template not in PROVIDER_TEMPLATES:
        raise ApiError(400, "InvalidArgument", "invalid custom_template",
                       [("custom_template", f"must be one of {', '.join(PROVIDER_TEMPLATES)}")])
    return 200, {"value": call.store.create_provider(name, template, body)}


@route("GET", f"{BASE}/{{pid}}")
def get_provider(call: Call) -> tuple[int, dict[str, Any]]:
    """One provider."""
    return 200, {"value": call.store.provider(call.args["pid"])}


@route("PATCH", f"{BASE}/{{pid}}")
def update_provider(call: Call) -> tuple[int, dict[str, Any]]:
    """Set `provisioning` (the only field the SDK patches)."""
    body = body_object(call)
    with call.store.lock:
        provider = call.store.provider(call.args["pid"])
        if "provisioning" in body:
            provider["provisioning"] = bool(body["provisioning"])
        call.store.save()
    return 200, {}


@route("DELETE", f"{BASE}/{{pid}}")
def delete_provider(call: Call) -> tuple[int, dict[str, Any]]:
    """Delete a provider and its data sources."""
    call.store.delete_provider(call.args["pid"])
    return 200, {}


def _icon_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if b"<svg" in data[:4096].lower():
        return "image/svg+xml"
    return None


@route("POST", f"{BASE}/{{pid}}:icon")
def set_icon(call: Call) -> tuple[int, dict[str, Any]]:
    """Upload an icon: base64 of a PNG or SVG under 64 KB."""
    raw = body_object(call).get("icon_base64")
    text = raw if isinstance(raw, str) else ""  # "" decodes to no data: refused below
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ApiError(400, "InvalidArgument", "icon_base64 is not valid base64",
                       [("icon_base64", str(e))]) from e
    mime = _icon_type(data)
    if not data or len(data) >= MAX_ICON_BYTES or mime is None:
        raise ApiError(400, "InvalidArgument", "invalid icon",
                       [("icon_base64", "must be a PNG or SVG file under 64KB")])
    call.store.set_icon(call.args["pid"], {"mime_type": mime, "icon_base64": text})
    return 200, {}


@route("GET", f"{BASE}/{{pid}}:icon")
def get_icon(call: Call) -> tuple[int, dict[str, Any]]:
    """The provider's icon (`mime_type`, `icon_base64`)."""
    call.store.provider(call.args["pid"])
    icon = call.store.icons.get(call.args["pid"])
    if icon is None:
        raise ApiError(404, "NotFound", "provider has no icon")
    return 200, dict(icon)


@route("DELETE", f"{BASE}/{{pid}}:icon")
def delete_icon(call: Call) -> tuple[int, dict[str, Any]]:
    """Remove the provider's icon."""
    call.store.set_icon(call.args["pid"], None)
    return 200, {}


# -- data sources -----------------------------------------------------------------------------


@route("GET", f"{BASE}/{{pid}}/datasources")
def list_data_sources(call: Call) -> tuple[int, dict[str, Any]]:
    """A provider's data sources, paged and filtered."""
    with call.store.lock:
        call.store.provider(call.args["pid"])
        items = list(call.store.data_sources.get(call.args["pid"], {}).values())
        return 200, page(items, call.params)


@route("POST", f"{BASE}/{{pid}}/datasources")
def create_data_source(call: Call) -> tuple[int, dict[str, Any]]:
    """Create a data source from `{"name", "id": <provider id>}`."""
    body = body_object(call)
    name = check_name("name", body.get("name"))
    if body.get("id") not in (None, "", call.args["pid"]):
        raise ApiError(400, "InvalidArgument", "id does not match the provider in the path",
                       [("id", "must be the provider id")])
    return 200, {"value": call.store.create_data_source(call.args["pid"], name)}


@route("GET", f"{BASE}/{{pid}}/datasources/{{dsid}}")
def get_data_source(call: Call) -> tuple[int, dict[str, Any]]:
    """One data source."""
    return 200, {"value": call.store.data_source(call.args["pid"], call.args["dsid"])}


@route("DELETE", f"{BASE}/{{pid}}/datasources/{{dsid}}")
def delete_data_source(call: Call) -> tuple[int, dict[str, Any]]:
    """Delete a data source."""
    call.store.delete_data_source(call.args["pid"], call.args["dsid"])
    return 200, {}
