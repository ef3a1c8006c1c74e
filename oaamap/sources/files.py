"""Opening source files: one place that turns OS errors into SourceErrors naming the source."""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import SourceError


def resolve(base_dir: Path, path_text: str) -> Path:
    """A path from the mapping, resolved against the mapping file's folder unless absolute."""
    path = Path(path_text).expanduser()
    return path if path.is_absolute() else base_dir / path


@contextmanager
def open_text(source: str, path_text: str, encoding: str) -> Iterator[tuple[IO[str], str]]:
    """Open a source file for streaming text reads; yields the handle and the path as shown.

    Relative paths were already resolved by the planner against the mapping file's folder; the
    shown path is relative to the working directory when possible, for short error locations.

    Raises:
        SourceError: the file is missing, unreadable, or the encoding is unknown.
    """
    path = Path(path_text)
    shown = _shown(path)
    try:
        codecs.lookup(encoding)
    except LookupError as e:
        raise SourceError(source, f"unknown encoding `{encoding}`", location=shown) from e
    try:
        handle = open(path, encoding=encoding, newline="")  # noqa: SIM115
    except OSError as e:
        raise SourceError(source, f"cannot open the file: {e.strerror}", location=shown) from e
    with handle:
        yield handle, shown


def _shown(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative
