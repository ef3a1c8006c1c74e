"""Authentication of the `http` source: the AUTH_TYPES registry and the built-in kinds.

An auth kind declares its keys (which are Jinja templates over `env` and `vars`), which of them are
secrets, and how to build a `requests.auth.AuthBase` from their rendered values. Secrets are handed
to the run's `Redactor` so they never reach a message or a log. A kind whose credential can go stale
(`oauth2_client_credentials`) also implements `Refreshable`: the client asks it to refresh once when
a request comes back 401.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, Protocol, runtime_checkable

import requests
import requests.auth

from ...errors import SourceError
from ...templating import Template
from .. import FALSE_TEXTS, PlanContext
from ..checks import check_keys, expect_one_key, expect_text
from ..files import resolve
from .redact import Redactor
from .request import Response

__all__ = [
    "AUTH_TYPES",
    "ApiKeyAuth",
    "AuthChoice",
    "AuthSpec",
    "AuthTools",
    "AuthType",
    "BearerAuth",
    "OAuth2ClientCredentials",
    "Refreshable",
    "plan_auth",
    "register_auth",
]

Path = tuple[Any, ...]
TokenPoster = Callable[[str, Mapping[str, str], "tuple[str, str] | None"], Any]
# (method, url, headers, where) -> (decoded JSON body, response): an auth flow's own API calls.
JsonCaller = Callable[[str, str, Mapping[str, str], str], "tuple[Any, Response]"]


@dataclass(frozen=True)
class AuthTools:
    """What an auth builder may use at run time.

    Attributes:
        source: the source's name, for errors.
        redactor: where secrets obtained at run time (OAuth tokens) are registered.
        post_token: POSTs a form to a token endpoint with the client's retries and timeouts and
            returns the decoded JSON; raises SourceError on failure.
        call_json: sends a bodiless request with headers (e.g. a JWT) with the same retries and
            timeouts and returns the decoded JSON and the response; raises SourceError.
    """

    source: str
    redactor: Redactor
    post_token: TokenPoster
    call_json: JsonCaller | None = None


@runtime_checkable
class Refreshable(Protocol):
    """An auth whose credential may be refreshed after a 401."""

    def refresh(self, request: requests.PreparedRequest) -> bool:
        """Drop the credential `request` used; True when a retry may succeed."""
        ...


@dataclass(frozen=True)
class AuthType:
    """An auth kind.

    Attributes:
        keys: the keys it accepts.
        required: the keys it needs.
        secrets: the keys whose values are secrets (masked everywhere).
        build: makes the AuthBase from the rendered values.
        scalar_key: the key a bare string stands for (`bearer: TOKEN` is `bearer: {token: TOKEN}`).
        check: extra plan-time checks of the raw mapping; returns False on a mistake.
        paths: the keys that are file paths (resolved against the mapping file's folder).
    """

    keys: tuple[str, ...]
    required: tuple[str, ...]
    secrets: tuple[str, ...]
    build: Callable[[Mapping[str, str], AuthTools], requests.auth.AuthBase]
    scalar_key: str | None = None
    check: Callable[[Mapping[str, Any], PlanContext, Path], bool] | None = None
    paths: tuple[str, ...] = ()


AUTH_TYPES: dict[str, AuthType] = {}


def register_auth(name: str, auth_type: AuthType) -> None:
    """Register an auth kind under the key that selects it in `auth:`.

    Raises:
        ValueError: the name is taken, or the kind's required/secret keys are not among its keys.
    """
    if name in AUTH_TYPES:
        raise ValueError(f"auth kind `{name}` is already registered")
    unknown = (set(auth_type.required) | set(auth_type.secrets)) - set(auth_type.keys)
    if unknown:
        raise ValueError(f"auth kind `{name}`: keys {sorted(unknown)} are not declared")
    AUTH_TYPES[name] = auth_type


@dataclass(frozen=True)
class AuthSpec:
    """A planned `auth:` block: the kind and its compiled templates."""

    kind: str
    values: Mapping[str, Template]
    base_dir: FilePath | None = None

    def build(self, context: Mapping[str, Any], tools: AuthTools) -> requests.auth.AuthBase:
        """Render the values, register the secrets, build the AuthBase.

        Raises:
            SourceError: a required value renders empty.
            MappingError: a template uses an undefined variable.
        """
        auth_type = AUTH_TYPES[self.kind]
        rendered = {key: template.render(context) for key, template in self.values.items()}
        for key in auth_type.paths:
            if rendered.get(key, "").strip() and self.base_dir is not None:
                rendered[key] = str(resolve(self.base_dir, rendered[key].strip()))
        tools.redactor.add(*(rendered[k] for k in auth_type.secrets if k in rendered))
        for key in auth_type.required:
            if not rendered.get(key, "").strip():
                raise SourceError(tools.source, f"`auth: {self.kind}`: `{key}` is empty; "
                                  "set the environment variable or var it comes from")
        return auth_type.build(rendered, tools)


@dataclass(frozen=True)
class AuthChoice:
    """`auth:` as a list of alternatives: the first whose `when` renders true is used.

    Attributes:
        alternatives: (condition or None for "always", the planned auth) in file order.
    """

    alternatives: tuple[tuple[Template | None, AuthSpec], ...]

    def build(self, context: Mapping[str, Any], tools: AuthTools) -> requests.auth.AuthBase:
        """Build the first alternative whose condition holds.

        Raises:
            SourceError: no condition holds.
        """
        for when, spec in self.alternatives:
            if when is None or when.render(context).strip().lower() not in FALSE_TEXTS:
                return spec.build(context, tools)
        conditions = ", ".join(f"`{w.text}`" for w, _ in self.alternatives if w is not None)
        raise SourceError(tools.source, f"`auth`: no alternative applies ({conditions} are all "
                          "false); set the environment variables of one of them")


def plan_auth(value: Any, ctx: PlanContext, path: Path) -> AuthSpec | AuthChoice | None:
    """Check an `auth:` block (one kind, or a list of alternatives with `when:`) and compile
    its templates (over `env` and `vars` only)."""
    if isinstance(value, list):
        return _plan_choice(value, ctx, path)
    return _plan_one(value, ctx, path)


def _plan_choice(value: list[Any], ctx: PlanContext, path: Path) -> AuthChoice | None:
    alternatives: list[tuple[Template | None, AuthSpec]] = []
    for index, entry in enumerate(value):
        at = (*path, index)
        if not isinstance(entry, Mapping):
            ctx.error("an `auth` alternative must be a mapping `{when: COND, KIND: {...}}`", at)
            return None
        when = None
        if "when" in entry:
            raw = entry["when"]
            text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw).strip()
            if "{{" not in text and "{%" not in text:
                text = f"{{{{ {text} }}}}"
            # a credential position: the condition may test a secret's presence
            when = ctx.template(text, (*at, "when"), credential=True)
        spec = _plan_one({k: v for k, v in entry.items() if k != "when"}, ctx, at)
        if spec is None:
            return None
        alternatives.append((when, spec))
    if not alternatives:
        ctx.error("`auth` needs at least one alternative", path)
        return None
    return AuthChoice(tuple(alternatives))


def _plan_one(value: Any, ctx: PlanContext, path: Path) -> AuthSpec | None:
    chosen = expect_one_key(ctx, value, path, "auth", AUTH_TYPES)
    if chosen is None:
        return None
    kind, config = chosen
    auth_type, at = AUTH_TYPES[kind], (*path, kind)
    if auth_type.scalar_key is not None and not isinstance(config, Mapping):
        config = {auth_type.scalar_key: config}
    if not isinstance(config, Mapping):
        ctx.error(f"`auth: {kind}` must be a mapping with {', '.join(auth_type.required)}", at)
        return None
    if not check_keys(ctx, config, at, auth_type.keys, auth_type.required, f"`auth: {kind}`"):
        return None
    if auth_type.check is not None and not auth_type.check(config, ctx, at):
        return None
    values: dict[str, Template] = {}
    for key, raw in config.items():
        key_path = at if auth_type.scalar_key == key and len(config) == 1 else (*at, key)
        text = expect_text(ctx, raw, key_path, f"`{key}` of `auth: {kind}`")
        if text is None:
            return None
        values[key] = ctx.template(text, key_path, credential=True)
    return AuthSpec(kind, values, ctx.base_dir)


# --- the built-in kinds ---------------------------------------------------------------------------

class BearerAuth(requests.auth.AuthBase):
    """`Authorization: Bearer TOKEN`."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "<BearerAuth ***>"


class ApiKeyAuth(requests.auth.AuthBase):
    """An API key in a header (`X-API-Key: KEY`, `Authorization: Token token=KEY`) or a query
    parameter (`?api_key=KEY`)."""

    def __init__(self, value: str, header: str | None = None, param: str | None = None) -> None:
        self._value, self._header, self._param = value, header, param

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._header is not None:
            r.headers[self._header] = self._value
        else:
            r.prepare_url(r.url, {self._param: self._value})
        return r


class CachedTokenAuth(requests.auth.AuthBase):
    """A bearer token fetched when first needed (`_fetch` sets `_token` and `_expires_at`),
    shared by every request of the source (thread-safe), fetched again once `_expires_at` has
    passed or after a 401 (`refresh`)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: float | None = None
        self.fetches = 0

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token()}"
        return r

    def token(self) -> str:
        """The current token, fetched first when there is none or it is about to expire."""
        with self._lock:
            expired = self._expires_at is not None and self._clock() >= self._expires_at
            if self._token is None or expired:
                self._fetch()
            assert self._token is not None
            return self._token

    def refresh(self, request: requests.PreparedRequest) -> bool:
        """Forget the token `request` used (unless another thread already replaced it)."""
        used = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        with self._lock:
            if used == self._token:
                self._token = None
        return True

    def _fetch(self) -> None:
        raise NotImplementedError


class OAuth2ClientCredentials(CachedTokenAuth):
    """OAuth 2.0 client credentials (RFC 6749 section 4.4): one token, fetched when first needed,
    shared by every request of the source (thread-safe), refreshed shortly before `expires_in`
    runs out or after a 401.

    The client authenticates in the form body by default (`client_auth: body`), or with HTTP
    Basic (`client_auth: basic`).
    """

    def __init__(self, values: Mapping[str, str], tools: AuthTools,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self._values, self._tools = dict(values), tools

    def _fetch(self) -> None:
        values = self._values
        form = {"grant_type": "client_credentials"}
        if values.get("scope"):
            form["scope"] = values["scope"]
        basic = None
        if values.get("client_auth", "body") == "basic":
            basic = (values["client_id"], values["client_secret"])
        else:
            form.update(client_id=values["client_id"], client_secret=values["client_secret"])
        body = self._tools.post_token(values["token_url"], form, basic)
        token = body.get("access_token") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            raise SourceError(self._tools.source, "the token endpoint's answer has no "
                              "`access_token`", location=f"POST {values['token_url']}")
        self._tools.redactor.add(token)
        self.fetches += 1
        self._token = token
        self._expires_at = _expiry(body.get("expires_in"), self._clock())


def _expiry(expires_in: Any, now: float) -> float | None:
    # Refresh a little early (a tenth of the lifetime, at most 60 s) so that no request leaves
    # with a token that expires in flight.
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return None
    return now + seconds - min(60.0, seconds / 10)


def _check_api_key(config: Mapping[str, Any], ctx: PlanContext, path: Path) -> bool:
    if ("header" in config) == ("param" in config):
        ctx.error("`auth: api_key` needs exactly one of `header` (a header name) or `param` "
                  "(a query parameter name)", path)
        return False
    return True


def _check_client_auth(config: Mapping[str, Any], ctx: PlanContext, path: Path) -> bool:
    if config.get("client_auth", "body") not in ("body", "basic"):
        ctx.error(f"`client_auth` must be `body` or `basic`, got `{config['client_auth']}`",
                  (*path, "client_auth"))
        return False
    return True


register_auth("bearer", AuthType(
    keys=("token",), required=("token",), secrets=("token",), scalar_key="token",
    build=lambda v, _: BearerAuth(v["token"])))
register_auth("basic", AuthType(
    keys=("username", "password"), required=("username", "password"), secrets=("password",),
    build=lambda v, _: requests.auth.HTTPBasicAuth(v["username"], v["password"])))
register_auth("api_key", AuthType(
    keys=("header", "param", "value"), required=("value",), secrets=("value",),
    check=_check_api_key,
    build=lambda v, _: ApiKeyAuth(v["value"], v.get("header"), v.get("param"))))
register_auth("oauth2_client_credentials", AuthType(
    keys=("token_url", "client_id", "client_secret", "scope", "client_auth"),
    required=("token_url", "client_id", "client_secret"), secrets=("client_secret",),
    check=_check_client_auth, build=OAuth2ClientCredentials))
