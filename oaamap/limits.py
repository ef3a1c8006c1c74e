"""Bounds on untrusted input: mapping files, data files, HTTP answers and the expressions over them.

Every limit is a named constant here, documented in docs/language.md ("Limits on untrusted input"),
so a hostile or broken input ends in a located error instead of a hang, a RecursionError or a
MemoryError. The JSON depth check runs before Python's recursive decoder ever sees the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_EXPRESSION_DEPTH",
    "MAX_JSON_DEPTH",
    "MAX_MAPPING_BYTES",
    "MAX_RANGE_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "REGEX_GIVE_UP",
    "REGEX_TIMEOUT",
    "DepthError",
    "json_too_deep",
    "load_json",
    "too_deep_at",
]

MAX_MAPPING_BYTES = 5 * 1024 * 1024
"""Largest mapping file read (bytes)."""
MAX_YAML_DEPTH = 100
"""Deepest nesting of mappings and lists in a mapping file."""
MAX_YAML_NODES = 1_000_000
"""Most nodes a mapping file may expand to, each alias counting the whole node it repeats."""
MAX_JSON_DEPTH = 256
"""Deepest nesting of arrays and objects in a JSON document (file, line, HTTP body, column)."""
MAX_EXPRESSION_DEPTH = 100
"""Deepest nesting of a JMESPath expression (parentheses, brackets, chained fields)."""
MAX_TEXT_LENGTH = 10_000_000
"""Longest string a function (replace, regex_replace, concat, zero_pad, join) may produce."""
MAX_RANGE_LENGTH = 100_000
"""Most elements `range()` may produce."""
REGEX_TIMEOUT = 1.0
"""Seconds one regex_match/regex_replace call may run before it is abandoned."""
REGEX_GIVE_UP = 3
"""Timeouts of one pattern in a run after which it is no longer run (a data error at once)."""
MAX_BODY_BYTES = 100 * 1024 * 1024
"""Largest decoded HTTP response body (after gzip/deflate); a source may set `max_body_bytes`."""


class DepthError(ValueError):
    """A document nested deeper than its limit (a ValueError, as a malformed document is)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels of arrays/objects; refusing to "
                         "read it")
        self.limit = limit


# Only brackets and quotes decide the nesting. Everything runs in C (translate, replace, split),
# never a Python loop over the characters of a large document.
_NOISE = bytes(c for c in range(256) if c not in b'[]{}"')
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_CURLY_AS_SQUARE = bytes.maketrans(b"{}", b"[]")


def _skeleton(text: str | bytes | bytearray) -> bytes:
    """The brackets of `text` outside strings, `{}` written as `[]`."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if b"\\" in raw:
        raw = _ESCAPE.sub(b"", raw)  # first: an escaped quote must not end its string
    marks = raw.translate(None, _NOISE)
    # When no string holds a bracket, every string is now `""`, and removing those pairs leaves
    # no quote; otherwise the first string holding one keeps its opening quote, and the exact
    # (slower) split by quotes is used.
    outside = marks.replace(b'""', b"")
    if b'"' in outside:
        outside = b"".join(marks.split(b'"')[0::2])
    return outside.translate(_CURLY_AS_SQUARE)


def json_too_deep(text: str | bytes | bytearray, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when JSON `text` nests arrays and objects deeper than `limit`, found without parsing.

    Each pass removes the innermost bracket pairs, so a document of depth d is empty after d
    passes; one still having a pair after `limit` passes is deeper. Malformed text may give
    either answer: the parser refuses it anyway.

    Example:
        >>> json_too_deep('{"a": [1, {"b": "]]"}]}', 2), json_too_deep('[[[]]]', 3)
        (True, False)
    """
    skeleton = _skeleton(text)
    for _ in range(limit):
        reduced = skeleton.replace(b"[]", b"")
        if len(reduced) == len(skeleton):
            return False
        skeleton = reduced
    return b"[]" in skeleton


def load_json(text: str | bytes | bytearray, limit: int = MAX_JSON_DEPTH, **options: Any) -> Any:
    """`json.loads(text, **options)`, refusing documents nested deeper than `limit` before
    decoding them.

    Raises:
        DepthError: the document is nested too deeply.
        ValueError: the text is not JSON (json.JSONDecodeError, UnicodeDecodeError).
    """
    if json_too_deep(text, limit):
        raise DepthError(limit)
    try:
        return json.loads(text, **options)
    except RecursionError:  # cannot happen after the check; kept as the last line
        raise DepthError(limit) from None


_OPEN, _CLOSE = frozenset("([{"), frozenset(")]}")


def too_deep_at(text: str, limit: int) -> int | None:
    """Where the bracket nesting of an expression first goes past `limit` (quoted strings
    skipped), or None. Checked before parsing: JMESPath's and Jinja's parsers recurse once per
    level, and so does Python's compiler on a compiled template.

    Example:
        >>> too_deep_at("f(g(h(x)))", 2), too_deep_at("f(')))(((')", 1)
        (5, None)
    """
    depth = 0
    quote = ""
    escaped = False
    for i, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in _OPEN:
            depth += 1
            if depth > limit:
                return i
        elif char in _CLOSE:
            depth -= 1
    return None
