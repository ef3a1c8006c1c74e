"""The Looker fixture server (examples/looker/server.py): the calls and branches of Veza's Looker
connector (docs/catalog-parity.md), and the payload that connector produced on it
(tests/veza_connectors/README.md)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import ROOT
from test_http_examples import _load_server


@pytest.fixture(scope="module")
def looker() -> Iterator[str]:
    server = _load_server("looker").make_server("127.0.0.1", 0, client_id="lk-id",
                                                client_secret="lk-secret")
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _call(url: str, token: str | None = None, scheme: str = "token",
          form: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if form is None else urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, method="GET" if form is None else "POST")
    if token is not None:
        request.add_header("Authorization", f"{scheme} {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def token(looker: str) -> str:
    status, body = _call(f"{looker}/api/3.1/login",
                         form={"client_id": "lk-id", "client_secret": "lk-secret"})
    assert status == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
    return str(body["access_token"])


def test_login_and_tokens(looker: str, token: str) -> None:
    assert _call(f"{looker}/api/4.0/login",
                 form={"client_id": "lk-id", "client_secret": "nope"}) == (
        404, {"message": "Not found",
              "documentation_url": "https://cloud.google.com/looker/docs/r/api/support"})
    assert _call(f"{looker}/api/4.0/users")[0] == 401
    assert _call(f"{looker}/api/4.0/users", token="forged", scheme="Bearer")[0] == 401
    assert _call(f"{looker}/api/4.0/users", token=token, scheme="Bearer")[0] == 200
    assert _call(f"{looker}/api/4.0/users", token=token, scheme="token")[0] == 200


def test_api_40_lists_string_ids_and_limit_offset(looker: str, token: str) -> None:
    _, users = _call(f"{looker}/api/4.0/users", token)
    assert [u["id"] for u in users] == ["1", "2", "3", "4", "5", "6", "7"]
    assert users[1]["display_name"] is None and users[2]["is_disabled"] is True
    assert "99" in users[3]["group_ids"]                               # a group that is gone
    _, page = _call(f"{looker}/api/4.0/users?limit=2&offset=5&fields=id,email", token)
    assert page == [{"id": "6", "email": "frank@acme.test"},
                    {"id": "7", "email": "alice.admin@contractor.test"}]
    _, roles = _call(f"{looker}/api/4.0/roles", token)
    assert roles[0]["model_set"]["models"] == ["thelook", "finance", "marketing", "ghost_model"]
    _, permissions = _call(f"{looker}/api/4.0/permissions", token)
    assert {"administer", "access_data", "develop", "explore", "see_lookml",
            "use_sql_runner"} < {p["permission"] for p in permissions}
    assert _call(f"{looker}/api/4.0/connections/events_db", token)[1]["username"] == "looker_ro"
    assert _call(f"{looker}/api/4.0/connections/nope", token)[0] == 404


def test_api_31_role_members_models_and_the_404(looker: str, token: str) -> None:
    _, direct = _call(f"{looker}/api/3.1/roles/2/users?direct_association_only=True"
                      "&fields=id%2Cdisplay_name%2Cemail", token)
    assert direct == [{"id": 4, "display_name": "Dave Kim", "email": "Dave.Kim@Acme.test"},
                      {"id": 1042, "display_name": None, "email": None}]   # a hidden user
    _, everyone = _call(f"{looker}/api/3.1/roles/2/users?fields=id", token)
    assert [u["id"] for u in everyone] == [3, 4, 1042]        # + Data Engineers' members
    _, groups = _call(f"{looker}/api/3.1/roles/2/groups?fields=id&fields=name", token)
    assert groups == [{"id": 3, "name": "Data Engineers"}, {"id": 77, "name": "deleted group 77"}]
    _, model = _call(f"{looker}/api/3.1/lookml_models/thelook", token)
    assert model["allowed_db_connection_names"] == ["warehouse", "events_db"]
    assert _call(f"{looker}/api/3.1/lookml_models/ghost_model", token)[0] == 404
    assert _call(f"{looker}/api/3.1/roles/999/users", token)[0] == 404


def test_the_veza_payload_is_committed() -> None:
    payload = json.loads((ROOT / "examples/looker/expected-veza.json").read_text())
    app = payload["applications"][0]
    assert app["name"] == "Looker"
    assert [p["name"] for p in payload["permissions"]] == [
        "access_data", "explore", "see_lookml", "develop", "use_sql_runner", "administer"]
    model_sets = {r["name"]: [m["name"] for m in r.get("sub_resources", [])]
                  for r in app["resources"]}
    assert model_sets == {"All": ["thelook", "finance", "marketing"],   # ghost_model: 404
                          "Engineering": ["thelook", "marketing"], "Finance": ["finance"],
                          "Empty": []}
    admins = [(g["identity"], a["apply_to_application"]) for g in
              payload["identity_to_permissions"] for a in g["role_assignments"] if a["role"] == "1"]
    assert admins == [("1", True), ("3", True)]
