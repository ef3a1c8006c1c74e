"""Helpers shared by the tests of oaamap.veza (a plain module: tests/veza is on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
KEY = "test-key-5f3a9c"


def sample(template: str) -> dict[str, Any]:
    """A payload of REFERENCE sections 2.4, 3 and 4.1, as built by the SDK."""
    return json.loads((DATA / f"{template}.json").read_text(encoding="utf-8"))


def compact(payload: Any) -> str:
    """The wire form of a payload (as the SDK and oaamap serialise it)."""
    return json.dumps(payload, separators=(",", ":"))
