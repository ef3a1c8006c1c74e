"""JMESPath for record fields: compile once, the added functions in one registry, a fast evaluator.

`compile_expression` parses an expression, checks every function name and argument count (jmespath
itself only checks them at search time) and turns the common node kinds (field references,
sub-expressions, literals, multi-selects, and/or/not, function calls) into Python closures. A field
reference then costs a dict lookup instead of a tree walk; every other node kind is evaluated by
jmespath's own interpreter, so semantics stay exactly jmespath's.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.functions
import jmespath.visitor
import regex
from jmespath.functions import signature

from .limits import (
    MAX_EXPRESSION_DEPTH,
    MAX_RANGE_LENGTH,
    MAX_TEXT_LENGTH,
    REGEX_GIVE_UP,
    REGEX_TIMEOUT,
    DepthError,
    load_json,
    too_deep_at,
)

__all__ = [
    "Expression",
    "ExpressionError",
    "FunctionError",
    "OaamapFunctions",
    "compile_expression",
    "key_values",
    "parse_key_path",
    "to_rfc3339",
]

Evaluator = Callable[[Any], Any]

_TRUE = frozenset({"true", "t", "yes", "y", "1", "active", "enabled"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "inactive", "disabled"})
_BOOL_WORDS = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ExpressionError(ValueError):
    """A JMESPath expression that cannot be compiled; `position` is 0-based within the text."""

    def __init__(self, message: str, position: int, length: int = 1, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.position = position
        self.length = length
        self.hint = hint


class FunctionError(jmespath.exceptions.JMESPathError):
    """An added function refused its input (e.g. `to_bool('maybe')`)."""


def _format_datetime(dt: datetime) -> str:
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    offset = dt.utcoffset()
    if offset is None or offset.total_seconds() == 0:
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _from_epoch(number: float) -> str:
    seconds = number / 1000 if abs(number) >= 1e11 else number
    return _format_datetime(datetime.fromtimestamp(seconds, tz=timezone.utc))


def to_rfc3339(value: Any, fmt: str | None = None) -> str | None:
    """Convert a date or time to RFC 3339; None for None or ''.

    RFC 3339 input is returned unchanged; `fmt` is a strftime format; numbers (and strings of nine
    or more digits) are epoch seconds, or milliseconds when large; a date alone is midnight UTC; a
    time without an offset is UTC; a given offset is kept.

        Raises:
            FunctionError: the value is not a recognisable date or time.

    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FunctionError(f"to_rfc3339: `{value}` is not a date or time")
    if isinstance(value, int | float):
        return _from_epoch(value)
    text = str(value).strip()
    try:
        if fmt is not None:
            return _format_datetime(datetime.strptime(text, fmt))
        if RFC3339.match(text):
            return text
        if _DATE_ONLY.match(text):
            return text + "T00:00:00Z"
        if text.isdigit():
            if len(text) == 8:
                return _format_datetime(datetime.strptime(text, "%Y%m%d"))
            if len(text) >= 9:
                return _from_epoch(int(text))
        return _format_datetime(datetime.fromisoformat(text.replace("z", "Z")))
    except (ValueError, OverflowError, OSError) as e:
        wanted = f"format `{fmt}`" if fmt else "an ISO 8601 date or time, or epoch seconds"
        raise FunctionError(f"to_rfc3339: cannot read `{text}` as {wanted}") from e


_JSON_TYPES = {str: "string", list: "array", dict: "object", int: "number", float: "number",
               bool: "boolean", type(None): "null"}


def _is_false(value: Any) -> bool:
    # jmespath's own falsiness: 0 is true, empty containers and strings are false.
    if value is None or value is False:
        return True
    kind = type(value)
    if kind is str or kind is list or kind is dict:
        return not value
    return bool(value == "" or value == [] or value == {})


LookupProvider = Callable[[str, str], Mapping[str, list[dict[str, Any]]]]


class OaamapFunctions(jmespath.functions.Functions):
    """The standard JMESPath functions plus oaamap's. Each added function returns null for null.

    `lookup`/`lookup_all` read another source through `bind_lookups()`, which the pipeline calls
    once the sources are read.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lookups: LookupProvider | None = None
        self._vars: Mapping[str, Any] | None = None
        self._tables: dict[str, dict[str, Any]] = {}
        # Timeouts per pattern: after a few, the pattern is not run again (a hostile data set
        # must not cost REGEX_TIMEOUT per row).
        self._regex_timeouts: dict[str, int] = {}

    def _validate_arguments(self, args: list[Any], sig: list[dict[str, Any]], name: str) -> None:
        # jmespath has variadic but not optional parameters; oaamap adds "optional" for to_rfc3339.
        if sig and sig[-1].get("optional"):
            required = sum(1 for s in sig if not s.get("optional"))
            if not required <= len(args) <= len(sig):
                raise jmespath.exceptions.ArityError(required, len(args), name)
            self._type_check(args, sig[: len(args)], name)
            return
        super()._validate_arguments(args, sig, name)

    def bind_vars(self, values: Mapping[str, Any]) -> None:
        """Give `var(name)` the rendered `vars:` (with `--var` overrides)."""
        self._vars = values

    def bind_tables(self, tables: Mapping[str, Mapping[Any, Any]]) -> None:
        """Give `table()` the mapping's `tables:` (keys as text); bound before any expression is
        compiled, so that a call naming an undeclared table is a mapping error."""
        self._tables = {str(name): {_text(k): v for k, v in rows.items()}
                        for name, rows in tables.items()}

    @property
    def table_names(self) -> frozenset[str]:
        """The names of the bound `tables:`."""
        return frozenset(self._tables)

    @signature({"types": ["string"]}, {"types": []}, {"types": [], "optional": True})
    def _func_table(self, name: str, key: Any, default: Any = None) -> Any:
        rows = self._tables.get(name)
        if rows is None:
            raise FunctionError(f"table: no table `{name}` is declared under `tables:`")
        if key is None:
            return default
        found = rows.get(_text(key), _MISSING)
        return default if found is _MISSING else found

    @signature({"types": ["string", "number", "null"]}, {"types": ["number"]})
    def _func_truncate(self, s: Any, n: float) -> str | None:
        if s is None:
            return None
        return _text(s)[:_length("truncate", n)]

    @signature({"types": ["string", "number", "null"]}, {"types": ["number"]})
    def _func_truncate_bytes(self, s: Any, n: float) -> str | None:
        if s is None:
            return None
        text = _text(s)
        limit = _length("truncate_bytes", n)
        if len(text) * 4 <= limit:  # no UTF-8 character is longer than 4 bytes
            return text
        try:
            encoded = text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise FunctionError(f"truncate_bytes: the value is not valid Unicode ({e.reason})"
                                ) from None
        # Cut at the limit and drop a character the cut split (its bytes are incomplete).
        return encoded[:limit].decode("utf-8", errors="ignore") if len(encoded) > limit \
            else text

    def bind_lookups(self, provider: LookupProvider) -> None:
        """Give `lookup()` access to indexes `(source, key_field) -> {lower(key): [records]}`."""
        self._lookups = provider

    @signature({"types": ["string", "null"]}, {"types": ["string"]})
    def _func_split(self, s: str | None, sep: str) -> list[str] | None:
        if s is None:
            return None
        return [part.strip() for part in s.split(sep) if part.strip()]

    @signature({"types": ["string", "null"]})
    def _func_lower(self, s: str | None) -> str | None:
        return None if s is None else s.lower()

    @signature({"types": ["string", "null"]})
    def _func_upper(self, s: str | None) -> str | None:
        return None if s is None else s.upper()

    @signature({"types": ["string", "null"]})
    def _func_trim(self, s: str | None) -> str | None:
        return None if s is None else s.strip()

    @signature({"types": ["string", "null"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_replace(self, s: str | None, old: str, new: str) -> str | None:
        if s is None:
            return None
        count = s.count(old)  # '' occurs len(s) + 1 times
        _check_length("replace", len(s) + count * (len(new) - len(old)))
        return s.replace(old, new)

    @signature({"types": ["string", "null"]}, {"types": ["string"]})
    def _func_regex_match(self, s: str | None, pattern: str) -> bool | None:
        if s is None:
            return None
        compiled = self._pattern("regex_match", pattern)
        try:
            return compiled.search(s, timeout=REGEX_TIMEOUT) is not None
        except TimeoutError:
            raise self._timed_out("regex_match", pattern, s) from None

    @signature({"types": ["string", "null"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_regex_replace(self, s: str | None, pattern: str, repl: str) -> str | None:
        if s is None:
            return None
        compiled = self._pattern("regex_replace", pattern)
        parts: list[str] = []
        size, end = 0, 0
        try:
            # Match by match, so neither the run time nor the result's size is unbounded.
            for match in compiled.finditer(s, timeout=REGEX_TIMEOUT):
                piece = match.expand(repl)
                size += match.start() - end + len(piece)
                _check_length("regex_replace", size)
                parts += (s[end:match.start()], piece)
                end = match.end()
        except TimeoutError:
            raise self._timed_out("regex_replace", pattern, s) from None
        except (regex.error, IndexError) as e:
            raise FunctionError(f"regex_replace: invalid replacement `{repl}`: {e}") from e
        _check_length("regex_replace", size + len(s) - end)
        parts.append(s[end:])
        return "".join(parts)

    def _pattern(self, function: str, pattern: str) -> regex.Pattern[str]:
        count = self._regex_timeouts.get(pattern, 0)
        if count >= REGEX_GIVE_UP:
            raise FunctionError(f"{function}: the pattern `{pattern}` is not run any more: it ran "
                                f"out of time on {count} earlier values")
        return _regex(pattern)

    def _timed_out(self, function: str, pattern: str, value: str) -> FunctionError:
        self._regex_timeouts[pattern] = self._regex_timeouts.get(pattern, 0) + 1
        return FunctionError(
            f"{function}: the pattern `{pattern}` ran longer than {REGEX_TIMEOUT:g} s on a "
            f"{len(value):,}-character value (catastrophic backtracking? simplify the pattern, "
            "e.g. avoid nested or overlapping repetitions such as `(a|aa)+`)")

    @signature({"types": [], "variadic": True})
    def _func_concat(self, *args: Any) -> str | None:
        parts = [_text(a) for a in args if a is not None]
        _check_length("concat", sum(map(len, parts)))
        return "".join(parts) if parts else None

    @signature({"types": []})
    def _func_to_bool(self, v: Any) -> bool | None:
        if v.__class__ is str:
            known = _BOOL_WORDS.get(v)  # the common spellings as they are, without strip/lower
            if known is not None:
                return known
        if v is None or v == "":
            return None
        if isinstance(v, bool):
            return v
        if isinstance(v, int | float) and v in (0, 1):
            return bool(v)
        word = str(v).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        if word == "":
            return None
        raise FunctionError(
            f"to_bool: `{v}` is not a boolean (use one of true/false, yes/no, t/f, y/n, 1/0, "
            "active/inactive, enabled/disabled)"
        )

    @signature({"types": []}, {"types": ["string", "null"], "optional": True})
    def _func_to_rfc3339(self, v: Any, fmt: str | None = None) -> str | None:
        return to_rfc3339(v, fmt or None)

    @signature({"types": ["string"]})
    def _func_var(self, name: str) -> Any:
        if self._vars is None:
            raise FunctionError("var() is not available before the vars are rendered")
        return self._vars.get(name)

    @signature({"types": ["string", "number", "null"]}, {"types": ["number"]})
    def _func_zero_pad(self, s: Any, n: int) -> str | None:
        if s is None:
            return None
        _check_length("zero_pad", int(n))
        return _text(s).zfill(int(n))

    @signature({"types": ["number"]}, {"types": ["number"], "optional": True},
               {"types": ["number"], "optional": True})
    def _func_range(self, first: float, stop: float | None = None,
                    step: float | None = None) -> list[int]:
        start, end = (0, first) if stop is None else (first, stop)
        numbers = [start, end, 1 if step is None else step]
        if any(isinstance(n, float) and not n.is_integer() for n in numbers):
            raise FunctionError(f"range: the arguments must be whole numbers, got {numbers}")
        start, end, by = (int(n) for n in numbers)
        if by == 0:
            raise FunctionError("range: the step must not be 0")
        produced = range(start, end, by)
        if len(produced) > MAX_RANGE_LENGTH:
            raise FunctionError(f"range: {len(produced):,} elements, more than the "
                                f"{MAX_RANGE_LENGTH:,} allowed")
        return list(produced)

    @signature({"types": ["array", "null"]})
    def _func_unique(self, items: list[Any] | None) -> list[Any] | None:
        if items is None:
            return None
        # Keyed by value so a long list costs linear time, not quadratic.
        seen: dict[Any, Any] = {}
        for item in items:
            key = item if not isinstance(item, list | dict) else (
                type(item).__name__, json.dumps(item, sort_keys=True, default=str))
            seen.setdefault(key, item)
        return list(seen.values())

    @signature({"types": ["string", "null"]})
    def _func_parse_json(self, s: str | None) -> Any:
        if s is None or s == "":
            return None
        try:
            return load_json(s)
        except DepthError as e:
            raise FunctionError(f"parse_json: the value is {e}") from e
        except ValueError as e:
            raise FunctionError(f"parse_json: `{s[:60]}` is not JSON: {e}") from e

    @signature({"types": ["string"]}, {"types": ["string"]}, {"types": []})
    def _func_lookup(self, source: str, key_field: str, value: Any) -> Any:
        matches = self._lookup(source, key_field, value)
        if not matches:
            return None
        if len(matches) > 1:
            raise FunctionError(
                f"lookup: {len(matches)} records of `{source}` have {key_field} = `{value}`; "
                "use lookup_all() to get them all"
            )
        return matches[0]

    @signature({"types": ["string"]}, {"types": ["string"]}, {"types": []})
    def _func_lookup_all(self, source: str, key_field: str, value: Any) -> Any:
        return list(self._lookup(source, key_field, value)) if value is not None else None

    def _lookup(self, source: str, key_field: str, value: Any) -> list[dict[str, Any]]:
        if value is None:
            return []
        if self._lookups is None:
            raise FunctionError("lookup() is not available before the sources are read")
        return self._lookups(source, key_field).get(_text(value).lower(), [])


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


_MISSING = object()


def _length(function: str, n: float) -> int:
    """A length argument: a whole number, at least 0."""
    if (isinstance(n, float) and not n.is_integer()) or n < 0:
        raise FunctionError(f"{function}: the length must be a whole number of at least 0, "
                            f"got {_text(n)}")
    return int(n)


def _check_length(function: str, length: int) -> None:
    if length > MAX_TEXT_LENGTH:
        raise FunctionError(f"{function}: the result would be {length:,} characters long, more "
                            f"than the {MAX_TEXT_LENGTH:,} allowed")


# Patterns compiled once: the constant ones at plan time, the others on first use (bounded).
_REGEX_CACHE: dict[str, regex.Pattern[str]] = {}
_REGEX_CACHE_SIZE = 1024
REGEX_FUNCTIONS = frozenset({"regex_match", "regex_replace"})


def _regex(pattern: str) -> regex.Pattern[str]:
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        try:
            compiled = regex.compile(pattern)
        except (regex.error, RecursionError, OverflowError) as e:
            raise FunctionError(f"invalid regular expression `{pattern}`: {e}") from e
        if len(_REGEX_CACHE) >= _REGEX_CACHE_SIZE:
            _REGEX_CACHE.clear()
        _REGEX_CACHE[pattern] = compiled
    return compiled


LOOKUP_FUNCTIONS = frozenset({"lookup", "lookup_all"})


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled JMESPath expression over one record.

    Attributes:
        text: the expression as written.
        root_fields: the record fields it reads at the top level (for "no record has it" checks).
        lookups: the `(source, key_field)` pairs its lookup() calls read.
        variables: the vars its var() calls read.
        constant: True when it reads nothing from the record (a literal).
    """

    text: str
    root_fields: frozenset[str]
    lookups: frozenset[tuple[str, str]] = frozenset()
    constant: bool = False
    variables: frozenset[str] = frozenset()
    evaluate: Evaluator = field(default=lambda v: None, compare=False, repr=False)
    parsed: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    functions: OaamapFunctions | None = field(default=None, compare=False, repr=False)

    def search(self, data: Any) -> Any:
        """Evaluate against one record."""
        return self.evaluate(data)


class _Compiler:
    """Turns a parsed JMESPath tree into closures, delegating uncommon nodes to jmespath.

    `compile_node()` is also what the row generator (`rowgen.py`) uses for the parts of an
    expression it does not inline.
    """

    def __init__(self, functions: OaamapFunctions) -> None:
        self.functions = functions
        self.interpreter = jmespath.visitor.TreeInterpreter(
            jmespath.Options(custom_functions=functions)
        )

    def compile(self, node: dict[str, Any]) -> Evaluator:
        method = getattr(self, "_node_" + node["type"], None)
        if method is None:
            interpreter = self.interpreter
            return lambda value: interpreter.visit(node, value)
        result: Evaluator = method(node)
        return result

    def _node_field(self, node: dict[str, Any]) -> Evaluator:
        key = node["value"]

        def get(value: Any) -> Any:
            try:
                return value.get(key)
            except AttributeError:
                return None

        return get

    def _node_subexpression(self, node: dict[str, Any]) -> Evaluator:
        parts = [self.compile(c) for c in node["children"]]

        def chain(value: Any) -> Any:
            for part in parts:
                value = part(value)
                if value is None:
                    return None
            return value

        return chain

    def _node_literal(self, node: dict[str, Any]) -> Evaluator:
        constant = node["value"]
        return lambda value: constant

    def _node_current(self, node: dict[str, Any]) -> Evaluator:
        return lambda value: value

    _node_identity = _node_current

    def _node_multi_select_list(self, node: dict[str, Any]) -> Evaluator:
        parts = [self.compile(c) for c in node["children"]]
        return lambda value: None if value is None else [p(value) for p in parts]

    def _node_multi_select_dict(self, node: dict[str, Any]) -> Evaluator:
        parts = [(kv["value"], self.compile(kv["children"][0])) for kv in node["children"]]
        return lambda value: None if value is None else {k: p(value) for k, p in parts}

    def _node_and_expression(self, node: dict[str, Any]) -> Evaluator:
        left, right = (self.compile(c) for c in node["children"])

        def both(value: Any) -> Any:
            first = left(value)
            if first is None or first is False:
                return first
            kind = type(first)
            if kind is str or kind is list or kind is dict:
                return right(value) if first else first
            return first if _is_false(first) else right(value)

        return both

    def _node_or_expression(self, node: dict[str, Any]) -> Evaluator:
        left, right = (self.compile(c) for c in node["children"])

        def either(value: Any) -> Any:
            first = left(value)
            return right(value) if _is_false(first) else first

        return either

    def _node_not_expression(self, node: dict[str, Any]) -> Evaluator:
        inner = self.compile(node["children"][0])
        return lambda value: _is_false(inner(value))

    def _node_function_expression(self, node: dict[str, Any]) -> Evaluator:
        if any(c["type"] == "expref" for c in node["children"]):
            interpreter = self.interpreter
            return lambda value: interpreter.visit(node, value)
        args = [self.compile(c) for c in node["children"]]
        name = node["value"]
        call = self.functions.call_function
        entry = self.functions.FUNCTION_TABLE[name]
        signature = entry["signature"]
        function = entry["function"]  # unbound: jmespath calls it with the registry first
        owner = self.functions
        if len(args) == 1 and signature and not signature[0].get("variadic"):
            only, types = args[0], frozenset(signature[0]["types"])

            def call_one(value: Any) -> Any:
                arg = only(value)
                if not types or _JSON_TYPES.get(type(arg)) in types:
                    return function(owner, arg)
                return call(name, [arg])

            return call_one
        if signature and not signature[-1].get("variadic") and len(args) <= len(signature):
            allowed = [frozenset(spec["types"]) for spec in signature[: len(args)]]
            pairs = list(zip(args, allowed, strict=True))

            def call_direct(value: Any) -> Any:
                # Skip jmespath's argument validation when every type is plainly allowed;
                # anything else goes through it, for jmespath's own error.
                resolved = [a(value) for a, _ in pairs]
                for arg, (_, types) in zip(resolved, pairs, strict=True):
                    if types and _JSON_TYPES.get(type(arg)) not in types:
                        return call(name, resolved)
                return function(owner, *resolved)

            return call_direct
        return lambda value: call(name, [a(value) for a in args])


def direct_call(functions: OaamapFunctions, name: str) -> Callable[..., Any]:
    """A registered function called on already evaluated arguments, with jmespath's semantics:
    arguments of plainly allowed types go straight to its implementation, anything else through
    jmespath's own validation (and its error)."""
    entry = functions.FUNCTION_TABLE[name]
    signature = entry["signature"]
    function = entry["function"]  # unbound: jmespath calls it with the registry first
    call = functions.call_function
    variadic = bool(signature) and bool(signature[-1].get("variadic"))
    allowed = [frozenset(spec["types"]) for spec in signature]

    def direct(*args: Any) -> Any:
        if len(args) > len(allowed) and not variadic:
            return call(name, list(args))
        for index, arg in enumerate(args):
            types = allowed[min(index, len(allowed) - 1)] if allowed else frozenset()
            if types and _JSON_TYPES.get(type(arg)) not in types:
                return call(name, list(args))
        return function(functions, *args)

    if not any(allowed) and not variadic and len(allowed) == 1:
        bound: Callable[..., Any] = function.__get__(functions)  # e.g. to_bool: any one value
        return bound
    return direct


def compile_node(node: dict[str, Any], functions: OaamapFunctions) -> Evaluator:
    """A closure evaluating one node of a parsed expression (jmespath's semantics)."""
    return _Compiler(functions).compile(node)


def _function_table(functions: OaamapFunctions) -> dict[str, Any]:
    table: dict[str, Any] = functions.FUNCTION_TABLE
    return table


def _check_functions(node: dict[str, Any], functions: OaamapFunctions, text: str) -> None:
    if node["type"] == "function_expression":
        name = node["value"]
        table = _function_table(functions)
        position = _find_call(text, name)
        if name not in table:
            close = difflib.get_close_matches(name, list(table), n=1)
            raise ExpressionError(
                f"unknown JMESPath function `{name}()`", position, len(name),
                hint=f"did you mean `{close[0]}`?" if close else None,
            )
        sig = table[name]["signature"]
        variadic = bool(sig) and sig[-1].get("variadic", False)
        required = sum(1 for s in sig if not s.get("optional"))
        count = len(node["children"])
        if (count < required - (1 if variadic else 0)) or (not variadic and count > len(sig)):
            expected = f"at least {required - 1}" if variadic else (
                str(required) if required == len(sig) else f"{required} to {len(sig)}")
            raise ExpressionError(
                f"function `{name}()` takes {expected} argument(s), got {count}",
                position, len(name),
            )
        if name in LOOKUP_FUNCTIONS:
            _check_lookup_args(node, text, position)
        if name == "var" and node["children"][0]["type"] != "literal":
            raise ExpressionError("`var()` needs the var's name as a string literal, e.g. "
                                  "var('date_format')", position, len(name))
        if name in REGEX_FUNCTIONS:
            _check_pattern(node, text, position)
        if name == "table":
            _check_table(node, text, position, functions.table_names)
    for child in node.get("children", []):
        if isinstance(child, dict):
            _check_functions(child, functions, text)


def _check_lookup_args(node: dict[str, Any], text: str, position: int) -> None:
    for arg in node["children"][:2]:
        if arg["type"] != "literal" or not isinstance(arg["value"], str):
            raise ExpressionError(
                f"`{node['value']}()` needs the source name and key field as string literals, "
                "e.g. lookup('people', 'email', manager_email)",
                position, len(node["value"]),
            )
    key = node["children"][1]["value"]
    try:
        parse_key_path(key)
    except ValueError as e:
        found = text.find(key, position)
        raise ExpressionError(f"`{node['value']}()` key `{key}`: {e}",
                              found if found >= 0 else position, max(1, len(key))) from None


_KEY_STEP = re.compile(r"^([^.\[\]]+)(\[\])?$")


def parse_key_path(key: str) -> tuple[tuple[str, bool], ...]:
    """The steps of a lookup key: `profile.email` -> (("profile", False), ("email", False)).

    Fields are separated by `.`; `[]` after a field matches any element of the list it holds
    (`members[]`, `members[].id`), as in JMESPath. Without `[]` a list is one value.

    Raises:
        ValueError: an empty field (`a..b`), or brackets other than a trailing `[]` on a field.
    """
    steps = []
    for part in key.split("."):
        match = _KEY_STEP.match(part)
        if match is None:
            raise ValueError("a key is field names separated by `.`, each optionally followed by "
                             "`[]` to match any element of a list (e.g. `profile.email`, "
                             "`members[]`, `members[].id`)")
        steps.append((match.group(1), match.group(2) is not None))
    return tuple(steps)


def key_values(data: Any, steps: tuple[tuple[str, bool], ...]) -> list[Any]:
    """The values a record holds at a parsed key path (several when a step is a list `[]`)."""
    current = [data]
    for name, each in steps:
        following: list[Any] = []
        for value in current:
            found = value.get(name) if isinstance(value, dict) else None
            if each:
                following.extend(found if isinstance(found, list) else [])
            elif found is not None:
                following.append(found)
        current = following
    return [v for v in current if v is not None]


def _check_table(node: dict[str, Any], text: str, position: int,
                 tables: frozenset[str]) -> None:
    """`table()` names a table declared under `tables:`, as a string literal."""
    arg = node["children"][0]
    if arg["type"] != "literal" or not isinstance(arg["value"], str):
        raise ExpressionError("`table()` needs the table's name as a string literal, e.g. "
                              "table('roles', permission)", position, len("table"))
    name = arg["value"]
    if name not in tables:
        found = text.find(name, position)
        close = difflib.get_close_matches(name, sorted(tables), n=1)
        raise ExpressionError(
            f"table('{name}') names a table that `tables:` does not declare",
            found if found >= 0 else position, max(1, len(name)),
            hint=f"did you mean `{close[0]}`?" if close else
            f"declared tables: {', '.join(sorted(tables)) or 'none'}")


def _check_pattern(node: dict[str, Any], text: str, position: int) -> None:
    """Compile a constant pattern now: an invalid one is a mistake in the mapping."""
    pattern = node["children"][1]
    if pattern["type"] == "literal" and isinstance(pattern["value"], str):
        try:
            _regex(pattern["value"])
        except FunctionError as e:
            found = text.find(pattern["value"], position)
            raise ExpressionError(str(e), found if found >= 0 else position,
                                  max(1, len(pattern["value"]))) from None


def _tree_depth(node: dict[str, Any]) -> int:
    """The depth of a parsed expression, walked without recursion (`a.a.a...` nests deeply)."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in current.get("children", [])
                     if isinstance(child, dict))
    return deepest


def _check_depth(text: str) -> None:
    where = too_deep_at(text, MAX_EXPRESSION_DEPTH)
    if where is not None:
        raise ExpressionError(f"the expression nests brackets deeper than "
                              f"{MAX_EXPRESSION_DEPTH} levels", where)


def _find_call(text: str, name: str) -> int:
    match = re.search(rf"\b{re.escape(name)}\s*\(", text)
    return match.start() if match else 0


def _root_fields(node: dict[str, Any]) -> set[str]:
    kind = node["type"]
    children = node.get("children", [])
    if kind == "field":
        return {node["value"]}
    if kind in ("literal", "current", "identity", "expref"):
        return set()
    if kind in ("subexpression", "index_expression", "projection", "value_projection",
                "filter_projection", "flatten", "pipe"):
        return _root_fields(children[0]) if children else set()
    out: set[str] = set()
    for child in children:
        if isinstance(child, dict):
            out |= _root_fields(child)
    return out


def _variables(node: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    if node["type"] == "function_expression" and node["value"] == "var":
        out.add(str(node["children"][0]["value"]))
    for child in node.get("children", []):
        if isinstance(child, dict):
            out |= _variables(child)
    return out


def _lookups(node: dict[str, Any]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    if node["type"] == "function_expression" and node["value"] in LOOKUP_FUNCTIONS:
        source, key = node["children"][0]["value"], node["children"][1]["value"]
        out.add((source, key))
    for child in node.get("children", []):
        if isinstance(child, dict):
            out |= _lookups(child)
    return out


def _parse_error(text: str, e: jmespath.exceptions.JMESPathError) -> ExpressionError:
    if isinstance(e, jmespath.exceptions.IncompleteExpressionError):
        return ExpressionError("incomplete expression", len(text))
    if isinstance(e, jmespath.exceptions.LexerError):
        position = e.lex_position if isinstance(e.lex_position, int) else 0
        return ExpressionError(f"invalid JMESPath: {e.message}", position)
    if isinstance(e, jmespath.exceptions.ParseError):
        position = e.lex_position if isinstance(e.lex_position, int) else 0
        token = str(getattr(e, "token_value", "") or "")
        return ExpressionError(f"invalid JMESPath: {e.msg}", position, max(1, len(token)))
    return ExpressionError(f"invalid JMESPath: {e}", 0)


def compile_expression(text: str, functions: OaamapFunctions) -> Expression:
    """Parse, check and compile one JMESPath expression.

    Args:
        text: the expression as written in the mapping.
        functions: the function registry (one per plan; it owns the lookup tables).

    Raises:
        ExpressionError: a syntax error, an unknown function, a wrong argument count, an
            invalid constant regular expression, or nesting deeper than `MAX_EXPRESSION_DEPTH`,
            with the 0-based position in `text`.

    Example:
        >>> compile_expression("lower(email)", OaamapFunctions()).search({"email": "A@X"})
        'a@x'
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression", 0)
    _check_depth(text)
    try:
        parsed = jmespath.compile(text).parsed
    except jmespath.exceptions.JMESPathError as e:
        raise _parse_error(text, e) from e
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply to parse", 0) from None
    if _tree_depth(parsed) > MAX_EXPRESSION_DEPTH:
        raise ExpressionError(f"the expression nests deeper than {MAX_EXPRESSION_DEPTH} levels "
                              "(fields, functions and operators)", 0)
    _check_functions(parsed, functions, text)
    fields = frozenset(_root_fields(parsed))
    return Expression(
        text=text,
        root_fields=fields,
        lookups=frozenset(_lookups(parsed)),
        constant=not fields and parsed["type"] == "literal",
        variables=frozenset(_variables(parsed)),
        evaluate=_Compiler(functions).compile(parsed),
        parsed=parsed,
        functions=functions,
    )


def combine_object(members: dict[str, Expression], text: str) -> Expression:
    """An expression yielding `{member: value}` from one expression per member (written as a YAML
    mapping in a derived rule, e.g. `source_identity: {identity: login, provider_type: "'okta'"}`).
    """
    parts = [(k, e.evaluate) for k, e in members.items()]
    fields = frozenset().union(*(e.root_fields for e in members.values()))
    lookups = frozenset().union(*(e.lookups for e in members.values()))
    return Expression(text=text, root_fields=fields, lookups=lookups,
                      evaluate=lambda record: {k: f(record) for k, f in parts})


def combine_list(items: list[Expression], text: str) -> Expression:
    """An expression yielding a list, one element per expression (a YAML list in a derived rule)."""
    parts = [e.evaluate for e in items]
    fields = frozenset().union(*(e.root_fields for e in items))
    lookups = frozenset().union(*(e.lookups for e in items))
    return Expression(text=text, root_fields=fields, lookups=lookups,
                      evaluate=lambda record: [f(record) for f in parts])


def literal(value: Any) -> Expression:
    """An expression that always yields `value` (static rules hold their constants this way)."""
    return Expression(text=json.dumps(value, default=str), root_fields=frozenset(),
                      constant=True, evaluate=lambda _record: value)
