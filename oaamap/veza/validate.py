"""The emulator's server-side check of a pushed payload: Veza's hard errors and soft warnings.

Hard errors (the push is refused with HTTP 400 and `field_violations`): unknown keys, missing
required keys, wrong JSON types, bad enum values, strings over 512 characters for names and ids or
4096 for other text, strings that are not valid UTF-8, undefined custom properties, and role
assignments to roles the payload does not define. Soft problems come back as warnings on a
successful push: identities that cannot be found among the identity providers pushed so far, and
roles missing a permission.

The structural part uses the compact payload JSON Schemas (`oaamap.payload_schema`) when they are
installed, and the key tables below (REFERENCE sections 2-4) otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "NAME_LIMIT",
    "TEXT_LIMIT",
    "ValidationResult",
    "Violation",
    "validate_payload",
]

NAME_LIMIT = 512
TEXT_LIMIT = 4096
PROPERTY_TYPES = ("BOOLEAN", "NUMBER", "STRING", "STRING_LIST", "TIMESTAMP")
PERMISSION_TYPES = (
    "DataRead", "DataWrite", "DataCreate", "DataDelete", "MetadataRead", "MetadataWrite",
    "MetadataCreate", "MetadataDelete", "NonData", "Uncategorized",
)
IDENTITY_TYPES = (
    "local_user", "local_group", "local_role", "idp", "local_access_creds", "local_agent",
)
PROVIDER_TYPES = (
    "active_directory", "any", "azure_ad", "custom", "google_workspace", "okta", "one_login",
)
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


# -- a tiny structural spec language ---------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A JSON type: `str`, `bool`, `number`, `any`, or an enum of strings."""

    kind: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arr:
    """A list of `item`."""

    item: Any


@dataclass(frozen=True)
class Map:
    """An object with free keys, each value of `value`."""

    value: Any


@dataclass(frozen=True)
class Obj:
    """An object with known keys (others are errors) and required keys; `kind` names its props."""

    fields: Mapping[str, Any]
    required: tuple[str, ...] = ()
    kind: str = ""


@dataclass(frozen=True)
class Ref:
    """A late-bound reference to a named spec (for recursive shapes)."""

    name: str


S, B, N, ANY = Spec("str"), Spec("bool"), Spec("number"), Spec("any")
SL = Arr(S)
PROPS = Map(ANY)
DEFS = Map(Spec("enum", PROPERTY_TYPES))
TAG = Obj({"key": S, "value": S}, ("key",))
OWNER = Obj({"external_id": S, "owner_type": S, "primary": B}, ("external_id", "owner_type"))
COMMON = {"tags": Arr(TAG), "custom_properties": PROPS, "owners": Arr(OWNER), "id": S,
          "operation": S}


def _entity(kind: str, required: tuple[str, ...], **fields: Any) -> Obj:
    return Obj({"name": S, **fields, **COMMON}, required, kind)


SPECS: dict[str, Any] = {
    "resource": _entity(
        "resource", ("name", "resource_type"), resource_type=S, description=S,
        connections=Arr(Obj({"id": S, "node_type": S}, ("id", "node_type"))),
        sub_resources=Arr(Ref("resource")),
    ),
}
_APP_DEFS = Obj({
    "application_type": S, "application_properties": DEFS, "local_user_properties": DEFS,
    "local_group_properties": DEFS, "local_role_properties": DEFS,
    "role_assignment_properties": DEFS, "local_access_creds_properties": DEFS,
    "local_agent_properties": DEFS, "local_model_properties": DEFS,
    "resources": Arr(Obj({"resource_type": S, "properties": DEFS}, ("resource_type",))),
}, ("application_type",))
_APPLICATION = _entity(
    "application", ("name", "application_type"), application_type=S, description=S,
    local_users=Arr(_entity(
        "local_user", ("name",), email=S, identities=SL, groups=SL, access_creds=SL, is_active=B,
        created_at=S, last_login_at=S, deactivated_at=S, password_last_changed_at=S,
        user_type=Spec("enum", ("human", "service_account")),
    )),
    local_groups=Arr(_entity("local_group", ("name",), identities=SL, created_at=S, groups=SL)),
    local_roles=Arr(_entity("local_role", ("name",), permissions=SL, roles=SL)),
    local_access_creds=Arr(_entity(
        "local_access_creds", ("id", "name"), is_active=B, created_at=S, expires_at=S,
        last_used_at=S, can_expire=B,
    )),
    local_agents=Arr(_entity(
        "local_agent", ("name",), ai_platform=S, ai_agent_publisher=S, is_active=B, created_at=S,
        groups=SL, access_creds=SL, models=SL,
    )),
    local_models=Arr(_entity(
        "local_model", ("name",), ai_platform=S, ai_model_publisher=S, ai_model_family=S,
        ai_model_series=S, created_at=S,
    )),
    resources=Arr(Ref("resource")),
)
_GRANT = {"application": S, "apply_to_application": B, "resources": SL}
SPECS["application"] = Obj({
    "custom_property_definition": Obj({"applications": Arr(_APP_DEFS)}),
    "applications": Arr(_APPLICATION),
    "permissions": Arr(Obj({
        "name": S, "permission_type": Arr(Spec("enum", PERMISSION_TYPES)),
        "apply_to_sub_resources": B, "resource_types": SL,
    }, ("name", "permission_type"))),
    "identity_to_permissions": Arr(Obj({
        "identity": S, "identity_type": Spec("enum", IDENTITY_TYPES),
        "application_permissions": Arr(Obj({**_GRANT, "permission": S},
                                           ("application", "permission"))),
        "role_assignments": Arr(Obj({**_GRANT, "role": S, "custom_properties": PROPS},
                                    ("application", "role"), "role_assignment")),
    }, ("identity", "identity_type"))),
    "incremental_change": B,
}, ("applications",))

_IDREF = Obj({"identity": S}, ("identity",))
_SOURCE = Obj({"identity": S, "provider_type": Spec("enum", PROVIDER_TYPES)},
              ("identity", "provider_type"))
_ASSIGNMENTS = Arr(Obj({"id": S, "name": S, "app_id": S, "custom_properties": PROPS},
                       ("id", "name", "app_id"), "app_assignment"))
_IDP_COMMON = {"name": S, "identity": S, "full_name": S, "groups": Arr(_IDREF),
               "assumed_role_arns": Arr(_IDREF), "source_identity": _SOURCE, "tags": Arr(TAG),
               "custom_properties": PROPS, "app_assignments": _ASSIGNMENTS, "operation": S}
SPECS["identity_provider"] = Obj({
    "custom_property_definition": Obj({
        k: DEFS for k in ("domain_properties", "user_properties", "group_properties",
                          "app_properties", "app_assignment_properties")
    }),
    "name": S, "idp_type": S,
    "domains": Arr(Obj({"name": S, "tags": Arr(TAG), "custom_properties": PROPS, "operation": S},
                       ("name",), "domain")),
    "users": Arr(Obj({**_IDP_COMMON, "email": S, "department": S, "is_active": B,
                      "is_guest": B, "manager_id": S,
                      "identity_type": Spec("enum", ("HUMAN", "NONHUMAN"))}, ("name",), "user")),
    "groups": Arr(Obj({**_IDP_COMMON, "is_security_group": B}, ("name",), "group")),
    "apps": Arr(Obj({"id": S, "name": S, "description": S, "assumed_role_arns": Arr(_IDREF),
                     "custom_properties": PROPS, "tags": Arr(TAG), "operation": S},
                    ("id", "name"), "app")),
    "incremental_change": B,
}, ("name", "idp_type"))

_IDOBJ = Obj({"id": S}, ("id",))
_EMPLOYEE_TEXT = (
    "id", "name", "employee_number", "company", "first_name", "last_name", "preferred_name",
    "display_full_name", "canonical_name", "username", "email", "idp_id", "personal_email",
    "home_location", "work_location", "employment_status", "start_date", "termination_date",
    "job_title", "primary_time_zone",
)
SPECS["hris"] = Obj({
    "name": S, "hris_type": S,
    "custom_property_definition": Obj({
        k: DEFS for k in ("system_properties", "employee_properties", "group_properties")
    }),
    "system": Obj({"id": S, "name": S, "url": S, "idp_providers": SL}, ("id", "name")),
    "employees": Arr(Obj({
        **dict.fromkeys(_EMPLOYEE_TEXT, S), "employment_types": SL, "custom_properties": PROPS,
        "is_active": B, "groups": Arr(_IDOBJ), "managers": Arr(_IDOBJ), "department": _IDOBJ,
        "cost_center": _IDOBJ,
    }, ("id", "name", "employee_number", "first_name", "last_name", "employment_status",
        "is_active"), "employee")),
    "groups": Arr(Obj({"id": S, "name": S, "group_type": S, "custom_properties": PROPS},
                      ("id", "name"), "hris_group")),
}, ("name", "hris_type", "system"))


# -- walking ----------------------------------------------------------------------------------


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "enum": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "any": lambda v: True,
}
_TYPE_NAMES = {"str": "a string", "enum": "a string", "bool": "a boolean", "number": "a number"}


def _walk(spec: Any, value: Any, path: str, out: list[Violation]) -> None:
    """Check `value` against `spec`, appending a Violation per problem."""
    if isinstance(spec, Ref):
        spec = SPECS[spec.name]
    if isinstance(spec, Spec):
        if not _JSON_TYPES[spec.kind](value):
            out.append(Violation(path, f"must be {_TYPE_NAMES[spec.kind]}"))
        elif spec.kind == "enum" and value not in spec.values:
            out.append(Violation(path, f"invalid value {value!r}, expected one of "
                                       f"{', '.join(spec.values)}"))
    elif isinstance(spec, Arr):
        if not isinstance(value, list):
            out.append(Violation(path, "must be a list"))
            return
        for i, item in enumerate(value):
            _walk(spec.item, item, _join(path, i), out)
    elif isinstance(spec, Map | Obj):
        if not isinstance(value, dict):
            out.append(Violation(path, "must be an object"))
        elif isinstance(spec, Map):
            for key, item in value.items():
                _walk(spec.value, item, _join(path, key), out)
        else:
            _walk_object(spec, value, path, out)


def _walk_object(spec: Obj, value: dict[str, Any], path: str, out: list[Violation]) -> None:
    for key in spec.required:
        if value.get(key) is None or value.get(key) == "":
            out.append(Violation(_join(path, key), "is required"))
    for key, item in value.items():
        child = spec.fields.get(key)
        if child is None:
            out.append(Violation(_join(path, key), f"unknown field `{key}`"))
        elif item is not None:
            _walk(child, item, _join(path, key), out)


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


def _schema_violations(template: str, payload: Any) -> list[Violation] | None:
    """Violations from the payload JSON Schemas, or None when they are not installed."""
    try:
        from ..payload_schema import PayloadValidator

        validator = PayloadValidator(template)
        return [_keyed(Violation(_pointer_to_field(e.pointer), e.message))
                for e in validator.errors(payload)]
    except (ImportError, FileNotFoundError, KeyError, ValueError, AttributeError, TypeError):
        return None


def structural_violations(template: str, payload: Any) -> list[Violation]:
    """Unknown keys, missing required keys, wrong types and enum values."""
    if not isinstance(payload, dict):
        return [Violation("json_data", "the payload must be a JSON object")]
    found = _schema_violations(template, payload)
    if found is not None:
        return found
    out: list[Violation] = []
    if template in SPECS:
        _walk(SPECS[template], payload, "", out)
    return out


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
