"""`auth: github_app`: a GitHub App's installation token, obtained and refreshed at run time.

The app signs a short JSON Web Token (RS256, `iat` a minute in the past, `exp` nine minutes
ahead, `iss` the app id as a string) with its private key, finds its installation on the
organization (`GET {api}/app/installations`, by account login, case-insensitive) unless the
installation id is given, and exchanges the JWT for an installation token
(`POST {api}/app/installations/{id}/access_tokens`). Every request of the source then carries
`Authorization: Bearer <token>` (REST and GraphQL alike). The token is fetched again five minutes
before it expires (a tenth of its lifetime when that is shorter) and after a 401. The private key,
the JWT and the token are secrets: the run's Redactor masks them everywhere.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path as FilePath
from typing import Any

import requests
import requests.auth
import requests.utils

from ...errors import SourceError, sanitize_url
from .. import PlanContext
from .auth import AuthTools, AuthType, BearerAuth, CachedTokenAuth, register_auth

__all__ = ["GitHubAppAuth", "load_private_key"]

DEFAULT_API = "https://api.github.com"
# GitHub refuses a JWT whose lifetime exceeds ten minutes; a minute of clock drift is allowed for.
JWT_PAST, JWT_AHEAD = 60, 540
REFRESH_MARGIN = 300.0
MAX_INSTALLATION_PAGES = 100
Path = tuple[Any, ...]


class GitHubAppAuth(CachedTokenAuth):
    """The installation token of a GitHub App: fetched when first needed, shared by every
    request of the source (thread-safe), refreshed before it expires or after a 401."""

    def __init__(self, values: Mapping[str, str], tools: AuthTools,
                 clock: Callable[[], float] = time.time) -> None:
        if tools.call_json is None:
            raise SourceError(tools.source, "`auth: github_app` needs an HTTP client")
        super().__init__(clock)
        self._tools, self._call = tools, tools.call_json
        self._api = (values.get("api_url") or DEFAULT_API).strip().rstrip("/")
        self._app_id = values["app_id"].strip()
        self._account = (values.get("org") or "").strip()
        self._installation = (values.get("installation_id") or "").strip() or None
        self._key = load_private_key(values, tools)

    def __repr__(self) -> str:
        return "<GitHubAppAuth ***>"

    def app_jwt(self) -> str:
        """A fresh JWT signed with the app's key (registered as a secret)."""
        import jwt  # PyJWT; imported here so that runs without github_app do not pay for it

        now = int(self._clock())
        token = jwt.encode({"iat": now - JWT_PAST, "exp": now + JWT_AHEAD, "iss": self._app_id},
                           self._key, algorithm="RS256")
        self._tools.redactor.add(token)
        return token

    def _headers(self, app_jwt: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {app_jwt}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28"}

    def _fetch(self) -> None:
        app_jwt = self.app_jwt()
        installation = self._installation or self._find_installation(app_jwt)
        self._installation = installation
        url = f"{self._api}/app/installations/{installation}/access_tokens"
        where = f"POST {sanitize_url(url)} (GitHub App installation token)"
        body, _ = self._call("POST", url, self._headers(app_jwt), where)
        token = body.get("token") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            raise SourceError(self._tools.source, "the installation token answer has no "
                              "`token`", location=where)
        self._tools.redactor.add(token)
        self.fetches += 1
        self._token = token
        self._expires_at = _refresh_at(body.get("expires_at"), self._clock())

    def _find_installation(self, app_jwt: str) -> str:
        """The id of the installation on `org` (the account login, any case)."""
        if not self._account:
            raise SourceError(self._tools.source, "`auth: github_app` needs `org` (the account "
                              "the app is installed on) or `installation_id`")
        url: str | None = f"{self._api}/app/installations?per_page=100"
        logins: list[str] = []
        for _ in range(MAX_INSTALLATION_PAGES):
            if url is None:
                break
            where = f"GET {sanitize_url(url)} (GitHub App installations)"
            body, response = self._call("GET", url, self._headers(app_jwt), where)
            for item in body if isinstance(body, list) else []:
                account = item.get("account") if isinstance(item, Mapping) else None
                login = account.get("login") if isinstance(account, Mapping) else None
                if isinstance(login, str) and login.casefold() == self._account.casefold():
                    return str(item["id"])
                if isinstance(login, str):
                    logins.append(login)
            url = _next_link(response.headers.get("Link"))
        shown = ", ".join(f"`{name}`" for name in logins[:20]) or "none"
        raise SourceError(self._tools.source, f"the GitHub App {self._app_id} is not installed "
                          f"on `{self._account}` (its installations: {shown}); install it there "
                          "or set `installation_id`", location=f"GET {self._api}/app/installations")


def _next_link(header: str | None) -> str | None:
    for link in requests.utils.parse_header_links(header or ""):
        if link.get("rel") == "next" and link.get("url"):
            return link["url"]
    return None


def _refresh_at(expires_at: Any, now: float) -> float | None:
    """When to fetch a new token: five minutes before `expires_at` (ISO 8601), or a tenth of the
    lifetime before it when the token lives less than 50 minutes."""
    if not isinstance(expires_at, str):
        return None
    try:
        expiry = datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    lifetime = max(0.0, expiry - now)
    return expiry - min(REFRESH_MARGIN, lifetime / 10)


def load_private_key(values: Mapping[str, str], tools: AuthTools) -> Any:
    """The app's RSA private key from `private_key` (PEM, or base64 of the PEM, as an env var
    holds it) or `private_key_file` (a PEM file); every form of it is registered as a secret.

    Raises:
        SourceError: no key, an unreadable file, or not an RSA private key in PEM.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    text, origin = _key_text(values, tools)
    tools.redactor.add(text, *(line for line in text.splitlines() if len(line) >= 16))
    pem = _pem(text)
    if pem is None:
        raise SourceError(tools.source, f"`auth: github_app`: {origin} is neither a PEM private "
                          "key (-----BEGIN ... PRIVATE KEY-----) nor the base64 of one")
    tools.redactor.add(pem, *(line for line in pem.splitlines() if len(line) >= 16))
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as e:
        raise SourceError(tools.source, f"`auth: github_app`: {origin} cannot be loaded as an "
                          f"unencrypted PEM private key ({type(e).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SourceError(tools.source, f"`auth: github_app`: {origin} is not an RSA key "
                          "(GitHub Apps sign with RS256)")
    return key


def _key_text(values: Mapping[str, str], tools: AuthTools) -> tuple[str, str]:
    if values.get("private_key", "").strip():
        return values["private_key"].strip(), "`private_key`"
    if not values.get("private_key_file", "").strip():
        raise SourceError(tools.source, "`auth: github_app`: `private_key` and "
                          "`private_key_file` are both empty (and so is `token`); set the "
                          "environment variable or var they come from")
    path = FilePath(values.get("private_key_file", "").strip())
    try:
        return path.read_text("utf-8").strip(), f"`private_key_file` {path}"
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(tools.source, f"`auth: github_app`: cannot read `private_key_file` "
                          f"{path}: {getattr(e, 'strerror', None) or e}") from None


def _pem(text: str) -> str | None:
    # An env var often holds the PEM with literal `\n`, or base64 of the whole PEM.
    text = text.replace("\\n", "\n").strip()
    if text.startswith("-----BEGIN"):
        return text + "\n"
    try:
        decoded = base64.b64decode("".join(text.split()), validate=True).decode("utf-8").strip()
    except (binascii.Error, ValueError):
        return None
    return decoded + "\n" if decoded.startswith("-----BEGIN") else None


def _check(config: Mapping[str, Any], ctx: PlanContext, path: Path) -> bool:
    ok = True
    if "private_key" not in config and "private_key_file" not in config:
        ctx.error("`auth: github_app` needs `private_key` (PEM or base64 PEM, e.g. from an "
                  "environment variable) or `private_key_file` (a PEM file)", path)
        ok = False
    if "org" not in config and "installation_id" not in config:
        ctx.error("`auth: github_app` needs `org` (the account the app is installed on) or "
                  "`installation_id`", path)
        ok = False
    return ok


def _build(values: Mapping[str, str], tools: AuthTools) -> requests.auth.AuthBase:
    """A given `token` (a personal access token, say) is sent as is; else the app's."""
    token = (values.get("token") or "").strip()
    if token:
        return BearerAuth(token)
    if not (values.get("app_id") or "").strip():
        raise SourceError(tools.source, "`auth: github_app`: `app_id` is empty (and so is "
                          "`token`); set the environment variable or var it comes from")
    return GitHubAppAuth(values, tools)


register_auth("github_app", AuthType(
    keys=("app_id", "private_key", "private_key_file", "installation_id", "org", "api_url",
          "token"),
    required=(), secrets=("private_key", "token"), check=_check, paths=("private_key_file",),
    build=_build))
