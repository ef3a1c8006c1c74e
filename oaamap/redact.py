"""Masking of secrets in every text oaamap prints or writes: one module, used everywhere.

Two kinds of masking, both replacing the secret by `***`:

- by **shape** (`mask_text`): the user-info of URLs (also when the password contains `@`, raw or
  percent-encoded), query parameters named like secrets (`?api_key=...&token=...`), libpq keyword
  DSNs (`password=...`), `Authorization`-style header values (`Bearer ...`);
- by **value**: every secret known at run time is remembered in a `Redactor`. `KNOWN` is the
  run's registry: the Veza API key, the values of environment variables whose names look secret
  (`is_secret_name`), the values rendered in credential positions (auth settings, secret headers,
  SQL passwords) and tokens obtained at run time. The CLI passes everything it prints through
  `mask_text`, as the last line of defence.

This module imports nothing from oaamap, so that `errors.py` (and everything else) can use it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "KNOWN",
    "MASK",
    "SECRET_ENV_WORDS",
    "VEZA_KEY_VAR",
    "Redactor",
    "install_log_filter",
    "is_secret_header",
    "is_secret_name",
    "mask_secrets",
    "mask_text",
    "remember",
    "remember_environment",
    "sanitize_url",
    "secret_scope",
]

MASK = "***"
VEZA_KEY_VAR = "VEZA_API_KEY"
# An environment variable whose name contains one of these words (any case) holds a secret.
SECRET_ENV_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL",
                    "PRIVATE")
_SECRET_ENV_NAME = re.compile("|".join(SECRET_ENV_WORDS), re.IGNORECASE)
# Shorter "secrets" (an empty or one-letter value) would mangle every message they occur in.
_MIN_LENGTH = 4
# Values of secret-looking variables the mapping does not use: long enough not to be a flag.
_MIN_SCANNED_LENGTH = 6

_SECRET_KEY = re.compile(
    r"(pass(word)?|passwd|secret|token|api[_-]?key|apikey|authorization|credential|"
    r"private[_-]?key|cookie)",
    re.IGNORECASE,
)
# scheme://USERINFO@host: the user-info runs to the LAST `@` before the path, so that a password
# containing `@` (`https://u:p@ss@host`) is masked whole.
_URL_USERINFO = re.compile(r"(?<=://)[^/?#\s\"'<>]*@")
# A query parameter (or a `name=value` in free text) named like a secret.
_URL_SECRET_PARAM = re.compile(
    r"((?<![^?&;\s\"'(,])(?:[^=&#\s\"'(,/?:]*(?:token|key|secret|password|passwd|pwd|sig|"
    r"signature|code|auth|credential)[^=&#\s\"'(,/?:]*)=)[^&#\s\"',)]*",
    re.IGNORECASE,
)
# libpq / ODBC keyword DSNs: `host=db password=s3cret dbname=x`, `Password='a b';`.
_DSN_PASSWORD = re.compile(
    r"(\b(?:password|passwd|pwd)\s*=\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s;&,)]+)",
    re.IGNORECASE,
)
# `Authorization`-style values: `Bearer eyJ...`, `Basic YWxp...`, `Token token=...` (a value with a
# digit or a symbol, so that prose such as "Basic authentication" is left alone).
_AUTH_VALUE = re.compile(r"\b(Bearer|Basic|Token|bearer)(\s+)(?=[^\s\"',;]*[\d=_./+~-])"
                         r"[^\s\"',;]{6,}")


_SECRET_HEADER = re.compile(
    r"authorization|cookie|token|key|secret|passw|auth|session|credential|signature",
    re.IGNORECASE)


def is_secret_header(name: str) -> bool:
    """True when an HTTP header's name says it carries a credential (`Authorization`, `Cookie`,
    `X-API-Key`, `X-Auth-Token`, `Private-Token`, ...)."""
    return bool(_SECRET_HEADER.search(name))


def is_secret_name(name: str) -> bool:
    """True when an environment variable's name says it holds a secret (KEY, TOKEN, SECRET,
    PASSWORD, PASSWD, PASSPHRASE, CREDENTIAL or PRIVATE, in any case)."""
    return bool(_SECRET_ENV_NAME.search(name))


class Redactor:
    """Replaces every known secret value by `***` in text bound for an error, a log or a file.

    Thread-safe: OAuth tokens are added while fan-out threads run. A redactor other than `KNOWN`
    also adds what it learns to `KNOWN`, so that the CLI masks it too.
    """

    def __init__(self, secrets: Iterable[str] = (), *, registry: bool = False) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._registry = registry
        self.add(*secrets)
        if not registry:
            _ACTIVE.add(self)

    def add(self, *secrets: str, min_length: int = _MIN_LENGTH) -> None:
        """Remember more secret values, and their URL-encoded forms (longest first, so that one
        secret inside another is masked whole)."""
        values = [s for s in secrets if isinstance(s, str) and len(s) >= min_length]
        if not values:
            return
        forms = {f for s in values for f in (s, quote(s, safe=""), quote_plus(s))}
        with self._lock:
            known = set(self._secrets) | {f for f in forms if len(f) >= min_length}
            self._secrets = tuple(sorted(known, key=len, reverse=True))
        if not self._registry:
            KNOWN.add(*values, min_length=min_length)

    @property
    def values(self) -> tuple[str, ...]:
        """The remembered values (and their encoded forms), longest first."""
        return self._secrets

    def restore(self, values: tuple[str, ...] = ()) -> None:
        """Forget every value but `values` (a former `values`)."""
        with self._lock:
            self._secrets = values

    def __call__(self, text: str) -> str:
        """`text` with every known secret replaced by `***`."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


_ACTIVE: weakref.WeakSet[Redactor] = weakref.WeakSet()
KNOWN = Redactor(registry=True)


def remember(*values: str | None) -> None:
    """Add secret values to the run's registry (`KNOWN`); None and short values are ignored."""
    KNOWN.add(*(v for v in values if v))


def remember_environment(environ: Mapping[str, str]) -> None:
    """Remember the Veza API key and the value of every variable whose name looks secret."""
    remember(environ.get(VEZA_KEY_VAR, "").strip() or None)
    KNOWN.add(*(v for k, v in environ.items() if is_secret_name(k)),
              min_length=_MIN_SCANNED_LENGTH)


@contextlib.contextmanager
def secret_scope() -> Iterator[Redactor]:
    """Values remembered inside the block are forgotten after it (one CLI run, one scope)."""
    saved = KNOWN.values
    try:
        yield KNOWN
    finally:
        KNOWN.restore(saved)


def _mask_userinfo(match: re.Match[str]) -> str:
    return f"{MASK}@"


def sanitize_url(url: str) -> str:
    """`url` with the user-info part (`user:password@`) and secret-looking query values masked."""
    url = _URL_USERINFO.sub(_mask_userinfo, url)
    return _URL_SECRET_PARAM.sub(rf"\1{MASK}", url)


def mask_text(text: str) -> str:
    """`text` with every secret masked, by shape (URLs, DSNs, auth header values) and by value
    (every secret in `KNOWN`, plain and URL-encoded)."""
    if not text:
        return text
    text = KNOWN(text)
    text = sanitize_url(text)
    text = _DSN_PASSWORD.sub(rf"\1{MASK}", text)
    text = _AUTH_VALUE.sub(rf"\1\2{MASK}", text)
    return text


def mask_secrets(value: Any) -> Any:
    """A copy of `value` in which values under secret-looking keys are replaced by `***`."""
    if isinstance(value, Mapping):
        return {
            k: (MASK if isinstance(k, str) and _SECRET_KEY.search(k) else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    return value


_THIRD_PARTY_LOGGERS = ("urllib3.connectionpool", "urllib3.response", "requests")


class _SecretFilter(logging.Filter):
    """Rewrites log records of urllib3/requests with secrets masked (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = mask_text(message)
        for redactor in list(_ACTIVE):
            clean = redactor(clean)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = _SecretFilter()


def install_log_filter() -> None:
    """Attach the secret filter to the third-party loggers that print request URLs (idempotent)."""
    for name in _THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
