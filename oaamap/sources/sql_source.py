"""The `sql` source kind: a query through SQLAlchemy, rows streamed, values made JSON-friendly.

Any SQLAlchemy URL works (`sqlite:///data/portal.db`, `postgresql+psycopg://...`); it is a Jinja
template, so the password can come from `env`. A relative SQLite path resolves against the mapping
file's folder, and a missing SQLite file is an error (SQLite would silently create an empty one).
Rows are streamed (`stream_results` with `yield_per`: a server-side cursor on PostgreSQL, batches
elsewhere), so a large table is never loaded whole. Each row is one record keyed by column name;
its row number (1-based) is its location: `grants:37`.

Values are converted to JSON-friendly ones, the same on every database:
  datetime  -> RFC 3339 in UTC: `2024-05-01T12:30:00Z` (a naive value is taken as UTC; an aware one
               is converted to UTC; fractional seconds are kept without trailing zeros)
  date      -> `2024-05-01`;  time -> `12:30:00`
  float     -> float (NaN or infinity is a data error naming the row and the column)
  Decimal   -> int when integral, else float (NaN or infinity: the same data error)
  bytes     -> base64 text;  UUID -> text;  timedelta -> seconds (float)
  arrays / JSON -> lists and objects, converted element by element; anything else -> `str(value)`
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.engine import URL, make_url

from ..errors import DataError, DataErrors, Origin, SourceError, Span, sanitize_url
from ..redact import mask_text, remember
from ..templating import Template
from . import PlanContext, ReadContext, Record, register_source_kind
from .checks import check_keys, expect_int, expect_mapping, expect_text

__all__ = ["OPTIONS", "SqlSource", "json_value", "plan_sql"]

OPTIONS = ("url", "query", "params", "batch_size")
# float is not plain: a float column may hold NaN or infinity, which JSON and Veza refuse.
_PLAIN = frozenset({str, int, bool, type(None)})
_CONNECT_TIMEOUT = 30


@dataclass(frozen=True)
class SqlSource:
    """A planned `sql` source."""

    name: str
    span: Span | None
    url: Template
    query: Template
    base_dir: Path
    params: tuple[tuple[str, Any], ...] = ()
    batch_size: int = 1000

    @property
    def depends_on(self) -> tuple[str, ...]:
        """A query depends on no other source."""
        return ()

    def read(self, ctx: ReadContext) -> Iterator[Record]:
        """Yield one record per row, in the query's order.

        Raises:
            SourceError: the database cannot be reached, the query fails, or two columns share
                a name.
            DataErrors: a value cannot be represented in JSON (NaN, infinity).
        """
        url = self._url(ctx.render_context)
        shown = _shown(url)
        query = self.query.render(ctx.render_context)
        params = {k: v.render(ctx.render_context) if isinstance(v, Template) else v
                  for k, v in self.params}
        engine = self._engine(url, shown)
        try:
            yield from self._rows(engine, query, params, shown, url.password)
        finally:
            engine.dispose()

    def _url(self, context: Mapping[str, Any]) -> URL:
        text = self.url.render(context).strip()
        userinfo = _userinfo(text)
        remember(userinfo.partition(":")[2] or None)
        if userinfo.count("@"):
            # SQLAlchemy would cut the password at its first `@` and send the rest as the host
            # name, which the driver then prints in its error.
            raise SourceError(self.name, "the password in `url` contains `@`; percent-encode "
                              "it as `%40`", location=sanitize_url(text))
        try:
            url = make_url(text)
        except (sqlalchemy.exc.ArgumentError, ValueError) as e:
            raise SourceError(self.name, f"`url` is not a SQLAlchemy URL: {mask_text(str(e))}",
                              location=sanitize_url(text)) from e
        remember(url.password if isinstance(url.password, str) else None)
        return _resolve_sqlite(url, self.base_dir, self.name)

    def _engine(self, url: URL, shown: str) -> sqlalchemy.engine.Engine:
        kwargs: dict[str, Any] = {}
        if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
            kwargs["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT}
        try:
            return sqlalchemy.create_engine(url, **kwargs)
        except sqlalchemy.exc.NoSuchModuleError as e:
            raise SourceError(self.name, f"unknown database kind `{url.drivername}`; see "
                              "SQLAlchemy's dialects", location=shown) from e
        except ModuleNotFoundError as e:
            raise SourceError(self.name, f"the database driver `{e.name}` is not installed "
                              f"(pip install {e.name})", location=shown) from e

    def _rows(self, engine: sqlalchemy.engine.Engine, query: str, params: Mapping[str, Any],
              shown: str, password: str | None) -> Iterator[Record]:
        origin = Origin(self.name, self.name, "line")
        number, phase = 0, "cannot connect to the database"
        try:
            with engine.connect() as conn:
                phase = "the query failed"
                result = conn.execution_options(stream_results=True, yield_per=self.batch_size) \
                    .execute(_statement(query, params), dict(params))
                keys = self._columns(list(result.keys()), shown)
                phase = "reading the rows failed"
                for batch in result.partitions():
                    for row in batch:
                        number += 1
                        yield Record(self._record(keys, row, origin, number), origin, number)
        except sqlalchemy.exc.SQLAlchemyError as e:
            raise SourceError(self.name, f"{phase}: {_detail(e, password)}", location=shown,
                              ref=origin.ref(number + 1) if number else None) from e
        except RecursionError:
            # The driver decodes json/jsonb columns with Python's recursive decoder, a batch at
            # a time: the row is only known to be in the batch being fetched.
            raise SourceError(self.name, f"a JSON value in rows {number + 1} to "
                              f"{number + self.batch_size} is nested too deeply to read (more "
                              "than Python's recursion limit)", location=shown) from None

    def _columns(self, keys: list[str], shown: str) -> list[str]:
        seen: set[str] = set()
        for key in keys:
            if key in seen:
                raise SourceError(self.name, f"the query returns the column `{key}` twice; give "
                                  "each column a unique name with AS", location=shown)
            seen.add(key)
        return keys

    def _record(self, keys: list[str], row: Any, origin: Origin, number: int) -> dict[str, Any]:
        if _PLAIN.issuperset(map(type, row)):
            return dict(zip(keys, row, strict=False))
        out: dict[str, Any] = {}
        for key, value in zip(keys, row, strict=False):
            try:
                out[key] = json_value(value)
            except ValueError as e:
                raise DataErrors([DataError(
                    f"source `{self.name}`: column `{key}`: {e}; filter or convert it in the "
                    "query (e.g. `CASE WHEN x = 'NaN' THEN NULL ELSE x END`)",
                    origin.ref(number))]) from e
        return out


def json_value(value: Any) -> Any:
    """A database value as a JSON-friendly value (see the module docstring for the rules).

    Raises:
        ValueError: a NaN or infinite float or decimal.
    """
    if type(value) in _PLAIN:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"the value `{value}` cannot be represented in JSON")
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        text = value.isoformat(timespec="microseconds").rstrip("0").rstrip(".")
        return text + "Z"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"the value `{value}` cannot be represented in JSON")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


def _statement(query: str, params: Mapping[str, Any]) -> sqlalchemy.TextClause:
    statement = sqlalchemy.text(query)
    expanding: list[sqlalchemy.BindParameter[Any]] = [
        sqlalchemy.bindparam(k, expanding=True) for k, v in params.items()
        if isinstance(v, list | tuple)]
    return statement.bindparams(*expanding) if expanding else statement


def _resolve_sqlite(url: URL, base_dir: Path, source: str) -> URL:
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or \
            database.startswith("file:"):
        return url
    path = Path(database).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise SourceError(source, f"the SQLite database `{database}` does not exist "
                          f"(looked for {path})", location=_shown(url))
    return url.set(database=str(path))


def _userinfo(text: str) -> str:
    """The `user:password` part of a URL (up to the last `@` before the path), or ''."""
    _scheme, sep, rest = text.partition("://")
    if not sep:
        return ""
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    return authority.rpartition("@")[0]


def _shown(url: URL) -> str:
    return sanitize_url(url.render_as_string(hide_password=True))


def _detail(e: sqlalchemy.exc.SQLAlchemyError, password: str | None) -> str:
    """The driver's own message (one line, password masked, at most 400 characters)."""
    orig = getattr(e, "orig", None)
    text = f"{type(orig).__name__}: {orig}" if orig is not None else str(e)
    text = " ".join(text.split())
    if password:
        text = text.replace(password, "***")
    text = mask_text(text)
    return text if len(text) <= 400 else text[:397] + "..."


def plan_sql(name: str, config: Mapping[str, Any], ctx: PlanContext) -> SqlSource:
    """Plan a `sql` source from its mapping entry (`sql: {url, query, params, batch_size}`).

    Example:
        >>> plan_sql("grants", {"sql": {"url": "sqlite:///data/portal.db",
        ...                             "query": "SELECT * FROM grants"}}, ctx)
    """
    base = ("sources", name, "sql")
    spec = expect_mapping(ctx, config.get("sql"), base, f"`sql` of source `{name}`") or {}
    check_keys(ctx, spec, base, OPTIONS, ("url", "query"), "a `sql` source")
    url = expect_text(ctx, spec["url"], (*base, "url"), "`url`") if "url" in spec else None
    query = expect_text(ctx, spec["query"], (*base, "query"), "`query`") if "query" in spec \
        else None
    batch = expect_int(ctx, spec.get("batch_size", 1000), (*base, "batch_size"), "`batch_size`", 1)
    source = SqlSource(
        name=name,
        span=ctx.span_of(("sources", name)),
        url=ctx.template(url, (*base, "url"), credential=True) if url else Template(""),
        query=ctx.template(query, (*base, "query")) if query else Template(""),
        base_dir=ctx.base_dir,
        params=_plan_params(spec.get("params"), ctx, (*base, "params")),
        batch_size=batch or 1000,
    )
    _check_url(source.url, ctx, (*base, "url"))
    _check_binds(source, ctx, base)
    return source


def _plan_params(value: Any, ctx: PlanContext, path: tuple[Any, ...]) -> tuple[tuple[str, Any],
                                                                               ...]:
    if value is None:
        return ()
    mapping = expect_mapping(ctx, value, path, "`params`") or {}
    out = []
    for key, raw in mapping.items():
        if isinstance(raw, Mapping):
            ctx.error(f"query parameter `{key}` must be a value or a list of values", (*path, key))
            continue
        out.append((str(key), ctx.template(raw, (*path, key)) if isinstance(raw, str) else raw))
    return tuple(out)


def _check_url(url: Template, ctx: PlanContext, path: tuple[Any, ...]) -> None:
    if url.is_constant and url.text:
        try:
            make_url(url.text)
        except (sqlalchemy.exc.ArgumentError, ValueError) as e:
            ctx.error(f"`url` is not a SQLAlchemy URL: {e}", path,
                      hint="e.g. `sqlite:///data/portal.db` or "
                      "`postgresql+psycopg://user:{{ env.DB_PASSWORD }}@host/db`")


def _check_binds(source: SqlSource, ctx: PlanContext, base: tuple[Any, ...]) -> None:
    """Every `:name` of a constant query needs a param, and every param must be used."""
    if not source.query.is_constant or not source.query.text:
        return
    used = set(sqlalchemy.text(source.query.text).compile().params)
    given = {k for k, _ in source.params}
    for missing in sorted(used - given):
        ctx.error(f"the query uses `:{missing}` but `params` does not give it", (*base, "query"))
    for unused in sorted(given - used):
        ctx.error(f"`params` gives `{unused}`, which the query does not use (as `:{unused}`)",
                  (*base, "params", unused))


register_source_kind("sql", plan_sql)
