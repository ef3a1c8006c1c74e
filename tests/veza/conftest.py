"""Shared fixtures: emulators on ephemeral ports, sample payloads, clients with tiny backoff."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from veza_helpers import KEY

from oaamap.veza.client import ClientSettings, VezaClient
from oaamap.veza.emulator import EmulatorHandle, start_emulator


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    """A plain-HTTP emulator with key `KEY`, in memory."""
    with start_emulator(api_key=KEY) as handle:
        yield handle


@pytest.fixture
def tls_emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    """An HTTPS emulator (self-signed certificate) persisting under tmp_path/data."""
    with start_emulator(api_key=KEY, tls=True, data_dir=tmp_path / "data") as handle:
        yield handle


@pytest.fixture
def make_client() -> Callable[..., VezaClient]:
    """A factory of clients of an emulator, with tiny backoff and no real sleeping."""
    def make(handle: EmulatorHandle, key: str = KEY, **overrides: Any) -> VezaClient:
        verify = str(handle.cert_file) if handle.cert_file else True
        options = {"backoff_base": 0.001, "backoff_cap": 0.01, "retry_after_cap": 2.0,
                   "verify": verify, **overrides}
        return VezaClient(ClientSettings(handle.url, key, **options))
    return make
