"""`oaamap run --incremental`: send only the difference with what Veza holds, when that is safe.

An incremental update is sent only when the state knows exactly what Veza holds: one confirmed
last push, with its payload kept, and no push whose outcome is unknown. Otherwise, and when the
difference is large (more operations than `max_share` of the new payload's entities), when the
payload's header changed (property definitions, names) or when the template has no incremental
update, the full payload is sent. Either way the state then records the full resulting payload.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..diff import NotIncremental, incremental_payload, operation_count
from .guard import payload_counts
from .state import LastPush

__all__ = ["DEFAULT_MAX_INCREMENTAL", "PushChoice", "choose_push"]

DEFAULT_MAX_INCREMENTAL = 0.30


@dataclass(frozen=True)
class PushChoice:
    """What to send: the text, whether it is an incremental update, why, and its size."""

    json_text: str
    incremental: bool
    reason: str
    operations: int = 0


def _entities(template: str, payload: dict[str, Any]) -> int:
    return sum(payload_counts(template, payload).values())


def choose_push(previous: Sequence[LastPush], template: str, payload_json: str,
                max_share: float = DEFAULT_MAX_INCREMENTAL) -> PushChoice:
    """The incremental update from the last push to `payload_json`, or the full payload."""
    def full(reason: str) -> PushChoice:
        return PushChoice(payload_json, False, reason)

    if not previous:
        return full("no previous push is recorded for this Veza URL (a first push is full)")
    if any(not p.confirmed for p in previous):
        return full("the outcome of an earlier push is unknown, so what Veza holds is not known")
    last = previous[0]
    if last.payload is None:
        return full("the state of the last push keeps no payload (written by an older oaamap)")
    new = json.loads(payload_json)
    try:
        update = incremental_payload(template, dict(last.payload), new)
    except NotIncremental as e:
        return full(e.reason)
    operations = operation_count(template, update)
    entities = _entities(template, new)
    if operations > max_share * max(entities, 1):
        return full(f"{operations:,} changes for {entities:,} entities is more than "
                    f"{max_share:.0%}")
    return PushChoice(json.dumps(update, separators=(",", ":")), True,
                      f"{operations:,} change{'s' if operations != 1 else ''}", operations)
