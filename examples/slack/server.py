"""A local stand-in for the Slack Web API, serving a canned workspace.

    python examples/slack/server.py --port 8083                      # fixtures/
    python examples/slack/server.py --port 8083 --fixtures DIR

It answers the Web API methods Veza's Slack connector (`connectors/slack/oaa_slack.py`, through
`slack_sdk.WebClient`) calls, the way Slack does: `POST` (form body) or `GET` (query) on
`/api/<method>` -- `team.info`, `users.list`, `usergroups.list`, `usergroups.users.list` --,
always HTTP 200 with `{"ok": true, ...}` or `{"ok": false, "error": "..."}`:

- the token is `Authorization: Bearer xox...` (or a `token` parameter); none -> `not_authed`,
  one not starting with `xox` -> `invalid_auth`;
- `users.list` pages with an opaque cursor: `cursor` in, `response_metadata.next_cursor` out
  (`""` on the last page); `limit` is honoured up to `--limit-cap` (2 by default, so that the
  small workspace spans several pages); a cursor the server did not issue -> `invalid_cursor`;
- `usergroups.list` leaves out disabled groups (`date_delete` > 0) unless `include_disabled` is
  true, and the member lists unless `include_users` is true;
- `usergroups.users.list?usergroup=ID` -> `{"users": [ids]}`; an unknown id -> `no_such_subteam`,
  a disabled group without `include_disabled` -> `usergroup_disabled`... as Slack does;
- an unknown method -> `unknown_method` (HTTP 404, as Slack).
Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
TRUE = {"true", "1"}

Answer = tuple[int, dict[str, Any]]


class SlackError(Exception):
    """An `{"ok": false, "error": code}` answer."""

    def __init__(self, code: str, status: int = 200) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def _cursor(index: int) -> str:
    return base64.b64encode(f"user:{index}".encode()).decode()


def _index(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        kind, _, number = base64.b64decode(cursor, validate=True).decode().partition(":")
        if kind == "user":
            return int(number)
    except ValueError:
        pass
    raise SlackError("invalid_cursor")


class Workspace:
    """The canned workspace and one function per Web API method."""

    def __init__(self, folder: Path, cap: int) -> None:
        def load(name: str) -> Any:
            return json.loads((folder / name).read_text())
        self.team = load("team.json")
        self.users: list[dict[str, Any]] = load("users.json")
        self.groups: list[dict[str, Any]] = load("usergroups.json")
        self.cap = cap
        self.methods: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "team.info": self.team_info,
            "users.list": self.users_list,
            "usergroups.list": self.usergroups_list,
            "usergroups.users.list": self.usergroups_users_list,
        }

    def team_info(self, params: dict[str, str]) -> dict[str, Any]:
        return {"team": self.team}

    def users_list(self, params: dict[str, str]) -> dict[str, Any]:
        start = _index(params.get("cursor", ""))
        limit = int(params.get("limit") or 0) or self.cap
        limit = max(1, min(limit, self.cap))
        chunk = self.users[start:start + limit]
        end = start + len(chunk)
        return {"members": chunk, "cache_ts": 1733212800,
                "response_metadata": {"next_cursor": _cursor(end) if end < len(self.users) else ""}}

    def _visible(self, params: dict[str, str]) -> list[dict[str, Any]]:
        with_disabled = params.get("include_disabled", "").lower() in TRUE
        return [g for g in self.groups if with_disabled or not g.get("date_delete")]

    def usergroups_list(self, params: dict[str, str]) -> dict[str, Any]:
        with_users = params.get("include_users", "").lower() in TRUE
        groups = [g if with_users else {k: v for k, v in g.items() if k != "users"}
                  for g in self._visible(params)]
        return {"usergroups": groups}

    def usergroups_users_list(self, params: dict[str, str]) -> dict[str, Any]:
        wanted = params.get("usergroup")
        if not wanted:
            raise SlackError("invalid_arguments")
        group = next((g for g in self.groups if g["id"] == wanted), None)
        if group is None:
            raise SlackError("no_such_subteam")
        if group.get("date_delete") and params.get("include_disabled", "").lower() not in TRUE:
            raise SlackError("usergroup_disabled")
        return {"users": list(group.get("users", []))}

    def answer(self, method: str, token: str, params: dict[str, str]) -> Answer:
        """(HTTP status, body) for one call."""
        try:
            handler = self.methods.get(method)
            if handler is None:
                raise SlackError("unknown_method", 404)
            if not token:
                raise SlackError("not_authed")
            if not token.startswith("xox"):
                raise SlackError("invalid_auth")
            return 200, {"ok": True, **handler(params)}
        except SlackError as e:
            return e.status, {"ok": False, "error": e.code}


def make_server(host: str = "127.0.0.1", port: int = 8083, cap: int = 2,
                fixtures: str | Path | None = None) -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`).

    fixtures: a folder like `fixtures/` (relative paths are taken from this example's folder)."""
    folder = FIXTURES if fixtures is None else Path(fixtures)
    workspace = Workspace(folder if folder.is_absolute() else HERE / folder, cap)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._call(b"")

        def do_POST(self) -> None:
            self._call(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _call(self, body: bytes) -> None:
            parts = urlsplit(self.path)
            params = dict(parse_qsl(parts.query))
            if "json" in self.headers.get("Content-Type", ""):
                params.update({k: str(v) for k, v in json.loads(body or b"{}").items()})
            else:
                params.update(parse_qsl(body.decode()))
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("token", "")
            method = parts.path.rstrip("/").removeprefix("/api/")
            self._send(*workspace.answer(method, token, params))

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            if port != 0:
                super().log_message(format, *args)

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    return Server((host, port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8083)
    parser.add_argument("--limit-cap", type=int, default=2)
    parser.add_argument("--fixtures", default=None,
                        help="fixture folder (default: fixtures/ next to this file)")
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.limit_cap, args.fixtures)
    host, port = args.host, server.server_address[1]
    print(f"Slack fixtures on http://{host}:{port}/api/ (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
