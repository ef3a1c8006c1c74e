"""The emulator's server-side check of a pushed payload: Veza's hard errors and soft warnings.

Hard errors (the push is refused with HTTP 400 and `field_violations`): unknown keys, missing
required keys, wrong JSON types, bad enum values, strings over 512 characters for names and ids or
4096 for other text, strings that are not valid UTF-8, undefined custom properties, and role
assignments to roles the payload does not define. Soft problems come back as warnings on a
successful push: identities that cannot be found among the identity providers pushed so far, and
roles missing a permission.

The structural part uses the payload JSON Schemas the compiler checks against
(`oaamap.payload_schema`), so the emulator and `oaamap compile` agree on what is valid.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..payload_schema import PayloadValidator

TEMPLATES = ("application", "identity_provider", "hris")

__all__ = [
    "NAME_LIMIT",
    "TEXT_LIMIT",
    "ValidationResult",
    "Violation",
    "validate_payload",
]

NAME_LIMIT = 512
TEXT_LIMIT = 4096
# Keys whose string values are names or identifiers (512 characters at most); others take 4096.
NAME_KEYS = frozenset({
    "name", "id", "identity", "application", "role", "permission", "app_id", "external_id",
    "resource_type", "application_type", "idp_type", "hris_type", "node_type", "owner_type",
    "employee_number", "manager_id", "idp_id", "key", "identity_type", "group_type",
})
NAME_LIST_KEYS = frozenset({
    "identities", "groups", "roles", "permissions", "resources", "access_creds", "models",
    "resource_types", "permission_type", "employment_types", "idp_providers",
})


@dataclass(frozen=True)
class Violation:
    """One hard error: the field (dotted path with indices) and what is wrong with it."""

    field: str
    description: str


@dataclass
class ValidationResult:
    """The outcome of checking one payload."""

    errors: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the payload is accepted."""
        return not self.errors


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _pointer_to_field(pointer: str) -> str:
    path = ""
    for token in [t for t in pointer.split("/") if t]:
        token = token.replace("~1", "/").replace("~0", "~")
        path = _join(path, int(token) if token.isdigit() else token)
    return path


_KEY_MESSAGE = re.compile(r"(?:required|unknown) key `([^`]+)`")


def _keyed(violation: Violation) -> Violation:
    """Point a missing- or unknown-key violation at the key itself, as Veza's fields do."""
    match = _KEY_MESSAGE.search(violation.description)
    if not match:
        return violation
    return Violation(_join(violation.field, match.group(1)), violation.description)


@lru_cache(maxsize=4)
def _validator(template: str) -> PayloadValidator:
    return PayloadValidator(template)


def structural_violations(template: str, payload: Any) -> list[Violation]:
    """Unknown keys, missing required keys, wrong types and enum values (the payload schemas)."""
    if not isinstance(payload, dict):
        return [Violation("json_data", "the payload must be a JSON object")]
    if template not in TEMPLATES:
        return []
    return [_keyed(Violation(_pointer_to_field(e.pointer), e.message))
            for e in _validator(template).errors(payload)]


def _strings(value: Any, path: str, key: str) -> Iterator[tuple[str, str, str]]:
    """Every string in `value` as (path, key it belongs to, text), map keys included."""
    if isinstance(value, str):
        yield path, key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield _join(path, k), "key", str(k)
            yield from _strings(v, _join(path, k), str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, _join(path, i), key)


def text_violations(payload: Any) -> list[Violation]:
    """Strings that are too long (512 for names and ids, 4096 otherwise) or not valid UTF-8."""
    out: list[Violation] = []
    for path, key, text in _strings(payload, "", ""):
        limit = NAME_LIMIT if key in NAME_KEYS or key in NAME_LIST_KEYS else TEXT_LIMIT
        if len(text) > limit:
            out.append(Violation(path, f"value is {len(text)} characters long, over the limit "
                                       f"of {limit}"))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            out.append(Violation(path, f"invalid UTF-8: unpaired surrogate at character {e.start}"))
    return out


def validate_payload(
    template: str, payload: Any, known_identities: Collection[str] = ()
) -> ValidationResult:
    """Check a decoded payload the way Veza does on `:push`.

    Args:
        template: the provider's `custom_template`.
        payload: the decoded `json_data`.
        known_identities: lowercased names, identities and emails of IdP users and groups
            pushed so far; application identities not among them give warnings.

    Returns:
        Hard errors (the push is refused) and warnings (the push is accepted).

    Example:
        >>> validate_payload("hris", {"name": "HR"}).errors[0]
        Violation(field='hris_type', description='is required')
    """
    result = ValidationResult()
    result.errors.extend(structural_violations(template, payload))
    result.errors.extend(text_violations(payload))
    if result.errors or not isinstance(payload, dict):
        return result
    from .emulator_checks import check_semantics

    check_semantics(result, template, payload, known_identities)
    return result
