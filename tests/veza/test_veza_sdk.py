"""Faithfulness: the official SDK (oaaclient 1.2.0, test-only) against the emulator over HTTPS."""

from __future__ import annotations

import base64
import json
import warnings

import pytest
from veza_helpers import KEY, compact, sample

oaaclient = pytest.importorskip("oaaclient.client", reason="oaaclient (test extra) not installed")


@pytest.fixture
def sdk(tls_emulator, monkeypatch):
    """An `OAAClient` of the HTTPS emulator (self-signed: VEZA_UNSAFE_HTTPS=true)."""
    monkeypatch.setenv("VEZA_UNSAFE_HTTPS", "true")
    monkeypatch.setenv("OAA_API_RETRIES", "2")
    warnings.simplefilter("ignore")
    return oaaclient.OAAClient(url=tls_emulator.url, api_key=KEY)


def test_sdk_connects_and_manages_providers(sdk, tls_emulator):
    assert tls_emulator.requests[0].path == "/api/v1/providers/custom/templates"
    created = sdk.create_provider("SDK App", "application")
    assert created["name"] == "SDK App" and created["state"] == "ENABLED"
    assert sdk.get_provider("SDK App")["id"] == created["id"]
    assert sdk.get_provider("Nope") is None
    assert sdk.get_provider_by_id("no-such-id") is None
    assert [p["name"] for p in sdk.get_provider_list()] == ["SDK App"]
    source = sdk.create_data_source("ds 1", created["id"])
    assert sdk.get_data_source("ds 1", created["id"])["id"] == source["id"]
    svg = base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'/>").decode()
    sdk.update_provider_icon(created["id"], svg)
    assert tls_emulator.store.icons[created["id"]]["icon_base64"] == svg
    sdk.update_provisioning_status(created["id"], True)
    assert tls_emulator.store.providers[created["id"]]["provisioning"] is True
    sdk.delete_data_source(source["id"], created["id"])
    assert sdk.get_data_sources(created["id"]) == []
    sdk.delete_provider(created["id"])
    assert sdk.get_provider_list() == []


@pytest.mark.parametrize("template", ["application", "identity_provider", "hris"])
def test_sdk_push_is_stored_exactly(sdk, tls_emulator, template, tmp_path):
    sdk.create_provider(f"P {template}", template)
    payload = sample(template)
    answer = sdk.push_metadata(f"P {template}", "ds", payload)
    assert "warnings" in answer
    stored = tls_emulator.payloads(f"P {template}", "ds")
    assert [p.json_text for p in stored] == [compact(payload)]  # what the SDK serialised
    folder = tmp_path / "data" / "payloads" / f"P {template}" / "ds"
    assert json.loads((folder / "latest.json").read_text()) == payload
    source = sdk.get_data_source("ds", sdk.get_provider(f"P {template}")["id"])
    assert source["status"] == "SUCCESS"


def test_sdk_warnings_are_veza_style(sdk):
    sdk.create_provider("Warn", "application")
    answer = sdk.push_metadata("Warn", "ds", sample("application"))
    messages = [w["message"] for w in answer["warnings"]]
    assert messages and all(m.startswith("Cannot find identity by names") for m in messages)


def test_sdk_multipart_with_small_parts(sdk, tls_emulator):
    provider = sdk.create_provider("Parts", "application")
    source = sdk.create_data_source("big", provider["id"])
    text = compact(sample("application"))
    answer = sdk.datasource_push_parts(provider["id"], source["id"], text, part_size=512)
    assert "warnings" in answer
    uploads = [r for r in tls_emulator.requests if r.path.endswith(":parts")]
    assert len(uploads) == 2 + -(-len(text.encode()) // 512)
    assert tls_emulator.pushes[-1].json_text == text and tls_emulator.pushes[-1].multipart


def test_sdk_enable_multipart_threshold(sdk, tls_emulator):
    sdk.create_provider("Auto", "hris")
    sdk.enable_multipart = True
    sdk.MULTIPART_THRESHOLD_SIZE = 100
    sdk.DEFAULT_PART_SIZE = 300
    sdk.push_metadata("Auto", "ds", sample("hris"))
    assert tls_emulator.pushes[-1].multipart
    assert tls_emulator.pushes[-1].json_text == compact(sample("hris"))


def test_sdk_gets_a_400_with_details(sdk, tls_emulator):
    sdk.create_provider("Bad", "application")
    payload = sample("application")
    payload["applications"][0]["bad_property"] = "This will break things"
    with pytest.raises(oaaclient.OAAResponseError) as e:
        sdk.push_metadata("Bad", "ds", payload)
    assert e.value.status_code == 400 and e.value.error == "InvalidArgument"
    assert e.value.request_id and e.value.timestamp
    violations = e.value.details[0]["field_violations"]
    assert violations[0]["field"] == "applications[0].bad_property"
    assert not tls_emulator.pushes


def test_sdk_bad_key_is_401(tls_emulator, monkeypatch):
    monkeypatch.setenv("VEZA_UNSAFE_HTTPS", "true")
    warnings.simplefilter("ignore")
    with pytest.raises(oaaclient.OAAResponseError) as e:
        oaaclient.OAAClient(url=tls_emulator.url, api_key="wrong")
    assert e.value.status_code == 401
