"""The mapping language's vocabulary: templates, their sections and every rule key with its kind.

One table drives the mapping schema (`oaamap schema`), the planner (which keys a rule may have and
how each is compiled) and the builder (how each field merges and what it references).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "CANONICAL_PERMISSIONS",
    "DEFINITION_SCOPES",
    "MERGE_POLICIES",
    "PROPERTY_NAME_PATTERN",
    "PROPERTY_TYPES",
    "SECRETS",
    "TEMPLATES",
    "FieldSpec",
    "SectionSpec",
    "TemplateSpec",
    "valid_property_name",
]

CANONICAL_PERMISSIONS = (
    "DataRead", "DataWrite", "DataCreate", "DataDelete", "MetadataRead", "MetadataWrite",
    "MetadataCreate", "MetadataDelete", "NonData", "Uncategorized",
)
PROPERTY_TYPES = ("STRING", "NUMBER", "BOOLEAN", "STRING_LIST", "TIMESTAMP")
# Veza's SDK checks this pattern on the *lower-cased* property name (`re.match`) and sends the
# name as written: `NAME` and `Repo_Id` are valid.
SDK_PROPERTY_NAME = re.compile(r"^[a-z][a-z_]*$")
# The same set of names as one pattern on the name as written (Python `re.search` semantics, as
# jsonschema applies it): the only non-ASCII character whose lower case is in [a-z] is the Kelvin
# sign (U+212A -> `k`); `$` also matches before a final newline, as in the SDK's `re.match`.
PROPERTY_NAME_PATTERN = "^[A-Za-z\u212a][A-Za-z_\u212a]*$"
# How a rule's rows merge into an entity that already exists (`merge:`); absent: the default
# (first non-null value kept, a different later value is a conflict).
MERGE_POLICIES = ("first",)
IDP_PROVIDER_TYPES = (
    "active_directory", "any", "azure_ad", "custom", "google_workspace", "okta", "one_login",
)
DERIVED_KEYS = ("from", "where", "each")
ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One rule key.

    Attributes:
        kind: str | bool | timestamp | str_list | enum | enum_list | ref | ref_list | objects |
            object | properties | tags.
        required: a null value is a data error (the entity cannot exist without it).
        refers_to: for refs, the section whose entities the value names.
        choices: for enums, the allowed values (checked case-insensitively).
        members: for objects, the member keys; the first is the identifying member.
        doc: one line for the schema and the docs.
    """

    kind: str
    required: bool = False
    refers_to: str | None = None
    choices: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """A section of a template: a single static object (`application`) or a list of rules."""

    name: str
    fields: dict[str, FieldSpec]
    single: bool = False
    one_of: tuple[tuple[str, ...], ...] = ()
    doc: str = ""


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """An OAA template: its name in the mapping and Veza, and its sections in payload order."""

    name: str
    sections: dict[str, SectionSpec] = field(default_factory=dict)


def valid_property_name(name: str) -> bool:
    """The SDK's rule for a custom property name (oaaclient `validate_name`), exactly."""
    return SDK_PROPERTY_NAME.match(name.lower()) is not None


S = FieldSpec
SECRETS = S("str_list", doc="environment variables whose names look secret (KEY, TOKEN, SECRET, "
            "PASSWORD, PASSWD, PASSPHRASE, CREDENTIAL, PRIVATE) that this mapping may read "
            "outside credential positions: into vars, names and the payload (never VEZA_API_KEY)")
TAGS = S("tags", doc="Veza tags: [{key, value}] or one expression yielding such a list")
PROPS = S("properties", doc="custom properties {name: EXPR} or {name: {value: EXPR, type: T, "
          "keep_null: BOOL, keep_empty: BOOL}}")
OWNERS = S("objects", members=("external_id", "owner_type", "primary"),
           doc="owners: a list of {external_id, owner_type, primary}")
SOURCE_IDENTITY = S("object", members=("identity", "provider_type"),
                    doc="the identity in another IdP this one comes from")


def _sec(section: str, doc: str, /, *, single: bool = False,
         one_of: tuple[tuple[str, ...], ...] = (), **fields: FieldSpec) -> SectionSpec:
    return SectionSpec(section, dict(fields), single, one_of, doc)


APPLICATION = TemplateSpec("application", {
    "application": _sec(
        "application", "the application itself (constants)", single=True,
        name=S("str", True, doc="application name"),
        type=S("str", True, doc="application_type"),
        description=S("str"), properties=PROPS, tags=TAGS, owners=OWNERS),
    "permissions": _sec(
        "permissions", "the application's permissions and their canonical meaning",
        name=S("str", True),
        canonical=S("enum_list", True, choices=CANONICAL_PERMISSIONS,
                    doc="permission_type: canonical OAA permissions"),
        apply_to_sub_resources=S("bool"), resource_types=S("str_list")),
    "roles": _sec(
        "roles", "local roles",
        id=S("str"), name=S("str", True),
        permissions=S("ref_list", refers_to="permissions"),
        roles=S("ref_list", refers_to="roles", doc="nested roles"),
        tags=TAGS, properties=PROPS, owners=OWNERS),
    "groups": _sec(
        "groups", "local groups",
        id=S("str"), name=S("str", True), identities=S("str_list"),
        created_at=S("timestamp"), groups=S("ref_list", refers_to="groups", doc="nested groups"),
        roles=S("ref_list", refers_to="roles", doc="roles granted on the whole application"),
        tags=TAGS, properties=PROPS, owners=OWNERS),
    "users": _sec(
        "users", "local users",
        id=S("str"), name=S("str", True), email=S("str"), identities=S("str_list"),
        groups=S("ref_list", refers_to="groups"),
        roles=S("ref_list", refers_to="roles", doc="roles granted on the whole application"),
        access_creds=S("ref_list", refers_to="access_creds"),
        is_active=S("bool"), created_at=S("timestamp"), last_login_at=S("timestamp"),
        deactivated_at=S("timestamp"), password_last_changed_at=S("timestamp"),
        user_type=S("enum", choices=("human", "service_account")),
        tags=TAGS, properties=PROPS, owners=OWNERS),
    "access_creds": _sec(
        "access_creds", "local access credentials (API keys, tokens)",
        id=S("str", True), name=S("str", True),
        user=S("ref", refers_to="users", doc="the local user holding the credential"),
        is_active=S("bool"), created_at=S("timestamp"), expires_at=S("timestamp"),
        last_used_at=S("timestamp"), can_expire=S("bool"),
        owners=OWNERS, tags=TAGS, properties=PROPS),
    "resources": _sec(
        "resources", "resources and sub-resources",
        id=S("str"), name=S("str", True), type=S("str", True, doc="resource_type"),
        description=S("str"), parent=S("ref", refers_to="resources", doc="parent resource"),
        connections=S("objects", members=("id", "node_type")),
        properties=PROPS, tags=TAGS, owners=OWNERS),
    "grants": _sec(
        "grants", "who holds which role or permission, on the application or on resources",
        one_of=(("user", "group", "idp", "access_cred"), ("role", "permission")),
        user=S("ref", refers_to="users"), group=S("ref", refers_to="groups"),
        idp=S("str", doc="an IdP identity (e.g. an email) granted directly"),
        access_cred=S("ref", refers_to="access_creds"),
        role=S("ref", refers_to="roles"), permission=S("ref", refers_to="permissions"),
        resources=S("ref_list", refers_to="resources"),
        apply_to_application=S("bool"),
        assignment_properties=S("properties", doc="role-assignment properties")),
})

IDP = TemplateSpec("identity_provider", {
    "idp": _sec(
        "idp", "the identity provider and its domain (constants)", single=True,
        name=S("str", True), type=S("str", True, doc="idp_type"), domain=S("str", True),
        description=S("str", doc="accepted but, as in Veza's SDK, not sent"),
        properties=PROPS, tags=TAGS),
    "users": _sec(
        "users", "IdP users",
        name=S("str", True), identity=S("str"), email=S("str"), full_name=S("str"),
        department=S("str"), is_active=S("bool"), is_guest=S("bool"),
        manager=S("ref", refers_to="users", doc="manager_id: the manager's identity"),
        groups=S("ref_list", refers_to="groups"), assumed_role_arns=S("str_list"),
        source_identity=SOURCE_IDENTITY,
        identity_type=S("enum", choices=("HUMAN", "NONHUMAN")),
        tags=TAGS, properties=PROPS),
    "groups": _sec(
        "groups", "IdP groups",
        name=S("str", True), identity=S("str"), full_name=S("str"),
        is_security_group=S("bool"), assumed_role_arns=S("str_list"),
        groups=S("ref_list", refers_to="groups"), source_identity=SOURCE_IDENTITY,
        tags=TAGS, properties=PROPS),
    "apps": _sec(
        "apps", "applications users and groups are assigned to",
        id=S("str", True), name=S("str", True), description=S("str"),
        assumed_role_arns=S("str_list"), properties=PROPS, tags=TAGS),
    "app_assignments": _sec(
        "app_assignments", "users' and groups' assignments to apps",
        one_of=(("user", "group"),),
        user=S("ref", refers_to="users"), group=S("ref", refers_to="groups"),
        id=S("str", True), name=S("str", True), app_id=S("ref", True, refers_to="apps"),
        properties=PROPS),
})

HRIS = TemplateSpec("hris", {
    "system": _sec(
        "system", "the HR system (constants)", single=True,
        name=S("str", True), type=S("str", True, doc="hris_type"), url=S("str"),
        idp_types=S("enum_list", choices=IDP_PROVIDER_TYPES,
                    doc="IdPs whose users the employees are linked to")),
    "employees": _sec(
        "employees", "employees",
        id=S("str", True), name=S("str", True), employee_number=S("str", True),
        company=S("str"), first_name=S("str", True), last_name=S("str", True),
        preferred_name=S("str"), display_full_name=S("str"), canonical_name=S("str"),
        username=S("str"), email=S("str"), idp_id=S("str"), personal_email=S("str"),
        home_location=S("str"), work_location=S("str"), employment_status=S("str", True),
        start_date=S("timestamp"), termination_date=S("timestamp"), job_title=S("str"),
        employment_types=S("str_list"), primary_time_zone=S("str"), properties=PROPS,
        is_active=S("bool", True),
        groups=S("ref_list", refers_to="groups"),
        managers=S("ref_list", refers_to="employees"),
        department=S("ref", refers_to="groups"), cost_center=S("ref", refers_to="groups")),
    "groups": _sec(
        "groups", "departments, cost centres and other groups",
        id=S("str", True), name=S("str", True), group_type=S("str", True), properties=PROPS),
})

TEMPLATES: dict[str, TemplateSpec] = {t.name: t for t in (APPLICATION, IDP, HRIS)}


# `property_definitions:` keys per template -> the definition scope of the payload. `resources`
# is a mapping resource type -> definitions (scope `resources:<type>`).
DEFINITION_SCOPES: dict[str, dict[str, str]] = {
    "application": {"application": "application", "users": "users", "groups": "groups",
                    "roles": "roles", "grants": "role_assignments",
                    "access_creds": "access_creds", "resources": "resources"},
    "identity_provider": {"idp": "idp", "users": "users", "groups": "groups", "apps": "apps",
                          "app_assignments": "app_assignments"},
    "hris": {"system": "system", "employees": "employees", "groups": "groups"},
}


def checked_references(template: str, section: str) -> tuple[tuple[str, str], ...]:
    """The fields of a section whose values name entities of another section, and that section:
    what stage 8 checks per entity (granted roles of users and groups are checked with the
    other grants)."""
    spec = TEMPLATES[template].sections[section]
    return tuple((key, str(field.refers_to)) for key, field in spec.fields.items()
                 if field.refers_to is not None and field.kind in ("ref", "ref_list")
                 and not (key == "roles" and section in ("users", "groups")))
