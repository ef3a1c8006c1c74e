"""Benchmark the `http` fan-out and the `sql` source: one command, prints figures.

    python bench/http_fanout.py [--parents 1000] [--latency 0.02] [--rows 100000]

1. HTTP fan-out: a local server (127.0.0.1, keep-alive) answers a child endpoint after an added
   latency (20 ms); an `http` source with `for_each` reads one child request per parent record
   (1,000 parents), with `concurrency: 1` and `concurrency: 8`. Prints wall times and the speed-up
   (target: >= 6x), and checks that both runs give the same records in the same order.
2. SQL streaming: a 100,000-row SQLite table read by the `sql` source, against a bare `sqlite3`
   cursor loop that builds the same dicts (`dict(zip(columns, row))`). Prints records/s for both
   and the ratio (target: oaamap within 2x, i.e. ratio <= 2). Best of 3 runs each.

Reads sources directly (plan, then read), without the rest of the compile pipeline.
"""

from __future__ import annotations

import argparse
import gc
import json
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oaamap.errors import ErrorCollector, Origin
from oaamap.expressions import OaamapFunctions, compile_expression
from oaamap.loader import load_text
from oaamap.sources import SOURCE_KINDS, PlanContext, ReadContext, Record


def serve(latency: float) -> tuple[ThreadingHTTPServer, str]:
    """A keep-alive JSON server whose `/children/<id>` answers after `latency` seconds."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            time.sleep(latency)
            parent = self.path.split("?")[0].rsplit("/", 1)[-1]
            raw = json.dumps([{"child": f"{parent}-{k}"} for k in (1, 2)]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def plan(text: str, base_dir: Path, other_sources: tuple[str, ...] = ()) -> Any:
    """Plan the single source of a `sources:` YAML document."""
    doc = load_text(text, "bench.yaml")
    collector = ErrorCollector("bench.yaml")
    functions = OaamapFunctions()
    ctx = PlanContext(base_dir=base_dir, collector=collector, span_of=doc.span,
                      key_span_of=doc.key_span,
                      compile_expression=lambda t, p: compile_expression(t, functions),
                      source_names=frozenset([*doc.data["sources"], *other_sources]))
    (name, config), = doc.data["sources"].items()
    kind = next(k for k in config if k in SOURCE_KINDS)
    source = SOURCE_KINDS[kind](name, config, ctx)
    collector.raise_if_any()
    return source


def read(source: Any, parents: list[Record] | None = None) -> list[Record]:
    ctx = ReadContext(render_context={"env": {}, "vars": {}},
                      records_of=lambda name: parents or [])
    return list(source.read(ctx))


def best_of(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def bench_fanout(parents: int, latency: float) -> bool:
    server, base = serve(latency)
    records = [Record({"id": i}, Origin("parents", "parents", "index"), i) for i in range(parents)]
    timings, outputs = {}, {}
    try:
        for concurrency in (1, 8):
            source = plan(f"""
sources:
  children:
    http:
      for_each: {{parent: parents}}
      url: "{base}/children/{{{{ parent.id }}}}"
      concurrency: {concurrency}
""", Path.cwd(), ("parents",))
            timings[concurrency], out = best_of(1, lambda s=source: read(s, records))
            outputs[concurrency] = [r.data["child"] for r in out]
    finally:
        server.shutdown()
        server.server_close()
    same = outputs[1] == outputs[8] and len(outputs[8]) == 2 * parents
    ratio = timings[1] / timings[8]
    print(f"HTTP fan-out: {parents} parents -> 1 child request each, {latency * 1000:.0f} ms "
          "added latency per request")
    for concurrency, seconds in timings.items():
        print(f"  concurrency {concurrency}: {seconds:7.2f} s  "
              f"({parents / seconds:,.0f} requests/s)")
    print(f"  speed-up: {ratio:.1f}x (target >= 6x: {'PASS' if ratio >= 6 else 'MISS'}); "
          f"same records in the same order: {'yes' if same else 'NO'}")
    return ratio >= 6 and same


def make_table(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT, email TEXT, "
                   "active INTEGER, created TEXT, score REAL)")
        db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", (
            (i, f"user{i}", f"user{i}@acme.test", i % 2, "2024-01-02 03:04:05", i * 0.5)
            for i in range(rows)))


def bench_sql(rows: int) -> bool:
    query = "SELECT id, login, email, active, created, score FROM users"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        make_table(path, rows)

        def bare() -> int:
            with sqlite3.connect(path) as db:
                cursor = db.execute(query)
                columns = [c[0] for c in cursor.description]
                count = 0
                for row in cursor:
                    dict(zip(columns, row, strict=False))
                    count += 1
            return count

        source = plan(f"""
sources:
  users:
    sql:
      url: "sqlite:///bench.db"
      query: "{query}"
""", Path(tmp))

        def oaamap_read() -> int:
            count = 0
            for _ in source.read(ReadContext({"env": {}, "vars": {}}, lambda n: [])):
                count += 1
            return count

        bare_s, bare_n = best_of(3, bare)
        ours_s, ours_n = best_of(3, oaamap_read)
    ratio = ours_s / bare_s
    print(f"SQL streaming: {rows:,} rows from SQLite (6 columns), best of 3")
    print(f"  bare sqlite3 cursor loop (dict per row): {bare_n / bare_s:12,.0f} records/s "
          f"({bare_s:.3f} s)")
    print(f"  oaamap `sql` source (records):            {ours_n / ours_s:12,.0f} records/s "
          f"({ours_s:.3f} s)")
    ok = ratio <= 2 and ours_n == bare_n == rows
    print(f"  oaamap takes {ratio:.2f}x the bare loop's time (target <= 2x: "
          f"{'PASS' if ok else 'MISS'})")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parents", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    ok = bench_fanout(args.parents, args.latency)
    print()
    ok = bench_sql(args.rows) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
