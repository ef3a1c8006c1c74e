"""Push safety: the state of each data source (what Veza last accepted), the lock, the spool.

Everything lives in one directory (`--state-dir`, default `$XDG_STATE_HOME/oaamap` or
`~/.local/state/oaamap`). The last push is kept per (Veza URL, provider, data source), so an
emulator run never touches the guard of a real tenant; the lock and the spool are per
(provider, data source):

    <url>--<provider>--<data source>-<hash>.state.json   the state file (version 2, below)
    <…same stem…>.<sha12>.payload.json.gz                the payload Veza last accepted (gzip JSON)
    <provider>--<data source>-<hash>.lock                held while a run pushes to that data source
    spool/<provider>--<data source>-<hash>.json          the payload of a failed push (`--resend`)
    spool/<…>.meta.json                                  where it was going, and its failure

A state file written by oaamap before version 2 (`<provider>--<data source>-<hash10>.state.json`,
no URL) is still read, as counts only, by every URL that has no state of its own yet: it can only
make the guard stricter. Unreadable or malformed state refuses the push (`StateError`) until
`--ignore-state` is given.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import socket
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OaamapError
from .guard import (
    DEFAULT_MAX_SHRINK,
    Shrink,
    ShrinkError,
    find_shrinks,
    payload_counts,
)

__all__ = [
    "DEFAULT_MAX_SHRINK",
    "LOCK_MAX_AGE",
    "STATE_VERSION",
    "LastPush",
    "LockedError",
    "Shrink",
    "ShrinkError",
    "SpooledPush",
    "StateDirError",
    "StateError",
    "StateKey",
    "StateStore",
    "StateWriteError",
    "default_state_dir",
    "find_shrinks",
    "payload_counts",
    "read_spool_meta",
    "state_url",
]

STATE_VERSION = 2
# A lock of another host cannot be checked for liveness: it expires after this many seconds.
LOCK_MAX_AGE = 12 * 3600
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class StateError(OaamapError):
    """The state of a data source cannot be read or makes no sense: the push is refused."""

    exit_code = 5

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"error: refusing to push: the state file `{self.path}` {self.problem}, so the "
            "shrink guard cannot compare with the last push\n"
            "  nothing was pushed; repair or remove the file, or pass --ignore-state to push "
            "as if there were no previous push (the file is then replaced)"
        )


class StateDirError(OaamapError):
    """The state directory cannot be used (not a directory, not writable): nothing is pushed."""

    exit_code = 5

    def __init__(self, root: Path, reason: str) -> None:
        self.root = root
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        return (f"error: cannot use the state directory `{self.root}` ({self.reason}); nothing "
                "was pushed (--state-dir DIR chooses another)")


class StateWriteError(OaamapError):
    """Veza has the payload, but the state file could not be written."""

    exit_code = 5

    def __init__(self, path: Path, reason: str, applied: bool = True) -> None:
        self.path = path
        self.reason = reason
        self.applied = applied
        super().__init__(str(self))

    def __str__(self) -> str:
        what = "the push was applied, but " if self.applied else ""
        return (
            f"error: {what}the state file `{self.path}` could not be written ({self.reason}): "
            "the next push will be compared with an older state; fix the state directory"
        )


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
            f"`{self.data_source}`; nothing was pushed (lock file `{self.lock_path}`; it "
            "expires by itself when that run is gone)"
        )


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
    veza_url: str | None = None  # normalised (`state_url`); None in spool files of older versions
    empty_kinds: tuple[str, ...] = ()  # kinds the mapping has rules for that came out empty


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/oaamap`, or `~/.local/state/oaamap`."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "oaamap"


def state_url(url: str) -> str:
    """The Veza URL as a state key: scheme, lower-cased host, port (default ones dropped), path.

    User info, query and fragment are dropped; so is a trailing slash.

    Example:
        >>> state_url("HTTPS://Acme.VezaCloud.com:443/")
        'https://acme.vezacloud.com'
    """
    parts = urllib.parse.urlsplit(url.strip() if "://" in url else f"https://{url.strip()}")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
        host = parts.netloc.rpartition("@")[2].lower()
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def _slug(text: str, limit: int = 80) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:limit].lstrip(".") or "_"


def _stem(provider: str, data_source: str) -> str:
    """The file stem of a (provider, data source): the lock, the spool, version-1 state."""
    # Unchanged since version 1, so that version-1 state files are found.
    digest = hashlib.sha256(f"{provider}\0{data_source}".encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{provider}--{data_source}")[:80]
    return f"{slug}-{digest}"


@dataclass(frozen=True)
class StateKey:
    """What a state file is about: a Veza URL (see `state_url`), a provider, a data source."""

    url: str
    provider: str
    data_source: str

    @classmethod
    def of(cls, url: str, provider: str, data_source: str) -> StateKey:
        """The key with `url` normalised."""
        return cls(state_url(url), provider, data_source)

    @property
    def stem(self) -> str:
        """The file stem of the state file and of its payload files."""
        digest = hashlib.sha256(
            f"{self.url}\0{self.provider}\0{self.data_source}".encode()).hexdigest()[:16]
        host = urllib.parse.urlsplit(self.url).netloc
        return f"{_slug(host, 40)}--{_slug(f'{self.provider}--{self.data_source}')}-{digest}"


@dataclass(frozen=True)
class LastPush:
    """One push recorded in a state file: when, its counts, and its payload when kept.

    Attributes:
        payload: the pushed payload (None for a version-1 state file, which kept counts only).
        confirmed: Veza is known to hold it (False: the outcome of that push is unknown).
        path: the state file it was read from.
    """

    pushed_at: str
    counts: Mapping[str, int]
    payload: Mapping[str, Any] | None
    confirmed: bool
    path: Path
    info: Mapping[str, Any] = field(default_factory=dict)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` all or nothing: a fsynced temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def _write_json(path: Path, data: Any) -> None:
    _atomic_write(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- reading a state file ---------------------------------------------------------------------


def _counts(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    ok = all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
             for k, v in value.items())
    return dict(value) if ok else None


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except OSError as e:
        raise StateError(path, f"cannot be read ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise StateError(path, "is not UTF-8 text") from e
    try:
        return json.loads(text)
    except ValueError as e:
        raise StateError(path, f"is not valid JSON ({e})") from e


def _read_payload(state_path: Path, entry: Mapping[str, Any]) -> dict[str, Any]:
    name, digest = entry.get("payload_file"), entry.get("sha256")
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".json.gz"):
        raise StateError(state_path, "names no payload file (`payload_file`)")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise StateError(state_path, "has no valid `sha256` of its payload")
    path = state_path.with_name(name)
    try:
        raw = gzip.decompress(path.read_bytes())
    except FileNotFoundError as e:
        raise StateError(state_path, f"refers to the payload `{path}`, which is missing") from e
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise StateError(state_path, f"refers to the payload `{path}`, which cannot be "
                                     f"read ({e})") from e
    if hashlib.sha256(raw).hexdigest() != digest:
        raise StateError(state_path, f"refers to the payload `{path}`, whose SHA-256 does not "
                                     "match")
    try:
        payload = json.loads(raw)
    except ValueError as e:
        raise StateError(state_path, f"refers to the payload `{path}`, which is not JSON") from e
    if not isinstance(payload, dict):
        raise StateError(state_path, f"refers to the payload `{path}`, which is not an object")
    return payload


def _entry(path: Path, entry: Any, name: str, confirmed: bool) -> LastPush:
    if not isinstance(entry, dict):
        raise StateError(path, f"has no `{name}` object")
    counts = _counts(entry.get("counts"))
    if counts is None:
        raise StateError(path, f"has no valid `{name}.counts` (kind -> count)")
    return LastPush(str(entry.get("pushed_at", "")), counts, _read_payload(path, entry),
                    confirmed, path, entry)


def _check_v2(path: Path, data: Any, key: StateKey) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise StateError(path, f"holds a JSON {type(data).__name__}, not an object")
    if data.get("version") != STATE_VERSION:
        raise StateError(path, f"has version {data.get('version')!r}, expected {STATE_VERSION}")
    found = (data.get("url"), data.get("provider"), data.get("data_source"))
    if found != (key.url, key.provider, key.data_source):
        raise StateError(path, "is about another URL, provider or data source")
    return data


class StateStore:
    """The state directory: last-push records, locks and spooled payloads.

    Args:
        root: the directory (created on first write).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, provider: str, data_source: str, suffix: str) -> Path:
        return self.root / f"{_stem(provider, data_source)}{suffix}"

    def state_path(self, key: StateKey) -> Path:
        """The state file of a (URL, provider, data source)."""
        return self.root / f"{key.stem}.state.json"

    def legacy_state_path(self, provider: str, data_source: str) -> Path:
        """Where oaamap before state version 2 kept the counts (no URL in the key)."""
        return self._path(provider, data_source, ".state.json")

    # -- last push -------------------------------------------------------------------------

    def previous(self, key: StateKey) -> list[LastPush]:
        """What Veza may hold for `key`: the last confirmed push, and an unconfirmed one.

        Empty when nothing was pushed to that URL yet and no version-1 state exists.

        Raises:
            StateError: a state file (or its payload) is unreadable or malformed.
        """
        path = self.state_path(key)
        try:
            data = _check_v2(path, _read_json(path), key)
        except FileNotFoundError:
            return self._legacy(key)
        found = []
        if data.get("last_push") is not None:
            found.append(_entry(path, data["last_push"], "last_push", True))
        if data.get("unconfirmed") is not None:
            found.append(_entry(path, data["unconfirmed"], "unconfirmed", False))
        if not found:
            raise StateError(path, "records no push (`last_push` and `unconfirmed` missing)")
        return found

    def _legacy(self, key: StateKey) -> list[LastPush]:
        path = self.legacy_state_path(key.provider, key.data_source)
        try:
            data = _read_json(path)
        except FileNotFoundError:
            return []
        counts = _counts(data.get("counts")) if isinstance(data, dict) else None
        if counts is None:
            raise StateError(path, "has no valid `counts` (kind -> count)")
        return [LastPush(str(data.get("pushed_at", "")), counts, None, True, path,
                         {"legacy": True})]

    def record_push(
        self, key: StateKey, template: str, payload_json: str, counts: Mapping[str, int], *,
        confirmed: bool = True, **extra: Any,
    ) -> Path:
        """Keep a push: its payload (gzip JSON) and counts; the state file.

        A confirmed push (Veza holds it) becomes `last_push` and clears `unconfirmed`; an
        unconfirmed one (outcome unknown) is kept beside the last confirmed push, and the guard
        compares later payloads with both.
        """
        path = self.state_path(key)
        try:
            return self._record(path, key, template, payload_json, counts, confirmed, extra)
        except OSError as e:
            raise StateWriteError(path, e.strerror or str(e), confirmed) from e

    def _record(self, path: Path, key: StateKey, template: str, payload_json: str,
                counts: Mapping[str, int], confirmed: bool, extra: Mapping[str, Any]) -> Path:
        try:
            data = _check_v2(path, _read_json(path), key)
        except (FileNotFoundError, StateError):
            data = {}
        raw = payload_json.encode("utf-8")
        digest = hashlib.sha256(raw).hexdigest()
        payload_name = f"{key.stem}.{digest[:12]}.payload.json.gz"
        # Level 6: a large payload is kept in seconds; level 9 gains little on JSON.
        _atomic_write(path.with_name(payload_name), gzip.compress(raw, 6, mtime=0))
        entry = {"pushed_at": _now(), "counts": dict(counts), "bytes": len(raw),
                 "sha256": digest, "payload_file": payload_name, **extra}
        record = {
            "version": STATE_VERSION, "url": key.url, "provider": key.provider,
            "data_source": key.data_source, "template": template,
            "last_push": entry if confirmed else data.get("last_push"),
            "unconfirmed": None if confirmed else entry,
        }
        _write_json(path, record)
        self._remove_unused_payloads(key, record)
        return path

    def _remove_unused_payloads(self, key: StateKey, record: Mapping[str, Any]) -> None:
        used = {e.get("payload_file") for e in (record["last_push"], record["unconfirmed"])
                if isinstance(e, dict)}
        for old in self.root.glob(f"{glob_escape(key.stem)}.*.payload.json.gz"):
            if old.name not in used:
                with contextlib.suppress(OSError):
                    old.unlink()

    # -- lock -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, provider: str, data_source: str) -> Iterator[Path]:
        """Hold the data source's lock for the `with` block.

        The lock file records host, pid and the process start time. A lock is taken over when
        it is stale: its process is gone, its pid now belongs to another process (another start
        time), or it comes from another host and is older than `LOCK_MAX_AGE`.

        Raises:
            LockedError: a live process holds it.
        """
        path = self._path(provider, data_source, ".lock")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._acquire(path, data_source)
        except OSError as e:
            raise StateDirError(self.root, e.strerror or str(e)) from e
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _acquire(self, path: Path, data_source: str) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "start": process_start(os.getpid()), "since": time.time()}
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = lock_holder(path)
                if holder is None:  # stale
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    continue
                raise LockedError(data_source, path, holder) from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
            return
        raise LockedError(data_source, path, "unknown")

    # -- spool ------------------------------------------------------------------------------

    def spool(self, spooled: SpooledPush, payload_json: str) -> Path:
        """Keep the payload of a failed push; the path of the kept payload."""
        stem = _stem(spooled.provider, spooled.data_source)
        payload_path = self.root / "spool" / f"{stem}.json"
        _atomic_write(payload_path, payload_json.encode("utf-8"))
        meta = {
            "provider": spooled.provider, "data_source": spooled.data_source,
            "template": spooled.template, "failed_at": spooled.failed_at,
            "error": spooled.error, "icon": spooled.icon, "veza_url": spooled.veza_url,
            "empty_kinds": list(spooled.empty_kinds),
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
            meta.get("veza_url"), tuple(str(kind) for kind in meta.get("empty_kinds") or ()),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def glob_escape(text: str) -> str:
    """`text` with the glob metacharacters `*?[` made literal."""
    return re.sub(r"([*?\[])", r"[\1]", text)


# -- lock liveness ----------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def process_start(pid: int) -> str | None:
    """The start time of process `pid` as the kernel counts it (Linux `/proc/PID/stat` field
    22, clock ticks since boot), or None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # Field 2 (the command) may hold spaces and parentheses: count fields after the last `)`.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def lock_holder(path: Path, now: float | None = None) -> str | None:
    """Who holds the lock (`pid N on HOST, since ...`), or None when the lock is stale."""
    now = time.time() if now is None else now
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        pid, host = int(info["pid"]), str(info["host"])
        since = float(info.get("since", 0))
        start = info.get("start")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        # Being written right now, or garbage: stale only if old.
        try:
            age = now - path.stat().st_mtime
        except OSError:
            return None
        return None if age > 60 else "unknown"
    started = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(since)) if since else "?"
    holder = f"pid {pid} on {host}, since {started}"
    if host != socket.gethostname():
        return None if now - since > LOCK_MAX_AGE else holder
    if not _pid_alive(pid):
        return None
    current = process_start(pid)
    if start is not None and current is not None and str(start) != current:
        return None  # the pid was reused by another process
    if start is None and current is None and now - since > LOCK_MAX_AGE:
        return None  # no start time to compare: trust the pid for LOCK_MAX_AGE only
    return holder
