"""Helpers of the fault suite: secret greps over outputs and every file a run leaves behind."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterable
from pathlib import Path


def _file_texts(path: Path) -> Iterable[tuple[Path, str]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        raw = file.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError, EOFError):
                raw = gzip.decompress(raw)
        yield file, raw.decode("utf-8", "replace")


def assert_no_secret(secret: str, texts: Iterable[str] = (), paths: Iterable[Path] = ()) -> None:
    """Fail if `secret` appears in any text, or in any file under `paths` (gzip files unpacked).

    Use it on stdout/stderr of a run, its logs, and the state, spool and data directories.
    """
    assert secret, "an empty secret would match everything"
    for i, text in enumerate(texts):
        assert secret not in text, f"secret found in output #{i}: ...{_around(text, secret)}..."
    for path in paths:
        if not path.exists():
            continue
        for file, text in _file_texts(path):
            assert secret not in text, f"secret found in {file}: ...{_around(text, secret)}..."


def _around(text: str, secret: str) -> str:
    at = text.find(secret)
    return text[max(0, at - 60): at + len(secret) + 60].replace(secret, "<SECRET>")
