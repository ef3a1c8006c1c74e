"""oaamap's Veza client against the emulator over real HTTP(S)."""

from __future__ import annotations

import base64
import gzip
import json
import time
from pathlib import Path

import pytest
import requests
from veza_helpers import KEY, compact, sample

from oaamap.errors import PushError
from oaamap.veza.client import (
    ClientSettings,
    VezaClient,
    VezaConfigError,
    _retry_after,
    load_icon,
    normalize_url,
    read_api_key,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100


def test_first_push_creates_provider_and_data_source_second_reuses(tls_emulator, make_client):
    client = make_client(tls_emulator)
    text = compact(sample("application"))
    first = client.push_payload("My App", "ds one", "application", text)
    second = client.push_payload("My App", "ds one", "application", text)
    assert (first.provider.created, first.data_source.created) == (True, True)
    assert (second.provider.created, second.data_source.created) == (False, False)
    assert (second.provider.id, second.data_source.id) == (first.provider.id, first.data_source.id)
    assert len(tls_emulator.store.providers) == 1
    assert [p.json_text for p in tls_emulator.pushes] == [text, text]
    creates = [r for r in tls_emulator.requests if r.method == "POST" and ":" not in r.path]
    assert len(creates) == 2  # one provider, one data source, on the first run only


def test_push_is_gzip_base64_with_compression_type(emulator, make_client):
    text = compact(sample("hris"))
    make_client(emulator).push_payload("HR", "hr", "hris", text)
    push = next(r for r in emulator.requests if r.path.endswith(":push"))
    assert push.body["compression_type"] == "GZIP"
    assert emulator.pushes[0].compression == "GZIP"
    assert emulator.pushes[0].json_text == text


def test_push_without_compression(emulator, make_client):
    text = compact(sample("hris"))
    make_client(emulator, compression=False).push_payload("HR", "hr", "hris", text)
    push = next(r for r in emulator.requests if r.path.endswith(":push"))
    assert "compression_type" not in push.body
    assert emulator.pushes[0].compression == "NONE"


def test_gzip_body_decodes_to_the_payload():
    client = VezaClient(ClientSettings("http://x", KEY))
    sent = {}
    client.request = lambda method, path, **kw: sent.update(kw["body"]) or {}  # type: ignore
    client.push("p", "d", '{"a":"\\u00e9"}')
    assert gzip.decompress(base64.b64decode(sent["json_data"])) == b'{"a":"\\u00e9"}'
    assert list(sent) == ["id", "data_source_id", "json_data", "compression_type"]


def test_multipart_forced_with_tiny_threshold(tls_emulator, make_client):
    text = compact(sample("application"))
    client = make_client(tls_emulator, multipart_threshold=100, part_size=512)
    outcome = client.push_payload("My App", "big", "application", text)
    parts = [r.body for r in tls_emulator.requests if r.path.endswith(":parts")]
    assert [p["operation"] for p in parts] == ["start"] + ["upload"] * outcome.parts + ["complete"]
    assert [p["sequence_number"] for p in parts[1:-1]] == list(range(1, outcome.parts + 1))
    assert outcome.parts == -(-len(text) // 512) and outcome.multipart
    assert parts[-1]["sequence_count"] == outcome.parts
    assert tls_emulator.pushes[0].json_text == text and tls_emulator.pushes[0].multipart
    assert outcome.warnings  # the complete answer carries the warnings


def test_part_size_is_raised_to_stay_within_99_parts():
    client = VezaClient(ClientSettings("http://x", KEY, part_size=10))
    assert client.part_size_for(10_000) == 102  # ceil(10000 / 99)
    assert -(-10_000 // client.part_size_for(10_000)) <= 99


def test_retries_429_honouring_retry_after_then_succeeds(emulator, make_client):
    emulator.fail_next(429, 2, retry_after=0.3, path_contains=":push")
    client = make_client(emulator)
    started = time.monotonic()
    outcome = client.push_payload("HR", "hr", "hris", compact(sample("hris")))
    assert time.monotonic() - started >= 0.55  # two waits of Retry-After 0.3 s
    assert outcome.retries == 2
    statuses = [r.status for r in emulator.requests if r.path.endswith(":push")]
    assert statuses == [429, 429, 200]


def test_retry_after_is_capped(emulator, make_client):
    emulator.fail_next(429, 1, retry_after=60, path_contains=":push")
    client = make_client(emulator, retry_after_cap=0.05)
    started = time.monotonic()
    client.push_payload("HR", "hr", "hris", compact(sample("hris")))
    assert time.monotonic() - started < 5


def test_retries_500_on_every_kind_of_request(emulator, make_client):
    emulator.fail_next(500, 1, path_contains="/datasources")
    emulator.fail_next(503, 1, path_contains=":push")
    outcome = make_client(emulator).push_payload("HR", "hr", "hris", compact(sample("hris")))
    assert outcome.retries == 2 and len(emulator.pushes) == 1


def test_retries_exhausted_raise_push_error(emulator, make_client):
    emulator.fail_next(500, 10, path_contains=":push")
    with pytest.raises(PushError) as e:
        make_client(emulator, max_retries=2).push_payload("HR", "hr", "hris",
                                                          compact(sample("hris")))
    assert e.value.status == 500 and e.value.code == "Internal"
    assert [r.status for r in emulator.requests if r.path.endswith(":push")] == [500] * 3
    assert not emulator.pushes


def test_random_faults_are_survived(make_client):
    from oaamap.veza.emulator import Faults, start_emulator

    with start_emulator(api_key=KEY, faults=Faults(0.3, 0.2, retry_after=0.01, seed=7)) as emu:
        client = make_client(emu, max_retries=12)
        for i in range(4):
            client.push_payload("HR", f"hr{i}", "hris", compact(sample("hris")))
        assert len(emu.pushes) == 4
        assert any(r.status in (429, 500) for r in emu.requests)


def test_401_gives_a_clear_message_without_the_key(emulator, make_client):
    with pytest.raises(PushError) as e:
        make_client(emulator, key="wrong-key-123").push_payload("A", "b", "hris", "{}")
    text = e.value.render()
    assert e.value.status == 401 and e.value.exit_code == 5
    assert "VEZA_API_KEY" in text and "Unauthenticated" in text
    assert "wrong-key-123" not in text


def test_400_details_are_shown(emulator, make_client):
    bad = sample("application")
    bad["applications"][0]["bad_property"] = "x"
    del bad["applications"][0]["local_users"][0]["name"]
    with pytest.raises(PushError) as e:
        make_client(emulator).push_payload("A", "b", "application", compact(bad))
    text = str(e.value)
    assert e.value.status == 400 and e.value.code == "InvalidArgument"
    assert e.value.request_id and "request id:" in text
    assert any("bad_property" in d for d in e.value.details)
    assert any("local_users[0].name" in d for d in e.value.details)
    assert "INVALID_ARGUMENTS" in text


def test_connection_refused_is_a_push_error(make_client):
    client = VezaClient(ClientSettings("http://127.0.0.1:9", KEY, max_retries=1,
                                       backoff_base=0.001, connect_timeout=2))
    with pytest.raises(PushError) as e:
        client.find_provider("x")
    assert e.value.code == "CONNECTION" and client.retries == 1


def test_list_follows_pages(emulator, make_client):
    client = make_client(emulator, page_size=3)
    for i in range(7):
        client.create_provider(f"P{i}", "application")
    assert [p["name"] for p in client.list_all("/api/v1/providers/custom")] == [
        f"P{i}" for i in range(7)]
    lists = [r for r in emulator.requests if r.method == "GET"]
    assert len(lists) == 3 and "page_token=" in lists[1].query


def test_name_filter_encodes_spaces_with_plus(emulator, make_client):
    client = make_client(emulator)
    client.create_provider("My Provider", "application")
    client.create_provider("My", "application")
    assert client.find_provider("My Provider")["name"] == "My Provider"
    assert 'filter=name+eq+%22My+Provider%22' in emulator.requests[-1].query
    # %2B-encoded spaces are literal `+` signs: Veza rejects the filter.
    answer = requests.get(f"{emulator.url}/api/v1/providers/custom?filter=name%2Beq%2B%22My%22",
                          headers={"authorization": f"Bearer {KEY}"}, timeout=5)
    assert answer.status_code == 400


def test_names_with_quotes_are_found_without_a_filter(emulator, make_client):
    client = make_client(emulator)
    client.create_provider('Say "hi"', "application")
    assert client.find_provider('Say "hi"')["name"] == 'Say "hi"'
    assert "filter" not in emulator.requests[-1].query


def test_provider_with_another_template_is_refused(emulator, make_client):
    client = make_client(emulator)
    client.create_provider("HR", "hris")
    with pytest.raises(PushError, match="template `hris`"):
        client.push_payload("HR", "x", "application", compact(sample("application")))


def test_icon_is_uploaded_on_creation_and_when_changed(emulator, make_client, tmp_path):
    icon = tmp_path / "icon.png"
    icon.write_bytes(PNG)
    client = make_client(emulator)
    ref = client.ensure_provider("P", "application", icon)
    assert emulator.store.icons[ref.id]["mime_type"] == "image/png"
    client.ensure_provider("P", "application", icon)
    assert sum(r.path.endswith(":icon") and r.method == "POST" for r in emulator.requests) == 1
    icon.write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    client.ensure_provider("P", "application", icon)
    assert emulator.store.icons[ref.id]["mime_type"] == "image/svg+xml"


@pytest.mark.parametrize("content, message", [
    (PNG + b"\0" * 64_000, "under 64 KB"),
    (b"GIF89a", "neither a PNG nor an SVG"),
], ids=["too-large", "not-png-or-svg"])
def test_bad_icons_are_refused_before_any_request(tmp_path, content, message):
    path = tmp_path / "icon"
    path.write_bytes(content)
    with pytest.raises(VezaConfigError, match=message):
        load_icon(path)


def test_key_never_shows_in_reprs_or_errors():
    client = VezaClient(ClientSettings("http://x", "s3cr3t-key"))
    assert "s3cr3t-key" not in repr(client) + repr(client.settings) + repr(client._auth)
    assert "s3cr3t-key" not in repr(client.session.headers)

    class Echo(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            response = requests.Response()
            response.status_code, response.url = 403, request.url
            response._content = json.dumps({"code": "PermissionDenied", "message":
                                             f"key {request.headers['authorization']} denied"}
                                            ).encode()
            return response

        def close(self):
            pass

    client.session.mount("http://", Echo())
    with pytest.raises(PushError) as e:
        client.find_provider("x")
    assert "s3cr3t-key" not in e.value.render() and "***" in e.value.render()


@pytest.mark.parametrize("given, expected", [
    ("acme.vezacloud.com", "https://acme.vezacloud.com"),
    ("https://acme.vezacloud.com/", "https://acme.vezacloud.com"),
    ("HTTP://127.0.0.1:8000", "http://127.0.0.1:8000"),
])
def test_normalize_url(given, expected):
    assert normalize_url(given) == expected


def test_api_key_from_env_or_file(tmp_path):
    assert read_api_key({"VEZA_API_KEY": " k \n"}, None) == "k"
    (tmp_path / "key").write_text("from-file\n")
    assert read_api_key({"VEZA_API_KEY": "env"}, tmp_path / "key") == "from-file"
    with pytest.raises(VezaConfigError, match="VEZA_API_KEY"):
        read_api_key({}, None)


def test_retry_after_accepts_seconds_and_http_dates():
    response = requests.Response()
    response.headers["Retry-After"] = "2"
    assert _retry_after(response) == 2.0
    response.headers["Retry-After"] = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert _retry_after(response) == 0.0
    assert _retry_after(None) is None


def test_emulator_payload_files_equal_what_was_sent(tls_emulator, make_client, tmp_path):
    text = compact(sample("identity_provider"))
    make_client(tls_emulator).push_payload("IdP", "corp", "identity_provider", text)
    folder = tmp_path / "data" / "payloads" / "IdP" / "corp"
    assert (folder / "0001.json").read_text() == text
    assert (folder / "latest.json").read_text() == text
    assert json.loads((folder / "0001.meta.json").read_text())["warnings"]
    assert Path(tls_emulator.pushes[0].path) == folder / "0001.json"
