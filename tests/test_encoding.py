"""The payload item encoder: orjson where its text equals the standard encoder's, else json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oaamap.templates import BATCH, Lazy, encode_item, encode_items, iter_json

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


@pytest.mark.parametrize("floats", [True, False])
def test_a_batch_is_the_items_text_joined_by_commas(floats: bool) -> None:
    items = [{"name": "plain", "n": 1}, *([CASES[0]] * 40)]
    for odd in ({"name": "caf\u00e9"}, {"name": "del\x7f"}, {"n": 2**70}):
        batch = [*items, odd, *items]
        want = json.dumps(batch, separators=(",", ":"))[1:-1]
        assert encode_items(batch, floats=floats).decode("ascii") == want


def test_a_batch_with_floats_is_encoded_as_the_standard_encoder_does() -> None:
    batch = [CASES[0], CASES[3], CASES[4]]
    assert encode_items(batch).decode("ascii") == json.dumps(batch, separators=(",", ":"))[1:-1]


def test_a_lazy_list_is_written_in_batches_and_checked_batch_by_batch() -> None:
    items = [{"name": f"u{i}", "tag": "\u00e9" if i == 70 else "x"} for i in range(100)]
    seen: list[tuple[int, int, str]] = []

    def hook(batch: list[dict[str, Any]], definition: str, pointer: str, start: int) -> None:
        assert batch == items[start:start + len(batch)]
        seen.append((start, len(batch), pointer))

    payload = {"a": 1, "items": Lazy(lambda: iter(items), "local_user"), "empty": Lazy(list, "x")}
    text = b"".join(iter_json(payload, hook, "", floats=False)).decode("ascii")
    assert text == json.dumps({"a": 1, "items": items, "empty": []}, separators=(",", ":"))
    assert [start for start, _, _ in seen] == list(range(0, 100, BATCH))
    assert sum(size for _, size, _ in seen) == 100 and {p for _, _, p in seen} == {"/items"}
