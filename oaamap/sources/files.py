"""Opening source files: one place that turns OS errors into SourceErrors naming the source."""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TextIO

from ..errors import SourceError

CHUNK = 1 << 16  # bytes decoded at a time; the NUL check runs once per chunk, not per line


class NulByte(Exception):
    """A NUL byte at `offset` (bytes from the start of the file)."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"NUL byte at offset {offset}")
        self.offset = offset


class _NulGuard(io.BufferedIOBase):
    """A binary file that refuses NUL bytes, searched per chunk at C speed as the text layer
    reads (a text file never holds one; a binary or UTF-16 file read as text always does)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self.raw = raw
        self.offset = 0

    def readable(self) -> bool:
        return True

    def _checked(self, data: bytes) -> bytes:
        at = data.find(b"\0")
        if at >= 0:
            raise NulByte(self.offset + at)
        self.offset += len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._checked(self.raw.read(-1 if size is None else size))

    def read1(self, size: int = -1) -> bytes:
        return self._checked(self.raw.read(size if size and size > 0 else CHUNK))

    def close(self) -> None:
        self.raw.close()
        super().close()


def resolve(base_dir: Path, path_text: str) -> Path:
    """A path from the mapping, resolved against the mapping file's folder unless absolute."""
    path = Path(path_text).expanduser()
    return path if path.is_absolute() else base_dir / path


@contextmanager
def open_text(source: str, path_text: str, encoding: str, forbid_nul: bool = False
              ) -> Iterator[tuple[IO[str], str]]:
    """Open a source file for streaming text reads; yields the handle and the path as shown.

    Relative paths were already resolved by the planner against the mapping file's folder; the
    shown path is relative to the working directory when possible, for short error locations.
    With `forbid_nul`, reading raises `NulByte` at the first NUL byte (see `locate_offset`),
    unless the encoding itself writes NUL bytes (UTF-16, UTF-32).

    Raises:
        SourceError: the file is missing, unreadable, or the encoding is unknown.
    """
    path = Path(path_text)
    shown = _shown(path)
    try:
        codecs.lookup(encoding)
    except LookupError as e:
        raise SourceError(source, f"unknown encoding `{encoding}`", location=shown) from e
    # In UTF-16/32 a NUL byte is part of every ASCII character: only the text can be checked.
    forbid_nul = forbid_nul and b"\0" not in "a\n".encode(encoding)
    try:
        handle: TextIO
        if forbid_nul:
            guard: Any = _NulGuard(open(path, "rb", buffering=0))  # noqa: SIM115
            handle = io.TextIOWrapper(guard, encoding=encoding, newline="")
            handle._CHUNK_SIZE = CHUNK  # type: ignore[attr-defined]  # fewer, larger reads
        else:
            handle = open(path, encoding=encoding, newline="")  # noqa: SIM115
    except OSError as e:
        raise SourceError(source, f"cannot open the file: {e.strerror}", location=shown) from e
    with handle:
        yield handle, shown


def locate_offset(path: Path | str, offset: int) -> tuple[int, int]:
    """The 1-based line and byte column of byte `offset` of a file (for an error found by offset).
    """
    line, start, done = 1, 0, 0
    with open(path, "rb") as f:
        while done < offset:
            chunk = f.read(min(CHUNK, offset - done))
            if not chunk:
                break
            line += chunk.count(b"\n")
            last = chunk.rfind(b"\n")
            if last >= 0:
                start = done + last + 1
            done += len(chunk)
    return line, offset - start + 1


def locate_decode_error(path: Path | str, encoding: str) -> tuple[int, int, str] | None:
    """Where a file first fails to decode: its 1-based line, byte column, and the reason.

    Runs only after decoding failed: the text layer reports an offset inside its read chunk,
    which means nothing to a user.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    number = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as e:
                return number, e.start + 1, e.reason
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:
        return max(number, 1), e.start + 1, e.reason
    return None


def _shown(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative
