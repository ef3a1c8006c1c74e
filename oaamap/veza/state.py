"""Push safety: per-data-source state (last pushed counts), the shrink guard, the spool, the lock.

Everything lives in one directory (`--state-dir`, default `$XDG_STATE_HOME/oaamap` or
`~/.local/state/oaamap`), with one file stem per (provider, data source):

    <stem>.state.json     counts and ids of the last successful push
    <stem>.lock           held while a run pushes to that data source
    spool/<stem>.json     the payload of a failed push, sent again by `oaamap push --resend`
    spool/<stem>.meta.json    its provider, data source, template and failure
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OaamapError

__all__ = [
    "DEFAULT_MAX_SHRINK",
    "LockedError",
    "Shrink",
    "ShrinkError",
    "SpooledPush",
    "StateStore",
    "default_state_dir",
    "find_shrinks",
    "payload_counts",
    "read_spool_meta",
]

DEFAULT_MAX_SHRINK = 0.20

# Entity kinds counted in each template's payload: the lists the shrink guard compares.
_APPLICATION_KINDS = (
    "local_users", "local_groups", "local_roles", "local_access_creds", "local_agents",
    "local_models", "resources",
)
_TOP_LEVEL_KINDS: dict[str, tuple[str, ...]] = {
    "application": ("permissions", "identity_to_permissions"),
    "identity_provider": ("users", "groups", "apps"),
    "hris": ("employees", "groups"),
}


class ShrinkError(OaamapError):
    """A new payload drops more of an entity kind than allowed: it is not pushed."""

    exit_code = 5

    def __init__(self, data_source: str, shrinks: list[Shrink], max_shrink: float) -> None:
        self.data_source = data_source
        self.shrinks = shrinks
        self.max_shrink = max_shrink
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [
            f"error: refusing to push to data source `{self.data_source}`: the payload drops "
            f"more than {self.max_shrink:.0%} of its entities since the last successful push"
        ]
        lines += [f"  - {s}" for s in self.shrinks]
        lines.append("  nothing was pushed; check the sources, or pass --allow-shrink if this "
                     "is intended (or raise --max-shrink)")
        return "\n".join(lines)


class LockedError(OaamapError):
    """Another run is pushing to the same data source."""

    exit_code = 5

    def __init__(self, data_source: str, lock_path: Path, holder: str) -> None:
        self.data_source = data_source
        self.lock_path = lock_path
        self.holder = holder
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"error: another oaamap run ({self.holder}) is pushing to data source "
            f"`{self.data_source}`; nothing was pushed (lock file `{self.lock_path}`; delete it "
            "only if that run is gone)"
        )


@dataclass(frozen=True)
class Shrink:
    """One entity kind that shrank: counts before and after, and the fraction dropped."""

    kind: str
    before: int
    after: int

    @property
    def fraction(self) -> float:
        """The share of `before` that is gone."""
        return (self.before - self.after) / self.before if self.before else 0.0

    def __str__(self) -> str:
        return f"{self.kind}: {self.before:,} -> {self.after:,} (-{self.fraction:.0%})"


@dataclass(frozen=True)
class SpooledPush:
    """A payload kept after a failed push, with what is needed to send it again."""

    payload_path: Path
    provider: str
    data_source: str
    template: str
    failed_at: str
    error: str
    icon: str | None = None


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/oaamap`, or `~/.local/state/oaamap`."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "oaamap"


def _count_resources(resources: Any) -> int:
    if not isinstance(resources, list):
        return 0
    return sum(
        1 + _count_resources(r.get("sub_resources")) for r in resources if isinstance(r, dict)
    )


def payload_counts(template: str, payload: Mapping[str, Any]) -> dict[str, int]:
    """Entity counts of a payload, per kind (resources include sub-resources).

    Example:
        >>> payload_counts("hris", {"employees": [{}, {}], "groups": []})
        {'employees': 2, 'groups': 0}
    """
    counts: dict[str, int] = {}
    if template == "application":
        apps = [a for a in payload.get("applications") or [] if isinstance(a, dict)]
        for kind in _APPLICATION_KINDS:
            counter = _count_resources if kind == "resources" else _len
            counts[kind] = sum(counter(app.get(kind)) for app in apps)
    for kind in _TOP_LEVEL_KINDS.get(template, ()):
        counts[kind] = _len(payload.get(kind))
    return counts


def _len(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def find_shrinks(
    before: Mapping[str, int], after: Mapping[str, int], max_shrink: float
) -> list[Shrink]:
    """The kinds whose count dropped by more than `max_shrink` (a fraction, 0.2 = 20%)."""
    shrinks = [Shrink(kind, int(n), int(after.get(kind, 0))) for kind, n in before.items() if n]
    return [s for s in shrinks if s.fraction > max_shrink + 1e-12]


def _stem(provider: str, data_source: str) -> str:
    digest = hashlib.sha256(f"{provider}\0{data_source}".encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{provider}--{data_source}")[:80]
    return f"{slug}-{digest}"


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: a temporary file renamed over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StateStore:
    """The state directory: last-push records, locks and spooled payloads.

    Args:
        root: the directory (created on first write).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, provider: str, data_source: str, suffix: str) -> Path:
        return self.root / f"{_stem(provider, data_source)}{suffix}"

    # -- last successful push --------------------------------------------------------------

    def last_push(self, provider: str, data_source: str) -> dict[str, Any] | None:
        """The record of the last successful push, or None (also when unreadable)."""
        path = self._path(provider, data_source, ".state.json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def record_push(
        self, provider: str, data_source: str, counts: Mapping[str, int], **extra: Any
    ) -> Path:
        """Save the counts (and ids, sizes...) of a successful push; the state file."""
        path = self._path(provider, data_source, ".state.json")
        record = {
            "provider": provider, "data_source": data_source, "counts": dict(counts),
            "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra,
        }
        _write_json(path, record)
        return path

    def check_shrink(
        self, provider: str, data_source: str, counts: Mapping[str, int], max_shrink: float
    ) -> list[Shrink]:
        """The shrinks of `counts` against the last successful push (none on a first push)."""
        last = self.last_push(provider, data_source)
        before = last.get("counts") if last else None
        return find_shrinks(before, counts, max_shrink) if isinstance(before, dict) else []

    # -- lock -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, provider: str, data_source: str) -> Iterator[Path]:
        """Hold the data source's lock for the `with` block.

        A lock left by a dead process on this host is taken over.

        Raises:
            LockedError: a live process holds it.
        """
        path = self._path(provider, data_source, ".lock")
        self.root.mkdir(parents=True, exist_ok=True)
        self._acquire(path, data_source)
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _acquire(self, path: Path, data_source: str) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder(path)
                if holder is None:  # stale: its process is gone
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    continue
                raise LockedError(data_source, path, holder) from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
            return
        raise LockedError(data_source, path, "unknown")

    @staticmethod
    def _holder(path: Path) -> str | None:
        """Who holds the lock (`pid N on HOST`), or None when the lock is stale."""
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            pid, host = int(info["pid"]), str(info["host"])
        except (OSError, ValueError, KeyError, TypeError):
            # Being written right now, or garbage: stale only if old.
            try:
                age = time.time() - path.stat().st_mtime
            except OSError:
                return None
            return None if age > 60 else "unknown"
        if host == socket.gethostname() and not _pid_alive(pid):
            return None
        return f"pid {pid} on {host}"

    # -- spool ------------------------------------------------------------------------------

    def spool(self, spooled: SpooledPush, payload_json: str) -> Path:
        """Keep the payload of a failed push; the path of the kept payload."""
        stem = _stem(spooled.provider, spooled.data_source)
        payload_path = self.root / "spool" / f"{stem}.json"
        payload_path.parent.mkdir(parents=True, exist_ok=True)
        payload_path.write_text(payload_json, encoding="utf-8")
        meta = {
            "provider": spooled.provider, "data_source": spooled.data_source,
            "template": spooled.template, "failed_at": spooled.failed_at,
            "error": spooled.error, "icon": spooled.icon,
        }
        _write_json(payload_path.with_suffix(".meta.json"), meta)
        return payload_path

    def spooled(self) -> list[SpooledPush]:
        """Every spooled payload, oldest failure first."""
        found = []
        for meta_path in sorted((self.root / "spool").glob("*.meta.json")):
            stem = meta_path.name.removesuffix(".meta.json")
            spooled = read_spool_meta(meta_path.with_name(f"{stem}.json"))
            if spooled is not None:
                found.append(spooled)
        return sorted(found, key=lambda s: s.failed_at)

    def unspool(self, provider: str, data_source: str) -> None:
        """Forget the spooled payload of a data source (after a successful push)."""
        payload_path = self.root / "spool" / f"{_stem(provider, data_source)}.json"
        for path in (payload_path, payload_path.with_suffix(".meta.json")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def read_spool_meta(payload_path: Path) -> SpooledPush | None:
    """The spool record beside a payload file (`X.meta.json` for `X.json`), or None."""
    try:
        meta = json.loads(payload_path.with_suffix(".meta.json").read_text(encoding="utf-8"))
        return SpooledPush(
            payload_path, str(meta["provider"]), str(meta["data_source"]), str(meta["template"]),
            str(meta.get("failed_at", "")), str(meta.get("error", "")), meta.get("icon"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
