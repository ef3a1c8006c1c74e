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
from .state import LockedError, ShrinkError, StateStore, default_state_dir, payload_counts

__all__ = [
    "ClientSettings",
    "DataSourceRef",
    "EmulatorConfig",
    "EmulatorHandle",
    "Faults",
    "LockedError",
    "ProviderRef",
    "PushOutcome",
    "ShrinkError",
    "StateStore",
    "VezaClient",
    "VezaConfigError",
    "default_state_dir",
    "payload_counts",
    "settings_from_env",
    "start_emulator",
]
