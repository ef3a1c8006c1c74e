"""A local stand-in for Bitbucket Cloud (REST 2.0, the 1.0 groups API, the internal groups API,
OAuth2) and for the Atlassian user search, serving a canned workspace.

    python examples/bitbucket-cloud/server.py --port 8086                   # fixtures/
    python examples/bitbucket-cloud/server.py --port 8086 --token-ttl 200   # short tokens

It answers, on one port, every call Veza's Bitbucket Cloud connector
(`connectors/bitbucket-cloud/oaa_bitbucket.py`) makes, under the paths of the hosts it calls:

- `https://api.bitbucket.org/2.0`: `/2.0/workspaces/{ws}/permissions`,
  `/2.0/workspaces/{ws}/projects`, `/2.0/repositories/{ws}?q=project.key="K"`,
  `/2.0/repositories/{ws}/{slug}/branch-restrictions`, `.../permissions-config/users`,
  `.../permissions-config/groups`, `/2.0/workspaces/{ws}/permissions/repositories/{slug}`;
- `https://api.bitbucket.org/1.0`: `/1.0/groups/{ws}` (a bare list, members inline);
- `https://api.bitbucket.org/internal`: `/internal/workspaces/{ws}/groups` and
  `.../groups/{slug}/members` (OAuth tokens only);
- `https://bitbucket.org/site/oauth2`: `POST /site/oauth2/access_token` (`client_credentials`,
  `refresh_token`);
- `https://{ws}.atlassian.net/rest/api/3`: `/rest/api/3/mypermissions?permissions=USER_PICKER`,
  `/rest/api/3/users/search`.

The way Bitbucket does: 2.0 lists are pages `{"pagelen", "size", "page", "values", "next"}`
(`next`, an absolute URL on this server, only when more follow; `pagelen` honoured up to
`--pagelen-cap`, 2 by default, so that small lists span pages); a single object has no `page`.
Auth: HTTP Basic (any user and app password) or `Bearer` with a token this server issued and
that has not expired (`--token-ttl`, 7200 s by default); otherwise 401. Repositories whose
fixture has `"caller_is_admin": false` answer 403 to `branch-restrictions` and
`permissions-config` (admin-only in Bitbucket). `--fail-once PATH:STATUS` answers STATUS once.
`--no-user-picker`: the Atlassian account lacks the Browse users permission.
Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
Paged = list[Any]      # a route returning a list is paged by the handler (2.0 / internal shape)


class BitbucketError(Exception):
    """An error answer `{"type": "error", "error": {"message": ...}}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Bare(list[Any]):
    """A list sent as is, not paged (the 1.0 API, the Atlassian user search)."""


class Workspace:
    """The canned workspace and one function per route."""

    def __init__(self, folder: Path, user_picker: bool) -> None:
        def load(name: str) -> Any:
            return json.loads((folder / name).read_text())
        self.workspace = load("workspace.json")
        self.slug = self.workspace["slug"]
        self.accounts = {a["account_id"]: a for a in self.workspace["accounts"]}
        self.groups: list[dict[str, Any]] = load("groups.json")
        self.projects: list[dict[str, Any]] = load("projects.json")
        self.repos: list[dict[str, Any]] = load("repositories.json")
        self.atlassian: list[dict[str, Any]] = load("atlassian-users.json")
        self.user_picker = user_picker
        ws = r"(?P<ws>[^/]+)"
        repo = ws + r"/(?P<slug>[^/]+)"
        self.routes: list[tuple[re.Pattern[str], Callable[..., Any]]] = [
            (re.compile(rf"/2\.0/workspaces/{ws}/permissions"), self.members),
            (re.compile(rf"/2\.0/workspaces/{ws}/projects"), self.project_list),
            (re.compile(rf"/2\.0/repositories/{ws}"), self.repo_list),
            (re.compile(rf"/2\.0/repositories/{repo}/branch-restrictions"), self.restrictions),
            (re.compile(rf"/2\.0/repositories/{repo}/permissions-config/users"), self.user_perms),
            (re.compile(rf"/2\.0/repositories/{repo}/permissions-config/groups"),
             self.group_perms),
            (re.compile(rf"/2\.0/workspaces/{ws}/permissions/repositories/(?P<slug>[^/]+)"),
             self.effective_perms),
            (re.compile(rf"/1\.0/groups/{ws}"), self.v1_groups),
            (re.compile(rf"/internal/workspaces/{ws}/groups"), self.internal_groups),
            (re.compile(rf"/internal/workspaces/{ws}/groups/(?P<group>[^/]+)/members"),
             self.internal_members),
            (re.compile(r"/rest/api/3/mypermissions"), self.my_permissions),
            (re.compile(r"/rest/api/3/users/search"), self.user_search),
        ]

    # --- helpers ------------------------------------------------------------------------------
    def _ws(self, ws: str) -> dict[str, Any]:
        if ws != self.slug:
            raise BitbucketError(404, f"No workspace with identifier '{ws}'.")
        return {"type": "workspace", "slug": self.slug, "name": self.workspace["name"],
                "uuid": self.workspace["uuid"]}

    def _repo(self, ws: str, slug: str, admin_only: bool = False) -> dict[str, Any]:
        self._ws(ws)
        found = next((r for r in self.repos if r["slug"] == slug), None)
        if found is None:
            raise BitbucketError(404, f"Repository {ws}/{slug} not found")
        if admin_only and found.get("caller_is_admin", True) is False:
            raise BitbucketError(403, "Your credentials lack one or more required privilege "
                                      "scopes. (repository:admin)")
        return found

    def _repo_ref(self, repo: dict[str, Any]) -> dict[str, Any]:
        return {"type": "repository", "name": repo["name"],
                "full_name": f"{self.slug}/{repo['slug']}", "uuid": "{repo-" + repo["slug"] + "}"}

    def _project(self, p: dict[str, Any]) -> dict[str, Any]:
        shown = {"type": "project", "key": p["key"], "uuid": "{project-" + p["key"] + "}",
                 "name": p["name"], "description": p["description"], "is_private": p["is_private"],
                 "created_on": "2021-05-01T10:00:00.000000+00:00",
                 "updated_on": "2026-06-01T10:00:00.000000+00:00",
                 "owner": {"type": "team", "username": self.slug}}
        if "has_publicly_visible_repos" in p:
            shown["has_publicly_visible_repos"] = p["has_publicly_visible_repos"]
        return shown

    def _repository(self, r: dict[str, Any]) -> dict[str, Any]:
        project = next(p for p in self.projects if p["key"] == r["project"])
        return {**self._repo_ref(r), "slug": r["slug"], "description": r["description"] or "",
                "is_private": r["is_private"], "fork_policy": r["fork_policy"], "scm": "git",
                "mainbranch": {"name": r["mainbranch"], "type": "branch"},
                "project": {"type": "project", "key": project["key"], "name": project["name"]},
                "workspace": {"type": "workspace", "slug": self.slug},
                "created_on": "2022-01-01T00:00:00.000000+00:00", "language": "python"}

    # --- 2.0 ----------------------------------------------------------------------------------
    def members(self, query: dict[str, str], ws: str) -> Paged:
        workspace = self._ws(ws)
        return [{"type": "workspace_membership", "workspace": workspace, **m}
                for m in self.workspace["members"]]

    def project_list(self, query: dict[str, str], ws: str) -> Paged:
        self._ws(ws)
        return [self._project(p) for p in self.projects]

    def repo_list(self, query: dict[str, str], ws: str) -> Paged:
        self._ws(ws)
        q = query.get("q", "")
        match = re.fullmatch(r'\s*project\.key\s*=\s*"([^"]*)"\s*', q)
        if q and not match:
            raise BitbucketError(400, f"Invalid query: {q}")
        return [self._repository(r) for r in self.repos if not match or r["project"] == match[1]]

    def restrictions(self, query: dict[str, str], ws: str, slug: str) -> Paged:
        repo = self._repo(ws, slug, admin_only=True)
        pattern = query.get("pattern")
        return [{**r, "links": {}} for r in repo["restrictions"]
                if pattern is None or r.get("pattern") == pattern]

    def user_perms(self, query: dict[str, str], ws: str, slug: str) -> Paged:
        repo = self._repo(ws, slug, admin_only=True)
        return [{"type": "repository_user_permission", **e, "repository": self._repo_ref(repo)}
                for e in repo["users"]]

    def group_perms(self, query: dict[str, str], ws: str, slug: str) -> Paged:
        repo = self._repo(ws, slug, admin_only=True)
        return [{"type": "repository_group_permission", **e, "repository": self._repo_ref(repo)}
                for e in repo["groups"]]

    def effective_perms(self, query: dict[str, str], ws: str, slug: str) -> Paged:
        repo = self._repo(ws, slug)
        return [{"type": "repository_permission", **e, "repository": self._repo_ref(repo)}
                for e in repo["effective"]]

    # --- 1.0 and internal groups ----------------------------------------------------------------
    def v1_groups(self, query: dict[str, str], ws: str) -> Bare:
        self._ws(ws)
        return Bare({"name": g["name"], "slug": g["slug"], "permission": g["permission"],
                     "auto_add": g["auto_add"], "email_forwarding_disabled": False,
                     "owner": g["owner"], "members": [self.accounts[a] for a in g["members"]]}
                    for g in self.groups)

    def internal_groups(self, query: dict[str, str], ws: str, bearer: bool = False) -> Paged:
        self._ws(ws)
        if not bearer:
            raise BitbucketError(403, "This API is only accessible with OAuth tokens")
        return [{k: g[k] for k in ("slug", "name", "type", "owner", "permission", "auto_add")}
                for g in self.groups]

    def internal_members(self, query: dict[str, str], ws: str, group: str,
                         bearer: bool = False) -> Paged:
        self._ws(ws)
        if not bearer:
            raise BitbucketError(403, "This API is only accessible with OAuth tokens")
        found = next((g for g in self.groups if g["slug"] == group), None)
        if found is None:
            raise BitbucketError(404, f"Group {group} not found")
        return [self.accounts[a] for a in found["members"]]

    # --- Atlassian ------------------------------------------------------------------------------
    def my_permissions(self, query: dict[str, str]) -> Any:
        wanted = [p for p in query.get("permissions", "").split(",") if p]
        return {"permissions": {p: {"id": "27", "key": p, "name": "Browse users and groups",
                                    "type": "GLOBAL", "havePermission": self.user_picker}
                                for p in wanted}}

    def user_search(self, query: dict[str, str]) -> Bare:
        start = max(0, int(query.get("startAt", 0)))
        size = max(1, min(int(query.get("maxResults", 50)), 1000))
        return Bare(self.atlassian[start:start + size])

    def answer(self, path: str, query: dict[str, str], bearer: bool) -> Any:
        """The body of one GET: a `Paged` list, a `Bare` list or an object."""
        for pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match:
                extra = {"bearer": bearer} if path.startswith("/internal/") else {}
                return handler(query, **match.groupdict(), **extra)
        raise BitbucketError(404, f"Resource not found: {path}")


class Tokens:
    """OAuth2 access and refresh tokens issued by this server."""

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self.access: dict[str, float] = {}
        self.refresh: set[str] = set()
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    def issue(self) -> dict[str, Any]:
        with self.lock:
            n = next(self.counter)
            access, refresh = f"bb-access-{n}", f"bb-refresh-{n}"
            self.access[access] = time.time() + self.ttl
            self.refresh.add(refresh)
        return {"access_token": access, "scopes": "account project repository pullrequest",
                "token_type": "bearer", "expires_in": self.ttl, "state": "client_credentials",
                "refresh_token": refresh}

    def valid(self, token: str) -> bool:
        with self.lock:
            return self.access.get(token, 0) > time.time()


def _page(items: list[Any], query: dict[str, str], cap: int, url: str) -> dict[str, Any]:
    pagelen = max(1, min(int(query.get("pagelen") or 10), cap, 100))
    page = max(1, int(query.get("page") or 1))
    chunk = items[(page - 1) * pagelen:page * pagelen]
    body: dict[str, Any] = {"pagelen": pagelen, "size": len(items), "page": page,
                            "values": chunk}
    if page * pagelen < len(items):
        body["next"] = url + "?" + urlencode({**query, "page": page + 1})
    return body


def make_server(host: str = "127.0.0.1", port: int = 8086, cap: int = 2,
                fixtures: str | Path | None = None, token_ttl: int = 7200,
                user_picker: bool = True, fail_once: tuple[str, ...] = ()
                ) -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`).

    fixtures: a folder like `fixtures/` (relative paths are taken from this example's folder);
    token_ttl: lifetime of the OAuth access tokens; user_picker: whether the Atlassian account
    may browse users; fail_once: `PATH:STATUS` answers given once."""
    folder = FIXTURES if fixtures is None else Path(fixtures)
    workspace = Workspace(folder if folder.is_absolute() else HERE / folder, user_picker)
    tokens = Tokens(token_ttl)
    failures = {path: int(status) for path, _, status in (f.rpartition(":") for f in fail_once)}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _auth(self) -> tuple[bool, bool]:
            """(authenticated, with a bearer token)."""
            header = self.headers.get("Authorization", "")
            if header.startswith("Bearer "):
                return tokens.valid(header[7:].strip()), True
            if header.startswith("Basic "):
                decoded = base64.b64decode(header[6:] + "==").decode(errors="replace")
                return ":" in decoded and decoded.split(":", 1)[1] != "", False
            return False, False

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = dict(parse_qsl(body))
            if urlsplit(self.path).path != "/site/oauth2/access_token":
                return self._send(404, {"type": "error", "error": {"message": "Not found"}})
            ok, bearer = self._auth()
            if not ok or bearer:
                return self._send(401, {"error": "invalid_client",
                                        "error_description": "Invalid client credentials"})
            grant = form.get("grant_type")
            if grant == "refresh_token":
                if form.get("refresh_token") not in tokens.refresh:
                    return self._send(400, {"error": "invalid_grant",
                                            "error_description": "Invalid refresh_token"})
            elif grant != "client_credentials":
                return self._send(400, {"error": "unsupported_grant_type",
                                        "error_description": f"Unsupported grant type: {grant}"})
            self._send(200, tokens.issue())

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path.rstrip("/")
            query = dict(parse_qsl(parts.query))
            with lock:
                failure = failures.pop(path, None)
            if failure is not None:
                return self._send(failure, {"type": "error",
                                            "error": {"message": f"Injected {failure}"}})
            ok, bearer = self._auth()
            if not ok:
                return self._send(401, {"type": "error", "error": {
                    "message": "Access token expired." if bearer else "Unauthorized"}})
            try:
                body = workspace.answer(path, query, bearer)
            except BitbucketError as e:
                return self._send(e.status, {"type": "error", "error": {"message": e.message}})
            if isinstance(body, list) and not isinstance(body, Bare):
                body = _page(body, query, cap,
                             f"http://{self.headers.get('Host', 'localhost')}{path}")
            self._send(200, body)

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body, ensure_ascii=False).encode()
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
    parser.add_argument("--port", type=int, default=8086)
    parser.add_argument("--pagelen-cap", type=int, default=2,
                        help="largest page (Bitbucket: 100; its default pagelen is 10)")
    parser.add_argument("--fixtures", default=None,
                        help="fixture folder (default: fixtures/ next to this file)")
    parser.add_argument("--token-ttl", type=int, default=7200,
                        help="lifetime of issued OAuth access tokens, seconds")
    parser.add_argument("--no-user-picker", action="store_true",
                        help="the Atlassian account may not browse users")
    parser.add_argument("--fail-once", action="append", default=[], metavar="PATH:STATUS",
                        help="answer STATUS to the first GET of PATH; repeatable")
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.pagelen_cap, args.fixtures, args.token_ttl,
                         not args.no_user_picker, tuple(args.fail_once))
    host, port = args.host, server.server_address[1]
    print(f"Bitbucket Cloud fixtures on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
