"""Secret values known at run time (tokens, passwords, keys) and their removal from text."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = ["Redactor"]

# Shorter "secrets" (an empty or one-letter value) would mangle every message they occur in.
_MIN_LENGTH = 4


class Redactor:
    """Replaces every known secret value by `***` in text bound for an error, a log or a file.

    `sanitize_url` masks secrets by the shape of a URL; this masks them by value, so a token echoed
    in a response body or a password in a database error message is hidden too. Thread-safe: OAuth
    tokens are added while fan-out threads run.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.add(*secrets)

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
