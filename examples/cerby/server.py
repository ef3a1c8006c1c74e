"""A local stand-in for the Cerby API (`https://<workspace>.cerby.com/api/v1`), serving a canned
workspace.

    python examples/cerby/server.py --port 8084                  # fixtures/, 2 items a page
    python examples/cerby/server.py --port 8084 --page-size 100

It answers the endpoints Veza's Cerby connector reads, the way a JSON:API service does: lists as
`{"data": [{"id", "type", "attributes"}], "links": {"self", "first", "prev", "next", "last"},
"meta": {"page", "pageSize", "totalCount"}}`, paged with `page[number]` (1-based) and
`page[size]` (default `--page-size`, 2, so that the small fixtures span several pages); `next` is
a path with its query (relative to the workspace URL), `null` on the last page. An API key is
required in `x-api-key` (any non-empty key, or only `--api-key` when given), else 401; errors are
`{"errors": [{"status", "title", "detail"}]}`.

- `GET /api/v1/users` -> `users.json`; `GET /api/v1/accounts` -> `accounts.json`;
- `GET /api/v1/integrations/{account id}/users` -> `integration-users/<id>.json` (one page, not
  paged); an account listed in `integration-errors.json` (`{id: status}`) answers that status
  (403, 404, 500, ...); any other account answers 404 (no integration for it).
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
from urllib.parse import parse_qsl, urlencode, urlsplit

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def _loader(folder: Path) -> Any:
    def load(*parts: str) -> Any:
        path = folder.joinpath(*parts)
        return json.loads(path.read_text()) if path.is_file() else None
    return load


def _error(status: int, detail: str) -> dict[str, Any]:
    return {"errors": [{"status": str(status), "title": TITLES.get(status, "Error"),
                        "detail": detail}]}


def _page(path: str, items: list[Any], query: dict[str, str], default_size: int
          ) -> tuple[int, dict[str, Any]]:
    try:
        number = int(query.get("page[number]", 1))
        size = int(query.get("page[size]", default_size))
    except ValueError:
        return 400, _error(400, "page[number] and page[size] must be integers")
    if number < 1 or not 1 <= size <= 100:
        return 400, _error(400, "page[number] must be >= 1 and page[size] between 1 and 100")
    last = max(1, -(-len(items) // size))

    def link(n: int) -> str:
        return f"{path}?{urlencode({'page[number]': n, 'page[size]': size})}"
    return 200, {
        "data": items[(number - 1) * size:number * size],
        "links": {"self": link(number), "first": link(1),
                  "prev": link(number - 1) if number > 1 else None,
                  "next": link(number + 1) if number < last else None, "last": link(last)},
        "meta": {"page": number, "pageSize": size, "totalCount": len(items)},
    }


def make_server(host: str = "127.0.0.1", port: int = 8084, fixtures: str | Path | None = None,
                api_key: str | None = None, page_size: int = 2) -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`).

    fixtures: a folder like `fixtures/` (relative paths are taken from this example's folder);
    api_key: the only key accepted (default: any non-empty one);
    page_size: the page size when the request gives no `page[size]`."""
    folder = FIXTURES if fixtures is None else Path(fixtures)
    load = _loader(folder if folder.is_absolute() else HERE / folder)
    lists = {"/api/v1/users": "users.json", "/api/v1/accounts": "accounts.json"}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            given = self.headers.get("x-api-key", "")
            if not given or (api_key is not None and given != api_key):
                return self._send(401, _error(401, "A valid x-api-key header is required"))
            path = parts.path.rstrip("/")
            if path in lists:
                return self._send(*_page(path, load(lists[path]) or [],
                                         dict(parse_qsl(parts.query)), page_size))
            match = re.fullmatch(r"/api/v1/integrations/(?P<account>[^/]+)/users", path)
            if match:
                account = match["account"]
                failing = (load("integration-errors.json") or {}).get(account)
                if failing is not None:
                    return self._send(int(failing), _error(int(failing),
                                                           f"integration {account}"))
                users = load("integration-users", f"{account}.json")
                if users is not None:
                    return self._send(200, {"data": users})
            self._send(404, _error(404, f"{path} was not found"))

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.api+json")
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
    parser.add_argument("--port", type=int, default=8084)
    parser.add_argument("--fixtures", default=None,
                        help="fixture folder (default: fixtures/ next to this file)")
    parser.add_argument("--api-key", default=None, help="the only key accepted (default: any)")
    parser.add_argument("--page-size", type=int, default=2)
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.fixtures, args.api_key, args.page_size)
    host, port = args.host, server.server_port
    print(f"Cerby fixtures on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
