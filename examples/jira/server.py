"""A local stand-in for the Jira Cloud REST API v3, serving a canned site.

    python examples/jira/server.py --port 8084                      # fixtures/
    python examples/jira/server.py --port 8084 --fixtures DIR

It answers, under `/rest/api/3`, the calls Veza's Jira connector (`connectors/jira/oaa_jira.py`)
makes, the way Jira Cloud does:

- HTTP Basic auth required (any user and API token); none -> 401;
- `GET /permissions` -> `{"permissions": {KEY: {...}}}`;
- `GET /users/search?startAt=&maxResults=` -> a bare list (Jira's shape), `maxResults` honoured
  (default 50, at most 1000), an empty list past the end;
- `GET /group/bulk`, `GET /group/member?groupname=&includeInactiveUsers=`, `GET /project/search`
  -> Jira's page objects `{"self", "maxResults", "startAt", "total", "isLast", "values"}`,
  `maxResults` capped at `--limit-cap` (2 by default, so that small lists span pages); inactive
  members only with `includeInactiveUsers=true`; an unknown group -> 404 (a group whose
  fixture has `"member_status": 404` answers 404 too: deleted between the two calls);
  `project/search` sends `description` only with `expand=description`;
- `GET /project/{idOrKey}/role` -> `{role name: role URL}`; `GET /project/{idOrKey}/role/{id}`
  -> the role with its `actors`; `GET /project/{idOrKey}/permissionscheme?expand=all` -> the
  project's permission scheme with its holders (`expand` controls the holder details);
- anything else -> 404 `{"errorMessages": [...], "errors": {}}`.
Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
API = "/rest/api/3"
Answer = tuple[int, Any]


class JiraError(Exception):
    """A Jira error answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _int(query: dict[str, str], key: str, default: int) -> int:
    try:
        return int(query.get(key, default))
    except ValueError:
        raise JiraError(400, f"The value '{query[key]}' is invalid for {key}.") from None


class Site:
    """The canned site and one function per route."""

    def __init__(self, folder: Path, cap: int, base: str) -> None:
        def load(name: str) -> Any:
            return json.loads((folder / name).read_text())
        self.permissions = load("permissions.json")
        self.users: list[dict[str, Any]] = load("users.json")
        self.groups: list[dict[str, Any]] = load("groups.json")
        self.projects: list[dict[str, Any]] = load("projects.json")
        self.schemes: dict[str, Any] = load("permission-schemes.json")
        self.roles: dict[str, list[dict[str, Any]]] = load("project-roles.json")
        self.cap = cap
        self.base = base
        self.routes: list[tuple[re.Pattern[str], Callable[..., Any]]] = [
            (re.compile(r"/permissions"), self.all_permissions),
            (re.compile(r"/users/search"), self.users_search),
            (re.compile(r"/group/bulk"), self.group_bulk),
            (re.compile(r"/group/member"), self.group_member),
            (re.compile(r"/project/search"), self.project_search),
            (re.compile(r"/project/(?P<ref>[^/]+)/role"), self.project_roles),
            (re.compile(r"/project/(?P<ref>[^/]+)/role/(?P<role>\d+)"), self.project_role),
            (re.compile(r"/project/(?P<ref>[^/]+)/permissionscheme"), self.permission_scheme),
        ]

    def _page(self, path: str, items: list[Any], query: dict[str, str]) -> dict[str, Any]:
        start = max(0, _int(query, "startAt", 0))
        size = max(1, min(_int(query, "maxResults", 50), self.cap))
        chunk = items[start:start + size]
        return {"self": f"{self.base}{API}{path}", "maxResults": size, "startAt": start,
                "total": len(items), "isLast": start + size >= len(items), "values": chunk}

    def _project(self, ref: str) -> dict[str, Any]:
        found = next((p for p in self.projects if ref in (p["id"], p["key"])), None)
        if found is None:
            raise JiraError(404, "No project could be found with key '%s'." % ref)
        return found

    def all_permissions(self, query: dict[str, str]) -> Any:
        return self.permissions

    def users_search(self, query: dict[str, str]) -> Any:
        start = max(0, _int(query, "startAt", 0))
        size = max(1, min(_int(query, "maxResults", 50), 1000))
        return self.users[start:start + size]

    def group_bulk(self, query: dict[str, str]) -> Any:
        values = [{"name": g["name"], "groupId": g["groupId"]} for g in self.groups]
        return self._page("/group/bulk", values, query)

    def group_member(self, query: dict[str, str]) -> Any:
        name = query.get("groupname")
        group = next((g for g in self.groups if name in (g["name"], g["groupId"])), None)
        if group is None or group.get("member_status") == 404:
            raise JiraError(404, "Specified group does not exist.")
        inactive = query.get("includeInactiveUsers", "").lower() == "true"
        by_id = {u["accountId"]: u for u in self.users}
        members = [by_id[a] for a in group["members"] if inactive or by_id[a]["active"]]
        return self._page("/group/member", members, query)

    def project_search(self, query: dict[str, str]) -> Any:
        expand = query.get("expand", "").split(",")
        values = [{k: v for k, v in p.items()
                   if k != "scheme" and (k != "description" or "description" in expand)}
                  for p in self.projects]
        return self._page("/project/search", values, query)

    def project_roles(self, query: dict[str, str], ref: str) -> Any:
        project = self._project(ref)
        return {r["name"]: f"{self.base}{API}/project/{project['id']}/role/{r['id']}"
                for r in self.roles.get(project["id"], [])}

    def project_role(self, query: dict[str, str], ref: str, role: str) -> Any:
        project = self._project(ref)
        found = next((r for r in self.roles.get(project["id"], []) if str(r["id"]) == role), None)
        if found is None:
            raise JiraError(404, "Can not retrieve a role actor for a null project role.")
        return found

    def permission_scheme(self, query: dict[str, str], ref: str) -> Any:
        scheme = self.schemes[self._project(ref)["scheme"]]
        if "all" in query.get("expand", "").split(","):
            return scheme
        # without expand Jira leaves out the holders' details
        return {**scheme, "permissions": [
            {**e, "holder": {k: v for k, v in e["holder"].items()
                             if k in ("type", "parameter", "value")}} if "holder" in e else e
            for e in scheme["permissions"]]}

    def answer(self, path: str, query: dict[str, str], authorization: str) -> Answer:
        """(HTTP status, body) for one GET."""
        try:
            if not authorization.startswith("Basic ") or ":" not in base64.b64decode(
                    authorization[6:].encode() + b"==").decode(errors="replace"):
                raise JiraError(401, "Client must be authenticated to access this resource.")
            if path.startswith(API):
                for pattern, handler in self.routes:
                    match = pattern.fullmatch(path[len(API):])
                    if match:
                        return 200, handler(query, **match.groupdict())
            raise JiraError(404, "Not found")
        except JiraError as e:
            return e.status, {"errorMessages": [e.message], "errors": {}}


def make_server(host: str = "127.0.0.1", port: int = 8084, cap: int = 2,
                fixtures: str | Path | None = None,
                base: str = "https://acme.atlassian.net") -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`).

    fixtures: a folder like `fixtures/` (relative paths are taken from this example's folder);
    base: the site URL written into `self` links."""
    folder = FIXTURES if fixtures is None else Path(fixtures)
    site = Site(folder if folder.is_absolute() else HERE / folder, cap, base)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, body = site.answer(parts.path.rstrip("/"), dict(parse_qsl(parts.query)),
                                       self.headers.get("Authorization", ""))
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
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
    parser.add_argument("--port", type=int, default=8084)
    parser.add_argument("--limit-cap", type=int, default=2)
    parser.add_argument("--fixtures", default=None,
                        help="fixture folder (default: fixtures/ next to this file)")
    parser.add_argument("--base", default="https://acme.atlassian.net",
                        help="the site URL written into `self` links")
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.limit_cap, args.fixtures, args.base)
    host, port = args.host, server.server_address[1]
    print(f"Jira fixtures on http://{host}:{port}{API} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
