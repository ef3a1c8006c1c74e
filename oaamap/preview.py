"""`oaamap preview`: the first records of each source, raw, with their fields.

For writing a mapping: what a CSV, JSON file, API or query gives before any rule runs. Reads as
little as it can: N records per source (N+1, to tell whether there are more), one page of an
HTTP source, and for a fan-out source only the first N records of its parent.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OaamapError
from .pipeline import plan_mapping, render_context
from .sources import ReadContext, Record

__all__ = ["SourcePreview", "UnknownSourceError", "preview_sources"]

PREVIEW_OPTIONS: Mapping[str, Any] = {"http_pages": 1}


class UnknownSourceError(OaamapError):
    """`--source NAME` names no source of the mapping."""

    exit_code = 2

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(str(self))

    def __str__(self) -> str:
        return (f"oaamap: error: --source `{self.name}`: the mapping has no such source (it "
                f"has: {', '.join(self.known) or 'none'})")


@dataclass(frozen=True)
class SourcePreview:
    """The first records of one source and the fields they have (in first-seen order)."""

    name: str
    records: list[Record]
    fields: list[str]
    more: bool  # the source has more records than shown


def _fields(records: Sequence[Record]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record.data))
    return list(seen)


def preview_sources(path: Path | str, variables: Mapping[str, str] | None = None,
                    names: Sequence[str] = (), count: int = 5) -> list[SourcePreview]:
    """The first `count` records of each source (or of the sources `names`).

    Raises:
        MappingErrors: the mapping is wrong.
        UnknownSourceError: a name is not a source of the mapping.
        SourceError: a source cannot be read.
    """
    mapping, _warnings = plan_mapping(path, variables)
    for name in names:
        if name not in mapping.sources:
            raise UnknownSourceError(name, list(mapping.sources))
    read: dict[str, list[Record]] = {}

    def first(name: str) -> list[Record]:
        if name not in read:
            stream = mapping.sources[name].read(ctx)
            try:
                read[name] = list(itertools.islice(stream, count + 1))
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()  # stop an HTTP or SQL read early, releasing its connection
        return read[name]

    ctx = ReadContext(render_context=render_context(mapping), records_of=first,
                      options=PREVIEW_OPTIONS)
    wanted = list(names) or list(mapping.sources)
    previews = []
    for name in wanted:
        records = first(name)
        shown = records[:count]
        previews.append(SourcePreview(name, shown, _fields(shown), len(records) > count))
    return previews
