"""Fixtures of the fault suite: hostile inputs, servers and pushes (issue "Never make Veza worse").

Each area has its own module (`test_faults_<area>.py`); fixtures used by one module only live there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# The local HTTP server of the source tests and the emulator helpers are reused, not copied.
for folder in (HERE, HERE.parent / "sources", HERE.parent / "veza"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from veza_helpers import KEY  # noqa: E402

from oaamap.veza.emulator import EmulatorHandle, start_emulator  # noqa: E402


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    """A plain-HTTP emulator with key `KEY`, persisting under tmp_path/veza-data."""
    with start_emulator(api_key=KEY, data_dir=tmp_path / "veza-data") as handle:
        yield handle
