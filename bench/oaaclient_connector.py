"""(a) of the compile benchmark: the synthetic export turned into a payload by hand with oaaclient.

`python bench/oaaclient_connector.py DATA_DIR -o OUT.json` reads the CSVs `bench/compile.py`
generates (`groups.csv`, `roles.csv`, `users.csv`, `resources.csv`, `grants.csv`) with
`csv.DictReader`, builds Veza's `CustomApplication` with the SDK's builder API (the way a connector
author writes it) and writes `json.dumps(app.get_payload(), separators=(",", ":"))`.

It models exactly what the generated `mapping.yaml` says, so its payload must equal oaamap's:

* the permissions of the mapping, with their canonical permissions;
* roles (`role_id` is the unique id, `perms` split on `;`, `sub_roles` nested);
* groups (`group_id`, `name`); users (`user_id`, `login`, `email` also as the identity,
  `department` as the group, `active` yes/no, `created`, custom property `title`);
* resources (`resource_id`, `name`, `type`, custom property `visibility`), a row with a `parent`
  being a sub-resource of that resource;
* grants: `user.add_role(role, resources=[resource])` for a row naming a resource, else
  `apply_to_application=True`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from oaaclient.templates import (
    CustomApplication,
    CustomResource,
    OAAPermission,
    OAAPropertyType,
)

APP_NAME = "Bench App"
APP_TYPE = "BenchApp"

P = OAAPermission
PERMISSIONS: tuple[tuple[str, list[OAAPermission], bool, list[str]], ...] = (
    ("admin", [P.DataRead, P.DataWrite, P.DataCreate, P.DataDelete, P.MetadataRead,
               P.MetadataWrite], True, []),
    ("write", [P.DataWrite, P.DataCreate], False, []),
    ("read", [P.DataRead, P.MetadataRead], True, []),
    ("delete", [P.DataDelete], False, ["project"]),
    ("audit", [P.MetadataRead], False, []),
    ("deploy", [P.NonData], False, ["project"]),
    ("billing", [P.MetadataRead, P.MetadataWrite], False, []),
)
RESOURCE_TYPES = ("project", "dataset")
TRUE_VALUES = {"true", "t", "yes", "y", "1", "active", "enabled"}


def rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a CSV file as dicts."""
    with open(path, newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def build(data: Path) -> CustomApplication:
    """The application of the export in `data`, built with the SDK."""
    app = CustomApplication(name=APP_NAME, application_type=APP_TYPE)
    definitions = app.property_definitions
    definitions.define_local_user_property("title", OAAPropertyType.STRING)
    for resource_type in RESOURCE_TYPES:
        definitions.define_resource_property(resource_type, "visibility", OAAPropertyType.STRING)

    for name, canonical, to_subs, types in PERMISSIONS:
        app.add_custom_permission(name, canonical, apply_to_sub_resources=to_subs,
                                  resource_types=types)

    for row in rows(data / "roles.csv"):
        role = app.add_local_role(row["role_name"], row["perms"].split(";"),
                                  unique_id=row["role_id"])
        if row["sub_roles"]:
            role.add_role(row["sub_roles"])

    for row in rows(data / "groups.csv"):
        app.add_local_group(row["name"], unique_id=row["group_id"])

    for row in rows(data / "users.csv"):
        email = row["email"]
        user = app.add_local_user(row["login"], identities=[email] if email else None,
                                  groups=[row["department"]], unique_id=row["user_id"])
        if email:
            user.email = email
        user.is_active = row["active"].lower() in TRUE_VALUES
        user.created_at = row["created"]
        if row["title"]:
            user.set_property("title", row["title"])

    resources: dict[str, CustomResource] = {}
    for row in rows(data / "resources.csv"):
        if row["parent"]:
            resource = resources[row["parent"]].add_sub_resource(
                row["name"], resource_type=row["type"], unique_id=row["resource_id"])
        else:
            resource = app.add_resource(row["name"], resource_type=row["type"],
                                        unique_id=row["resource_id"])
        resource.set_property("visibility", row["visibility"], ignore_none=True)
        resources[row["resource_id"]] = resource

    users = app.local_users
    for row in rows(data / "grants.csv"):
        user = users[row["user_id"]]
        if row["resource_id"]:
            user.add_role(row["role"], resources=[resources[row["resource_id"]]])
        else:
            user.add_role(row["role"], apply_to_application=True)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Build the payload of DATA_DIR and write it as compact JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the directory of the generated CSVs")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the payload file")
    args = parser.parse_args(argv)
    app = build(args.data)
    with open(args.output, "w", encoding="utf-8") as out:
        out.write(json.dumps(app.get_payload(), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
