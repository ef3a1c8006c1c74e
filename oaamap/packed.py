"""Stage 6 helper: the entities of a finished section kept as one JSON text each.

A user merged from a CSV row costs about a kilobyte as Python objects (a draft, its values dict,
a dozen strings, a RowRef). Once the last rule of a section has run and nothing later changes its
entities, each entity is held as the JSON text of (key, row, where from, values, properties, tags) —
a quarter of that — and decoded into an `Entity` each time the section is read (checking and
serialising read it a few times, one entity at a time).

Only values JSON gives back exactly are packed (strings, booleans, null, integers of 64 bits,
finite floats, lists and objects of these); an entity holding anything else stays an Entity.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import orjson

from .errors import Origin, RowRef, Span
from .model import Entity, Rule

__all__ = ["EntityPacker", "PackedEntities", "entity_keys", "entity_values", "json_safe"]

_PLAIN = frozenset({str, bool, type(None)})


def json_safe(value: Any) -> bool:
    """Whether orjson gives `value` back exactly (no tuple, NaN, big int, other type)."""
    kind = value.__class__
    if kind in _PLAIN:
        return True
    if kind is int:
        return bool(-(2 ** 63) <= value < 2 ** 64)
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(json_safe(item) for item in value)
    if kind is dict:
        return all(k.__class__ is str and json_safe(v) for k, v in value.items())
    return False


_new = object.__new__
_set_section, _set_key, _set_values, _set_properties, _set_tags, _set_ref, _set_span = (
    getattr(Entity, name).__set__
    for name in ("section", "key", "values", "properties", "tags", "ref", "span"))
_set_origin, _set_row = (getattr(RowRef, name).__set__ for name in ("origin", "row"))


def _entity(section: str, key: str, values: dict[str, Any], properties: dict[str, Any],
            tags: tuple[tuple[str, str], ...], ref: RowRef | None, span: Span | None) -> Entity:
    # Entity(...) with its slots set directly: half the cost of the frozen dataclass's
    # `__init__` (an `object.__setattr__` per field), for the hundreds of thousands of
    # entities a packed section decodes on each pass.
    entity: Entity = _new(Entity)
    _set_section(entity, section)
    _set_key(entity, key)
    _set_values(entity, values)
    _set_properties(entity, properties)
    _set_tags(entity, tags)
    _set_ref(entity, ref)
    _set_span(entity, span)
    return entity


def _row_ref(origin: Origin, row: int) -> RowRef:
    ref: RowRef = _new(RowRef)
    _set_origin(ref, origin)
    _set_row(ref, row)
    return ref


class EntityPacker:
    """Packs and unpacks the entities of one section.

    Attributes:
        section: the section's name.
        origins: (origin of the entity's first row or None, rule that made it) per index a blob
            names, so each blob holds a small number instead of both.
    """

    def __init__(self, section: str, ref_fields: tuple[str, ...] = ()) -> None:
        self.section = section
        self.origins: list[tuple[Origin | None, Rule]] = []
        self._index: dict[tuple[int, int], int] = {}
        self._last: tuple[Origin | None, Rule | None, int] = (None, None, 0)  # most rows repeat it
        # What stage 8 checks, noted as entities are packed (a superset of what they hold):
        # the names each reference field uses, each property's value types, the longest text.
        self.ref_fields = ref_fields
        self.referenced: dict[str, set[str]] = {name: set() for name in ref_fields}
        self.property_kinds: dict[str, set[type]] = {}
        self.longest_text = 0

    def note(self, values: Mapping[str, Any], properties: Mapping[str, Any] | None) -> None:
        """Note what an entity being packed references and which property values it has."""
        for name in self.ref_fields:
            value = values.get(name)
            if value is not None:
                if value.__class__ is list:
                    self.referenced[name].update(value)
                else:
                    self.referenced[name].add(value)
        if properties:
            for name, value in properties.items():
                kind = value.__class__
                kinds = self.property_kinds.get(name)
                if kinds is None:
                    kinds = self.property_kinds[name] = set()
                kinds.add(kind)
                if kind is str and len(value) > self.longest_text:
                    self.longest_text = len(value)

    def where(self, origin: Origin | None, rule: Rule) -> int:
        """The index of (origin, rule), added when first seen."""
        last_origin, last_rule, index = self._last
        if origin is last_origin and rule is last_rule:
            return index
        key = (id(origin), id(rule))
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self.origins)
            self.origins.append((origin, rule))  # kept: the ids stay theirs
        self._last = (origin, rule, found)
        return found

    def pack(self, key: str, origin: Origin | None, row: int, rule: Rule,
             values: dict[str, Any], properties: dict[str, Any] | None, tags: Any) -> str:
        """One entity's blob, its content noted (`note`). The caller checked that its properties
        are `json_safe`; values are normalised strings, booleans, lists and objects."""
        self.note(values, properties)
        # As text: orjson's bytes keep the kilobytes of their growth buffer allocated.
        return orjson.dumps((key, row, self.where(origin, rule), values, properties or None,
                             list(tags) if tags else None)).decode()

    def unpack(self, blob: str) -> tuple[str, RowRef | None, Rule, dict[str, Any],
                                           dict[str, Any] | None, list[tuple[str, str]]]:
        """An entity's key, first row, rule, values, properties and tags."""
        key, row, where, values, properties, tags = orjson.loads(blob)
        origin, rule = self.origins[where]
        return (key, RowRef(origin, row) if origin is not None else None, rule, values,
                properties, [(k, v) for k, v in tags] if tags else [])

    def entity(self, blob: str) -> Entity:
        """The Entity a blob holds."""
        key, row, where, values, properties, tags = orjson.loads(blob)
        origin, rule = self.origins[where]
        return _entity(self.section, key, values, properties or {},
                       tuple((k, v) for k, v in tags) if tags else (),
                       _row_ref(origin, row) if origin is not None else None, rule.span)


class PackedEntities(Sequence[Entity]):
    """A section's entities in order, each a blob (decoded on access) or an Entity."""

    def __init__(self, items: list[str | Entity], packer: EntityPacker) -> None:
        self._items = items
        self._packer = packer
        self._all_packed = all(isinstance(item, str) for item in items)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Entity: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Entity]: ...

    def __getitem__(self, index: int | slice) -> Entity | Sequence[Entity]:
        if isinstance(index, slice):
            return PackedEntities(self._items[index], self._packer)
        item = self._items[index]
        return self._packer.entity(item) if isinstance(item, str) else item

    def __iter__(self) -> Iterator[Entity]:
        entity = self._packer.entity
        if self._all_packed:
            yield from map(entity, self._items)  # type: ignore[arg-type]  # all str
            return
        for item in self._items:
            yield entity(item) if isinstance(item, str) else item

    @property
    def noted(self) -> EntityPacker | None:
        """The packer whose notes cover every entity of the section (None if some were not
        packed: their content was not noted)."""
        return self._packer if self._all_packed else None

    def keys(self) -> Iterator[str]:
        """Each entity's key, in order, without decoding the rest of the entity."""
        for item in self._items:
            if not isinstance(item, str):
                yield item.key
                continue
            # The blob starts with the key's JSON string: read it directly unless escaped.
            key = item[2:item.index('"', 2)]
            yield key if "\\" not in key else str(orjson.loads(item)[0])

    def values(self) -> Iterator[Mapping[str, Any]]:
        """Each entity's values, in order, without making the Entity (half the decoding)."""
        loads = orjson.loads
        for item in self._items:
            yield loads(item)[3] if isinstance(item, str) else item.values

    def __repr__(self) -> str:
        return f"PackedEntities({self._packer.section}, {len(self._items)} entities)"


def entity_values(entities: Sequence[Entity]) -> Iterator[Mapping[str, Any]]:
    """The values of a section's entities (a packed section's without making Entities)."""
    if isinstance(entities, PackedEntities):
        return entities.values()
    return (entity.values for entity in entities)


def entity_keys(entities: Sequence[Entity]) -> Iterator[str]:
    """The keys of a section's entities (a packed section's without decoding them)."""
    if isinstance(entities, PackedEntities):
        return entities.keys()
    return (entity.key for entity in entities)
