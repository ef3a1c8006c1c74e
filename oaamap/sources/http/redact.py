"""Secret values known at run time (tokens, passwords, keys) and their removal from text.

`sanitize_url` masks secrets by the shape of a URL; a `Redactor` masks them by value, so a token
echoed in a response body or an API key under an unusual parameter name is hidden too. A log filter
applies both to urllib3's own debug lines, which print every request line with its query string.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from ...errors import sanitize_url

__all__ = ["Redactor", "install_log_filter"]

# Shorter "secrets" (an empty or one-letter value) would mangle every message they occur in.
_MIN_LENGTH = 4
_ACTIVE: weakref.WeakSet[Redactor] = weakref.WeakSet()
_THIRD_PARTY_LOGGERS = ("urllib3.connectionpool", "urllib3.response", "requests")


class Redactor:
    """Replaces every known secret value by `***` in text bound for an error, a log or a file.

    Thread-safe: OAuth tokens are added while fan-out threads run. Every live redactor also cleans
    the third-party log lines (see `install_log_filter`).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.add(*secrets)
        _ACTIVE.add(self)

    def add(self, *secrets: str) -> None:
        """Remember more secret values, and their URL-encoded forms (longest first, so that one
        secret inside another is masked whole)."""
        forms = {f for s in secrets if s for f in (s, quote(s, safe=""), quote_plus(s))}
        with self._lock:
            known = set(self._secrets) | {f for f in forms if len(f) >= _MIN_LENGTH}
            self._secrets = tuple(sorted(known, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """`text` with every known secret replaced by `***`."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


class _SecretFilter(logging.Filter):
    """Rewrites log records of urllib3/requests with secrets masked (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = sanitize_url(message)
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
