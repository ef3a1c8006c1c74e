"""A local stand-in for the GitHub REST and GraphQL APIs, serving a canned organisation.

    python examples/github-org/server.py --port 8081                            # fixtures/
    python examples/github-org/server.py --port 8081 --fixtures fixtures-veza   # the richer set

It answers the endpoints `mappings/github.yaml` and Veza's GitHub connector read, the way GitHub
does. Standard library only.

REST (at `/` as on api.github.com, and under `/api/v3` as on GitHub Enterprise Server): JSON lists
paged with `per_page`/`page` and an RFC 8288 `Link` header (`rel="next"`, `rel="last"`, ...),
absolute URLs with the scheme the server runs on; `role=` on org members, `affiliation=` on
collaborators; branch protection (200 with the protection when `branch-protection.json` has the
branch, else 404 `Branch not protected`; 403 `Upgrade to GitHub Pro ...` for a private repository of
an organisation on the `free` plan); `X-RateLimit-*` headers on every answer; 401 without a token;
404 for anything else. GitHub honours `per_page` up to 100; this server caps pages at
`--per-page-cap` (2 by default) so that the small fixtures still span several pages.

GraphQL (`POST /graphql`, and `/api/graphql` as on GitHub Enterprise Server): a small executor for
the part of GitHub's schema the connectors query (`organization { membersWithRole, teams, team }`,
`Team { members, childTeams, parentTeam }`, `User`, connections with `edges`/`nodes`/`pageInfo`/
`totalCount`), variables, aliases, `__typename`; errors the GitHub way (HTTP 200 with `errors`).
Cursors are GitHub-like keyset cursors (`base64("cursor:v2:" + JSON [key])`, the key being the
user's `databaseId` or the team's name; GitHub's own v2 cursors also encode the last item's sort
key): `after` returns the items whose key follows the cursor's, and a cursor taken from another
connection is honoured as a key (whether GitHub itself does so was not verified). `first` above 100
is an error; `first` is also capped at `--per-page-cap` so that connections span several pages.
`--graphql-cursors offset` makes cursors positions in their connection instead.

GitHub App auth: `GET /app/installations` and `POST /app/installations/{id}/access_tokens` take a
JWT (`alg` RS256, `iss` the app id -- checked against `--app-id` when given, `iat`/`exp` at most ten
minutes apart and not expired; the signature is NOT verified); the installation token they issue
(`ghs_...`) expires after `--token-ttl` seconds (3600 by default) and is refused (401) once
expired. Any other bearer token is accepted on the non-`/app` routes, a JWT is refused there.

`--tls-cert`/`--tls-key` serve HTTPS (Veza's connector only accepts `https://` URLs).
`overrides.json` in the fixture folder, a list of `{"method", "path", "status", "body"}`, forces
an answer for an exact path (without `/api/v3` and query), e.g. a 403 on one branch protection.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import re
import secrets
import ssl
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
DOCS = "https://docs.github.com/rest"


class Fixtures:
    """The canned organisation of one fixture folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.org = self.load("org.json")

    def load(self, *parts: str) -> Any:
        path = self.folder.joinpath(*parts)
        return json.loads(path.read_text()) if path.is_file() else None

    # -- REST ---------------------------------------------------------------------------------
    def members(self, query: dict[str, str]) -> list[Any]:
        admins = set(self.load("admins.json") or [])
        role = query.get("role", "all")
        members = self.load("members.json")
        if role == "admin":
            return [m for m in members if m["login"] in admins]
        if role == "member":
            return [m for m in members if m["login"] not in admins]
        return members

    def teams(self) -> list[Any]:
        return self.load("teams.json") or []

    def child_teams(self, slug: str) -> list[Any]:
        return [t for t in self.teams() if (t.get("parent") or {}).get("slug") == slug]

    def team_members(self, slug: str, immediate: bool) -> list[Any] | None:
        """The team's members; with `immediate=False` also those of its child teams (as REST)."""
        direct = self.load("team-members", f"{slug}.json")
        if direct is None:
            return None
        if immediate:
            return direct
        found = list(direct)
        seen = {m["login"] for m in found}
        for child in self.child_teams(slug):
            for member in self.team_members(child["slug"], False) or []:
                if member["login"] not in seen:
                    seen.add(member["login"])
                    found.append(member)
        return found

    def collaborators(self, repo: str, query: dict[str, str]) -> list[Any] | None:
        direct = self.load("collaborators", f"{repo}.json")
        if direct is None:
            return None
        if query.get("affiliation") == "outside":
            logins = {m["login"] for m in self.load("members.json")}
            return [c for c in direct if c["login"] not in logins]
        return direct

    def repo(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.load("repos.json") or [] if r["name"] == name), None)

    def user(self, login: str) -> dict[str, Any] | None:
        full = self.load("users", f"{login}.json")
        if full is not None:
            return full
        for source in (self.load("members.json") or [],
                       *(self.load("collaborators", p.name) or []
                         for p in sorted((self.folder / "collaborators").glob("*.json")))):
            for user in source:
                if user["login"] == login:
                    return user
        return None

    def branch_protection(self, repo: str, branch: str) -> tuple[int, Any]:
        record = self.repo(repo)
        if record is None:
            return 404, NOT_FOUND
        plan = (self.org.get("plan") or {}).get("name")
        if plan == "free" and record.get("private"):
            return 403, {"message": "Upgrade to GitHub Pro or make this repository public to "
                                    "enable this feature.",
                         "documentation_url": "https://docs.github.com/rest/branches/"
                                              "branch-protection#get-branch-protection",
                         "status": "403"}
        protection = (self.load("branch-protection.json") or {}).get(repo, {}).get(branch)
        if protection is None:
            return 404, {"message": "Branch not protected",
                         "documentation_url": "https://docs.github.com/rest/branches/"
                                              "branch-protection#get-branch-protection",
                         "status": "404"}
        return 200, protection

    def installations(self) -> list[Any]:
        found = self.load("installations.json")
        if found is not None:
            return found
        return [{"id": 4242, "app_id": 777, "app_slug": "veza-oaa", "target_type": "Organization",
                 "target_id": self.org["id"],
                 "account": {"login": self.org["login"], "id": self.org["id"],
                             "type": "Organization"},
                 "repository_selection": "all",
                 "permissions": {"members": "read", "metadata": "read",
                                 "administration": "read"}}]


# -- GraphQL ----------------------------------------------------------------------------------
class GraphQLError(Exception):
    def __init__(self, message: str, path: list[Any] | None = None, type_: str | None = None
                 ) -> None:
        super().__init__(message)
        self.path = path
        self.type = type_


_TOKEN = re.compile(r"""\s*(?:(?P<comment>\#[^\n]*)|(?P<string>"(?:[^"\\]|\\.)*")|
    (?P<number>-?\d+(?:\.\d+)?)|(?P<name>[_A-Za-z][_0-9A-Za-z]*)|(?P<spread>\.\.\.)|
    (?P<punct>[!$():=@\[\]{}|,]))""", re.X)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise GraphQLError(f"Parse error on \"{text[pos:pos + 10]}\"")
        pos = match.end()
        kind = match.lastgroup or ""
        if kind != "comment" and not (kind == "punct" and match[kind] == ","):
            out.append((kind, match[kind]))
    return out


class _Parser:
    """GraphQL documents without fragments or directives: one operation, its variables,
    selections with aliases and arguments."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if value is not None and token[1] != value:
            raise GraphQLError(f"Parse error on \"{token[1]}\" ({token[0].upper()}): "
                               f"expected \"{value}\"")
        self.i += 1
        return token

    def document(self) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
        defaults: dict[str, Any] = {}
        if self.peek()[1] in ("query",):
            self.take()
            if self.peek()[0] == "name":
                self.take()
            if self.peek()[1] == "(":
                self.take("(")
                while self.peek()[1] != ")":
                    self.take("$")
                    name = self.take()[1]
                    self.take(":")
                    self.type_ref()
                    if self.peek()[1] == "=":
                        self.take("=")
                        defaults[name] = self.value()
                self.take(")")
        elif self.peek()[1] in ("mutation", "subscription"):
            raise GraphQLError("This fixture server answers queries only")
        selections = self.selection_set()
        if self.peek()[0] != "eof":
            raise GraphQLError("This fixture server answers one operation per document")
        return selections, defaults

    def type_ref(self) -> None:
        if self.peek()[1] == "[":
            self.take("[")
            self.type_ref()
            self.take("]")
        else:
            self.take()
        if self.peek()[1] == "!":
            self.take("!")

    def selection_set(self) -> list[tuple[str, Any]]:
        self.take("{")
        out = []
        while self.peek()[1] != "}":
            if self.peek()[0] == "spread":
                raise GraphQLError("Fragments are not supported by this fixture server")
            alias = name = self.take()[1]
            if self.peek()[1] == ":":
                self.take(":")
                name = self.take()[1]
            args: dict[str, Any] = {}
            if self.peek()[1] == "(":
                self.take("(")
                while self.peek()[1] != ")":
                    key = self.take()[1]
                    self.take(":")
                    args[key] = self.value()
                self.take(")")
            sub = self.selection_set() if self.peek()[1] == "{" else None
            out.append((alias, (name, args, sub)))
        self.take("}")
        return out

    def value(self) -> Any:
        kind, text = self.take()
        if text == "$":
            return ("$", self.take()[1])
        if kind == "string":
            return json.loads(text)
        if kind == "number":
            return float(text) if "." in text else int(text)
        if text == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
            self.take("]")
            return items
        if text == "{":
            obj = {}
            while self.peek()[1] != "}":
                key = self.take()[1]
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        return {"true": True, "false": False, "null": None}.get(text, text)   # enums as names


def _resolve_args(args: Any, variables: dict[str, Any]) -> Any:
    if isinstance(args, tuple) and args[:1] == ("$",):
        return variables.get(args[1])
    if isinstance(args, dict):
        return {k: _resolve_args(v, variables) for k, v in args.items()}
    if isinstance(args, list):
        return [_resolve_args(v, variables) for v in args]
    return args


def _cursor(key: Any) -> str:
    return base64.b64encode(b"cursor:v2:" + json.dumps([key]).encode()).decode()


def _uncursor(cursor: str) -> Any:
    try:
        raw = base64.b64decode(cursor.encode(), validate=True)
        if not raw.startswith(b"cursor:v2:"):
            raise ValueError
        return json.loads(raw[len(b"cursor:v2:"):])[0]
    except (ValueError, binascii.Error, IndexError, TypeError):
        raise GraphQLError(f"`{cursor}` does not appear to be a valid cursor.") from None


class Node:
    """A GraphQL object: a type name and field resolvers `name -> f(args)`."""

    def __init__(self, typename: str, fields: dict[str, Callable[[dict[str, Any]], Any]]):
        self.typename = typename
        self.fields = fields


class Schema:
    """Resolvers over one fixture folder."""

    def __init__(self, fx: Fixtures, cap: int, cursors: str = "keyset") -> None:
        self.fx = fx
        self.cap = cap
        self.cursors = cursors

    def connection(self, typename: str, items: list[tuple[Any, Any, dict[str, Any]]],
                   args: dict[str, Any]) -> Node:
        """items: (key, node, extra edge fields), already in the connection's order."""
        first, after = args.get("first"), args.get("after")
        if first is None and args.get("last") is None:
            raise GraphQLError(f"You must provide a `first` or `last` value to properly paginate "
                               f"the `{typename}` connection.")
        if first is not None and (first > 100 or first < 0):
            raise GraphQLError(f"Requesting {first} records on the `{typename}` connection "
                               f"exceeds the `first` limit of 100 records.")
        if self.cursors == "offset":         # cursors count positions in the connection
            items = [(n, node, extra) for n, (_, node, extra) in enumerate(items, 1)]
        total = len(items)
        if after is not None:
            key = _uncursor(after)
            items = [i for i in items if _after(i[0], key)]
        size = min(first if first is not None else 100, self.cap)
        page, more = items[:size], len(items) > size

        def edge(item: tuple[Any, Any, dict[str, Any]]) -> Node:
            key, node, extra = item
            fields = {"cursor": lambda a, k=key: _cursor(k), "node": lambda a, n=node: n}
            fields.update({k: (lambda a, v=v: v) for k, v in extra.items()})
            return Node(typename.replace("Connection", "Edge"), fields)

        page_info = Node("PageInfo", {
            "endCursor": lambda a: _cursor(page[-1][0]) if page else None,
            "startCursor": lambda a: _cursor(page[0][0]) if page else None,
            "hasNextPage": lambda a: more,
            "hasPreviousPage": lambda a: after is not None})
        return Node(typename, {
            "edges": lambda a: [edge(i) for i in page],
            "nodes": lambda a: [i[1] for i in page],
            "pageInfo": lambda a: page_info,
            "totalCount": lambda a: total})

    def query(self) -> Node:
        return Node("Query", {"organization": self.organization,
                              "viewer": lambda a: None})

    def organization(self, args: dict[str, Any]) -> Node:
        org = self.fx.org
        if str(args.get("login", "")).lower() != org["login"].lower():
            raise GraphQLError(f"Could not resolve to an Organization with the login of "
                               f"'{args.get('login')}'.", type_="NOT_FOUND")
        return Node("Organization", {
            "login": lambda a: org["login"], "name": lambda a: org.get("name"),
            "id": lambda a: org.get("node_id"), "databaseId": lambda a: org.get("id"),
            "membersWithRole": self.members_with_role,
            "teams": self.org_teams,
            "team": lambda a: next((self.team(t) for t in self.fx.teams()
                                    if t["slug"] == a.get("slug")), None)})

    def user(self, login: str) -> Node:
        user = self.fx.user(login) or {"login": login}
        emails = (self.fx.load("verified-domain-emails.json") or {}).get(login, [])
        return Node("User", {
            "login": lambda a: user["login"], "id": lambda a: user.get("node_id"),
            "databaseId": lambda a: user.get("id"), "name": lambda a: user.get("name"),
            "email": lambda a: user.get("email") or "",
            "company": lambda a: user.get("company"),
            "createdAt": lambda a: user.get("created_at"),
            "updatedAt": lambda a: user.get("updated_at"),
            "avatarUrl": lambda a: user.get("avatar_url"), "url": lambda a: user.get("html_url"),
            "isSiteAdmin": lambda a: user.get("site_admin", False),
            "organizationVerifiedDomainEmails": lambda a: list(emails)})

    def members_with_role(self, args: dict[str, Any]) -> Node:
        admins = set(self.fx.load("admins.json") or [])
        two_factor = self.fx.load("two-factor.json") or {}
        members = sorted(self.fx.load("members.json"), key=lambda m: m["id"])
        items = [(m["id"], self.user(m["login"]),
                  {"role": "ADMIN" if m["login"] in admins else "MEMBER",
                   "hasTwoFactorEnabled": two_factor.get(m["login"])}) for m in members]
        return self.connection("OrganizationMemberConnection", items, args)

    def org_teams(self, args: dict[str, Any]) -> Node:
        teams = sorted(self.fx.teams(), key=lambda t: t["name"].lower())
        if args.get("rootTeamsOnly"):
            teams = [t for t in teams if not t.get("parent")]
        return self.connection("TeamConnection",
                               [(t["name"].lower(), self.team(t), {}) for t in teams], args)

    def team(self, team: dict[str, Any]) -> Node:
        parent = team.get("parent")
        return Node("Team", {
            "name": lambda a: team["name"], "slug": lambda a: team["slug"],
            "id": lambda a: team.get("node_id"), "databaseId": lambda a: team.get("id"),
            "description": lambda a: team.get("description"),
            "privacy": lambda a: "SECRET" if team.get("privacy") == "secret" else "VISIBLE",
            "parentTeam": lambda a: parent and next(
                (self.team(t) for t in self.fx.teams() if t["slug"] == parent["slug"]), None),
            "members": lambda a: self.team_members(team, a),
            "childTeams": lambda a: self.child_teams(team, a)})

    def team_members(self, team: dict[str, Any], args: dict[str, Any]) -> Node:
        membership = args.get("membership", "ALL")
        maintainers = set((self.fx.load("team-maintainers.json") or {}).get(team["slug"], []))
        immediate = self.fx.team_members(team["slug"], True) or []
        if membership == "IMMEDIATE":
            people = immediate
        else:
            every = self.fx.team_members(team["slug"], False) or []
            people = every if membership == "ALL" else [
                m for m in every if m["login"] not in {i["login"] for i in immediate}]
        items = [(m["id"], self.user(m["login"]),
                  {"role": "MAINTAINER" if m["login"] in maintainers else "MEMBER"})
                 for m in sorted(people, key=lambda m: m["id"])]
        return self.connection("TeamMemberConnection", items, args)

    def child_teams(self, team: dict[str, Any], args: dict[str, Any]) -> Node:
        def descendants(slug: str) -> list[dict[str, Any]]:
            out = []
            for child in self.fx.child_teams(slug):
                out.append(child)
                if not args.get("immediateOnly", True):
                    out += descendants(child["slug"])
            return out
        children = sorted(descendants(team["slug"]), key=lambda t: t["name"].lower())
        return self.connection("TeamConnection",
                               [(t["name"].lower(), self.team(t), {}) for t in children], args)


def _after(key: Any, cursor_key: Any) -> bool:
    try:
        return key > cursor_key
    except TypeError:          # a cursor of another kind of connection: compare as text
        return str(key) > str(cursor_key)


def _execute(node: Any, selections: list[tuple[str, Any]], variables: dict[str, Any],
             path: list[Any]) -> Any:
    if node is None:
        return None
    if isinstance(node, list):
        return [_execute(n, selections, variables, [*path, i]) for i, n in enumerate(node)]
    out: dict[str, Any] = {}
    for alias, (name, args, sub) in selections:
        if name == "__typename":
            out[alias] = node.typename
            continue
        resolver = node.fields.get(name)
        if resolver is None:
            raise GraphQLError(f"Field '{name}' doesn't exist on type '{node.typename}'",
                               [*path, alias], "undefinedField")
        try:
            value = resolver(_resolve_args(args, variables))
        except GraphQLError as e:
            e.path = e.path or [*path, alias]
            raise
        if sub is not None:
            value = _execute(value, sub, variables, [*path, alias])
        elif isinstance(value, (Node, list)) and any(isinstance(v, Node) for v in
                                                     (value if isinstance(value, list)
                                                      else [value])):
            raise GraphQLError(f"Field must have selections (field '{name}' returns "
                               f"{node.typename} but has no selections.)", [*path, alias])
        out[alias] = value
    return out


def graphql(fx: Fixtures, cap: int, body: Any, cursors: str = "keyset") -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return {"errors": [{"message": "A query attribute must be specified and must be a "
                                       "string."}]}
    variables = body.get("variables") or {}
    try:
        selections, defaults = _Parser(body["query"]).document()
        return {"data": _execute(Schema(fx, cap, cursors).query(), selections,
                                 {**defaults, **variables}, [])}
    except GraphQLError as e:
        error: dict[str, Any] = {"message": str(e)}
        if e.type:
            error["type"] = e.type
        if e.path:
            error["path"] = e.path
        data = None
        if e.type == "NOT_FOUND" and e.path and len(e.path) == 1:
            data = {e.path[0]: None}
        return {"data": data, "errors": [error]} if data else {"errors": [error]}


# -- routing ----------------------------------------------------------------------------------
def _rest_routes(fx: Fixtures) -> list[tuple[re.Pattern[str], Callable[..., Any]]]:
    return [
        (re.compile(r"/orgs/(?P<org>[^/]+)"), lambda q: fx.org),
        (re.compile(r"/orgs/(?P<org>[^/]+)/members"), fx.members),
        (re.compile(r"/orgs/(?P<org>[^/]+)/teams"), lambda q: fx.teams()),
        (re.compile(r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)"),
         lambda q, slug: next((t for t in fx.teams() if t["slug"] == slug), None)),
        (re.compile(r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)/members"),
         lambda q, slug: fx.team_members(slug, False)),
        (re.compile(r"/orgs/(?P<org>[^/]+)/repos"), lambda q: fx.load("repos.json")),
        (re.compile(r"/repos/(?P<org>[^/]+)/(?P<repo>[^/]+)"), lambda q, repo: fx.repo(repo)),
        (re.compile(r"/repos/(?P<org>[^/]+)/(?P<repo>[^/]+)/teams"),
         lambda q, repo: fx.load("repo-teams", f"{repo}.json")),
        (re.compile(r"/repos/(?P<org>[^/]+)/(?P<repo>[^/]+)/collaborators"),
         lambda q, repo: fx.collaborators(repo, q)),
        (re.compile(r"/repos/(?P<org>[^/]+)/(?P<repo>[^/]+)/branches/(?P<branch>.+)/protection"),
         lambda q, repo, branch: fx.branch_protection(repo, unquote(branch))),
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


def _jwt_claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
                          for p in parts[:2])
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(header, dict) and header.get("alg") == "RS256" else None


def make_server(host: str = "127.0.0.1", port: int = 8081, cap: int = 2,
                fixtures: str | Path | None = None, tls: tuple[str, str] | None = None,
                app_id: int | None = None, token_ttl: int = 3600, cursors: str = "keyset"
                ) -> ThreadingHTTPServer:
    """The fixture server, not yet serving (call `serve_forever()`).

    fixtures: a folder like `fixtures/` (relative paths are taken from this example's folder);
    tls: (certfile, keyfile) to serve HTTPS; cursors: `keyset` (GitHub-like, the default) or
    `offset` (a cursor is a position in its connection)."""
    folder = FIXTURES if fixtures is None else Path(fixtures)
    fx = Fixtures(folder if folder.is_absolute() else HERE / folder)
    org = fx.org
    routes = _rest_routes(fx)
    overrides = {(o.get("method", "GET"), o["path"]): o for o in fx.load("overrides.json") or []}
    issued: dict[str, float] = {}       # installation token -> expiry (epoch seconds)
    scheme = "https" if tls else "http"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1
        disable_nagle_algorithm = True

        def _token(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            kind, _, token = auth.partition(" ")
            return token.strip() if kind.lower() in ("bearer", "token") and token.strip() else None

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            path = parts.path.rstrip("/")
            rest = path[len("/api/v3"):] if path.startswith("/api/v3/") else path
            body: Any = None
            if method == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    return self._send(400, {"message": "Problems parsing JSON",
                                            "documentation_url": DOCS})
            token = self._token()
            if token is None:
                if path in ("/graphql", "/api/graphql"):
                    return self._send(401, {"message": "This endpoint requires you to be "
                                                       "authenticated.",
                                            "documentation_url": "https://docs.github.com/"
                                                                 "graphql/guides/forming-calls"
                                                                 "-with-graphql#authenticating"
                                                                 "-with-graphql"})
                return self._send(401, {"message": "Requires authentication",
                                        "documentation_url": DOCS})
            claims = _jwt_claims(token)
            if rest.startswith("/app/"):
                return self._app(method, rest, claims)
            if claims is not None:
                return self._send(401, {"message": "A JSON web token could not be decoded",
                                        "documentation_url": DOCS})
            if token in issued and issued[token] < time.time():
                return self._send(401, {"message": "Bad credentials", "documentation_url": DOCS})
            forced = overrides.get((method, rest))
            if forced:
                return self._send(forced.get("status", 200), forced.get("body"))
            if method == "POST" and path in ("/graphql", "/api/graphql"):
                return self._send(200, graphql(fx, cap, body, cursors), resource="graphql")
            if method != "GET":
                return self._send(404, NOT_FOUND)
            if rest.startswith("/users/") and rest.count("/") == 2:
                user = fx.user(rest.split("/")[2])
                return self._send(200 if user else 404, user or NOT_FOUND)
            for pattern, handler in routes:
                match = pattern.fullmatch(rest)
                if match and match["org"].lower() == org["login"].lower():
                    args = {k: v for k, v in match.groupdict().items() if k != "org"}
                    answer = handler(query, **args)
                    if answer is None:
                        break
                    status = 200
                    if isinstance(answer, tuple):
                        status, answer = answer
                    headers: dict[str, str] = {}
                    if isinstance(answer, list):
                        base = f"{scheme}://{self.headers.get('Host', f'{host}:{port}')}"
                        answer, headers = _page(base, parts.path, query, answer, cap)
                    return self._send(status, answer, headers)
            self._send(404, NOT_FOUND)

        def _app(self, method: str, rest: str, claims: dict[str, Any] | None) -> None:
            now = time.time()
            if (claims is None or "iss" not in claims
                    or not isinstance(claims.get("exp"), int)
                    or not isinstance(claims.get("iat"), int)
                    or claims["exp"] < now or claims["iat"] > now + 60
                    or claims["exp"] - claims["iat"] > 660
                    or (app_id is not None and str(claims["iss"]) != str(app_id))):
                return self._send(401, {"message": "A JSON web token could not be decoded",
                                        "documentation_url": DOCS})
            installs = fx.installations()
            if method == "GET" and rest == "/app/installations":
                base = f"{scheme}://{self.headers.get('Host', f'{host}:{port}')}"
                query = dict(parse_qsl(urlsplit(self.path).query))
                page, headers = _page(base, urlsplit(self.path).path, query, installs, cap)
                return self._send(200, page, headers)
            match = re.fullmatch(r"/app/installations/(\d+)/access_tokens", rest)
            if method == "POST" and match and any(str(i["id"]) == match[1] for i in installs):
                token = "ghs_" + secrets.token_hex(18)
                issued[token] = now + token_ttl
                expires = datetime.fromtimestamp(int(now + token_ttl), timezone.utc)
                return self._send(201, {"token": token,
                                        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                        "permissions": {"members": "read", "metadata": "read",
                                                        "administration": "read"},
                                        "repository_selection": "all"})
            self._send(404, NOT_FOUND)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None,
                  resource: str = "core") -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("X-RateLimit-Limit", "5000")
            self.send_header("X-RateLimit-Remaining", "4999")
            self.send_header("X-RateLimit-Used", "1")
            self.send_header("X-RateLimit-Reset", str(int(time.time()) + 3600))
            self.send_header("X-RateLimit-Resource", resource)
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

    server = Server((host, port), Handler)
    server.fixtures = fx  # type: ignore[attr-defined]
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--per-page-cap", type=int, default=2)
    parser.add_argument("--fixtures", default=None,
                        help="fixture folder (default: fixtures/ next to this file)")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="... and this private key (PEM)")
    parser.add_argument("--app-id", type=int, help="the GitHub App id a JWT must carry as `iss`")
    parser.add_argument("--token-ttl", type=int, default=3600,
                        help="lifetime of issued installation tokens, in seconds")
    parser.add_argument("--graphql-cursors", choices=("keyset", "offset"), default="keyset",
                        help="keyset: GitHub-like cursors holding the last item's key (a "
                             "cursor from another connection is honoured as a key); offset: "
                             "a cursor is a position in its connection")
    args = parser.parse_args()
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    server = make_server(args.host, args.port, args.per_page_cap, args.fixtures, tls,
                         args.app_id, args.token_ttl, args.graphql_cursors)
    host, port = server.server_address[:2]
    print(f"GitHub fixtures for org `{server.fixtures.org['login']}` on "
          f"{'https' if tls else 'http'}://{host}:{port} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
