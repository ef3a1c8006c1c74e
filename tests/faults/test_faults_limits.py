"""Fault suite, area "limits": untrusted mapping files, data files and servers (issue 7, point 4).

Every case ends in a located error with the right exit code, quickly, and writes nothing: never a
hang, a RecursionError, a MemoryError or a traceback. The hostile HTTP servers are raw sockets on
127.0.0.1 written here: a trickle of header bytes, compression bombs, an endless body, a
Content-Length lie, a body nested 100,000 levels deep.
"""

from __future__ import annotations

import gzip
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from helpers import run_cli, write_case
from veza_helpers import KEY

from oaamap.limits import (
    MAX_BODY_BYTES,
    MAX_MAPPING_BYTES,
    DepthError,
    json_too_deep,
    load_json,
)
from oaamap.veza.emulator import EmulatorHandle

# -- the mapping every file case starts from ------------------------------------------------

BASE = """\
oaamap: 1
template: application
provider: "Limits"
data_source: {data_source}
{vars}sources:
  people: {source}
application:
  name: "Limits App"
  type: LimitsApp
users:
  - from: people
    where: {where}
    id: user_id
    name: {name}
"""
PEOPLE = "user_id,login,doc\n1,alice,{{}}\n2,{login},{doc}\n"


def mapping(*, name: str = "login", where: str = '"login != \'x\'"', vars_: str = "",
            source: str = "{csv: data/people.csv}", data_source: str = '"limits"') -> str:
    """The base mapping with one part replaced."""
    return BASE.format(name=name, where=where, vars=vars_, source=source,
                       data_source=data_source)


def people(login: str = "bob", doc: str = "{}") -> str:
    """The people CSV: row 3 (line 3) carries the hostile login or JSON cell."""
    return PEOPLE.format(login=login, doc=doc)


def deep_yaml_block(levels: int) -> str:
    return "vars:\n  deep:\n" + "".join("    " + "  " * i + f"k{i}:\n" for i in range(levels)) \
        + "    " + "  " * levels + "x: 1\n"


LAUGHS = ("vars:\n  lol0: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  lol{i}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 9) + "]\n"
    for i in range(1, 9)))


@dataclass(frozen=True)
class Case:
    """One hostile mapping or data set and what the run must say about it."""

    mapping: str
    files: dict[str, str] = field(default_factory=dict)
    code: int = 2
    where: str = ""  # a regex for the location, e.g. r"mapping\.yaml:12:\d+"
    message: str = ""  # a substring of the error


def line_of(text: str, marker: str) -> int:
    """The 1-based line of `text` containing `marker`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


def _cases() -> dict[str, Case]:
    deep_parens = "(" * 5000 + "login" + ")" * 5000
    deep_literal = "`" + "[" * 5000 + "]" * 5000 + "`"
    regex_bad = mapping(name="\"regex_match(login, '(unclosed') && login\"")
    cases = {
        "yaml-billion-laughs": Case(mapping(vars_=LAUGHS), {"data/people.csv": people()},
                                    where=r"mapping\.yaml:1[0-3]:\d+",
                                    message="expands to more than 1,000,000 values"),
        "yaml-nested-150-levels": Case(mapping(vars_=deep_yaml_block(150)),
                                       {"data/people.csv": people()},
                                       where=r"mapping\.yaml:\d+:\d+",
                                       message="nested deeper than 100 levels"),
        "yaml-flow-nested-100000": Case(mapping(vars_="vars:\n  deep: " + "[" * 100_000
                                                + "]" * 100_000 + "\n"),
                                        {"data/people.csv": people()},
                                        where=r"mapping\.yaml:6:\d+",
                                        message="nested deeper than 100 levels"),
        "yaml-recursive-alias": Case(mapping(vars_="vars:\n  loop: &l [1, *l]\n"),
                                     {"data/people.csv": people()},
                                     where=r"mapping\.yaml:6:\d+",
                                     message="repeats a node that contains it"),
        "mapping-over-5-MiB": Case(mapping() + "#" * (MAX_MAPPING_BYTES + 10) + "\n",
                                   {"data/people.csv": people()},
                                   where=r"mapping\.yaml:1:1", message="larger than 5 MiB"),
        "jmespath-5000-parentheses": Case(mapping(name=f'"{deep_parens}"'),
                                          {"data/people.csv": people()},
                                          where=r"mapping\.yaml:14:\d+",
                                          message="nests brackets deeper than 100 levels"),
        "jmespath-5000-pipes": Case(mapping(name='"' + " | ".join(["login"] * 5000) + '"'),
                                    {"data/people.csv": people()},
                                    where=r"mapping\.yaml:14:\d+",
                                    message="nests deeper than 100 levels"),
        "jmespath-5000-nots": Case(mapping(where='"' + "!" * 5000 + 'login"'),
                                   {"data/people.csv": people()},
                                   where=r"mapping\.yaml:12:\d+",
                                   message="nested too deeply to parse"),
        "jmespath-deep-json-literal": Case(mapping(name=f"'{deep_literal} && login'"),
                                           {"data/people.csv": people()},
                                           where=r"mapping\.yaml:14:\d+",
                                           message="nests brackets deeper than 100 levels"),
        "jinja-template-5000-parentheses": Case(
            mapping(data_source='"{{ ' + "(" * 5000 + "1" + ")" * 5000 + ' }}"'),
            {"data/people.csv": people()}, where=r"mapping\.yaml:4:14",
            message="the template nests brackets deeper than 100 levels"),
        "regex-invalid-constant-pattern": Case(regex_bad, {"data/people.csv": people()},
                                               where=r"mapping\.yaml:14:\d+",
                                               message="invalid regular expression `(unclosed`"),
        "json-document-100000-deep": Case(
            mapping(source="{json: data/people.json}"),
            {"data/people.json": "[" * 100_000 + "]" * 100_000}, code=3,
            where=r"source `people` \(data/people\.json\)",
            message="nested deeper than 256 levels"),
        "jsonl-line-100000-deep": Case(
            mapping(source="{json: data/people.jsonl}"),
            {"data/people.jsonl": '{"user_id": 1, "login": "a"}\n'
             + '{"x": ' * 100_000 + "1" + "}" * 100_000 + "\n"}, code=3,
            where=r"data/people\.jsonl:2: error: source `people`",
            message="nested deeper than 256 levels"),
        "parse-json-cell-50000-deep": Case(
            mapping(name='"parse_json(doc) && login || login"'),
            {"data/people.csv": people(doc="[" * 50_000 + "]" * 50_000)}, code=4,
            where=r"data/people\.csv:3: error:", message="nested deeper than 256 levels"),
        "regex-catastrophic-backtracking": Case(
            mapping(where="\"!regex_match(login, '^(a|aa)+$')\""),
            {"data/people.csv": people(login="a" * 60 + "b")}, code=4,
            where=r"data/people\.csv:3: error:",
            message="ran longer than 1 s on a 61-character value"),
        "replace-blows-up-a-string": Case(
            mapping(name="\"replace(replace(login, '', '" + "x" * 400 + "'), '', '"
                    + "y" * 400 + "')\""),
            {"data/people.csv": people(login="a" * 200)}, code=4,
            where=r"data/people\.csv:3: error:", message="replace: the result would be"),
        "zero-pad-to-a-terabyte": Case(
            mapping(name='"zero_pad(login, `1000000000000`)"'),
            {"data/people.csv": people()}, code=4,
            where=r"data/people\.csv:2: error:",
            message="zero_pad: the result would be 1,000,000,000,000 characters"),
        "range-of-a-billion": Case(
            mapping(name='"join(\',\', range(`0`, `1000000000`)[].to_string(@))"'),
            {"data/people.csv": people()}, code=4,
            where=r"data/people\.csv:2: error:",
            message="range: 1,000,000,000 elements, more than the 100,000 allowed"),
        "regex-replace-blows-up": Case(
            mapping(name="\"regex_replace(login, '', '" + "z" * 5000 + "')\""),
            {"data/people.csv": people(login="b" * 3000)}, code=4,
            where=r"data/people\.csv:3: error:", message="regex_replace: the result would be"),
    }
    return cases


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_mapping_or_data_is_a_located_error(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    path = write_case(tmp_path, case.mapping, case.files)
    out = tmp_path / "out.json"
    started = time.monotonic()
    result = run_cli("compile", str(path), "-o", str(out))
    assert time.monotonic() - started < 20
    assert result.code == case.code, result.err[-2000:]
    err = result.err.replace(str(tmp_path) + "/", "")
    assert re.search(case.where, err), err[-2000:]
    assert case.message in err, err[-2000:]
    assert "Traceback" not in err and "RecursionError" not in err
    assert "unexpected error" not in err
    assert not out.exists()


def test_validate_refuses_a_billion_laughs_without_reading_data(tmp_path: Path) -> None:
    path = write_case(tmp_path, mapping(vars_=LAUGHS), {})
    started = time.monotonic()
    result = run_cli("validate", str(path))
    assert time.monotonic() - started < 5
    assert result.code == 2
    assert "expands to more than" in result.err and "mapping.yaml:" in result.err


def test_a_mapping_read_from_an_endless_pipe_stops_at_the_size_limit(tmp_path: Path) -> None:
    # /dev/zero has no size to check: the loader must stop reading at the limit.
    result = run_cli("validate", "/dev/zero")
    assert result.code == 2
    assert "/dev/zero:1:1: error: the mapping file is larger than 5 MiB" in result.err


def test_a_benign_catastrophic_pattern_does_not_hang(tmp_path: Path) -> None:
    # `(a+)+$` hangs Python's `re` on 'a'*40+'b'; the engine used answers at once.
    path = write_case(tmp_path, mapping(where="\"!regex_match(login, '(a+)+$')\""),
                      {"data/people.csv": people(login="a" * 40 + "b")})
    started = time.monotonic()
    result = run_cli("compile", str(path), "-o", str(tmp_path / "out.json"))
    assert time.monotonic() - started < 5
    assert result.code == 0, result.err
    assert '"name":"' + "a" * 40 + 'b"' in (tmp_path / "out.json").read_text()


def test_a_pattern_that_keeps_timing_out_is_not_run_on_every_row(tmp_path: Path) -> None:
    # Six hostile rows cost three timeouts, not six: a million rows must not cost a million seconds.
    rows = "".join(f"{n},{'a' * 60}b{n},{{}}\n" for n in range(3, 9))
    path = write_case(tmp_path, mapping(where="\"!regex_match(login, '^(a|aa)+$')\""),
                      {"data/people.csv": people() + rows})
    # Counted, not timed (a shared machine makes wall-clock bounds flaky): three runs time out,
    # the other three are refused at once.
    result = run_cli("compile", str(path), "-o", str(tmp_path / "out.json"), "--max-errors", "50")
    assert result.code == 4, result.err
    assert result.err.count("ran longer than 1 s") == 3, result.err
    assert result.err.count("is not run any more: it ran out of time on 3 earlier values") == 3
    assert "data/people.csv:9: error:" in result.err
    assert not (tmp_path / "out.json").exists()


def test_a_recursion_error_that_escapes_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    # The last line of defence: nothing above should let one through, but if one does the
    # user gets a sentence and exit 4, not "unexpected error".
    import oaamap.pipeline

    def boom(path: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(oaamap.pipeline, "load", boom)
    path = write_case(tmp_path, mapping(), {"data/people.csv": people()})
    result = run_cli("compile", str(path), "-o", str(tmp_path / "out.json"))
    assert result.code == 4
    assert "nested too deeply to process" in result.err
    assert "unexpected error" not in result.err and "Traceback" not in result.err
    assert not (tmp_path / "out.json").exists()


def test_json_depth_check_ignores_brackets_in_strings() -> None:
    assert not json_too_deep('{"a": "[[[[[[", "b": ["\\"]]]]"]}', 2)
    assert json_too_deep('{"a": "[[[[[[", "b": ["\\"]]]]", [[]]]}', 3)
    assert not json_too_deep(b"[[1], [[2]]]", 3) and json_too_deep(b"[[1], [[2]]]", 2)
    assert load_json('{"a": "' + "[" * 1000 + '"}') == {"a": "[" * 1000}
    with pytest.raises(DepthError):
        load_json("[" * 257 + "]" * 257)


# -- hostile HTTP servers ----------------------------------------------------------------------

Behaviour = Callable[[socket.socket, threading.Event], None]


class HostileServer:
    """A raw-socket server on 127.0.0.1 running `behaviour(conn, stop)` for each connection."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.sent = 0
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path: str = "/items") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.behaviour(conn, self.stop)
        except OSError:
            pass  # the client hung up: what a refused answer looks like from here
        finally:
            conn.close()

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(2)


def slow_headers(server_: list[HostileServer]) -> Behaviour:
    def run(conn: socket.socket, stop: threading.Event) -> None:
        server_[0].send(conn, b"HTTP/1.1 200 OK\r\n")
        while not stop.is_set():  # one header byte every 50 ms: never a read timeout
            server_[0].send(conn, b"X")
            time.sleep(0.05)
    return run


def _streaming(headers: bytes, piece: Callable[[], bytes]) -> Callable[[list[HostileServer]],
                                                                           Behaviour]:
    def factory(server_: list[HostileServer]) -> Behaviour:
        def run(conn: socket.socket, stop: threading.Event) -> None:
            server_[0].send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            + headers + b"Connection: close\r\n\r\n")
            while not stop.is_set():
                server_[0].send(conn, piece())
        return run
    return factory


_GZIP_MEMBER = gzip.compress(b" " * (10 * 1024 * 1024), 9)  # 10 MiB of JSON whitespace


def _deflate_pieces() -> Callable[[], bytes]:
    compressor = zlib.compressobj(9)

    def piece() -> bytes:
        return compressor.compress(b" " * (4 * 1024 * 1024)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return piece


def _chunk(size: int) -> bytes:
    return f"{size:x}\r\n".encode() + b" " * size + b"\r\n"


def deep_json(server_: list[HostileServer]) -> Behaviour:
    def run(conn: socket.socket, stop: threading.Event) -> None:
        body = b"[" * 100_000 + b"]" * 100_000
        server_[0].send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return run


@dataclass(frozen=True)
class HttpCase:
    behaviour: Callable[[list[HostileServer]], Behaviour]
    options: str
    message: str
    seconds: float
    max_sent: int | None = None  # the server must have been stopped early


HTTP_CASES = {
    "slow-headers-one-byte-per-50ms": HttpCase(
        slow_headers, "timeout: 0.3, retries: 0",
        "the response headers did not arrive within 0.6 s", 5),
    "gzip-bomb-10GB": HttpCase(
        _streaming(b"Content-Encoding: gzip\r\n", lambda: _GZIP_MEMBER), "retries: 0",
        f"more than the {MAX_BODY_BYTES:,} allowed", 15,
        max_sent=3000 * len(_GZIP_MEMBER)),
    "deflate-bomb-endless": HttpCase(
        _streaming(b"Content-Encoding: deflate\r\n", _deflate_pieces()),
        "retries: 0, max_body_bytes: 20000000",
        "more than the 20,000,000 allowed", 15),
    "endless-chunked-body": HttpCase(
        _streaming(b"Transfer-Encoding: chunked\r\n", lambda: _chunk(65536)),
        "retries: 0, max_body_bytes: 1000000", "more than the 1,000,000 allowed", 10),
    "content-length-lie-10TB": HttpCase(
        _streaming(b"Content-Length: 10000000000000\r\n", lambda: b" " * 65536),
        "retries: 0", "the response declares 10,000,000,000,000 bytes, more than the "
        f"{MAX_BODY_BYTES:,} allowed", 5),
    "json-body-100000-deep": HttpCase(
        deep_json, "retries: 0", "nested deeper than 256 levels of arrays/objects", 5),
}


@pytest.fixture
def hostile() -> Iterator[Callable[[Callable[[list[HostileServer]], Behaviour]], HostileServer]]:
    started: list[HostileServer] = []

    def start(factory: Callable[[list[HostileServer]], Behaviour]) -> HostileServer:
        holder: list[HostileServer] = []
        server = HostileServer(factory(holder))
        holder.append(server)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.mark.parametrize("name", list(HTTP_CASES))
def test_a_hostile_http_server_is_refused_quickly(name: str, tmp_path: Path, hostile: Callable[
        [Callable[[list[HostileServer]], Behaviour]], HostileServer]) -> None:
    case = HTTP_CASES[name]
    server = hostile(case.behaviour)
    url = server.url("/items?api_token=sekr1t-token-value")
    source = f'{{http: {{url: "{url}", {case.options}}}}}'
    path = write_case(tmp_path, mapping(source=source), {})
    out = tmp_path / "out.json"
    started = time.monotonic()
    result = run_cli("compile", str(path), "-o", str(out))
    elapsed = time.monotonic() - started
    assert elapsed < case.seconds, (elapsed, result.err)
    assert result.code == 3, result.err
    assert "error: source `people` (GET http://127.0.0.1:" in result.err
    assert "api_token=***" in result.err and "sekr1t-token-value" not in result.err
    assert case.message in result.err, result.err
    assert "Traceback" not in result.err and "unexpected error" not in result.err
    assert not out.exists()
    if case.max_sent is not None:
        assert server.sent <= case.max_sent, server.sent


def test_max_body_bytes_must_be_a_positive_integer(tmp_path: Path) -> None:
    source = '{http: {url: "http://127.0.0.1:9/x", max_body_bytes: 0}}'
    path = write_case(tmp_path, mapping(source=source), {})
    result = run_cli("validate", str(path))
    assert result.code == 2
    assert re.search(r"mapping\.yaml:6:\d+: error: .*max_body_bytes", result.err), result.err


# -- the Veza client reading hostile answers ------------------------------------------------

def _veza_run(tmp_path: Path, server: HostileServer, monkeypatch: pytest.MonkeyPatch,
              *extra: str) -> tuple[int, str, float]:
    monkeypatch.setenv("VEZA_API_KEY", "veza-k3y-never-shown")
    path = write_case(tmp_path, mapping(), {"data/people.csv": people()})
    started = time.monotonic()
    result = run_cli("run", str(path), "--veza-url", server.url(""), "--retries", "0",
                     "--state-dir", str(tmp_path / "state"), *extra)
    return result.code, result.err, time.monotonic() - started


def test_veza_answer_headers_trickling_are_cut_off(tmp_path: Path, hostile: Callable[
        [Callable[[list[HostileServer]], Behaviour]], HostileServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = hostile(slow_headers)
    code, err, elapsed = _veza_run(tmp_path, server, monkeypatch, "--timeout", "0.5")
    assert elapsed < 5, err
    assert code == 5, err
    assert "the response headers did not arrive within 0.5 s" in err
    assert "veza-k3y-never-shown" not in err and "Traceback" not in err


def test_veza_answer_that_never_ends_is_refused(tmp_path: Path, hostile: Callable[
        [Callable[[list[HostileServer]], Behaviour]], HostileServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = hostile(_streaming(b"Content-Encoding: gzip\r\n", lambda: _GZIP_MEMBER))
    code, err, elapsed = _veza_run(tmp_path, server, monkeypatch)
    assert elapsed < 15, err
    assert code == 5, err
    assert "answered with a body too large to read" in err
    assert f"more than the {MAX_BODY_BYTES:,} allowed" in err
    assert "veza-k3y-never-shown" not in err and "Traceback" not in err


# -- SQL JSON columns ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg_url() -> str:
    """The PostgreSQL server of the SQL tests (.ci/postgres.sh), or a skip."""
    import os

    import sqlalchemy

    url = os.environ.get("OAAMAP_TEST_POSTGRES_URL") or \
        "postgresql+psycopg://oaamap:oaamap@127.0.0.1:5432/oaamap_test"
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as e:  # any driver or connection failure: not available here
        pytest.skip(f"!!! PostgreSQL not reachable: {type(e).__name__} !!!")
    return url


@pytest.mark.postgres
def test_a_jsonb_column_nested_5000_deep_is_a_source_error(pg_url: str, tmp_path: Path) -> None:
    query = ("SELECT n AS user_id, 'u' || n AS login, CASE WHEN n = 2 THEN (repeat('[', 5000) "
             "|| repeat(']', 5000))::jsonb ELSE '[]'::jsonb END AS doc "
             "FROM generate_series(1, 3) AS n ORDER BY n")
    source = f'{{sql: {{url: "{pg_url}", query: "{query}"}}}}'
    path = write_case(tmp_path, mapping(source=source), {})
    out = tmp_path / "out.json"
    result = run_cli("compile", str(path), "-o", str(out))
    assert result.code == 3, result.err
    assert "error: source `people` (postgresql+psycopg://***@" in result.err, result.err
    assert "a JSON value in rows 1 to 1000 is nested too deeply to read" in result.err
    assert "Traceback" not in result.err and "unexpected error" not in result.err
    assert not out.exists()


# -- a payload file pushed as is -------------------------------------------------------------

def test_pushing_a_payload_nested_100000_deep_is_refused_unsent(
        tmp_path: Path, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEZA_API_KEY", KEY)
    payload = tmp_path / "payload.json"
    payload.write_text('{"applications": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = run_cli("push", str(payload), "--provider", "Deep", "--data-source", "deep",
                     "--template", "application", "--veza-url", emulator.url,
                     "--state-dir", str(tmp_path / "state"))
    assert result.code == 4, result.err
    assert f"cannot read payload `{payload}`: nested deeper than 256 levels" in result.err
    assert "Traceback" not in result.err and "unexpected error" not in result.err
    providers = requests.get(f"{emulator.url}/api/v1/providers/custom",
                             headers={"Authorization": f"Bearer {KEY}"}, timeout=5).json()
    assert providers["values"] == [], providers


def test_veza_answer_nested_100000_deep_is_a_push_error(tmp_path: Path, hostile: Callable[
        [Callable[[list[HostileServer]], Behaviour]], HostileServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = hostile(deep_json)
    code, err, elapsed = _veza_run(tmp_path, server, monkeypatch)
    assert elapsed < 5, err
    assert code == 5, err
    assert "answered with something that is not a JSON object" in err
    assert "nested too deeply" not in err and "Traceback" not in err


def test_a_template_deep_without_brackets_is_a_mapping_error(tmp_path: Path) -> None:
    text = mapping(data_source='"{{ ' + "not " * 3000 + 'true }}"')
    path = write_case(tmp_path, text, {"data/people.csv": people()})
    result = run_cli("validate", str(path))
    assert result.code == 2, result.err
    assert re.search(r"mapping\.yaml:4:14: error: the template is nested too deeply to compile",
                     result.err), result.err[:2000]
    assert "Traceback" not in result.err and "unexpected error" not in result.err
