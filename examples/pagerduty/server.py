"""A local stand-in for the PagerDuty REST API v2, serving a canned account.

    python examples/pagerduty/server.py --port 8082                            # fixtures/
    python examples/pagerduty/server.py --port 8082 --fixtures fixtures-veza   # the richer set

It answers the endpoints `mappings/pagerduty.yaml` and Veza's PagerDuty connector read, the way
PagerDuty does: classic pagination with `offset`/`limit` and a wrapper `{"users": [...], "offset",
"limit", "more", "total"}` (`total` only with `total=true`), `Authorization: Token token=...`
required (any key is accepted), 404 for anything else. PagerDuty honours `limit` up to 100; this
server caps pages at `--limit-cap` (2 by default) so that the small fixtures still span several
pages. Besides `/users`, `/teams` and `/teams/{id}/members`:

- `GET /abilities` -> `{"abilities": [...]}` (from `abilities.json`, or a full list);
  `--without-ability NAME` (repeatable) takes one away; without `teams`, `/teams...` answer 402;
- `include[]=subdomains` on `/users` adds `"subdomains": [<account>]` to each user (the account is
  `account.json`'s `subdomain`, else `acme`);
- `GET /users/{id}` and `GET /teams/{id}` -> `{"user": ...}` / `{"team": ...}`.
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

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
ABILITIES = ["sso", "advanced_reports", "teams", "read_only_users", "team_responders",
             "service_support_hours", "urgencies", "manage_schedules", "manage_api_keys",
             "coordinated_responding", "event_rules", "beta_custom_actions",
             "coordinated_responding_preview", "preview_incident_alert_split",
             "permissions_service", "response_plays"]


def _loader(folder: Path) -> Any:
    def load(*parts: str) -> Any:
        path = folder.joinpath(*parts)
        return json.loads(path.read_text()) if path.is_file() else None
    return load


def _routes(load: Any) -> list[tuple[re.Pattern[str], str, Any]]:
    return [
        (re.compile(r"/users"), "users", lambda: load("users.json")),
        (re.compile(r"/teams"), "teams", lambda: load("teams.json")),
        (re.compile(r"/teams/(?P<team>[A-Z0-9]+)/members"), "members",
         lambda team: load("team-members", f"{team}.json")),
    ]


def _page(key: str, items: list[Any], query: dict[str, str], cap: int) -> dict[str, Any]:
    limit = max(1, min(int(query.get("limit", 25)), 100, cap))
    offset = max(0, int(query.get("offset", 0)))
    chunk = items[offset:offset + limit]
    total = len(items) if query.get("total") == "true" else None
    return {key: chunk, "limit": limit, "offset": offset, "total": total,
            "more": offset + len(chunk) < len(items)}


def make_server(host: str = "127.0.0.1", port: int = 8082, cap: int = 2,
                fixtures: str | Path | None = None, without: tuple[str, ...] = ()
                ) -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`).

    fixtures: a folder like `fixtures/` (relative paths are taken from this example's folder);
    without: abilities the account does not have."""
    folder = FIXTURES if fixtures is None else Path(fixtures)
    load = _loader(folder if folder.is_absolute() else HERE / folder)
    routes = _routes(load)
    abilities = [a for a in (load("abilities.json") or ABILITIES) if a not in without]
    subdomain = (load("account.json") or {}).get("subdomain", "acme")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            if not self.headers.get("Authorization", "").startswith("Token token="):
                return self._send(401, {"error": {"message": "Unauthorized", "code": 2006}})
            path = parts.path.rstrip("/")
            if path == "/abilities":
                return self._send(200, {"abilities": abilities})
            if path.startswith("/teams") and "teams" not in abilities:
                return self._send(402, {"error": {
                    "message": "Account does not have the abilities to perform the action. "
                               "Please review the response for the required abilities.",
                    "code": 2012, "errors": ["Required abilities are unavailable: teams"]}})
            single = re.fullmatch(r"/(users|teams)/([A-Z0-9]+)", path)
            if single:
                kind = single[1]
                found = next((i for i in load(f"{kind}.json") or [] if i["id"] == single[2]),
                             None)
                if found is not None:
                    return self._send(200, {kind[:-1]: found})
            for pattern, key, handler in routes:
                match = pattern.fullmatch(path)
                if match:
                    items = handler(**match.groupdict())
                    if items is not None:
                        includes = [v for k, v in parse_qsl(parts.query) if k == "include[]"]
                        if key == "users" and "subdomains" in includes:
                            items = [{**u, "subdomains": [subdomain]} for u in items]
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
    parser.add_argument("--fixtures", default=None,
                        help="fixture folder (default: fixtures/ next to this file)")
    parser.add_argument("--without-ability", action="append", default=[],
                        help="an ability the account lacks (e.g. teams); repeatable")
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.limit_cap, args.fixtures,
                         tuple(args.without_ability))
    host, port = server.server_address[:2]
    print(f"PagerDuty fixtures on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
