"""JSON Schemas of the three OAA payloads and a fast validator for them.

The schemas live in `oaamap/schemas/payload-<template>.schema.json` (Draft 2020-12). jsonschema's
generic validator costs tens of microseconds per small object, too slow for payloads with millions
of entities, so `SchemaValidator` compiles a schema once into nested closures. Every schema node
becomes two functions: a fast `valid(instance) -> bool` with no pointer bookkeeping, and a slow
`errors(instance, pointer)` that is only entered for subtrees `valid` rejected. Valid data therefore
pays for the fast path alone.

Only the keywords the payload schemas use are supported; any other keyword raises
`NotImplementedError` at compile time, so the schemas cannot silently outgrow the validator.
Semantics follow jsonschema's Draft 2020-12 validator: booleans are not numbers, `maxLength` counts
characters, `pattern` is a Python `re.search`, arrays are lists and objects are dicts.
"""

from __future__ import annotations

import json
import numbers
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeGuard

__all__ = [
    "TEMPLATES",
    "PayloadValidator",
    "SchemaValidator",
    "Violation",
    "load_payload_schema",
]

TEMPLATES = ("application", "identity_provider", "hris")

# Keywords that only annotate; they never affect validity.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "examples", "default",
     "deprecated", "readOnly", "writeOnly"}
)
_SUPPORTED = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const",
     "pattern", "maxLength", "minLength", "propertyNames", "$ref", "anyOf", "oneOf", "minItems",
     "maxItems"}
)
_SHOW_MAX = 60
_MEMO_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Violation:
    """One schema violation: where (a JSON pointer into the payload) and what."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


Valid = Callable[[Any], bool]
Errors = Callable[[Any, str], Iterator[Violation]]


class _Node:
    """A compiled schema: the fast predicate and the error reporter."""

    __slots__ = ("errors", "valid")

    def __init__(self, valid: Valid, errors: Errors) -> None:
        self.valid = valid
        self.errors = errors


def load_payload_schema(template: str) -> dict[str, Any]:
    """Load the JSON Schema of an OAA payload shipped with oaamap.

    Args:
        template: `application`, `identity_provider` or `hris`.

    Returns:
        The schema as a dict (a fresh copy on every call).

    Raises:
        ValueError: `template` is not one of the three templates.
    """
    if template not in TEMPLATES:
        expected = ", ".join(TEMPLATES)
        raise ValueError(f"unknown OAA template {template!r}; expected one of {expected}")
    path = resources.files("oaamap") / "schemas" / f"payload-{template}.schema.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


class SchemaValidator:
    """A JSON Schema (the subset the payload schemas use) compiled into fast closures."""

    __slots__ = ("_defs", "_root", "schema")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        """Compile `schema` and every entry of its `$defs`.

        Args:
            schema: A Draft 2020-12 schema using only the supported keywords.

        Raises:
            NotImplementedError: The schema uses a keyword or `$ref` form this validator lacks.
        """
        self.schema = schema
        compiler = _Compiler(schema)
        self._root = compiler.compile(schema, "#")
        self._defs = {name: compiler.definition(name) for name in schema.get("$defs", {})}

    @property
    def definitions(self) -> tuple[str, ...]:
        """The names in the schema's `$defs`."""
        return tuple(self._defs)

    def _node(self, definition: str | None) -> _Node:
        if definition is None:
            return self._root
        try:
            return self._defs[definition]
        except KeyError:
            known = ", ".join(self._defs)
            raise ValueError(f"unknown schema definition {definition!r}; known: {known}") from None

    def is_valid(self, instance: Any, definition: str | None = None) -> bool:
        """Whether `instance` conforms to the schema, or to `$defs[definition]` if given."""
        return self._node(definition).valid(instance)

    def errors(
        self, instance: Any, definition: str | None = None, pointer: str = ""
    ) -> Iterator[Violation]:
        """Yield the violations of `instance`, in document order.

        Args:
            instance: The decoded JSON value (a whole payload or one fragment of it).
            definition: Validate against `$defs[definition]` instead of the whole schema.
            pointer: JSON pointer of `instance` in its payload; prefixes every reported pointer.

        Returns:
            An iterator of `Violation`s, empty when the instance is valid.
        """
        node = self._node(definition)
        if node.valid(instance):
            return iter(())
        return node.errors(instance, pointer)


class PayloadValidator(SchemaValidator):
    """The validator of one OAA template's payload schema."""

    __slots__ = ("template",)

    def __init__(self, template: str) -> None:
        """Load and compile the schema of `template`.

        Args:
            template: `application`, `identity_provider` or `hris`.
        """
        self.template = template
        super().__init__(load_payload_schema(template))


# ---------------------------------------------------------------------------------------------
# Compilation


def _pending_valid(x: Any) -> bool:
    """Placeholder of a definition still being compiled; `ref` never hands it out."""
    raise AssertionError("schema definition used before its compilation finished")


def _pending_errors(x: Any, ptr: str) -> Iterator[Violation]:
    raise AssertionError("schema definition used before its compilation finished")


class _Compiler:
    """Turns schema dicts into `_Node`s; resolves `#/$defs/...` references, recursion included."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self._defs: Mapping[str, Any] = root.get("$defs", {})
        self._done: dict[str, _Node] = {}

    def definition(self, name: str) -> _Node:
        """The compiled node of `$defs[name]`, compiled on first use."""
        node = self._done.get(name)
        if node is None:
            if name not in self._defs:
                raise NotImplementedError(f"$ref to missing definition #/$defs/{name}")
            # Registered first, so recursive refs find it.
            node = self._done[name] = _Node(_pending_valid, _pending_errors)
            built = self.compile(self._defs[name], f"#/$defs/{name}")
            node.valid, node.errors = built.valid, built.errors
        return node

    def ref(self, target: str, where: str) -> _Node:
        prefix = "#/$defs/"
        if not target.startswith(prefix) or "/" in target[len(prefix):]:
            raise NotImplementedError(f"{where}: only `#/$defs/<name>` references are supported")
        name = target[len(prefix):].replace("~1", "/").replace("~0", "~")
        node = self.definition(name)
        if node.valid is not _pending_valid:
            return node
        # Still being compiled (a recursive reference): look the functions up at call time.
        return _Node(lambda x: node.valid(x), lambda x, p: node.errors(x, p))

    def compile(self, schema: Any, where: str) -> _Node:
        """Compile one (sub)schema; `where` is its location, for compile-time errors."""
        if schema is True or schema == {}:
            return _Node(_always, _no_errors)
        if schema is False:
            return _Node(_never, _forbidden)
        if not isinstance(schema, Mapping):
            raise NotImplementedError(f"{where}: a schema must be an object or a boolean")
        unknown = sorted(k for k in schema if k not in _SUPPORTED and k not in _ANNOTATIONS)
        if unknown:
            raise NotImplementedError(f"{where}: unsupported keyword(s) {', '.join(unknown)}")
        types = _types(schema, where)
        node = _combine(types, self._checks(schema, types, where), schema)
        if types and len(types) > 1 and _dispatchable(schema, types):
            return _Node(self._dispatch(schema, types, node.valid, where), node.errors)
        return node

    def _dispatch(self, schema: Mapping[str, Any], types: tuple[str, ...], fallback: Valid,
                  where: str) -> Valid:
        """A type union's test as one lookup on the exact Python type, then that type's checks.

        Other types (subclasses such as str enums, Decimal) take the generic `fallback`.
        """
        own: dict[str, Valid] = {}
        if _string_keywords(schema):
            own["string"] = _string_check(schema, guarded=False).valid
        if _array_keywords(schema):
            own["array"] = self._array(schema, where, guarded=False).valid
        if _object_keywords(schema):
            own["object"] = self._object(schema, where, guarded=False).valid
        # Keyed by exact type: bool is absent unless "boolean" is listed, so True is no number.
        lookup = {cls: own.get(t, _always) for t in types for cls in _CLASSES[t]}.get

        def valid(x: Any) -> bool:
            test = lookup(type(x))
            return fallback(x) if test is None else test(x)

        return valid

    def _checks(self, schema: Mapping[str, Any], types: tuple[str, ...] | None,
                where: str) -> list[_Node]:
        """The checks of every keyword besides `type`, in a fixed order.

        As in JSON Schema, a check ignores instances its keyword does not apply to (`maxLength`
        ignores numbers), except an object or array check under a single matching `type`, which
        then rejects other types itself and stands in for the type test.
        """
        checks: list[_Node] = []
        if "$ref" in schema:
            checks.append(self.ref(schema["$ref"], f"{where}/$ref"))
        for keyword in ("enum", "const"):
            if keyword in schema:
                checks.append(_enum_check(schema, keyword))
        if types != ("string",) and _string_keywords(schema):
            checks.append(_string_check(schema, guarded=True))
        if _object_keywords(schema):
            checks.append(self._object(schema, where, guarded=types != ("object",)))
        if _array_keywords(schema):
            checks.append(self._array(schema, where, guarded=types != ("array",)))
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                subs = [self.compile(s, f"{where}/{keyword}/{i}")
                        for i, s in enumerate(schema[keyword])]
                checks.append(_any_of(subs) if keyword == "anyOf" else _one_of(subs))
        return checks

    def _object(self, schema: Mapping[str, Any], where: str, guarded: bool) -> _Node:
        props = {k: self.compile(s, f"{where}/properties/{k}")
                 for k, s in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        extra_node = (None if extra is False
                      else self.compile(extra, f"{where}/additionalProperties"))
        names = schema.get("propertyNames")
        names_node = None if names is None else self.compile(names, f"{where}/propertyNames")
        spec = _ObjectSpec(props, tuple(schema.get("required", ())), extra_node, names_node)
        valid = _closed_object_valid(spec) if spec.closed else _object_valid(spec)
        if guarded:
            valid = _guard(dict, valid)
        return _Node(valid, _object_errors(spec))

    def _array(self, schema: Mapping[str, Any], where: str, guarded: bool) -> _Node:
        items = schema.get("items", True)
        if not isinstance(items, (Mapping, bool)):
            raise NotImplementedError(f"{where}/items: only a single items schema is supported")
        item = self.compile(items, f"{where}/items")
        lo, hi = schema.get("minItems", 0), schema.get("maxItems", sys.maxsize)
        if _is_plain_string(items):
            valid = _string_list_valid(items.get("maxLength", sys.maxsize), lo, hi)
        else:
            valid = _array_valid(item, lo, hi)
        if guarded:
            valid = _guard(list, valid)
        return _Node(valid, _array_errors(item, lo, hi))


def _dispatchable(schema: Mapping[str, Any], types: tuple[str, ...]) -> bool:
    """Whether a union's keywords all depend on the instance type alone."""
    return "integer" not in types and not any(
        k in schema for k in ("enum", "const", "$ref", "anyOf", "oneOf"))


def _is_plain_string(schema: Any) -> TypeGuard[Mapping[str, Any]]:
    """Whether `schema` is `{"type": "string"}` with at most a `maxLength`."""
    return (isinstance(schema, Mapping) and schema.get("type") == "string"
            and all(k in _ANNOTATIONS or k in ("type", "maxLength") for k in schema))


def _types(schema: Mapping[str, Any], where: str) -> tuple[str, ...] | None:
    if "type" not in schema:
        return None
    raw = schema["type"]
    types = (raw,) if isinstance(raw, str) else tuple(raw)
    bad = [t for t in types if t not in _TYPE_TESTS]
    if bad:
        raise NotImplementedError(f"{where}/type: unknown type(s) {', '.join(map(str, bad))}")
    return types


def _string_keywords(schema: Mapping[str, Any]) -> bool:
    return any(k in schema for k in ("pattern", "maxLength", "minLength"))


def _object_keywords(schema: Mapping[str, Any]) -> bool:
    keys = ("properties", "required", "additionalProperties", "propertyNames")
    return any(k in schema for k in keys)


def _array_keywords(schema: Mapping[str, Any]) -> bool:
    return any(k in schema for k in ("items", "minItems", "maxItems"))


def _combine(types: tuple[str, ...] | None, checks: list[_Node],
             schema: Mapping[str, Any]) -> _Node:
    """One node from the `type` keyword and the other keywords' checks."""
    type_node = None if types is None else _type_node(types)
    if types == ("string",):
        if _string_keywords(schema) or not _only_strings_allowed(schema):
            # The common leaf: type, length and pattern folded into one closure.
            checks.insert(0, _string_check(schema, guarded=False))
    elif type_node is not None and not _checks_own_type(schema, types):
        checks.insert(0, type_node)
    if not checks:
        return _Node(_always, _no_errors)
    if len(checks) == 1 and type_node is None:
        return checks[0]
    valid = checks[0].valid if len(checks) == 1 else _all_valid([n.valid for n in checks])
    return _Node(valid, _all_errors(type_node, checks))


def _only_strings_allowed(schema: Mapping[str, Any]) -> bool:
    """Whether an `enum` or `const` of strings makes a separate string type test redundant."""
    if "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
        return True
    return isinstance(schema.get("const"), str)


def _checks_own_type(schema: Mapping[str, Any], types: tuple[str, ...] | None) -> bool:
    """Whether an unguarded object or array check, which rejects other types itself, is present."""
    if types == ("object",):
        return _object_keywords(schema)
    return types == ("array",) and _array_keywords(schema)


# ---------------------------------------------------------------------------------------------
# Types


def _is_number(x: Any) -> bool:
    return type(x) in (int, float) or (
        not isinstance(x, bool) and isinstance(x, numbers.Number)
    )


def _is_integer(x: Any) -> bool:
    if isinstance(x, float):
        return x.is_integer()
    return _is_number(x) and isinstance(x, numbers.Integral)


_TYPE_TESTS: dict[str, Valid] = {
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "null": lambda x: x is None,
    "number": _is_number,
    "integer": _is_integer,
}


def _json_type(x: Any) -> str:
    """The JSON type name of a decoded value, for messages."""
    for name in ("null", "boolean", "string", "number", "array", "object"):
        if _TYPE_TESTS[name](x):
            return name
    return type(x).__name__


_CLASSES: dict[str, tuple[type, ...]] = {
    "string": (str,), "object": (dict,), "array": (list,), "null": (type(None),),
    "boolean": (bool,), "number": (int, float),
}


def _type_valid(types: tuple[str, ...]) -> Valid:
    """The test of a `type` keyword; a union becomes one isinstance() where it can."""
    if len(types) == 1:
        return _TYPE_TESTS[types[0]]
    if "integer" in types:
        tests = [_TYPE_TESTS[t] for t in types]
        return lambda x: any(t(x) for t in tests)
    classes = tuple(c for t in types for c in _CLASSES[t])
    if "number" not in types:
        return lambda x: isinstance(x, classes)
    if "boolean" in types:
        return lambda x: isinstance(x, classes) or _is_number(x)
    # bool subclasses int, yet a boolean is not a JSON number.
    return lambda x: (isinstance(x, classes) and not isinstance(x, bool)) or _is_number(x)


def _type_node(types: tuple[str, ...]) -> _Node:
    valid = _type_valid(types)
    expected = " or ".join(types)

    def errors(x: Any, ptr: str) -> Iterator[Violation]:
        yield Violation(ptr, f"expected {expected}, got {_json_type(x)}")

    return _Node(valid, errors)


# ---------------------------------------------------------------------------------------------
# Keyword checks


def _always(x: Any) -> bool:
    return True


def _never(x: Any) -> bool:
    return False


def _no_errors(x: Any, ptr: str) -> Iterator[Violation]:
    return iter(())


def _forbidden(x: Any, ptr: str) -> Iterator[Violation]:
    yield Violation(ptr, "no value is allowed here")


def _guard(kind: type, valid: Valid) -> Valid:
    """Apply `valid` only to instances of `kind` (JSON Schema keywords ignore other types)."""
    return lambda x: not isinstance(x, kind) or valid(x)


def _all_valid(tests: list[Valid]) -> Valid:
    if len(tests) == 2:
        first, second = tests
        return lambda x: first(x) and second(x)
    if len(tests) == 3:
        first, second, third = tests
        return lambda x: first(x) and second(x) and third(x)
    return lambda x: all(t(x) for t in tests)


def _all_errors(type_node: _Node | None, nodes: list[_Node]) -> Errors:
    def errors(x: Any, ptr: str) -> Iterator[Violation]:
        if type_node is not None and not type_node.valid(x):
            # A type mismatch alone: the other keywords' messages would be noise.
            yield from type_node.errors(x, ptr)
            return
        for node in nodes:
            if not node.valid(x):
                yield from node.errors(x, ptr)
    return errors


def _string_check(schema: Mapping[str, Any], guarded: bool) -> _Node:
    """`maxLength`, `minLength` and `pattern`; unguarded, also the string type test."""
    lo, hi = schema.get("minLength", 0), schema.get("maxLength", sys.maxsize)
    pattern = schema.get("pattern")
    search = None if pattern is None else re.compile(pattern).search
    valid = _string_valid(lo, hi, search, guarded)

    def errors(x: Any, ptr: str) -> Iterator[Violation]:
        if not isinstance(x, str):
            if not guarded:
                yield Violation(ptr, f"expected string, got {_json_type(x)}")
            return
        if len(x) > hi:
            yield Violation(ptr, f"{_show(x)} is longer than {hi} characters ({len(x)})")
        if len(x) < lo:
            yield Violation(ptr, "must not be empty" if lo == 1 and not x
                            else f"{_show(x)} is shorter than {lo} characters ({len(x)})")
        if search is not None and search(x) is None:
            yield Violation(ptr, f"{_show(x)} does not match `{pattern}`")

    return _Node(valid, errors)


def _string_valid(lo: int, hi: int, search: Callable[[str], Any] | None, guarded: bool) -> Valid:
    """The string test; `guarded` lets non-strings pass (the keywords ignore other types)."""
    if search is not None:
        return _pattern_valid(lo, hi, search, guarded)
    if guarded:
        return lambda x: not isinstance(x, str) or lo <= len(x) <= hi
    if lo == 0:
        return lambda x: isinstance(x, str) and len(x) <= hi
    return lambda x: isinstance(x, str) and lo <= len(x) <= hi


def _pattern_valid(lo: int, hi: int, search: Callable[[str], Any], guarded: bool) -> Valid:
    # Patterns check tag keys, tag values and property names, which repeat across millions of
    # entities: remembering a bounded set of accepted strings saves most regex searches.
    accepted: set[str] = set()

    def valid(x: Any) -> bool:
        if not isinstance(x, str):
            return guarded
        if x in accepted:
            return True
        if lo <= len(x) <= hi and search(x) is not None:
            if len(accepted) < _MEMO_SIZE:
                accepted.add(x)
            return True
        return False

    return valid


def _enum_check(schema: Mapping[str, Any], keyword: str) -> _Node:
    allowed = list(schema[keyword]) if keyword == "enum" else [schema[keyword]]
    if all(isinstance(v, str) for v in allowed):
        strings = frozenset(allowed)

        def valid(x: Any) -> bool:
            return isinstance(x, str) and x in strings
    else:
        def valid(x: Any) -> bool:
            return any(_equal(x, v) for v in allowed)

    shown = ", ".join(_show(v) for v in allowed)
    message = f"expected {shown}" if keyword == "const" else f"is not one of {shown}"

    def errors(x: Any, ptr: str) -> Iterator[Violation]:
        yield Violation(ptr, f"{_show(x)} {message}")

    return _Node(valid, errors)


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: `true` is not `1`, containers compare element-wise."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    equal: bool = a == b  # JSON scalars compare to a bool
    return equal


def _any_of(subs: list[_Node]) -> _Node:
    def errors(x: Any, ptr: str) -> Iterator[Violation]:
        yield Violation(ptr, f"{_show(x)} matches none of the allowed alternatives")
    return _Node(lambda x: any(s.valid(x) for s in subs), errors)


def _one_of(subs: list[_Node]) -> _Node:
    def errors(x: Any, ptr: str) -> Iterator[Violation]:
        count = sum(1 for s in subs if s.valid(x))
        detail = "none" if count == 0 else f"{count}"
        yield Violation(ptr, f"{_show(x)} must match exactly one alternative, matches {detail}")
    return _Node(lambda x: sum(1 for s in subs if s.valid(x)) == 1, errors)


# ---------------------------------------------------------------------------------------------
# Objects and arrays


@dataclass(frozen=True, slots=True)
class _ObjectSpec:
    props: dict[str, _Node]
    required: tuple[str, ...]
    extra: _Node | None  # None: additionalProperties is false
    names: _Node | None

    @property
    def closed(self) -> bool:
        return self.extra is None and self.names is None


def _closed_object_valid(spec: _ObjectSpec) -> Valid:
    """The hot path: an object with known keys only (every entity of the payloads)."""
    test = {k: n.valid for k, n in spec.props.items()}.get
    required = frozenset(spec.required)

    def valid(x: Any) -> bool:
        if not isinstance(x, dict) or not x.keys() >= required:
            return False
        for k, v in x.items():
            t = test(k)
            if t is None or not t(v):
                return False
        return True

    return valid


def _object_valid(spec: _ObjectSpec) -> Valid:
    tests = {k: n.valid for k, n in spec.props.items()}
    required = frozenset(spec.required)
    extra = None if spec.extra is None else spec.extra.valid
    names = None if spec.names is None else spec.names.valid

    def valid(x: Any) -> bool:
        if not isinstance(x, dict) or not x.keys() >= required:
            return False
        for k, v in x.items():
            if names is not None and not names(k):
                return False
            test = tests.get(k, extra)
            if test is None or not test(v):
                return False
        return True

    return valid


def _object_errors(spec: _ObjectSpec) -> Errors:
    def errors(x: Any, ptr: str) -> Iterator[Violation]:
        if not isinstance(x, dict):
            yield Violation(ptr, f"expected object, got {_json_type(x)}")
            return
        for key in spec.required:
            if key not in x:
                yield Violation(ptr, f"missing required key `{key}`")
        for key, value in x.items():
            if spec.names is not None and not spec.names.valid(key):
                for v in spec.names.errors(key, ptr):
                    yield Violation(ptr, f"property name {v.message}")
            node = spec.props.get(key, spec.extra)
            if node is None:
                yield Violation(ptr, f"unknown key `{key}`")
            elif not node.valid(value):
                yield from node.errors(value, f"{ptr}/{_escape(key)}")
    return errors


def _array_valid(item: _Node, lo: int, hi: int) -> Valid:
    test = item.valid
    if item.valid is _always:
        return lambda x: isinstance(x, list) and lo <= len(x) <= hi
    if lo == 0 and hi == sys.maxsize:
        return lambda x: isinstance(x, list) and all(map(test, x))
    return lambda x: isinstance(x, list) and lo <= len(x) <= hi and all(map(test, x))


def _string_list_valid(longest: int, lo: int, hi: int) -> Valid:
    """A list of strings, tested inline: twice as fast as a call per item."""
    def valid(x: Any) -> bool:
        if not isinstance(x, list) or not lo <= len(x) <= hi:
            return False
        for s in x:  # noqa: SIM110 (a loop beats all() over a generator)
            if not isinstance(s, str) or len(s) > longest:
                return False
        return True
    return valid


def _array_errors(item: _Node, lo: int, hi: int) -> Errors:
    def errors(x: Any, ptr: str) -> Iterator[Violation]:
        if not isinstance(x, list):
            yield Violation(ptr, f"expected array, got {_json_type(x)}")
            return
        if len(x) < lo:
            yield Violation(ptr, f"expected at least {lo} item(s), got {len(x)}")
        if len(x) > hi:
            yield Violation(ptr, f"expected at most {hi} item(s), got {len(x)}")
        for i, value in enumerate(x):
            if not item.valid(value):
                yield from item.errors(value, f"{ptr}/{i}")
    return errors


# ---------------------------------------------------------------------------------------------
# Rendering


def _escape(key: Any) -> str:
    """A key as a JSON pointer reference token."""
    return str(key).replace("~", "~0").replace("/", "~1")


def _show(value: Any) -> str:
    """A value quoted for a message, long strings abbreviated."""
    if isinstance(value, str):
        text = value if len(value) <= _SHOW_MAX else value[: _SHOW_MAX - 1] + "…"
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)
        except (TypeError, ValueError):
            text = repr(value)
        if len(text) > _SHOW_MAX:
            text = text[: _SHOW_MAX - 1] + "…"
    return f"`{text}`"
