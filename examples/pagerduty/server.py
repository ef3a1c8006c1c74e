"""A local stand-in for the PagerDuty REST API v2, serving the canned account in `fixtures/`.

    python examples/pagerduty/server.py --port 8082

It answers the endpoints `mappings/pagerduty.yaml` reads, the way PagerDuty does: classic
pagination with `offset`/`limit` and a wrapper `{"users": [...], "offset", "limit", "more",
"total"}` (`total` only with `total=true`), `Authorization: Token token=...` required (any key is
accepted), 404 for anything else. PagerDuty honours `limit` up to 100; this server caps pages at
`--limit-cap` (2 by default) so that the small fixtures still span several pages.
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _load(*parts: str) -> Any:
    path = FIXTURES.joinpath(*parts)
    return json.loads(path.read_text()) if path.is_file() else None


ROUTES: list[tuple[re.Pattern[str], str, Any]] = [
    (re.compile(r"/users"), "users", lambda: _load("users.json")),
    (re.compile(r"/teams"), "teams", lambda: _load("teams.json")),
    (re.compile(r"/teams/(?P<team>[A-Z0-9]+)/members"), "members",
     lambda team: _load("team-members", f"{team}.json")),
]


def _page(key: str, items: list[Any], query: dict[str, str], cap: int) -> dict[str, Any]:
    limit = max(1, min(int(query.get("limit", 25)), 100, cap))
    offset = max(0, int(query.get("offset", 0)))
    chunk = items[offset:offset + limit]
    total = len(items) if query.get("total") == "true" else None
    return {key: chunk, "limit": limit, "offset": offset, "total": total,
            "more": offset + len(chunk) < len(items)}


def make_server(host: str = "127.0.0.1", port: int = 8082, cap: int = 2) -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            if not self.headers.get("Authorization", "").startswith("Token token="):
                return self._send(401, {"error": {"message": "Unauthorized", "code": 2006}})
            for pattern, key, handler in ROUTES:
                match = pattern.fullmatch(parts.path.rstrip("/"))
                if match:
                    items = handler(**match.groupdict())
                    if items is not None:
                        return self._send(200, _page(key, items, query, cap))
            self._send(404, {"error": {"message": "Not Found", "code": 2100}})

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            if port != 0:
                super().log_message(format, *args)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64

    return Server((host, port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--limit-cap", type=int, default=2)
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.limit_cap)
    host, port = server.server_address[:2]
    print(f"PagerDuty fixtures on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
