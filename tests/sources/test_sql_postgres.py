"""`sql` source against a real PostgreSQL server (started by .ci/postgres.sh in CI).

Without a server these tests are SKIPPED, loudly (see the `postgres_url` fixture in conftest.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from source_helpers import data, plan_one, read_all

from oaamap.errors import SourceError
from oaamap.pipeline import compile_mapping

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "examples" / "portal-sql"
SCHEMA = "oaamap_portal"


def _with_schema(url: str, schema: str) -> str:
    parsed = sqlalchemy.engine.make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


@pytest.fixture(scope="module")
def portal_url(postgres_url: str) -> Iterator[str]:
    """The portal example's tables, loaded from its portable SQL script into their own schema."""
    engine = sqlalchemy.create_engine(postgres_url)
    script = (PORTAL / "data" / "portal.sql").read_text()
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
        conn.exec_driver_sql(f"SET search_path TO {SCHEMA}")
        conn.exec_driver_sql(script)
        conn.exec_driver_sql("""
            CREATE TABLE typed (id INTEGER PRIMARY KEY, at TIMESTAMPTZ, naive TIMESTAMP,
                                day DATE, amount NUMERIC(10, 2), blob BYTEA, uid UUID,
                                doc JSONB, tags TEXT[], wait INTERVAL, flag BOOLEAN);
            INSERT INTO typed VALUES (1, '2024-05-01 14:30:00+02', '2024-05-01 12:30:00.25',
                '2024-05-01', 12.50, '\\x00ff', '12345678-1234-5678-1234-567812345678',
                '{"a": [1, 2.5]}', ARRAY['x', 'y'], '1 hour', TRUE);
            CREATE TABLE big AS SELECT g AS id, repeat('x', 100) AS pad
                FROM generate_series(1, 20000) AS g;
        """)
    engine.dispose()
    yield _with_schema(postgres_url, SCHEMA)
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    engine.dispose()


def sql(url: str, query: str, extra: str = "") -> str:
    return f"""
sources:
  rows:
    sql:
      url: "{url}"
      query: "{query}"
{extra}"""


def test_the_portal_mapping_gives_the_same_payload_on_postgresql_as_on_sqlite(
        portal_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sqlite = compile_mapping(PORTAL / "mapping.yaml")
    monkeypatch.setenv("PORTAL_DB_URL", portal_url)
    postgres = compile_mapping(PORTAL / "mapping.yaml")
    assert postgres.payload == sqlite.payload
    assert postgres.payload == json.loads((PORTAL / "expected.json").read_text())
    assert dict(postgres.records) == {"users": 5, "roles": 4, "projects": 3, "grants": 9}


def test_postgresql_types_are_converted_like_sqlites(portal_url: str) -> None:
    (row,) = data(read_all(plan_one(sql(portal_url, "SELECT * FROM typed"))))
    assert row == {
        "id": 1, "at": "2024-05-01T12:30:00Z", "naive": "2024-05-01T12:30:00.25Z",
        "day": "2024-05-01", "amount": 12.5, "blob": "AP8=",
        "uid": "12345678-1234-5678-1234-567812345678", "doc": {"a": [1, 2.5]},
        "tags": ["x", "y"], "wait": 3600.0, "flag": True,
    }


def test_rows_come_through_a_server_side_cursor_in_batches(
        portal_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    cursors: list[Any] = []
    real_create = sqlalchemy.create_engine

    def create(*args: Any, **kwargs: Any) -> sqlalchemy.engine.Engine:
        engine = real_create(*args, **kwargs)
        sqlalchemy.event.listen(engine, "before_cursor_execute",
                                lambda conn, cursor, *rest: cursors.append(cursor))
        return engine

    monkeypatch.setattr(sqlalchemy, "create_engine", create)
    plan = plan_one(sql(portal_url, "SELECT id, pad FROM big ORDER BY id",
                        "      batch_size: 1000\n"))
    ids = [r.data["id"] for r in read_all(plan)]
    assert ids == list(range(1, 20001))
    assert any(isinstance(c, psycopg.ServerCursor) for c in cursors)


def test_bound_params_on_postgresql(portal_url: str) -> None:
    plan = plan_one(sql(portal_url, "SELECT login FROM users WHERE id IN :ids "
                        "AND active = :enabled ORDER BY id",
                        "      params: {ids: [101, 103, 104], enabled: true}\n"))
    assert data(read_all(plan)) == [{"login": "adavis"}, {"login": "cmorgan"}]


def test_a_wrong_password_is_reported_without_the_password(postgres_url: str) -> None:
    url = sqlalchemy.engine.make_url(postgres_url).set(password="not-the-Password-42")
    plan = plan_one(sql(url.render_as_string(hide_password=False), "SELECT 1"))
    with pytest.raises(SourceError) as info:
        read_all(plan)
    error = info.value
    assert error.message.startswith("cannot connect to the database: OperationalError: ")
    assert "password authentication failed" in error.message
    assert "not-the-Password-42" not in str(error)
    assert error.location == "postgresql+psycopg://***@" + postgres_url.split("@", 1)[1]


def test_a_query_error_on_postgresql(portal_url: str) -> None:
    plan = plan_one(sql(portal_url, "SELECT nope FROM users"))
    with pytest.raises(SourceError) as info:
        read_all(plan)
    assert info.value.message.startswith('the query failed: UndefinedColumn: column "nope" '
                                         "does not exist")


def test_timestamps_with_time_zone_are_utc(portal_url: str) -> None:
    plan = plan_one(sql(portal_url, "SELECT TIMESTAMPTZ '2024-01-01 00:30:00-05' AS t"))
    assert data(read_all(plan)) == [{"t": dt.datetime(2024, 1, 1, 5, 30).isoformat() + "Z"}]
