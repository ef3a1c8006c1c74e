"""Bounds on untrusted input: mapping files, data files, HTTP answers and the expressions over them.

Every limit is a named constant here, documented in docs/language.md ("Limits on untrusted input"),
so a hostile or broken input ends in a located error instead of a hang, a RecursionError or a
MemoryError. The JSON depth check runs before Python's recursive decoder ever sees the text.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_EXPRESSION_DEPTH",
    "MAX_JSON_DEPTH",
    "MAX_MAPPING_BYTES",
    "MAX_TEXT_LENGTH",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "REGEX_TIMEOUT",
    "DepthError",
    "json_depth",
    "load_json",
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
REGEX_TIMEOUT = 1.0
"""Seconds one regex_match/regex_replace call may run before it is abandoned."""
MAX_BODY_BYTES = 100 * 1024 * 1024
"""Largest decoded HTTP response body (after gzip/deflate); a source may set `max_body_bytes`."""


class DepthError(ValueError):
    """A document nested deeper than its limit (a ValueError, as a malformed document is)."""

    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels of arrays/objects "
                         f"(at least {depth}); refusing to read it")
        self.depth = depth
        self.limit = limit


# Only brackets, quotes and backslashes decide the nesting; the rest is removed at C speed.
_NOISE_TEXT = re.compile(r'[^\[\]{}"\\]+')
_NOISE_BYTES = re.compile(rb'[^\[\]{}"\\]+')
_ESCAPE_TEXT = re.compile(r"\\.", re.DOTALL)
_ESCAPE_BYTES = re.compile(rb"\\.", re.DOTALL)
_STRING_TEXT = re.compile(r'"[^"]*"?')
_STRING_BYTES = re.compile(rb'"[^"]*"?')
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1, ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(text: str | bytes | bytearray) -> int:
    """The deepest nesting of arrays and objects in JSON `text`, without parsing it.

    Brackets inside strings are ignored; malformed text gives a number the parser then refuses.

    Example:
        >>> json_depth('{"a": [1, {"b": "]]"}]}')
        3
    """
    if isinstance(text, str):
        skeleton: Any = _STRING_TEXT.sub("", _ESCAPE_TEXT.sub("", _NOISE_TEXT.sub("", text)))
    else:
        skeleton = _STRING_BYTES.sub(b"", _ESCAPE_BYTES.sub(b"", _NOISE_BYTES.sub(b"", text)))
    if not skeleton:
        return 0
    return max(0, max(accumulate(_STEP.get(c, 0) for c in skeleton)))


def load_json(text: str | bytes | bytearray, limit: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads(text)`, refusing documents nested deeper than `limit` before decoding them.

    Raises:
        DepthError: the document is nested too deeply.
        ValueError: the text is not JSON (json.JSONDecodeError, UnicodeDecodeError).
    """
    depth = json_depth(text)
    if depth > limit:
        raise DepthError(depth, limit)
    return json.loads(text)
