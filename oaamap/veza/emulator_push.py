"""The emulator's push endpoints: `:push` (plain or gzip+base64) and `:parts` (multipart upload).

Both end in `accept`: decode the payload text (an incremental update is applied to the payload
the data source holds: `emulator_incremental`), validate it for the provider's template
(`validate.validate_payload`), refuse it with a 400 listing the field violations, or store it and
answer `{"warnings": [{"message": ...}]}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
import zlib
from typing import Any

from .emulator_incremental import apply_incremental
from .emulator_routes import BASE, Call, body_object, route
from .emulator_store import ApiError, Upload
from .validate import validate_payload

__all__ = ["MAX_DECODED_BYTES", "MAX_PARTS", "accept", "decode_json_data"]

MAX_PARTS = 99
MAX_DECODED_BYTES = 2_000_000_000
_COMPRESSION = {"NONE": "NONE", "GZIP": "GZIP", "0": "NONE", "1": "GZIP", "": "NONE"}


def _invalid(field: str, description: str, message: str = "Invalid Arguments") -> ApiError:
    return ApiError(400, "InvalidArgument", message, [(field, description)])


def _compression(value: Any) -> str:
    key = "" if value is None else str(value).upper()
    if isinstance(value, bool) or key not in _COMPRESSION:
        raise _invalid("compression_type", f"invalid value {value!r}, expected NONE or GZIP")
    return _COMPRESSION[key]


def _base64(text: Any, field: str) -> bytes:
    if not isinstance(text, str):
        raise _invalid(field, "must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise _invalid(field, f"invalid base64: {e}") from e


def _gunzip(data: bytes, field: str) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_DECODED_BYTES + 1)
    except zlib.error as e:
        raise _invalid(field, f"invalid gzip data: {e}") from e
    if len(out) > MAX_DECODED_BYTES:
        raise _invalid(field, "decompressed payload is too large")
    if not inflater.eof:
        raise _invalid(field, "invalid gzip data: truncated stream")
    return out


def _utf8(data: bytes, field: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _invalid(field, f"invalid UTF-8 at byte {e.start}") from e


def decode_json_data(body: dict[str, Any]) -> tuple[str, str]:
    """The payload text of a `:push` body and its compression (`NONE` or `GZIP`).

    Raises:
        ApiError: 400 when `json_data` is missing or cannot be decoded.
    """
    compression = _compression(body.get("compression_type"))
    text = body.get("json_data")
    if not isinstance(text, str) or not text:
        raise _invalid("json_data", "is required")
    if compression == "GZIP":
        text = _utf8(_gunzip(_base64(text, "json_data"), "json_data"), "json_data")
    return text, compression


def _parse(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise _invalid(field, f"invalid JSON: {e}") from e


def accept(
    call: Call, text: str, *, compression: str, multipart: bool
) -> tuple[int, dict[str, Any]]:
    """Validate the payload text for the provider's template; store it or refuse it."""
    pid, dsid = call.args["pid"], call.args["dsid"]
    store = call.store
    with store.lock:
        template = store.provider(pid)["custom_template"]
        store.data_source(pid, dsid)
    payload = _parse(text, "json_data")
    if isinstance(payload, dict) and payload.get("incremental_change") is True:
        # Held across apply and store: two updates of one data source never interleave.
        with store.lock:
            payload = apply_incremental(template, store.held_payload(pid, dsid), payload)
            return _store(call, json.dumps(payload, separators=(",", ":")), payload, template,
                          compression=compression, multipart=multipart, incremental=True)
    return _store(call, text, payload, template, compression=compression, multipart=multipart,
                  incremental=False)


def _store(call: Call, text: str, payload: Any, template: str, *, compression: str,
           multipart: bool, incremental: bool) -> tuple[int, dict[str, Any]]:
    store = call.store
    result = validate_payload(template, payload, store.known_identities())
    if not result.ok:
        raise ApiError(400, "InvalidArgument", "Invalid Arguments",
                       [(v.field, v.description) for v in result.errors])
    store.accept_push(call.args["pid"], call.args["dsid"], text, payload, result.warnings,
                      compression=compression, multipart=multipart, incremental=incremental)
    return 200, {"warnings": [{"message": w} for w in result.warnings]}


def _check_ids(call: Call, body: dict[str, Any]) -> None:
    for key, expected in (("id", call.args["pid"]), ("data_source_id", call.args["dsid"])):
        if body.get(key) not in (None, "", expected):
            raise _invalid(key, "does not match the path")


@route("POST", f"{BASE}/{{pid}}/datasources/{{dsid}}:push")
def push(call: Call) -> tuple[int, dict[str, Any]]:
    """Push a full payload: `{"id", "data_source_id", "json_data", "compression_type"}`."""
    body = body_object(call)
    call.store.data_source(call.args["pid"], call.args["dsid"])
    _check_ids(call, body)
    text, compression = decode_json_data(body)
    return accept(call, text, compression=compression, multipart=False)


def _sequence(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARTS:
        raise _invalid(field, f"must be an integer from 1 to {MAX_PARTS}")
    return value


def _upload(call: Call, body: dict[str, Any]) -> Upload:
    upload = call.store.uploads.get(str(body.get("upload_id")))
    if upload is None or (upload.provider_id, upload.data_source_id) != (
            call.args["pid"], call.args["dsid"]):
        raise ApiError(404, "NotFound", f"upload {body.get('upload_id')} not found")
    return upload


def _complete(call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    count = _sequence(body.get("sequence_count"), "sequence_count")
    with call.store.lock:
        upload = _upload(call, body)
        missing = [n for n in range(1, count + 1) if n not in upload.parts]
        extra = sorted(n for n in upload.parts if n > count)
        if missing or extra:
            which = f"missing parts {missing}" if missing else f"parts beyond the count {extra}"
            raise _invalid("sequence_count", f"{count} parts announced, {which}")
        raw = b"".join(upload.parts[n] for n in range(1, count + 1))
        del call.store.uploads[str(body["upload_id"])]
    compression = "NONE"
    if raw[:2] == b"\x1f\x8b":
        raw, compression = _gunzip(raw, "data"), "GZIP"
    return accept(call, _utf8(raw, "data"), compression=compression, multipart=True)


@route("POST", f"{BASE}/{{pid}}/datasources/{{dsid}}:parts")
def parts(call: Call) -> tuple[int, dict[str, Any]]:
    """Multipart upload: `start` -> upload_id; `upload` part N (re-upload replaces); `complete`."""
    body = body_object(call)
    call.store.data_source(call.args["pid"], call.args["dsid"])
    operation = str(body.get("operation", "")).lower()
    if operation == "start":
        upload_id = str(uuid.uuid4())
        with call.store.lock:
            call.store.uploads[upload_id] = Upload(call.args["pid"], call.args["dsid"])
        return 200, {"upload_id": upload_id}
    if operation == "upload":
        number = _sequence(body.get("sequence_number"), "sequence_number")
        data = _base64(body.get("data"), "data")
        with call.store.lock:
            _upload(call, body).parts[number] = data
        return 200, {}
    if operation == "complete":
        return _complete(call, body)
    raise _invalid("operation", "must be start, upload or complete")
