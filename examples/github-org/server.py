"""A local stand-in for the GitHub REST API, serving the canned organisation in `fixtures/`.

    python examples/github-org/server.py --port 8081

It answers the endpoints `mappings/github.yaml` reads, the way GitHub does: JSON lists paged with
`per_page`/`page` and an RFC 8288 `Link` header (`rel="next"`, `rel="last"`, ...), `role=` on org
members, `affiliation=` on collaborators, 401 without a token, 404 for anything else. Any token is
accepted. GitHub honours `per_page` up to 100; this server caps pages at `--per-page-cap` (2 by
default) so that the small fixtures still span several pages, as a real organisation's lists do.
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

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}


def _load(*parts: str) -> Any:
    path = FIXTURES.joinpath(*parts)
    return json.loads(path.read_text()) if path.is_file() else None


def _members(org: dict[str, Any], query: dict[str, str]) -> list[Any]:
    admins = set(_load("admins.json"))
    role = query.get("role", "all")
    members = _load("members.json")
    if role == "admin":
        return [m for m in members if m["login"] in admins]
    if role == "member":
        return [m for m in members if m["login"] not in admins]
    return members


def _collaborators(repo: str, query: dict[str, str]) -> list[Any] | None:
    direct = _load("collaborators", f"{repo}.json")
    if direct is None:
        return None
    if query.get("affiliation") == "outside":
        logins = {m["login"] for m in _load("members.json")}
        return [c for c in direct if c["login"] not in logins]
    return direct


ROUTES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"/orgs/(?P<org>[^/]+)"), lambda org, q: org),
    (re.compile(r"/orgs/(?P<org>[^/]+)/members"), _members),
    (re.compile(r"/orgs/(?P<org>[^/]+)/teams"), lambda org, q: _load("teams.json")),
    (re.compile(r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)/members"),
     lambda org, q, slug: _load("team-members", f"{slug}.json")),
    (re.compile(r"/orgs/(?P<org>[^/]+)/repos"), lambda org, q: _load("repos.json")),
    (re.compile(r"/repos/(?P<org>[^/]+)/(?P<repo>[^/]+)/teams"),
     lambda org, q, repo: _load("repo-teams", f"{repo}.json")),
    (re.compile(r"/repos/(?P<org>[^/]+)/(?P<repo>[^/]+)/collaborators"),
     lambda org, q, repo: _collaborators(repo, q)),
]


def _page(base: str, path: str, query: dict[str, str], items: list[Any], cap: int
          ) -> tuple[list[Any], dict[str, str]]:
    per_page = max(1, min(int(query.get("per_page", 30)), 100, cap))
    page = max(1, int(query.get("page", 1)))
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page: page * per_page]
    if last == 1:
        return chunk, {}

    def link(n: int, rel: str) -> str:
        target = urlencode({**query, "per_page": per_page, "page": n})
        return f'<{base}{path}?{target}>; rel="{rel}"'
    links = []
    if page > 1:
        links += [link(page - 1, "prev"), link(1, "first")]
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    return chunk, {"Link": ", ".join(links)}


def make_server(host: str = "127.0.0.1", port: int = 8081, cap: int = 2) -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`)."""
    org = _load("org.json")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            if not self.headers.get("Authorization", "").lower().startswith(("bearer ", "token ")):
                return self._send(401, {"message": "Requires authentication",
                                        "documentation_url": "https://docs.github.com/rest"})
            for pattern, handler in ROUTES:
                match = pattern.fullmatch(parts.path.rstrip("/"))
                if match and match["org"] == org["login"]:
                    args = {k: v for k, v in match.groupdict().items() if k != "org"}
                    body = handler(org, query, **args)
                    if body is None:
                        break
                    headers: dict[str, str] = {}
                    if isinstance(body, list):
                        base = f"http://{self.headers.get('Host', f'{host}:{port}')}"
                        body, headers = _page(base, parts.path, query, body, cap)
                    return self._send(200, body, headers)
            self._send(404, NOT_FOUND)

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            if not quiet:
                super().log_message(format, *args)

    quiet = port == 0

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64

    return Server((host, port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--per-page-cap", type=int, default=2)
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.per_page_cap)
    host, port = server.server_address[:2]
    print(f"GitHub fixtures for org `acme` on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
