"""Stage 9: pushing payloads to Veza (`client`), push safety (`state`), and the local emulator of
Veza's OAA API (`emulator`, with its server-side payload checks in `validate`)."""

from __future__ import annotations

from .client import (
    ClientSettings,
    DataSourceRef,
    ProviderRef,
    PushOutcome,
    VezaClient,
    VezaConfigError,
    settings_from_env,
)
from .emulator import EmulatorConfig, EmulatorHandle, Faults, start_emulator
from .guard import EmptyKindsError, ReplacedError
from .state import (
    LockedError,
    ShrinkError,
    StateError,
    StateKey,
    StateStore,
    default_state_dir,
    payload_counts,
)

__all__ = [
    "ClientSettings",
    "DataSourceRef",
    "EmptyKindsError",
    "EmulatorConfig",
    "EmulatorHandle",
    "Faults",
    "LockedError",
    "ProviderRef",
    "PushOutcome",
    "ReplacedError",
    "ShrinkError",
    "StateError",
    "StateKey",
    "StateStore",
    "VezaClient",
    "VezaConfigError",
    "default_state_dir",
    "payload_counts",
    "settings_from_env",
    "start_emulator",
]
