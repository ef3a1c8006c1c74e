"""The emulator's API as seen on the wire: shapes, auth, paging, validation, multipart, storage."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from veza_helpers import KEY, compact, sample

from oaamap.veza.emulator import start_emulator
from oaamap.veza.validate import validate_payload

BASE = "/api/v1/providers/custom"


class Api:
    """A bare HTTP caller of an emulator."""

    def __init__(self, handle, key: str = KEY) -> None:
        self.url = handle.url
        self.headers = {"authorization": f"Bearer {key}"}

    def __call__(self, method: str, path: str, body=None, **params) -> requests.Response:
        return requests.request(method, self.url + path, json=body, params=params or None,
                                headers=self.headers, timeout=10)

    def provider(self, name: str = "P", template: str = "application") -> str:
        return self("POST", BASE, {"name": name, "custom_template": template}).json()["value"]["id"]

    def source(self, pid: str, name: str = "ds") -> str:
        return self("POST", f"{BASE}/{pid}/datasources", {"name": name, "id": pid}
                    ).json()["value"]["id"]

    def push(self, pid: str, dsid: str, payload, gzip_it: bool = True) -> requests.Response:
        text = payload if isinstance(payload, str) else compact(payload)
        body = {"id": pid, "data_source_id": dsid, "json_data": text}
        if gzip_it:
            body["json_data"] = base64.b64encode(gzip.compress(text.encode())).decode()
            body["compression_type"] = "GZIP"
        return self("POST", f"{BASE}/{pid}/datasources/{dsid}:push", body)


@pytest.fixture
def api(emulator) -> Api:
    return Api(emulator)


def _fields(response: requests.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"code", "message", "request_id", "timestamp", "details"}
    bad = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    return {v["field"]: v["description"] for d in bad for v in d["field_violations"]}


def test_bearer_key_is_required(emulator, api):
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": f"Basic {KEY}"}):
        answer = requests.get(emulator.url + BASE, headers=headers, timeout=5)
        assert answer.status_code == 401 and answer.json()["code"] == "Unauthenticated"
    assert api("GET", BASE).status_code == 200


def test_list_shape_paging_and_filters(api):
    for i in range(5):
        api.provider(f"Prov {i}")
    first = api("GET", BASE, page_size=2).json()
    assert set(first) == {"values", "has_more", "next_page_token"} and first["has_more"]
    second = api("GET", BASE, page_size=2, page_token=first["next_page_token"]).json()
    last = api("GET", BASE, page_size=2, page_token=second["next_page_token"]).json()
    names = [p["name"] for page in (first, second, last) for p in page["values"]]
    assert names == [f"Prov {i}" for i in range(5)]
    assert (last["has_more"], last["next_page_token"]) == (False, "")
    found = api("GET", BASE, filter='name eq "Prov 3"').json()["values"]
    assert [p["name"] for p in found] == ["Prov 3"]
    assert api("GET", BASE, filter="name like 'x'").status_code == 400
    assert api("GET", BASE, page_token="!!").status_code == 400


def test_objects_and_errors_have_veza_shapes(api):
    pid = api.provider("Shape")
    value = api("GET", f"{BASE}/{pid}").json()["value"]
    assert {"id", "name", "custom_template", "state"} <= set(value)
    assert api("POST", BASE, {"name": "Shape", "custom_template": "application"}
               ).status_code == 409
    assert "custom_template" in _fields(api("POST", BASE, {"name": "X", "custom_template": "y"}))
    assert "name" in _fields(api("POST", BASE, {"name": "a/b", "custom_template": "hris"}))
    assert api("GET", f"{BASE}/nope").status_code == 404
    assert api("PUT", BASE).status_code == 405
    assert api("GET", "/api/v1/other").status_code == 404
    dsid = api.source(pid)
    assert api("GET", f"{BASE}/{pid}/datasources/{dsid}").json()["value"]["status"] == "PENDING"
    assert api("POST", f"{BASE}/{pid}/datasources", {"name": "ds"}).status_code == 409


def test_push_answers_warnings_and_stores_decoded_payload(emulator, api):
    pid = api.provider()
    dsid = api.source(pid)
    answer = api.push(pid, dsid, sample("application"))
    assert answer.status_code == 200
    assert all(set(w) == {"message"} for w in answer.json()["warnings"])
    assert emulator.pushes[0].payload() == sample("application")
    plain = api.push(pid, dsid, sample("application"), gzip_it=False)
    assert plain.status_code == 200 and emulator.pushes[1].compression == "NONE"


@pytest.mark.parametrize("mutate, field", [
    (lambda p: p["applications"][0].update(extra=1), "applications[0].extra"),
    (lambda p: p["applications"][0]["local_users"][0].pop("name"),
     "applications[0].local_users[0].name"),
    (lambda p: p["applications"][0]["local_users"][0].update(name="n" * 513),
     "applications[0].local_users[0].name"),
    (lambda p: p["applications"][0].update(description="d" * 4097),
     "applications[0].description"),
    (lambda p: p["identity_to_permissions"][0]["role_assignments"][1].update(role="Ghost"),
     "identity_to_permissions[0].role_assignments[1].role"),
    (lambda p: p["applications"][0]["local_users"][0]["custom_properties"].update(undeclared=1),
     "applications[0].local_users[0].custom_properties.undeclared"),
    (lambda p: p["applications"][0]["local_users"][0].update(name="\ud800"),
     "applications[0].local_users[0].name"),
], ids=["unknown-key", "missing-required", "name-over-512", "text-over-4096", "unknown-role",
        "undefined-property", "lone-surrogate"])
def test_push_validation_errors(emulator, api, mutate, field):
    pid = api.provider()
    dsid = api.source(pid)
    payload = sample("application")
    mutate(payload)
    answer = api.push(pid, dsid, json.dumps(payload))
    assert answer.status_code == 400, answer.text
    assert field in _fields(answer)
    assert not emulator.pushes


def test_512_and_4096_characters_are_accepted(api):
    payload = sample("application")
    payload["applications"][0]["local_users"][0]["name"] = "n" * 512
    payload["applications"][0]["description"] = "d" * 4096
    pid = api.provider()
    assert api.push(pid, api.source(pid), payload).status_code == 200


@pytest.mark.parametrize("json_data, compression, field", [
    (base64.b64encode(gzip.compress(b'{"name":"\xff"}')).decode(), "GZIP", "json_data"),
    ("not base64!", "GZIP", "json_data"),
    (base64.b64encode(b"not gzip").decode(), "GZIP", "json_data"),
    ("{not json", "NONE", "json_data"),
    ("{}", "ZSTD", "compression_type"),
], ids=["invalid-utf8", "bad-base64", "bad-gzip", "bad-json", "bad-compression"])
def test_push_decoding_errors(api, json_data, compression, field):
    pid = api.provider("H", "hris")
    dsid = api.source(pid)
    answer = api("POST", f"{BASE}/{pid}/datasources/{dsid}:push",
                 {"json_data": json_data, "compression_type": compression})
    assert answer.status_code == 400 and field in _fields(answer)


def test_body_over_the_limit_is_refused():
    with start_emulator(api_key=KEY, max_body_bytes=2000) as emulator:
        api = Api(emulator)
        pid = api.provider("H", "hris")
        answer = api.push(pid, api.source(pid), "x" * 5000, gzip_it=False)
        assert answer.status_code == 400 and "body" in _fields(answer)
        assert api("GET", BASE).status_code == 200  # the connection and server are fine


def test_identity_warnings_clear_once_the_idp_is_pushed(api):
    app = sample("application")
    app_pid, idp_pid = api.provider("App"), api.provider("IdP", "identity_provider")
    app_ds, idp_ds = api.source(app_pid), api.source(idp_pid)
    before = [w["message"] for w in api.push(app_pid, app_ds, app).json()["warnings"]]
    assert any("alice@example.com" in w for w in before)
    idp = sample("identity_provider")
    idp["users"].append({"name": "carol@example.com", "identity": "carol@example.com"})
    idp["groups"].append({"name": "devs@example.com", "identity": "devs@example.com"})
    assert api.push(idp_pid, idp_ds, idp).status_code == 200
    after = [w["message"] for w in api.push(app_pid, app_ds, app).json()["warnings"]]
    assert after == []


def test_role_missing_permission_is_a_warning():
    payload = sample("application")
    payload["applications"][0]["local_roles"][1]["permissions"] = ["read", "fly"]
    result = validate_payload("application", payload, {"alice@example.com", "devs@example.com",
                                                       "carol@example.com"})
    assert result.ok
    assert result.warnings == ['Role is missing permission: role "Viewer" lists permission '
                               '"fly", which is not defined in permissions']


def _parts(api, pid, dsid, op, **fields):
    return api("POST", f"{BASE}/{pid}/datasources/{dsid}:parts", {"operation": op, **fields})


def test_multipart_orders_by_sequence_and_replaces_parts(emulator, api):
    pid = api.provider("M", "hris")
    dsid = api.source(pid)
    raw = compact(sample("hris")).encode()
    chunks = [raw[i:i + 100] for i in range(0, len(raw), 100)]
    upload_id = _parts(api, pid, dsid, "start").json()["upload_id"]
    _parts(api, pid, dsid, "upload", upload_id=upload_id, sequence_number=1,
           data=base64.b64encode(b"garbage").decode())
    for n in reversed(range(1, len(chunks) + 1)):  # out of order; part 1 re-uploaded last
        assert _parts(api, pid, dsid, "upload", upload_id=upload_id, sequence_number=n,
                      data=base64.b64encode(chunks[n - 1]).decode()).status_code == 200
    done = _parts(api, pid, dsid, "complete", upload_id=upload_id, sequence_count=len(chunks))
    assert done.status_code == 200 and "warnings" in done.json()
    assert emulator.pushes[0].json_text.encode() == raw
    assert _parts(api, pid, dsid, "complete", upload_id=upload_id,
                  sequence_count=len(chunks)).status_code == 404  # the session is gone


def test_multipart_limits(api):
    pid = api.provider("M", "hris")
    dsid = api.source(pid)
    upload_id = _parts(api, pid, dsid, "start").json()["upload_id"]
    data = base64.b64encode(b"{}").decode()
    for number in (0, 100, "1", True):
        answer = _parts(api, pid, dsid, "upload", upload_id=upload_id, sequence_number=number,
                        data=data)
        assert answer.status_code == 400 and "sequence_number" in _fields(answer)
    _parts(api, pid, dsid, "upload", upload_id=upload_id, sequence_number=2, data=data)
    missing = _parts(api, pid, dsid, "complete", upload_id=upload_id, sequence_count=2)
    assert "missing parts [1]" in _fields(missing)["sequence_count"]
    assert _parts(api, pid, dsid, "upload", upload_id="nope", sequence_number=1,
                  data=data).status_code == 404
    assert _parts(api, pid, dsid, "finish").status_code == 400


def test_icons(api):
    pid = api.provider()
    svg = base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'/>").decode()
    assert api("GET", f"{BASE}/{pid}:icon").status_code == 404
    assert api("POST", f"{BASE}/{pid}:icon", {"icon_base64": svg}).status_code == 200
    assert api("GET", f"{BASE}/{pid}:icon").json() == {"mime_type": "image/svg+xml",
                                                        "icon_base64": svg}
    big = base64.b64encode(b"<svg" + b" " * 64_000).decode()
    assert api("POST", f"{BASE}/{pid}:icon", {"icon_base64": big}).status_code == 400
    assert api("DELETE", f"{BASE}/{pid}:icon").status_code == 200


def test_data_dir_survives_a_restart(tmp_path):
    with start_emulator(api_key=KEY, data_dir=tmp_path) as first:
        api = Api(first)
        pid = api.provider("IdP", "identity_provider")
        dsid = api.source(pid)
        api.push(pid, dsid, sample("identity_provider"))
    with start_emulator(api_key=KEY, data_dir=tmp_path) as second:
        api = Api(second)
        assert api("GET", f"{BASE}/{pid}/datasources/{dsid}").json()["value"]["status"] == \
            "SUCCESS"
        assert "alice@example.com" in second.store.known_identities()
        api.push(pid, dsid, sample("identity_provider"))
    folder = tmp_path / "payloads" / "IdP" / "ds"
    assert sorted(p.name for p in folder.glob("0*.json")) == [
        "0001.json", "0001.meta.json", "0002.json", "0002.meta.json"]


def test_tls_certificate_verifies_for_127_0_0_1(tls_emulator):
    answer = requests.get(tls_emulator.url + BASE, headers={"authorization": f"Bearer {KEY}"},
                          verify=str(tls_emulator.cert_file), timeout=5)
    assert answer.status_code == 200


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_emulator_command_runs_as_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-m", "oaamap", "emulator", "--port", "0", "--tls", "--api-key", KEY,
         "--data-dir", str(tmp_path), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert "listening on https://127.0.0.1:" in line, process.stderr.read()
        url = line.split("listening on ")[1].split()[0]
        answer = requests.get(url + BASE, headers={"authorization": f"Bearer {KEY}"},
                              verify=False, timeout=5)
        assert answer.json() == {"values": [], "has_more": False, "next_page_token": ""}
        assert KEY not in line
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
