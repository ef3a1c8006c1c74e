"""Micro-benchmark: the compiled payload validator against jsonschema, in µs per entity.

Run from the repository root: `python bench/payload_schema.py [users]` (default 10,000 users).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without an install

import jsonschema

from oaamap.payload_schema import PayloadValidator, load_payload_schema


def user(i: int) -> dict[str, Any]:
    """A local user shaped like oaaclient's output, with the usual fields set."""
    return {
        "name": f"user{i}", "email": f"user{i}@example.com", "identities": [f"user{i}@example.com"],
        "groups": ["devs", "all"], "is_active": i % 7 != 0, "created_at": "2023-01-01T00:00:00Z",
        "last_login_at": "2024-01-01T00:00:00Z", "user_type": "human",
        "tags": [{"key": "team", "value": "core"}], "custom_properties": {"employee_num": i},
        "id": f"u{i}",
    }


def payload(users: list[dict[str, Any]]) -> dict[str, Any]:
    app = {"name": "Bench", "application_type": "bench", "description": None,
           "local_users": users, "local_groups": [], "local_roles": [], "local_access_creds": [],
           "local_agents": [], "local_models": [], "tags": [], "custom_properties": {},
           "resources": []}
    return {"custom_property_definition": {"applications": [{"application_type": "bench"}]},
            "applications": [app], "permissions": [], "identity_to_permissions": []}


def per_entity(label: str, run: Callable[[], object], count: int) -> None:
    best = min(_timed(run) for _ in range(3))
    print(f"{label:<52} {best / count * 1e6:8.2f} µs/entity")


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    users = [user(i) for i in range(count)]
    whole = payload(users)
    ours = PayloadValidator("application")
    schema = load_payload_schema("application")
    theirs = jsonschema.Draft202012Validator(schema)
    theirs_user = jsonschema.Draft202012Validator(
        {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/local_user"})
    ptr = "/applications/0/local_users/"
    assert ours.is_valid(whole) and theirs.is_valid(whole) and theirs_user.is_valid(users[0])

    print(f"{count:,} local users, Python {sys.version.split()[0]}, "
          f"jsonschema {metadata.version('jsonschema')}")
    per_entity("oaamap: whole payload, is_valid()", lambda: ours.is_valid(whole), count)
    per_entity("oaamap: whole payload, list(errors())", lambda: list(ours.errors(whole)), count)
    per_entity("oaamap: per entity, list(errors(u, 'local_user', ptr))",
               lambda: [list(ours.errors(u, "local_user", f"{ptr}{i}"))
                        for i, u in enumerate(users)], count)
    broken = payload([{**u, "shoe_size": 44} if i % 100 == 0 else u for i, u in enumerate(users)])
    per_entity("oaamap: whole payload, 1% invalid, list(errors())",
               lambda: list(ours.errors(broken)), count)
    per_entity("jsonschema: per entity, list(iter_errors(u))",
               lambda: [list(theirs_user.iter_errors(u)) for u in users], count)
    per_entity("jsonschema: whole payload, list(iter_errors())",
               lambda: list(theirs.iter_errors(whole)), count)


if __name__ == "__main__":
    main()
