"""A local HTTP test server (stdlib, 127.0.0.1, ephemeral port) with the scenarios the `http` source
tests need: every pagination style, every auth kind, rate limits, transient errors, malformed pages,
pagination loops, slow and hanging endpoints, a fan-out with random latency.

Usage:
    with LocalServer() as server:
        add_standard_routes(server)
        url = server.url("/link")

Routes are plain functions `handler(req: Req) -> Reply`; `server.hits` counts requests per path and
`server.requests` keeps every request (method, path, query, headers, body) for assertions.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

__all__ = ["ITEMS", "LocalServer", "Reply", "Req", "add_standard_routes"]

ITEMS = [{"id": i, "name": f"item{i}"} for i in range(1, 24)]  # 23 items: 5 pages of 5, last short

TOKEN = "s3cr3t-bearer-token"
USER, PASSWORD = "alice", "pa55-w0rd-basic"
API_KEY = "k3y-abcdef-123456"
CLIENT_ID, CLIENT_SECRET = "client-1", "cl13nt-s3cr3t-value"


@dataclass
class Req:
    """A request as the handlers see it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base: str
    raw_query: str = ""

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def int(self, name: str, default: int) -> int:
        return int(self.query.get(name, default))


@dataclass
class Reply:
    """What a handler answers: status, a JSON value (or raw bytes) and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    drip: float = 0.0  # seconds between body bytes: a server that trickles its answer


Handler = Callable[[Req], Reply]


class LocalServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with a route table; a context manager."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.prefix_routes: list[tuple[str, str, Handler]] = []
        self.hits: Counter[str] = Counter()
        self.requests: list[Req] = []
        self.state: dict[str, Any] = {}
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def route(self, path: str, method: str = "GET", prefix: bool = False
              ) -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            if prefix:
                self.prefix_routes.append((method, path, handler))
            else:
                self.routes[(method, path)] = handler
            return handler
        return add

    @property
    def base(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()
            self.requests.clear()
            self.state.clear()

    def count(self, key: str) -> int:
        """Increment and return a named counter (thread-safe)."""
        with self.lock:
            self.state[key] = self.state.get(key, 0) + 1
            return int(self.state[key])

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per response and no Nagle delay: otherwise every keep-alive request
            # waits ~40 ms for a delayed ACK.
            wbufsize = -1
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                server._dispatch(self, "GET")

            def do_POST(self) -> None:
                server._dispatch(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default 5 drops connects of a 16-thread fan-out
            daemon_threads = True

        self._httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _find(self, method: str, path: str) -> Handler | None:
        handler = self.routes.get((method, path))
        if handler is None:
            for m, prefix, h in self.prefix_routes:
                if m == method and path.startswith(prefix):
                    return h
        return handler

    def _dispatch(self, http: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        req = Req(method, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                  {k.lower(): v for k, v in http.headers.items()}, http.rfile.read(length),
                  self.base, parts.query)
        with self.lock:
            self.hits[req.path] += 1
            self.requests.append(req)
        handler = self._find(method, req.path)
        reply = handler(req) if handler else Reply(404, {"message": "Not Found"})
        raw = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        try:
            http.send_response(reply.status)
            headers = {"Content-Type": "application/json", **reply.headers}
            for key, value in headers.items():
                http.send_header(key, value)
            http.send_header("Content-Length", str(len(raw)))
            http.end_headers()
            if reply.drip:
                http.wfile.flush()
                for i in range(len(raw)):
                    time.sleep(reply.drip)
                    http.wfile.write(raw[i:i + 1])
                    http.wfile.flush()
            else:
                http.wfile.write(raw)
                http.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


def _slice(items: list[Any], start: int, size: int) -> list[Any]:
    return items[start:start + size]


def _link(base: str, path: str, **query: Any) -> str:
    return f"{base}{path}?{urlencode(query)}"


def add_standard_routes(server: LocalServer) -> None:
    """Register every scenario the http source tests use."""

    # --- pagination styles ---------------------------------------------------------------------
    @server.route("/link")
    def link(req: Req) -> Reply:
        page, per = req.int("page", 1), req.int("per_page", 5)
        items = _slice(ITEMS, (page - 1) * per, per)
        links = []
        if page * per < len(ITEMS):
            target = f"/link?page={page + 1}&per_page={per}"
            url = target if req.query.get("relative") else req.base + target
            if req.query.get("relative"):
                url += "&relative=1"
            links.append(f'<{url}>; rel="next"')
        links.append(f'<{req.base}/link?page=5&per_page={per}>; rel="last"')
        return Reply(200, items, {"Link": ", ".join(links)})

    @server.route("/next-url")
    def next_url(req: Req) -> Reply:
        after = req.int("after", 0)
        items = _slice(ITEMS, after, 5)
        nxt: str | None = None
        if after + 5 < len(ITEMS):
            nxt = f"/next-url?after={after + 5}" if req.query.get("relative") == "1" else \
                _link(req.base, "/next-url", after=after + 5)
            if req.query.get("relative") == "1":
                nxt += "&relative=1"
        return Reply(200, {"items": items, "paging": {"next": nxt}})

    def encode(n: int) -> str:
        return base64.b64encode(f"offset:{n}".encode()).decode()

    def decode(cursor: str | None) -> int:
        return int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0

    @server.route("/cursor")
    def cursor(req: Req) -> Reply:
        start = decode(req.query.get("cursor"))
        end = start + 5
        return Reply(200, {"data": _slice(ITEMS, start, 5),
                           "meta": {"next_cursor": encode(end) if end < len(ITEMS) else ""}})

    @server.route("/search", method="POST")
    def search(req: Req) -> Reply:
        body = req.json()
        matching = [i for i in ITEMS if body.get("query", "") in i["name"]]
        start = decode(body.get("cursor"))
        end = start + body.get("size", 5)
        return Reply(200, {"results": matching[start:end],
                           "next": encode(end) if end < len(matching) else None})

    @server.route("/offset")
    def offset(req: Req) -> Reply:
        start, limit = req.int("offset", 0), req.int("limit", 25)
        limit = min(limit, req.int("cap", 1000))  # a server-side cap on the page size
        items = _slice(ITEMS, start, limit)
        return Reply(200, {"items": items, "offset": start, "limit": limit,
                           "more": start + len(items) < len(ITEMS)})

    @server.route("/page")
    def page(req: Req) -> Reply:
        number, per = req.int("page", 1), req.int("per_page", 5)
        return Reply(200, {"results": _slice(ITEMS, (number - 1) * per, per)})

    @server.route("/single")
    def single(req: Req) -> Reply:
        return Reply(200, {"login": "acme", "id": 1, "default_repository_permission": "read"})

    # --- auth ----------------------------------------------------------------------------------
    def denied() -> Reply:
        return Reply(401, {"message": "Bad credentials"})

    @server.route("/auth/bearer")
    def bearer(req: Req) -> Reply:
        ok = req.headers.get("authorization") == f"Bearer {TOKEN}"
        return Reply(200, [{"who": "bearer"}]) if ok else denied()

    @server.route("/auth/basic")
    def basic(req: Req) -> Reply:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        ok = req.headers.get("authorization") == expected
        return Reply(200, [{"who": "basic"}]) if ok else denied()

    @server.route("/auth/header-key")
    def header_key(req: Req) -> Reply:
        ok = req.headers.get("x-api-key") == API_KEY
        return Reply(200, [{"who": "header-key"}]) if ok else denied()

    @server.route("/auth/query-key")
    def query_key(req: Req) -> Reply:
        page = req.int("page", 1)
        if req.query.get("api_key") != API_KEY:
            return denied()
        return Reply(200, [{"who": "query-key", "page": page}] if page <= 2 else [])

    @server.route("/oauth/token", method="POST")
    def token(req: Req) -> Reply:
        form = req.form()
        auth = req.headers.get("authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        if form.get("grant_type") != "client_credentials" or (cid, secret) != (
                CLIENT_ID, CLIENT_SECRET):
            return Reply(401, {"error": "invalid_client"})
        n = server.count("tokens")
        value = f"oauth-token-{n}-{'x' * 8}"
        with server.lock:
            server.state["valid_token"] = value
            server.state["scope"] = form.get("scope")
        expires = server.state.get("expires_in", 3600)
        return Reply(200, {"access_token": value, "token_type": "Bearer", "expires_in": expires})

    @server.route("/auth/oauth")
    def oauth(req: Req) -> Reply:
        page = req.int("page", 1)
        if req.headers.get("authorization") != f"Bearer {server.state.get('valid_token')}":
            return denied()
        if page == int(server.state.get("revoke_at_page", 0)):
            with server.lock:  # the token "expires" server-side once
                server.state["valid_token"] = None
                server.state["revoke_at_page"] = 0
            return denied()
        return Reply(200, [{"who": "oauth", "page": page}] if page <= 3 else [])

    # --- faults --------------------------------------------------------------------------------
    @server.route("/flaky/429")
    def rate_limited(req: Req) -> Reply:
        n = server.count("429:" + req.query.get("key", ""))
        if n <= int(req.query.get("fail", 2)):
            return Reply(429, {"message": "API rate limit exceeded"},
                         {"Retry-After": req.query.get("after", "0")})
        return Reply(200, [{"ok": True, "attempts": n}])

    @server.route("/flaky/500")
    def flaky(req: Req) -> Reply:
        n = server.count("500:" + req.query.get("key", ""))
        if n <= int(req.query.get("fail", 2)):
            return Reply(int(req.query.get("status", 500)), raw=b"<html>Internal Error</html>",
                         headers={"Content-Type": "text/html"})
        return Reply(200, [{"ok": True, "attempts": n}])

    @server.route("/flaky/403")
    def github_rate_limit(req: Req) -> Reply:
        n = server.count("403:" + req.query.get("key", ""))
        if n > int(req.query.get("fail", 1)):
            return Reply(200, [{"ok": True, "attempts": n}])
        style = req.query.get("style", "plain")
        headers = {"Retry-After": "0"} if style == "retry-after" else {}
        if style == "reset":
            headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()))}
        return Reply(403, {"message": "API rate limit exceeded" if headers else "Forbidden"},
                     headers)

    @server.route("/always/503")
    def always(req: Req) -> Reply:
        return Reply(503, {"message": "down for maintenance"})

    @server.route("/malformed")
    def malformed(req: Req) -> Reply:
        page = req.int("page", 1)
        if page == 2:
            return Reply(200, raw=b'[{"id": 6, "name": "item6"}, {"id": 7', headers={
                "Content-Type": "application/json"})
        return Reply(200, _slice(ITEMS, 0, 5),
                     {"Link": f'<{req.base}/malformed?page=2>; rel="next"'})

    @server.route("/html")
    def html(req: Req) -> Reply:
        return Reply(200, raw=b"<!doctype html><p>Sign in</p>", headers={
            "Content-Type": "text/html"})

    @server.route("/loop")
    def loop(req: Req) -> Reply:
        return Reply(200, {"items": _slice(ITEMS, 0, 2), "next": "/loop?page=2"})

    @server.route("/cycle")
    def cycle(req: Req) -> Reply:
        target = "b" if req.query.get("at", "a") == "a" else "a"
        return Reply(200, {"items": [{"at": req.query.get("at", "a")}],
                           "next": f"/cycle?at={target}"})

    @server.route("/endless")
    def endless(req: Req) -> Reply:
        n = req.int("n", 0)
        return Reply(200, {"items": [{"n": n}], "next": f"/endless?n={n + 1}"})

    @server.route("/wrapped")
    def wrapped(req: Req) -> Reply:
        return Reply(200, {"data": {"items": [1, 2]}, "list": [{"a": 1}], "obj": {"x": 1}})

    @server.route("/slow")
    def slow(req: Req) -> Reply:
        time.sleep(float(req.query.get("delay", "0.05")))
        return Reply(200, [{"slow": True}])

    @server.route("/drip")
    def drip(req: Req) -> Reply:
        return Reply(200, raw=b'[{"slow": "' + b"x" * 60 + b'"}]',
                     drip=float(req.query.get("every", "0.05")))

    @server.route("/hang")
    def hang(req: Req) -> Reply:
        time.sleep(float(req.query.get("delay", "5")))
        return Reply(200, [])

    @server.route("/echo", method="POST")
    @server.route("/echo")
    def echo(req: Req) -> Reply:
        return Reply(200, {"method": req.method, "path": req.path, "query": req.query,
                           "headers": {k: v for k, v in req.headers.items()
                                       if k in ("accept", "x-team", "user-agent")},
                           "body": req.json() if req.body else None})

    @server.route("/echo-error")
    def echo_error(req: Req) -> Reply:
        # A misbehaving server that echoes the credentials it got into an error body.
        return Reply(400, {"error": "bad request", "you_sent": req.headers.get("authorization"),
                           "note": f"auth was {req.headers.get('authorization')}"})

    # --- fan-out -------------------------------------------------------------------------------
    @server.route("/parents")
    def parents(req: Req) -> Reply:
        n = req.int("n", 10)
        return Reply(200, [{"id": i, "slug": f"p{i}"} for i in range(1, n + 1)])

    @server.route("/children/", prefix=True)
    def children(req: Req) -> Reply:
        parent = req.path.rsplit("/", 1)[-1]
        page = req.int("page", 1)
        time.sleep(random.uniform(0, float(req.query.get("jitter", "0.02"))))
        if req.query.get("fail") == parent:
            return Reply(404, {"message": f"no parent {parent}"})
        if page > 2:
            return Reply(200, [])
        return Reply(200, [{"child": f"{parent}-{page}-{k}"} for k in (1, 2)])
