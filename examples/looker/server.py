"""A local stand-in for the Looker API (4.0, and the 3.1 calls still in use), serving a canned
instance.

    python examples/looker/server.py --port 8085                       # fixtures/
    python examples/looker/server.py --port 8085 --client-id id --client-secret secret

It answers the endpoints Veza's Looker connector reads (through `looker_sdk` and directly), the way
Looker does:

- `POST /api/{3.1,4.0}/login` with the form `client_id`, `client_secret` -> `{"access_token",
  "token_type": "Bearer", "expires_in": 3600}` (any non-empty pair, or only `--client-id` /
  `--client-secret` when given; otherwise 404 `{"message": "Not found"}`, as Looker answers a
  failed login);
- every other call needs `Authorization: token <t>` or `Bearer <t>` with an issued token, else 401
  `{"message": "Requires authentication."}`;
- 4.0 (string ids): `GET /permissions`, `/roles`, `/groups`, `/users`, `/model_sets` (all at once,
  or a `limit`/`offset` slice), `/connections/{name}`, `/lookml_models/{name}`;
- 3.1 (integer ids): `GET /roles/{id}/users` (`direct_association_only=true`: the users given the
  role, `role-users/<id>.json`; otherwise also the members of its groups), `/roles/{id}/groups`
  (`role-groups/<id>.json`), `/lookml_models/{name}` (`lookml-models/<name>.json`);
- `fields=a,b` (or repeated `fields=`) keeps those top-level fields; unknown ids and names
  answer 404 `{"message": "Not found", ...}`.
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
DOCS = "https://cloud.google.com/looker/docs/r/api/support"
NOT_FOUND = {"message": "Not found", "documentation_url": DOCS}


def _loader(folder: Path) -> Any:
    def load(*parts: str) -> Any:
        path = folder.joinpath(*parts)
        return json.loads(path.read_text()) if path.is_file() else None
    return load


def _v31(record: dict[str, Any]) -> dict[str, Any]:
    """API 3.1 spells ids as integers (4.0 as strings)."""
    out = dict(record)
    for key in ("id", "role_id"):
        if isinstance(out.get(key), str) and out[key].isdigit():
            out[key] = int(out[key])
    for key in ("group_ids", "role_ids"):
        if isinstance(out.get(key), list):
            out[key] = [int(i) for i in out[key]]
    return out


class Instance:
    """The canned instance: the answers of each call, or None (404)."""

    def __init__(self, load: Any) -> None:
        self.load = load

    def _list(self, name: str) -> list[dict[str, Any]]:
        return list(self.load(f"{name}.json") or [])

    def _by(self, name: str, key: str, wanted: str) -> Any:
        return next((r for r in self._list(name) if str(r[key]) == wanted), None)

    def list(self, name: str) -> Any:
        return self._list(name)

    def connection(self, name: str) -> Any:
        return self._by("connections", "name", name)

    def model(self, name: str) -> Any:
        return self.load("lookml-models", f"{name}.json")

    def role_users(self, role: str, direct: bool) -> Any:
        if self._by("roles", "id", role) is None:
            return None
        ids = [str(i) for i in self.load("role-users", f"{role}.json") or []]
        if not direct:
            groups = {str(g) for g in self.load("role-groups", f"{role}.json") or []}
            ids += [u["id"] for u in self._list("users")
                    if groups & set(u.get("group_ids") or []) and u["id"] not in ids]
        return [_v31(u) for u in self._list("users") if u["id"] in ids] + [
            {"id": int(i), "display_name": None, "email": None}     # hidden (support) users
            for i in ids if self._by("users", "id", i) is None]

    def role_groups(self, role: str) -> Any:
        if self._by("roles", "id", role) is None:
            return None
        ids = [str(i) for i in self.load("role-groups", f"{role}.json") or []]
        return [_v31(g) for g in self._list("groups") if g["id"] in ids] + [
            {"id": int(i), "name": f"deleted group {i}"} for i in ids
            if self._by("groups", "id", i) is None]


def _routes(instance: Instance) -> list[tuple[re.Pattern[str], Any]]:
    lists = "permissions|roles|groups|users|model_sets"
    return [
        (re.compile(rf"/api/4\.0/(?P<name>{lists})"), lambda q, name: instance.list(name)),
        (re.compile(r"/api/4\.0/connections/(?P<name>[^/]+)"),
         lambda q, name: instance.connection(name)),
        (re.compile(r"/api/(?:3\.1|4\.0)/lookml_models/(?P<name>[^/]+)"),
         lambda q, name: instance.model(name)),
        (re.compile(r"/api/3\.1/roles/(?P<role>\d+)/users"),
         lambda q, role: instance.role_users(
             role, q.get("direct_association_only", "").lower() == "true")),
        (re.compile(r"/api/3\.1/roles/(?P<role>\d+)/groups"),
         lambda q, role: instance.role_groups(role)),
    ]


def _shape(result: Any, query: list[tuple[str, str]]) -> Any:
    """Apply `fields` and `limit`/`offset` as Looker does."""
    params = dict(query)
    fields = [f for k, v in query if k == "fields" for f in v.split(",") if f]
    if isinstance(result, list):
        offset = int(params.get("offset", 0))
        limit = int(params["limit"]) if "limit" in params else None
        result = result[offset:None if limit is None else offset + limit]
        if fields:
            result = [{k: v for k, v in r.items() if k in fields} for r in result]
    elif fields:
        result = {k: v for k, v in result.items() if k in fields}
    return result


def make_server(host: str = "127.0.0.1", port: int = 8085, fixtures: str | Path | None = None,
                client_id: str | None = None, client_secret: str | None = None
                ) -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`).

    fixtures: a folder like `fixtures/` (relative paths are taken from this example's folder);
    client_id, client_secret: the only credentials accepted (default: any non-empty ones)."""
    folder = FIXTURES if fixtures is None else Path(fixtures)
    routes = _routes(Instance(_loader(folder if folder.is_absolute() else HERE / folder)))
    tokens: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            path = urlsplit(self.path).path.rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            if path not in ("/api/3.1/login", "/api/4.0/login"):
                return self._send(404, NOT_FOUND)
            given_id, given_secret = form.get("client_id", ""), form.get("client_secret", "")
            if (not given_id or not given_secret
                    or (client_id is not None and given_id != client_id)
                    or (client_secret is not None and given_secret != client_secret)):
                return self._send(404, NOT_FOUND)
            token = secrets.token_hex(20)
            tokens.add(token)
            self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() not in ("token", "bearer") or token not in tokens:
                return self._send(401, {"message": "Requires authentication.",
                                        "documentation_url": DOCS})
            path = parts.path.rstrip("/")
            query = parse_qsl(parts.query)
            for pattern, handler in routes:
                match = pattern.fullmatch(path)
                if match:
                    result = handler(dict(query), **match.groupdict())
                    if result is not None:
                        return self._send(200, _shape(result, query))
                    break
            self._send(404, NOT_FOUND)

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
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
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--fixtures", default=None,
                        help="fixture folder (default: fixtures/ next to this file)")
    parser.add_argument("--client-id", default=None, help="the only client id accepted")
    parser.add_argument("--client-secret", default=None, help="the only client secret accepted")
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.fixtures, args.client_id, args.client_secret)
    host, port = args.host, server.server_port
    print(f"Looker fixtures on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
