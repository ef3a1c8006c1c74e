"""A local stand-in for the Rollbar REST API (`/api/1`), serving a canned account.

    python examples/rollbar/server.py --port 8083                     # fixtures/
    python examples/rollbar/server.py --port 8083 --fail-first 2      # two 429s first

It answers the account-level endpoints Veza's Rollbar connector reads, the way Rollbar does:
under `/api/1`, every answer wrapped as `{"err": 0, "result": ...}` (`/users` as
`{"result": {"users": [...]}}`), an account access token required in `X-Rollbar-Access-Token`
(any non-empty token, or only `--token` when given; otherwise 401 `{"err": 1, "message": ...}`),
404 `{"err": 1, "message": "Not found"}` for anything else. These lists are not paged: one answer
holds them all.

- `GET /api/1/users` -> `users.json`;
- `GET /api/1/projects` -> `projects.json`;
- `GET /api/1/teams` -> `teams.json`;
- `GET /api/1/team/{id}/projects` -> `team-projects/<id>.json` (`[{"team_id", "project_id"}]`),
  `GET /api/1/team/{id}/users` -> `team-users/<id>.json` (`[{"team_id", "user_id"}]`); a team
  without a file answers `[]`, an unknown team 404;
- `GET /api/1/user/{id}`, `/api/1/project/{id}`, `/api/1/team/{id}` -> the one record.

`--fail-first N` answers the first N requests with `--fail-status` (429 by default, with
`X-Rate-Limit-Remaining: 0` and an `X-Rate-Limit-Reset` of now, as Rollbar's rate limit does), to
exercise a client's retries. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
PREFIX = "/api/1"


def _loader(folder: Path) -> Any:
    def load(*parts: str) -> Any:
        path = folder.joinpath(*parts)
        return json.loads(path.read_text()) if path.is_file() else None
    return load


def _routes(load: Any) -> list[tuple[re.Pattern[str], Any]]:
    """(path pattern, handler -> result or None for 404), tried in order."""
    def one(kind: str, wanted: str) -> Any:
        data = load(f"{kind}.json")
        items: list[Any] = (data or {}).get("users", []) if kind == "users" else (data or [])
        return next((i for i in items if str(i["id"]) == wanted), None)

    def team_list(folder: str, team: str) -> Any:
        if one("teams", team) is None:
            return None
        return load(folder, f"{team}.json") or []

    return [
        (re.compile(r"/users"), lambda: load("users.json")),
        (re.compile(r"/projects"), lambda: load("projects.json")),
        (re.compile(r"/teams"), lambda: load("teams.json")),
        (re.compile(r"/team/(?P<team>\d+)/projects"),
         lambda team: team_list("team-projects", team)),
        (re.compile(r"/team/(?P<team>\d+)/users"), lambda team: team_list("team-users", team)),
        (re.compile(r"/user/(?P<wanted>\d+)"), lambda wanted: one("users", wanted)),
        (re.compile(r"/project/(?P<wanted>\d+)"), lambda wanted: one("projects", wanted)),
        (re.compile(r"/team/(?P<wanted>\d+)"), lambda wanted: one("teams", wanted)),
    ]


def make_server(host: str = "127.0.0.1", port: int = 8083, fixtures: str | Path | None = None,
                token: str | None = None, fail_first: int = 0, fail_status: int = 429
                ) -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`).

    fixtures: a folder like `fixtures/` (relative paths are taken from this example's folder);
    token: the only access token accepted (default: any non-empty one);
    fail_first: how many requests are answered `fail_status` before the normal answers."""
    folder = FIXTURES if fixtures is None else Path(fixtures)
    routes = _routes(_loader(folder if folder.is_absolute() else HERE / folder))
    failures = {"left": fail_first}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            with lock:
                fail = failures["left"] > 0
                failures["left"] -= fail
            if fail:
                return self._fail()
            given = self.headers.get("X-Rollbar-Access-Token", "")
            if not given:
                return self._send(401, {"err": 1, "message": "No access token was found in the "
                                                              "request."})
            if token is not None and given != token:
                return self._send(401, {"err": 1, "message": "Invalid access token"})
            path = urlsplit(self.path).path.rstrip("/")
            if path.startswith(PREFIX + "/"):
                path = path[len(PREFIX):]
                for pattern, handler in routes:
                    match = pattern.fullmatch(path)
                    if match:
                        result = handler(**match.groupdict())
                        if result is not None:
                            return self._send(200, {"err": 0, "result": result})
                        break
            self._send(404, {"err": 1, "message": "Not found"})

        def _fail(self) -> None:
            headers = {}
            if fail_status == 429:
                headers = {"X-Rate-Limit-Limit": "5000", "X-Rate-Limit-Remaining": "0",
                           "X-Rate-Limit-Reset": str(int(time.time()))}
            self._send(fail_status, {"err": 1, "message": "Rate limit exceeded" if
                                     fail_status == 429 else "Service unavailable"}, headers)

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
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
    parser.add_argument("--port", type=int, default=8083)
    parser.add_argument("--fixtures", default=None,
                        help="fixture folder (default: fixtures/ next to this file)")
    parser.add_argument("--token", default=None,
                        help="the only access token accepted (default: any)")
    parser.add_argument("--fail-first", type=int, default=0,
                        help="answer the first N requests with --fail-status")
    parser.add_argument("--fail-status", type=int, default=429)
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.fixtures, args.token, args.fail_first,
                         args.fail_status)
    host, port = args.host, server.server_port
    print(f"Rollbar fixtures on http://{host}:{port}{PREFIX} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
