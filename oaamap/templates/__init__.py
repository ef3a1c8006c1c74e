"""Stage 7: EntitySet -> payload, one module per OAA template behind the TEMPLATE_COMPILERS registry.

The payload is exactly what Veza's SDK (oaaclient 1.2.0) emits for the same entities: the same keys in
the same order, with the same per-entity rule for omitting empty values (REFERENCE section 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..model import Entity, EntitySet

__all__ = ["TEMPLATE_COMPILERS", "compile_payload", "register_template"]

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
    """The OAA payload (`json_data`) of an EntitySet, for its template.

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
