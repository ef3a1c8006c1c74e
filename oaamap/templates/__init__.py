"""Stage 7: EntitySet -> payload, one module per OAA template (the TEMPLATE_COMPILERS registry).

The payload is exactly what Veza's SDK (oaaclient 1.2.0) emits for the same entities: the same keys
in the same order, with the same per-entity rule for omitting empty values (REFERENCE section 1).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

from ..model import Entity, EntitySet

__all__ = [
    "TEMPLATE_COMPILERS",
    "Lazy",
    "compile_payload",
    "encode_item",
    "encode_items",
    "iter_json",
    "register_template",
    "skeleton",
]


class Lazy:
    """A list of the payload produced item by item when serialised, never held whole.

    A payload of a million grants held as nested dicts costs about seven times its JSON size;
    produced lazily, only one entity exists at a time.

    Attributes:
        produce: returns a fresh iterator of the items (JSON-ready dicts).
        definition: the payload schema's `$defs` entry each item is checked against.
    """

    __slots__ = ("definition", "produce")

    def __init__(self, produce: Callable[[], Iterable[dict[str, Any]]], definition: str) -> None:
        self.produce = produce
        self.definition = definition

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.produce())


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
# Called with (items, definition, JSON pointer of the list, index of the first item) for each
# batch of a Lazy list, before the batch is encoded.
BatchHook = Callable[[list[dict[str, Any]], str, str, int], None]
_DUMPS = orjson.dumps
BATCH = 32  # items per orjson call: small enough that they are still in the CPU cache


def _has_float(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return True
    if kind is dict:
        return any(map(_has_float, value.values()))
    if kind is list or kind is tuple:
        return any(map(_has_float, value))
    return False


def _orjson_text(value: Any, floats: bool) -> bytes | None:
    """orjson's compact JSON of `value` where it is byte for byte the standard encoder's, else
    None. orjson writes non-ASCII characters and DEL unescaped, floats in another exponent form
    (`1e-7`), NaN and infinities as null, and refuses integers beyond 64 bits."""
    if floats and _has_float(value):
        return None
    try:
        out = _DUMPS(value)
    except TypeError:  # an integer beyond 64 bits
        return None
    if out.isascii() and b"\x7f" not in out:
        return out
    return None


def encode_item(item: Any, floats: bool = True) -> str:
    """Compact JSON of one payload item, byte for byte what `json.dumps(separators=(',', ':'))`
    writes, produced by orjson (about 5x faster) where that is the same text.

    `floats`: whether the item may hold a float at all (False when no custom property of the
    payload is a NUMBER: the walk is skipped).
    """
    out = _orjson_text(item, floats)
    return _ENCODE(item) if out is None else out.decode("ascii")


def encode_items(items: list[Any], floats: bool = True) -> bytes:
    """The items' compact JSON joined by commas (a JSON array without its brackets), as ASCII
    bytes: one orjson call for the batch, each item on its own only when the batch's text would
    differ from the standard encoder's (see `encode_item`)."""
    out = _orjson_text(items, floats)
    if out is not None:
        return out[1:-1]
    return ",".join([encode_item(item, floats) for item in items]).encode("ascii")


def iter_json(value: Any, on_batch: BatchHook | None = None, pointer: str = "",
              floats: bool = True) -> Iterator[bytes]:
    """Compact JSON of a payload as ASCII bytes, in pieces, exactly as
    `json.dumps(separators=(',', ':'))` would write the materialised payload (key order kept).

    Args:
        value: the payload (dicts, lists, Lazy lists, scalars).
        on_batch: called with each batch of the items of a Lazy list (see `BatchHook`).
        pointer: the JSON pointer of `value`.
        floats: whether Lazy items may hold floats (see `encode_item`).
    """
    if isinstance(value, Lazy):
        yield b"["
        items = iter(value)
        start = 0
        while batch := list(itertools.islice(items, BATCH)):
            if on_batch is not None:
                on_batch(batch, value.definition, pointer, start)
            text = encode_items(batch, floats)
            yield b"," + text if start else text
            start += len(batch)
        yield b"]"
    elif isinstance(value, dict) and _has_lazy(value):
        yield b"{"
        for index, (key, item) in enumerate(value.items()):
            yield (b"," if index else b"") + _ENCODE(key).encode("ascii") + b":"
            yield from iter_json(item, on_batch, f"{pointer}/{key}", floats)
        yield b"}"
    elif isinstance(value, list) and any(_has_lazy(v) for v in value if isinstance(v, dict)):
        yield b"["
        for index, item in enumerate(value):
            yield b"," if index else b""
            yield from iter_json(item, on_batch, f"{pointer}/{index}", floats)
        yield b"]"
    else:
        yield _ENCODE(value).encode("ascii")


def _has_lazy(value: dict[str, Any]) -> bool:
    return any(isinstance(v, Lazy) or (isinstance(v, dict) and _has_lazy(v))
               or (isinstance(v, list) and any(isinstance(x, dict) and _has_lazy(x) for x in v))
               for v in value.values())


def skeleton(value: Any) -> Any:
    """The payload with every Lazy list empty (the part the whole-document schema checks)."""
    if isinstance(value, Lazy):
        return []
    if isinstance(value, dict):
        return {k: skeleton(v) for k, v in value.items()}
    if isinstance(value, list):
        return [skeleton(v) for v in value]
    return value

PayloadCompiler = Callable[[EntitySet], dict[str, Any]]

TEMPLATE_COMPILERS: dict[str, PayloadCompiler] = {}


def register_template(name: str, compiler: PayloadCompiler) -> None:
    """Register the payload compiler of a template.

    Raises:
        ValueError: the name is taken.
    """
    if name in TEMPLATE_COMPILERS:
        raise ValueError(f"template `{name}` is already registered")
    TEMPLATE_COMPILERS[name] = compiler


def compile_payload(entities: EntitySet) -> dict[str, Any]:
    """The OAA payload (`json_data`) of an EntitySet, for its template; big lists are Lazy.

    Example:
        >>> compile_payload(entity_set)["applications"][0]["name"]  # doctest: +SKIP
        'Acme Portal'
    """
    return TEMPLATE_COMPILERS[entities.template](entities)


# The SDK's four omission rules (REFERENCE section 1).
def none_list_dict(d: dict[str, Any]) -> dict[str, Any]:
    """Drop None, [] and {} (keeps '' and False)."""
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {}}


def none_list_dict_emptystr(d: dict[str, Any]) -> dict[str, Any]:
    """Drop None, [], {} and '' (keeps False and 0)."""
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {} and v != ""}


def falsy(d: dict[str, Any]) -> dict[str, Any]:
    """Drop every falsy value."""
    return {k: v for k, v in d.items() if v}


def tags(entity: Entity) -> list[dict[str, str]]:
    """`[{"key", "value"}]` in first-seen order."""
    return [{"key": k, "value": v} for k, v in entity.tags]


def owners(entity: Entity) -> list[dict[str, Any]]:
    """`[{"external_id", "owner_type", "primary"}]`."""
    return [{"external_id": o["external_id"], "owner_type": o.get("owner_type"),
             "primary": bool(o.get("primary", False))} for o in entity.values.get("owners", ())]


def identities(values: Iterable[str], key: str = "identity") -> list[dict[str, str]]:
    """A list of `{key: value}` objects (IdP groups and role ARNs, HRIS groups and managers)."""
    return [{key: v} for v in values]


def definitions(types: Mapping[str, Mapping[str, str]], scope: str) -> dict[str, str]:
    """The property definitions of one scope as `{name: TYPE}`."""
    return dict(types.get(scope, {}))


def _load() -> None:
    from . import application, hris, idp  # noqa: F401  (registration)


_load()
