"""The GitLab fixture server (examples/gitlab/server.py) answers like GitLab's REST API v4 for
every call and branch of Veza's GitLab connector (docs/catalog-parity.md#gitlab)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import ROOT
from test_http_examples import _load_server


def _serve(**options: Any) -> Iterator[str]:
    server = _load_server("gitlab").make_server("127.0.0.1", 0, **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def gitlab() -> Iterator[str]:
    yield from _serve()


def _get(url: str, token: str | None = "glpat-x") -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def _all(url: str) -> tuple[list[Any], int]:
    """Follow X-Next-Page the way the connector does; (items, pages)."""
    items, pages, page = [], 0, None
    while True:
        sep = "&" if "?" in url else "?"
        status, body, headers = _get(url if page is None else f"{url}{sep}page={page}")
        assert status == 200
        items += body
        pages += 1
        page = headers["X-Next-Page"]
        if not page:
            return items, pages


def test_a_token_is_required(gitlab: str) -> None:
    assert _get(f"{gitlab}/user", token=None)[:2] == (401, {"message": "401 Unauthorized"})


def test_single_objects_carry_no_paging_headers(gitlab: str) -> None:
    status, user, headers = _get(f"{gitlab}/user")
    assert status == 200 and user["is_admin"] is True and "X-Next-Page" not in headers
    _, group, headers = _get(f"{gitlab}/groups/12?with_projects=False")
    assert group["full_name"] == "Acme / Platform / Tools" and "projects" not in group
    assert "X-Next-Page" not in headers
    assert "projects" in _get(f"{gitlab}/groups/12")[1]
    assert _get(f"{gitlab}/groups/999")[:2] == (404, {"message": "404 Group Not Found"})


def test_lists_page_with_x_next_page_empty_on_the_last_page(gitlab: str) -> None:
    users, pages = _all(f"{gitlab}/users")
    assert (len(users), pages) == (10, 5)
    _, _, headers = _get(f"{gitlab}/users?page=5")
    assert headers["X-Next-Page"] == "" and headers["X-Total"] == "10"
    assert 'rel="next"' in _get(f"{gitlab}/users")[2]["Link"]
    groups, _ = _all(f"{gitlab}/groups?top_level_only=True")
    assert [g["id"] for g in groups] == [10, 20, 30]
    projects, _ = _all(f"{gitlab}/groups/30/projects")
    assert [p["name_with_namespace"] for p in projects] == ["Open Source / cli"]   # shared


def test_a_non_admin_caller_sees_its_groups_and_no_admin_fields() -> None:
    for gitlab in _serve(caller="alice"):
        assert _get(f"{gitlab}/user")[1]["username"] == "alice"
        assert "is_admin" not in _get(f"{gitlab}/user")[1]
        groups, _ = _all(f"{gitlab}/groups?top_level_only=True")
        assert [g["id"] for g in groups] == [10, 30]
        members, _ = _all(f"{gitlab}/groups/10/members")
        assert members[0]["group_saml_identity"]["extern_uid"] == "alice@acme.test"
        assert "email" not in members[0]


def test_fail_once_answers_a_rate_limit_then_the_data() -> None:
    for gitlab in _serve(fail_once=("/api/v4/groups/11/members:429",
                                    "/api/v4/projects/100/members:502")):
        status, _, headers = _get(f"{gitlab}/groups/11/members")
        assert status == 429 and headers["RateLimit-Remaining"] == "0"
        assert _get(f"{gitlab}/groups/11/members")[0] == 200
        assert _get(f"{gitlab}/projects/100/members")[0] == 502
        assert _get(f"{gitlab}/projects/100/members")[0] == 200


@pytest.mark.parametrize("name, app, users", [
    ("expected-veza.json", "GitLab - gitlab.acme.test", 10),
    ("expected-veza-gitlab-com.json", "GitLab - gitlab.com", 8),
])
def test_the_veza_payloads_are_committed(name: str, app: str, users: int) -> None:
    payload = json.loads((ROOT / "examples/gitlab" / name).read_text())
    assert payload["applications"][0]["name"] == app
    assert len(payload["applications"][0]["local_users"]) == users
