"""Fixtures for the source tests: the local HTTP server, fast retries, a PostgreSQL URL."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from http_server import LocalServer, add_standard_routes

POSTGRES_ENV = "OAAMAP_TEST_POSTGRES_URL"
LOCAL_POSTGRES_URLS = (
    "postgresql+psycopg://oaamap:oaamap@127.0.0.1:5432/oaamap_test",
)


@pytest.fixture(scope="session", autouse=True)
def fast_backoff() -> Iterator[None]:
    """Retries wait milliseconds, not seconds, in tests (Retry-After is still honoured)."""
    old = os.environ.get("OAAMAP_HTTP_BACKOFF_BASE")
    os.environ["OAAMAP_HTTP_BACKOFF_BASE"] = "0.001"
    yield
    if old is None:
        os.environ.pop("OAAMAP_HTTP_BACKOFF_BASE", None)
    else:
        os.environ["OAAMAP_HTTP_BACKOFF_BASE"] = old


@pytest.fixture(scope="session")
def http_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        add_standard_routes(server)
        yield server


@pytest.fixture()
def server(http_server: LocalServer) -> LocalServer:
    """The shared local server, with its counters and recorded requests reset."""
    http_server.reset()
    return http_server


def _reachable(url: str) -> str | None:
    """None when a connection succeeds, else the reason."""
    try:
        import sqlalchemy
    except ImportError as e:  # pragma: no cover - SQLAlchemy is a dependency
        return str(e)
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as e:  # any driver or connection failure means "not available"
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A SQLAlchemy URL of a PostgreSQL server for the tests, or a LOUD skip.

    `OAAMAP_TEST_POSTGRES_URL` (exported by .ci/postgres.sh in CI) wins; otherwise the local
    server that .ci/postgres.sh creates is tried.
    """
    candidates = [os.environ[POSTGRES_ENV]] if os.environ.get(POSTGRES_ENV) else \
        list(LOCAL_POSTGRES_URLS)
    reasons = []
    for url in candidates:
        reason = _reachable(url)
        if reason is None:
            return url
        reasons.append(reason)
    message = (
        "!!! PostgreSQL TESTS SKIPPED: no PostgreSQL server reachable "
        f"({'; '.join(reasons)}). Run `. .ci/postgres.sh` (as root) or set {POSTGRES_ENV}. !!!"
    )
    warnings.warn(message, stacklevel=1)
    sys.stderr.write("\n" + "=" * 100 + "\n" + message + "\n" + "=" * 100 + "\n")
    pytest.skip(message)
