"""The HRIS payload (template `hris`)."""

from __future__ import annotations

from typing import Any

from ..model import Entity, EntitySet
from . import (
    Lazy,
    definitions,
    identities,
    none_list_dict,
    none_list_dict_emptystr,
    register_template,
)

EMPLOYEE_TEXT = (
    "id", "name", "employee_number", "company", "first_name", "last_name", "preferred_name",
    "display_full_name", "canonical_name", "username", "email", "idp_id", "personal_email",
    "home_location", "work_location", "employment_status", "start_date", "termination_date",
    "job_title", "employment_types", "primary_time_zone",
)


def employee(e: Entity) -> dict[str, Any]:
    """An `employees` entry."""
    v = e.values
    entry: dict[str, Any] = {k: v.get(k) for k in EMPLOYEE_TEXT}
    entry["custom_properties"] = e.properties
    entry["is_active"] = v.get("is_active")
    entry["groups"] = identities(v.get("groups", ()), "id")
    entry["managers"] = identities(v.get("managers", ()), "id")
    entry["department"] = {"id": v["department"]} if v.get("department") else None
    entry["cost_center"] = {"id": v["cost_center"]} if v.get("cost_center") else None
    return none_list_dict_emptystr(entry)


def group(e: Entity) -> dict[str, Any]:
    """A `groups` entry."""
    v = e.values
    return none_list_dict({"id": v["id"], "name": v["name"], "group_type": v.get("group_type"),
                           "custom_properties": e.properties})


def lowered(props: dict[str, str]) -> dict[str, str]:
    """HRIS definitions as the SDK keeps them (a case-insensitive dict): names lower-cased, a
    later spelling of a name updating its type in the first one's place."""
    out: dict[str, str] = {}
    for name, kind in props.items():
        out[name.lower()] = kind
    return out


def compile_hris(es: EntitySet) -> dict[str, Any]:
    """The HRIS payload; the system's id is its name, as in the SDK."""
    header = es.header.values
    types = es.property_types
    return {
        "name": header["name"], "hris_type": header["type"],
        "custom_property_definition": {
            "system_properties": lowered(definitions(types, "system")),
            "employee_properties": lowered(definitions(types, "employees")),
            "group_properties": lowered(definitions(types, "groups")),
        },
        "system": {"id": header["name"], "name": header["name"], "url": header.get("url", ""),
                   "idp_providers": list(header.get("idp_types", []))},
        "employees": Lazy(lambda: (employee(e) for e in es.sections.get("employees", ())),
                          "employee"),
        "groups": Lazy(lambda: (group(e) for e in es.sections.get("groups", ())), "hris_group"),
    }


register_template("hris", compile_hris)
