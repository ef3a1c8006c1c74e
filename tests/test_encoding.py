"""The payload item encoder: orjson where its text equals the standard encoder's, else json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oaamap.templates import encode_item

CASES: list[Any] = [
    {"name": "plain", "groups": ["a", "b"], "is_active": True, "n": 3},
    {"name": "caf\u00e9 \u2603 \U0001f600"},  # non-ASCII: escaped as \\uXXXX like ensure_ascii
    {"name": "del\x7fchar", "ctl": "\x00\x1f\b\f\n\r\t\"\\/"},
    {"custom_properties": {"ratio": 1e-7, "big": 1e16, "half": 0.5, "neg": -0.0}},
    {"custom_properties": {"nan": float("nan"), "inf": float("inf"), "minf": float("-inf")}},
    {"custom_properties": {"huge": 2**70, "tiny": -(2**70)}},
    {"nested": [{"a": [1.5e-300, None, False]}, ()]},
]


@pytest.mark.parametrize("item", CASES)
def test_encode_item_matches_json_dumps(item: Any) -> None:
    assert encode_item(item) == json.dumps(item, separators=(",", ":"))


def test_without_floats_the_walk_is_skipped_and_text_is_the_same() -> None:
    item = {"name": "x\u00e9", "roles": [{"role": "r", "resources": ["a.b"]}], "n": 2**70}
    assert encode_item(item, floats=False) == json.dumps(item, separators=(",", ":"))
