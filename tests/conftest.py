"""Fixtures shared by every test."""

from __future__ import annotations

import pytest
from helpers import ROOT, run_cli


@pytest.fixture
def cli() -> object:
    """The in-process CLI runner."""
    return run_cli


@pytest.fixture(autouse=True)
def _run_from_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # Error messages show paths relative to the working directory; pin it for stable goldens.
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("ACME_HOST", raising=False)


@pytest.fixture(autouse=True)
def _secrets_of_one_test() -> object:
    # The secrets a test's run learns (passwords, tokens) are masked in that run only, as in one
    # CLI process; without this, a later test's messages would be masked by an earlier test's.
    from oaamap.redact import secret_scope

    with secret_scope():
        yield
