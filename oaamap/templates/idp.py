"""The Custom Identity Provider payload (template `identity_provider`)."""

from __future__ import annotations

from typing import Any

from ..model import Entity, EntitySet
from . import Lazy, definitions, identities, none_list_dict, register_template, tags


def _source_identity(e: Entity) -> dict[str, str] | None:
    source = e.values.get("source_identity")
    if not source:
        return None
    return {"identity": source["identity"], "provider_type": source.get("provider_type", "any")}


def user(e: Entity) -> dict[str, Any]:
    """A `users` entry."""
    v = e.values
    return none_list_dict({
        "name": v["name"], "email": v.get("email"), "identity": v.get("identity") or v["name"],
        "full_name": v.get("full_name"), "department": v.get("department"),
        "is_active": v.get("is_active"), "is_guest": v.get("is_guest"),
        "manager_id": v.get("manager"), "groups": identities(v.get("groups", ())),
        "assumed_role_arns": identities(v.get("assumed_role_arns", ())),
        "source_identity": _source_identity(e), "tags": tags(e),
        "custom_properties": e.properties, "app_assignments": v.get("app_assignments"),
        "identity_type": v.get("identity_type")})


def group(e: Entity) -> dict[str, Any]:
    """A `groups` entry."""
    v = e.values
    return none_list_dict({
        "name": v["name"], "identity": v.get("identity") or v["name"],
        "full_name": v.get("full_name"), "is_security_group": v.get("is_security_group"),
        "assumed_role_arns": identities(v.get("assumed_role_arns", ())),
        "groups": identities(v.get("groups", ())), "source_identity": _source_identity(e),
        "tags": tags(e), "custom_properties": e.properties,
        "app_assignments": v.get("app_assignments")})


def app(e: Entity) -> dict[str, Any]:
    """An `apps` entry (every key always present, as in the SDK)."""
    v = e.values
    return {"id": v["id"], "name": v["name"], "description": v.get("description", ""),
            "assumed_role_arns": identities(v.get("assumed_role_arns", ())),
            "custom_properties": dict(e.properties), "tags": tags(e)}


def compile_idp(es: EntitySet) -> dict[str, Any]:
    """The Custom IdP payload."""
    header = es.header.values
    types = es.property_types
    return {
        "custom_property_definition": {
            "domain_properties": definitions(types, "idp"),
            "user_properties": definitions(types, "users"),
            "group_properties": definitions(types, "groups"),
            "app_properties": definitions(types, "apps"),
            "app_assignment_properties": definitions(types, "app_assignments"),
        },
        "name": header["name"], "idp_type": header["type"],
        "domains": [{"name": header["domain"], "tags": tags(es.header),
                     "custom_properties": dict(es.header.properties)}],
        "users": Lazy(lambda: (user(e) for e in es.sections.get("users", ())), "idp_user"),
        "groups": Lazy(lambda: (group(e) for e in es.sections.get("groups", ())), "idp_group"),
        "apps": Lazy(lambda: (app(e) for e in es.sections.get("apps", ())), "idp_app"),
    }


register_template("identity_provider", compile_idp)
