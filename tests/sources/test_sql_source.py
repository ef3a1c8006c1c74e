"""`sql` source over SQLite (no server): records, bound params, streaming, conversions, errors."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import tracemalloc
import uuid
from pathlib import Path

import pytest
from source_helpers import data, errors_of, plan_one, read_all

from oaamap.errors import MappingError, SourceError
from oaamap.sources.sql_source import json_value


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "app.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT, active BOOLEAN,
                                created TIMESTAMP, score NUMERIC, avatar BLOB);
            INSERT INTO users VALUES (1, 'ada', 1, '2024-01-02 03:04:05', 12.5, x'00ff'),
                                     (2, 'bob', 0, '2024-02-03 04:05:06', 10, NULL),
                                     (3, 'cy', 1, NULL, NULL, NULL);
        """)
    return path


def sql(url: str, query: str, extra: str = "") -> str:
    return f"""
sources:
  users:
    sql:
      url: "{url}"
      query: "{query}"
{extra}"""


def test_rows_are_records_keyed_by_column(db: Path) -> None:
    plan = plan_one(sql("sqlite:///data/app.db", "SELECT id, login, active FROM users ORDER BY id"),
                    base_dir=db.parent.parent)
    records = read_all(plan)
    assert data(records) == [{"id": 1, "login": "ada", "active": 1},
                             {"id": 2, "login": "bob", "active": 0},
                             {"id": 3, "login": "cy", "active": 1}]
    assert [str(r.ref) for r in records] == ["users:1", "users:2", "users:3"]
    assert plan.depends_on == ()


def test_an_empty_result_is_no_records(db: Path) -> None:
    plan = plan_one(sql(f"sqlite:///{db}", "SELECT * FROM users WHERE id < 0"))
    assert read_all(plan) == []


def test_blobs_become_base64(db: Path) -> None:
    plan = plan_one(sql(f"sqlite:///{db}", "SELECT avatar FROM users WHERE id = 1"))
    assert data(read_all(plan)) == [{"avatar": "AP8="}]


def test_bound_params_render_templates_and_expand_lists(db: Path) -> None:
    plan = plan_one(sql(f"sqlite:///{db}",
                        "SELECT login FROM users WHERE login IN :logins AND id >= :min_id "
                        "ORDER BY id", """      params:
        logins: [ada, bob, cy]
        min_id: "{{ vars.min_id }}"
"""))
    assert data(read_all(plan, vars={"min_id": "2"})) == [{"login": "bob"}, {"login": "cy"}]


def test_the_url_and_the_query_are_templates(db: Path) -> None:
    plan = plan_one(sql("{{ env.DB_URL }}", "SELECT count(*) AS n FROM {{ vars.table }}"))
    assert data(read_all(plan, env={"DB_URL": f"sqlite:///{db}"}, vars={"table": "users"})) == [
        {"n": 3}]


def test_rows_are_streamed_not_loaded_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, pad TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", ((i, "x" * 200) for i in range(50_000)))
    plan = plan_one(sql(f"sqlite:///{path}", "SELECT id, pad FROM t ORDER BY id",
                        "      batch_size: 200\n"))
    tracemalloc.start()
    count = 0
    for record in plan.read(_ctx()):
        count += 1
        assert record.row == count
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 50_000
    assert peak < 3_000_000  # the table holds ~12 MB of rows as Python objects


def test_a_missing_sqlite_file_is_an_error_not_an_empty_database(tmp_path: Path) -> None:
    plan = plan_one(sql("sqlite:///data/missing.db", "SELECT 1"), base_dir=tmp_path)
    with pytest.raises(SourceError) as info:
        read_all(plan)
    assert info.value.message == (f"the SQLite database `data/missing.db` does not exist "
                                  f"(looked for {tmp_path / 'data' / 'missing.db'})")
    assert not (tmp_path / "data" / "missing.db").exists()


def test_a_failing_query_names_the_source_and_the_database(db: Path) -> None:
    plan = plan_one(sql(f"sqlite:///{db}", "SELECT nope FROM users"))
    with pytest.raises(SourceError) as info:
        read_all(plan)
    assert info.value.source == "users"
    assert info.value.location == f"sqlite:///{db}"
    assert info.value.message == "the query failed: OperationalError: no such column: nope"


def test_duplicate_column_names_are_an_error(db: Path) -> None:
    plan = plan_one(sql(f"sqlite:///{db}", "SELECT id, login AS id FROM users"))
    with pytest.raises(SourceError, match="the query returns the column `id` twice; give each "
                       "column a unique name with AS"):
        read_all(plan)


def test_unknown_database_kinds_and_missing_drivers_are_clear(db: Path) -> None:
    with pytest.raises(SourceError, match="unknown database kind `nosuchdb`"):
        read_all(plan_one(sql("nosuchdb://host/db", "SELECT 1")))
    with pytest.raises(SourceError, match=r"the database driver `\w+` is not installed"):
        read_all(plan_one(sql("mysql+mysqldb://u:pw@127.0.0.1/db", "SELECT 1")))


def test_an_undefined_variable_in_the_url_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="uses an undefined value"):
        read_all(plan_one(sql("{{ env.NOPE }}", "SELECT 1")))


PLAN_ERRORS = [
    ("unknown_key", "      batch: 10\n      params: {role: a}\n",
     "test.yaml:7:7: error: unexpected key `batch` in a `sql` source (did you mean "
     "`batch_size`?)"),
    ("batch_size", "      batch_size: 0\n      params: {role: a}\n",
     "test.yaml:7:19: error: `batch_size` must be at least 1, got 0"),
    ("missing_param", "", "test.yaml:6:14: error: the query uses `:role` but `params` does not "
     "give it"),
    ("unused_param", "      params: {role: admin, extra: 1}\n",
     "test.yaml:7:36: error: `params` gives `extra`, which the query does not use (as `:extra`)"),
]


@pytest.mark.parametrize("extra,expected", [c[1:] for c in PLAN_ERRORS],
                         ids=[c[0] for c in PLAN_ERRORS])
def test_plan_errors(extra: str, expected: str) -> None:
    errors = errors_of(sql("sqlite:///x.db", "SELECT * FROM t WHERE role = :role", extra))
    assert errors == [expected]


def test_plan_errors_for_url_and_missing_query() -> None:
    assert errors_of("""
sources:
  users:
    sql:
      url: "not a url"
""") == [
        "test.yaml:5:7: error: a `sql` source needs `query`",
        "test.yaml:5:12: error: `url` is not a SQLAlchemy URL: Could not parse SQLAlchemy URL "
        "from given URL string (e.g. `sqlite:///data/portal.db` or "
        "`postgresql+psycopg://user:{{ env.DB_PASSWORD }}@host/db`)",
    ]


def test_casts_are_not_bind_params() -> None:
    assert errors_of(sql("sqlite:///x.db", "SELECT id::text FROM t")) == []


@pytest.mark.parametrize("value,expected", [
    (dt.datetime(2024, 5, 1, 12, 30), "2024-05-01T12:30:00Z"),
    (dt.datetime(2024, 5, 1, 12, 30, 0, 120000), "2024-05-01T12:30:00.12Z"),
    (dt.datetime(2024, 5, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
     "2024-05-01T12:30:00Z"),
    (dt.date(2024, 5, 1), "2024-05-01"),
    (dt.time(7, 5, 3), "07:05:03"),
    (decimal.Decimal("125000.00"), 125000),
    (decimal.Decimal("12.50"), 12.5),
    (decimal.Decimal("-3"), -3),
    (b"\x00\xff", "AP8="),
    (memoryview(b"ab"), "YWI="),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    (dt.timedelta(hours=1, seconds=1.5), 3601.5),
    ([1, decimal.Decimal("2.0"), None], [1, 2, None]),
    ({"a": dt.date(2024, 1, 1)}, {"a": "2024-01-01"}),
    (True, True),
    (None, None),
])
def test_values_are_made_json_friendly(value: object, expected: object) -> None:
    result = json_value(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("value", [decimal.Decimal("NaN"), decimal.Decimal("Infinity")])
def test_values_json_cannot_hold_are_errors(value: decimal.Decimal) -> None:
    with pytest.raises(ValueError, match="cannot be represented in JSON"):
        json_value(value)


def _ctx():  # type: ignore[no-untyped-def]
    from source_helpers import read_context
    return read_context()
