"""A local stand-in for the GitLab REST API v4, serving a canned instance.

    python examples/gitlab/server.py --port 8085                       # fixtures/, as root
    python examples/gitlab/server.py --port 8085 --caller alice        # a non-admin caller
    python examples/gitlab/server.py --port 8085 --fail-once /api/v4/groups/11/members:429

It answers the calls Veza's GitLab connector (`connectors/gitlab/oaa_gitlab.py`) makes, the way
GitLab does:

- a token is required (`Authorization: Bearer ...` or `PRIVATE-TOKEN`; any value): none -> 401
  `{"message": "401 Unauthorized"}`; the token acts as `--caller` (default `root`, an admin);
- lists are offset-paged like GitLab: `page`/`per_page` in, headers `X-Page`, `X-Per-Page`,
  `X-Total`, `X-Total-Pages`, `X-Prev-Page`, `X-Next-Page` (empty on the last page) and `Link`
  out. GitLab's default `per_page` is 20; this server's default and cap is `--per-page` (2), so
  that the small instance spans pages. Single objects carry no paging headers;
- `GET /api/v4/user` -> the caller; `GET /api/v4/users` -> every user, with the admin-only
  fields (`email`, `is_admin`, `using_license_seat`, ...) only for an admin caller;
- `GET /api/v4/groups?top_level_only=true` -> top-level groups: all for an admin, else those the
  caller is a direct member of (GitLab's `all_available=false` default for non-admins);
- `GET /api/v4/groups/{id}[?with_projects=false]` -> the group (with `projects` and
  `shared_projects` unless `with_projects` is false); unknown -> 404 `404 Group Not Found`;
- `GET /api/v4/groups/{id}/members`, `/groups/{id}/subgroups`, `/groups/{id}/projects` (the
  group's own projects, then those shared with it: `with_shared` defaults to true),
  `/projects/{id}/members` -> direct members / children, paged. Members carry `access_level`,
  and `group_saml_identity` where the fixture has one;
- `--fail-once PATH:STATUS` (repeatable): the first request to PATH answers STATUS (429 with
  `RateLimit-*` headers whose reset is now, 5xx with GitLab's message) -- the connector retries.
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
PUBLIC_USER = ("id", "username", "name", "state", "locked", "avatar_url", "web_url")
ADMIN_ONLY = ("email", "is_admin", "using_license_seat", "identities", "note", "current_sign_in_at",
              "last_sign_in_at", "confirmed_at", "two_factor_enabled", "external", "theme_id",
              "projects_limit", "can_create_group", "can_create_project", "private_profile")
MEMBERSHIP_CREATED = "2024-02-01T10:00:00.000Z"


class GitLabError(Exception):
    """A GitLab error answer `{"message": ...}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _truthy(value: str | None, default: bool) -> bool:
    return default if value is None else value.lower() in ("true", "1", "yes")


class Instance:
    """The canned instance, seen by one caller, and one function per route."""

    def __init__(self, folder: Path, caller: str, per_page: int, host: str) -> None:
        def load(name: str) -> Any:
            return json.loads((folder / name).read_text())
        self.users = {u["id"]: u for u in load("users.json")}
        self.groups: dict[int, dict[str, Any]] = {g["id"]: g for g in load("groups.json")}
        self.projects: list[dict[str, Any]] = load("projects.json")
        found = [u for u in self.users.values() if u["username"] == caller]
        if not found:
            raise SystemExit(f"--caller {caller}: no such user in users.json")
        self.caller = found[0]
        self.admin = bool(self.caller.get("is_admin"))
        self.per_page = per_page
        self.host = host
        self.routes: list[tuple[re.Pattern[str], Callable[..., Any]]] = [
            (re.compile(r"/user"), self.current_user),
            (re.compile(r"/users"), self.all_users),
            (re.compile(r"/groups"), self.top_groups),
            (re.compile(r"/groups/(?P<gid>\d+)"), self.group),
            (re.compile(r"/groups/(?P<gid>\d+)/members"), self.group_members),
            (re.compile(r"/groups/(?P<gid>\d+)/subgroups"), self.subgroups),
            (re.compile(r"/groups/(?P<gid>\d+)/projects"), self.group_projects),
            (re.compile(r"/projects/(?P<pid>\d+)/members"), self.project_members),
        ]

    # --- shapes -------------------------------------------------------------------------------
    def _user(self, user: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in user.items() if self.admin or k not in ADMIN_ONLY}
        return shown

    def _member(self, entry: dict[str, Any]) -> dict[str, Any]:
        user = self.users[entry["user_id"]]
        member = {k: user[k] for k in PUBLIC_USER}
        member.update({"access_level": entry["access_level"], "created_at": MEMBERSHIP_CREATED,
                       "expires_at": None, "membership_state": "active"})
        if "group_saml_identity" in entry:
            member["group_saml_identity"] = entry["group_saml_identity"]
        return member

    def _chain(self, group: dict[str, Any]) -> list[dict[str, Any]]:
        chain = [group]
        while chain[0]["parent_id"] is not None:
            chain.insert(0, self.groups[chain[0]["parent_id"]])
        return chain

    def _group(self, group: dict[str, Any]) -> dict[str, Any]:
        chain = self._chain(group)
        full_path = "/".join(g["path"] for g in chain)
        return {"id": group["id"], "web_url": f"{self.host}/groups/{full_path}",
                "name": group["name"], "path": group["path"], "description": group["description"],
                "visibility": group["visibility"], "share_with_group_lock": False,
                "require_two_factor_authentication": group["require_two_factor_authentication"],
                "two_factor_grace_period": 48, "project_creation_level": "developer",
                "subgroup_creation_level": "maintainer", "lfs_enabled": True,
                "request_access_enabled": True, "full_name": " / ".join(g["name"] for g in chain),
                "full_path": full_path, "created_at": "2023-01-12T09:00:00.000Z",
                "parent_id": group["parent_id"]}

    def _project(self, project: dict[str, Any]) -> dict[str, Any]:
        namespace = self._group(self.groups[project["namespace_id"]])
        return {"id": project["id"], "description": project["description"],
                "name": project["name"],
                "name_with_namespace": f"{namespace['full_name']} / {project['name']}",
                "path": project["path"],
                "path_with_namespace": f"{namespace['full_path']}/{project['path']}",
                "created_at": "2023-03-01T12:00:00.000Z", "default_branch": project["default_branch"],
                "web_url": f"{self.host}/{namespace['full_path']}/{project['path']}",
                "visibility": project["visibility"], "archived": project["archived"],
                "namespace": {"id": namespace["id"], "name": namespace["name"],
                              "path": namespace["path"], "kind": "group",
                              "full_path": namespace["full_path"],
                              "parent_id": namespace["parent_id"]}}

    def _known_group(self, gid: str) -> dict[str, Any]:
        group = self.groups.get(int(gid))
        if group is None:
            raise GitLabError(404, "404 Group Not Found")
        return group

    # --- routes (a list is returned as a list: the handler pages it) ---------------------------
    def current_user(self, query: dict[str, str]) -> Any:
        return self._user(self.caller)

    def all_users(self, query: dict[str, str]) -> Any:
        return [self._user(u) for u in self.users.values()]

    def top_groups(self, query: dict[str, str]) -> Any:
        everything = _truthy(query.get("all_available"), self.admin)
        top = _truthy(query.get("top_level_only"), False)
        me = self.caller["id"]
        return [self._group(g) for g in self.groups.values()
                if (not top or g["parent_id"] is None)
                and (everything or any(m["user_id"] == me for m in g["members"]))]

    def group(self, query: dict[str, str], gid: str) -> Any:
        group = self._known_group(gid)
        shown = self._group(group)
        if _truthy(query.get("with_projects"), True):
            shown["projects"] = [self._project(p) for p in self.projects
                                 if p["namespace_id"] == group["id"]]
            shown["shared_projects"] = [self._project(p) for p in self.projects
                                        if group["id"] in p["shared_with_group_ids"]]
        return shown

    def group_members(self, query: dict[str, str], gid: str) -> Any:
        return [self._member(m) for m in self._known_group(gid)["members"]]

    def subgroups(self, query: dict[str, str], gid: str) -> Any:
        parent = self._known_group(gid)["id"]
        return [self._group(g) for g in self.groups.values() if g["parent_id"] == parent]

    def group_projects(self, query: dict[str, str], gid: str) -> Any:
        group = self._known_group(gid)["id"]
        own = [p for p in self.projects if p["namespace_id"] == group]
        shared = ([p for p in self.projects if group in p["shared_with_group_ids"]]
                  if _truthy(query.get("with_shared"), True) else [])
        return [self._project(p) for p in own + shared]

    def project_members(self, query: dict[str, str], pid: str) -> Any:
        project = next((p for p in self.projects if p["id"] == int(pid)), None)
        if project is None:
            raise GitLabError(404, "404 Project Not Found")
        return [self._member(m) for m in project["members"]]

    def answer(self, path: str, query: dict[str, str]) -> Any:
        """The body for one GET (a list for the paged routes)."""
        if path.startswith("/api/v4"):
            for pattern, handler in self.routes:
                match = pattern.fullmatch(path[len("/api/v4"):])
                if match:
                    return handler(query, **match.groupdict())
        raise GitLabError(404, "404 Not Found")


def _paging(items: list[Any], query: dict[str, str], cap: int, url: str
            ) -> tuple[list[Any], dict[str, str]]:
    per_page = max(1, min(int(query.get("per_page") or cap), cap, 100))
    page = max(1, int(query.get("page") or 1))
    pages = max(1, math.ceil(len(items) / per_page))
    chunk = items[(page - 1) * per_page:page * per_page]
    def link(number: int) -> str:
        return url + "?" + urlencode({**query, "page": number, "per_page": per_page})
    links = [f'<{link(page + 1)}>; rel="next"'] if page < pages else []
    links += [f'<{link(1)}>; rel="first"', f'<{link(pages)}>; rel="last"']
    headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items)),
               "X-Total-Pages": str(pages), "X-Prev-Page": str(page - 1) if page > 1 else "",
               "X-Next-Page": str(page + 1) if page < pages else "", "Link": ", ".join(links)}
    return chunk, headers


def make_server(host: str = "127.0.0.1", port: int = 8085, per_page: int = 2,
                fixtures: str | Path | None = None, caller: str = "root",
                fail_once: tuple[str, ...] = (), public_url: str = "https://gitlab.acme.test"
                ) -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`).

    fixtures: a folder like `fixtures/` (relative paths are taken from this example's folder);
    caller: the username the token authenticates; fail_once: `PATH:STATUS` answers given once;
    public_url: the instance URL written into `web_url`s."""
    folder = FIXTURES if fixtures is None else Path(fixtures)
    instance = Instance(folder if folder.is_absolute() else HERE / folder, caller, per_page,
                        public_url)
    failures = {path: int(status) for path, _, status in (f.rpartition(":") for f in fail_once)}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path.rstrip("/")
            query = dict(parse_qsl(parts.query))
            with lock:
                failure = failures.pop(path, None)
            if failure is not None:
                return self._failure(failure)
            token = (self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                     if self.headers.get("Authorization", "").startswith("Bearer ")
                     else self.headers.get("PRIVATE-TOKEN", ""))
            if not token:
                return self._send(401, {"message": "401 Unauthorized"})
            try:
                body = instance.answer(path, query)
            except GitLabError as e:
                return self._send(e.status, {"message": e.message})
            if isinstance(body, list):
                url = f"http://{self.headers.get('Host', 'localhost')}{path}"
                body, headers = _paging(body, query, per_page, url)
                return self._send(200, body, headers)
            self._send(200, body)

        def _failure(self, status: int) -> None:
            if status == 429:
                now = int(time.time())
                return self._send(429, {"message": "Retry later"}, {
                    "RateLimit-Limit": "600", "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(now), "RateLimit-ResetTime": formatdate(now, usegmt=True),
                    "Retry-After": "1"})
            self._send(status, {"message": f"{status} Internal Server Error"})

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
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
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--per-page", type=int, default=2,
                        help="default and largest page size (GitLab: 20 and 100)")
    parser.add_argument("--fixtures", default=None,
                        help="fixture folder (default: fixtures/ next to this file)")
    parser.add_argument("--caller", default="root", help="the user the token belongs to")
    parser.add_argument("--fail-once", action="append", default=[], metavar="PATH:STATUS",
                        help="answer STATUS to the first request of PATH; repeatable")
    parser.add_argument("--public-url", default="https://gitlab.acme.test",
                        help="the instance URL written into web_url")
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.per_page, args.fixtures, args.caller,
                         tuple(args.fail_once), args.public_url)
    host, port = args.host, server.server_address[1]
    print(f"GitLab fixtures on http://{host}:{port}/api/v4 (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
