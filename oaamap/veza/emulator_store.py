"""The emulator's state: providers, data sources, icons, multipart uploads and accepted payloads.

Thread-safe (one lock). With a data directory, providers and data sources survive restarts
(`emulator.json`) and every accepted payload is written, decoded, as
`payloads/<provider>/<data source>/<NNNN>.json` (plus `latest.json` and `<NNNN>.meta.json`).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEEP_PUSHES = 200
KEEP_REQUESTS = 20_000

__all__ = ["ApiError", "PushRecord", "RequestRecord", "Store", "Upload", "slug"]


class ApiError(Exception):
    """An error answer of the emulated API, in Veza's shape (raised inside request handlers)."""

    def __init__(
        self, status: int, code: str, message: str,
        violations: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.violations = list(violations)


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator received (for tests): method, path, query, body size, status."""

    method: str
    path: str
    query: str
    body_bytes: int
    status: int
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class PushRecord:
    """One accepted payload: where it went, how it came, its text and Veza's warnings."""

    provider_id: str
    provider: str
    data_source_id: str
    data_source: str
    sequence: int
    json_text: str
    warnings: list[str]
    compression: str
    multipart: bool
    path: Path | None = None
    incremental: bool = False  # it came as an incremental update; json_text is the result

    def payload(self) -> Any:
        """The decoded payload."""
        return json.loads(self.json_text)


@dataclass
class Upload:
    """A multipart upload session: its data source and the parts received by sequence number."""

    provider_id: str
    data_source_id: str
    parts: dict[int, bytes] = field(default_factory=dict)


MAX_SLUG = 100


def slug(name: str) -> str:
    """A file-name-safe form of a provider or data source name: one path component, never
    `.`/`..` nor hidden, at most `MAX_SLUG` characters (longer names end with a hash).

    Example:
        >>> slug("Acme Portal"), slug("../../x"), slug("a/b")
        ('Acme Portal', '_.._.._x', 'a_b')
    """
    safe = re.sub(r"[^A-Za-z0-9._ -]+", "_", name).strip() or "_"
    if safe.startswith("."):
        safe = f"_{safe}"
    if len(safe) > MAX_SLUG:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        safe = f"{safe[:MAX_SLUG - 13]}-{digest}"
    return safe


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _now_precise() -> str:
    """UTC time to the microsecond: two pushes in a row get different `updated_at`."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def _provider(name: str, template: str, options: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "external_id": "", "name": name, "custom_template": template,
        "custom_templates": [template], "state": "ENABLED",
        "provisioning": bool(options.get("provisioning", False)),
        "application_types": [], "resource_types": [], "idp_types": [], "hris_types": [],
        "schema_definition_json": "e30=",
    }


class Store:
    """Everything the emulator knows, optionally persisted under `data_dir`."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.data_dir = data_dir
        self.providers: dict[str, dict[str, Any]] = {}
        self.data_sources: dict[str, dict[str, dict[str, Any]]] = {}
        self.icons: dict[str, dict[str, str]] = {}
        self.uploads: dict[str, Upload] = {}
        self.pushes: list[PushRecord] = []
        self.requests: list[RequestRecord] = []
        self.identities: dict[str, set[str]] = {}  # data source id -> IdP names (lowercased)
        self.sequences: dict[str, int] = {}
        self.held: dict[str, dict[str, Any]] = {}  # data source id -> the payload it holds
        if data_dir is not None:
            self._load()

    # -- providers ----------------------------------------------------------------------

    def provider(self, provider_id: str) -> dict[str, Any]:
        """The provider, or a 404 `ApiError`."""
        found = self.providers.get(provider_id)
        if found is None:
            raise ApiError(404, "NotFound", f"provider {provider_id} not found")
        return found

    def create_provider(
        self, name: str, template: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        """A new provider (409 when the name is taken)."""
        with self.lock:
            if any(p["name"] == name for p in self.providers.values()):
                raise ApiError(409, "AlreadyExists", f"provider with name {name} already exists")
            created = _provider(name, template, options)
            self.providers[created["id"]] = created
            self.data_sources[created["id"]] = {}
            self.save()
            return created

    def delete_provider(self, provider_id: str) -> None:
        """Forget a provider, its data sources and icon (pushed files stay on disk)."""
        with self.lock:
            self.provider(provider_id)
            for ds_id in self.data_sources.pop(provider_id, {}):
                self.identities.pop(ds_id, None)
            self.providers.pop(provider_id)
            self.icons.pop(provider_id, None)
            self.save()

    def set_icon(self, provider_id: str, icon: dict[str, str] | None) -> None:
        """Set (or with None, remove) a provider's icon."""
        with self.lock:
            self.provider(provider_id)
            if icon is None:
                self.icons.pop(provider_id, None)
            else:
                self.icons[provider_id] = icon
            self.save()

    # -- data sources -------------------------------------------------------------------

    def data_source(self, provider_id: str, ds_id: str) -> dict[str, Any]:
        """The data source, or a 404 `ApiError`."""
        found = self.data_sources.get(self.provider(provider_id)["id"], {}).get(ds_id)
        if found is None:
            raise ApiError(404, "NotFound", f"data source {ds_id} not found")
        return found

    def create_data_source(self, provider_id: str, name: str) -> dict[str, Any]:
        """A new data source under a provider (409 when the name is taken there)."""
        with self.lock:
            self.provider(provider_id)
            sources = self.data_sources.setdefault(provider_id, {})
            if any(d["name"] == name for d in sources.values()):
                raise ApiError(409, "AlreadyExists",
                               f"data source with name {name} already exists")
            created = {"id": str(uuid.uuid4()), "name": name, "status": "PENDING",
                       "created_at": _now_precise(), "updated_at": None}
            sources[str(created["id"])] = created
            self.save()
            return created

    def delete_data_source(self, provider_id: str, ds_id: str) -> None:
        """Forget a data source."""
        with self.lock:
            self.data_source(provider_id, ds_id)
            self.data_sources[provider_id].pop(ds_id)
            self.identities.pop(ds_id, None)
            self.held.pop(ds_id, None)
            self.save()

    def known_identities(self) -> set[str]:
        """Lowercased names, identities and emails of every IdP user and group pushed so far."""
        with self.lock:
            return set().union(*self.identities.values()) if self.identities else set()

    # -- payloads ------------------------------------------------------------------------

    def accept_push(
        self, provider_id: str, ds_id: str, json_text: str, payload: dict[str, Any],
        warnings: list[str], *, compression: str, multipart: bool, incremental: bool = False,
    ) -> PushRecord:
        """Record an accepted payload: status SUCCESS, IdP names indexed, file written."""
        with self.lock:
            provider = self.provider(provider_id)
            source = self.data_source(provider_id, ds_id)
            source["status"] = "SUCCESS"
            source["updated_at"] = _now_precise()
            _note_types(provider, payload)
            if provider["custom_template"] == "identity_provider":
                self.identities[ds_id] = _idp_names(payload)
            sequence = self.sequences.get(ds_id, 0) + 1
            self.sequences[ds_id] = sequence
            record = PushRecord(
                provider_id, provider["name"], ds_id, source["name"], sequence, json_text,
                warnings, compression, multipart, incremental=incremental,
            )
            self.held[ds_id] = payload
            record = self._write_payload(record)
            self.pushes.append(record)
            del self.pushes[:-KEEP_PUSHES]  # a long-running emulator keeps the last ones only
            self.save()
            return record

    def held_payload(self, provider_id: str, ds_id: str) -> dict[str, Any] | None:
        """The payload the data source holds (its last accepted push), or None."""
        with self.lock:
            if ds_id in self.held:
                return self.held[ds_id]
            provider = self.provider(provider_id)
            source = self.data_source(provider_id, ds_id)
            folder = self._payload_dir(provider["name"], source["name"])
            if folder is None:
                return None
            try:
                loaded = json.loads((folder / "latest.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            return loaded if isinstance(loaded, dict) else None

    def _payload_dir(self, provider: str, data_source: str) -> Path | None:
        if self.data_dir is None:
            return None
        root = (self.data_dir / "payloads").resolve()
        folder = (root / slug(provider) / slug(data_source)).resolve()
        if not folder.is_relative_to(root):  # never reached with `slug`: the last line of defence
            raise ApiError(400, "InvalidArgument", "invalid name",
                           [("name", "does not make a safe folder name")])
        return folder

    def _write_payload(self, record: PushRecord) -> PushRecord:
        folder = self._payload_dir(record.provider, record.data_source)
        if folder is None:
            return record
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{record.sequence:04d}.json"
        path.write_text(record.json_text, encoding="utf-8")
        (folder / "latest.json").write_text(record.json_text, encoding="utf-8")
        meta = {
            "provider": record.provider, "provider_id": record.provider_id,
            "data_source": record.data_source, "data_source_id": record.data_source_id,
            "sequence": record.sequence, "received_at": _now(), "warnings": record.warnings,
            "compression": record.compression, "multipart": record.multipart,
            "incremental": record.incremental,
        }
        (folder / f"{record.sequence:04d}.meta.json").write_text(
            json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return PushRecord(**{**record.__dict__, "path": path})

    # -- persistence ---------------------------------------------------------------------

    def save(self) -> None:
        """Write providers, data sources and icons to `emulator.json` (with a data dir)."""
        if self.data_dir is None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "providers": list(self.providers.values()),
            "data_sources": {pid: list(ds.values()) for pid, ds in self.data_sources.items()},
            "icons": self.icons, "sequences": self.sequences,
        }
        tmp = self.data_dir / ".emulator.json.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.data_dir / "emulator.json")

    def _load(self) -> None:
        assert self.data_dir is not None
        try:
            state = json.loads((self.data_dir / "emulator.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        self.providers = {p["id"]: p for p in state.get("providers", [])}
        self.data_sources = {pid: {d["id"]: d for d in items}
                             for pid, items in state.get("data_sources", {}).items()}
        self.icons = dict(state.get("icons", {}))
        self.sequences = {k: int(v) for k, v in state.get("sequences", {}).items()}
        for pid, provider in self.providers.items():
            if provider.get("custom_template") != "identity_provider":
                continue
            for ds in self.data_sources.get(pid, {}).values():
                try:
                    folder = self._payload_dir(str(provider["name"]), str(ds["name"]))
                    assert folder is not None  # data_dir is set while loading
                    payload = json.loads((folder / "latest.json").read_text(encoding="utf-8"))
                except (OSError, ValueError, TypeError, KeyError, ApiError):
                    continue
                self.identities[ds["id"]] = _idp_names(payload)


def _idp_names(payload: Any) -> set[str]:
    names: set[str] = set()
    if not isinstance(payload, dict):
        return names
    for kind in ("users", "groups"):
        for entity in payload.get(kind) or []:
            if isinstance(entity, dict):
                names.update(str(entity[k]).lower() for k in ("name", "identity", "email")
                             if entity.get(k))
    return names


def _note_types(provider: dict[str, Any], payload: dict[str, Any]) -> None:
    """Fill the provider's application/idp/hris/resource types from a payload, as Veza does."""
    def add(key: str, values: Iterable[Any]) -> None:
        for value in values:
            if value and value not in provider[key]:
                provider[key].append(value)

    apps = [a for a in payload.get("applications") or [] if isinstance(a, dict)]
    add("application_types", (a.get("application_type") for a in apps))
    add("resource_types", _resource_types(a.get("resources") for a in apps))
    add("idp_types", [payload.get("idp_type")])
    add("hris_types", [payload.get("hris_type")])


def _resource_types(groups: Iterable[Any]) -> list[Any]:
    found: list[Any] = []
    for resources in groups:
        for r in resources or []:
            if isinstance(r, dict):
                found.append(r.get("resource_type"))
                found.extend(_resource_types([r.get("sub_resources")]))
    return found
