"""`http` source faults: every fault ends in a correct result after retries, or in a SourceError
naming the source and the request; never a hang, never a silent partial result."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from http_server import LocalServer
from source_helpers import data, plan_one, read_all

from oaamap.errors import SourceError


def source(url: str, extra: str = "") -> str:
    return f"""
sources:
  api:
    http:
      url: "{url}"
{extra}"""


def test_rate_limit_429_is_retried_until_it_succeeds(server: LocalServer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    records = read_all(plan_one(source(server.url("/flaky/429?key=a&fail=3"))))
    assert data(records) == [{"ok": True, "attempts": 4}]
    assert server.hits["/flaky/429"] == 4
    assert "HTTP 429 Too Many Requests; retry 1 of 5" in caplog.text


def test_retry_after_is_honoured(server: LocalServer) -> None:
    started = time.monotonic()
    records = read_all(plan_one(source(server.url("/flaky/429?key=b&fail=1&after=1"))))
    assert data(records) == [{"ok": True, "attempts": 2}]
    assert time.monotonic() - started >= 0.95  # the base backoff is 1 ms in tests


def test_retry_after_beyond_the_cap_fails_at_once(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/flaky/429?key=c&fail=9&after=3600")))
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        read_all(plan)
    assert time.monotonic() - started < 2
    assert info.value.status == 429
    assert "the server asks to wait 3600 s (Retry-After), more than the 120 s allowed" in \
        info.value.message
    assert server.hits["/flaky/429"] == 1


def test_retry_after_cap_is_an_option(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/flaky/429?key=d&fail=1&after=2")))
    with pytest.raises(SourceError, match="more than the 1 s allowed"):
        read_all(plan, options={"http_retry_after_max": 1})


@pytest.mark.parametrize("style", ["retry-after", "reset"])
def test_a_403_rate_limit_is_retried(server: LocalServer, style: str) -> None:
    records = read_all(plan_one(source(server.url(f"/flaky/403?key={style}&style={style}"))))
    assert data(records) == [{"ok": True, "attempts": 2}]


def test_a_plain_403_is_not_retried(server: LocalServer) -> None:
    with pytest.raises(SourceError) as info:
        read_all(plan_one(source(server.url("/flaky/403?key=plain"))))
    assert info.value.status == 403
    assert server.hits["/flaky/403"] == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_transient_5xx_are_retried(server: LocalServer, status: int) -> None:
    records = read_all(plan_one(source(server.url(f"/flaky/500?key=s{status}&status={status}"))))
    assert data(records) == [{"ok": True, "attempts": 3}]


def test_persistent_5xx_gives_up_after_the_retries(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/always/503?x=1"), "      retries: 3"))
    with pytest.raises(SourceError) as info:
        read_all(plan)
    error = info.value
    assert (error.source, error.status) == ("api", 503)
    assert error.location == f"GET {server.base}/always/503?x=1 page 1"
    assert error.message == ("HTTP 503 Service Unavailable; gave up after 4 attempts "
                             "(`retries: 3`)")
    assert error.body == '{"message": "down for maintenance"}'
    assert server.hits["/always/503"] == 4
    assert str(error) == (
        f"error: source `api` (GET {server.base}/always/503?x=1 page 1): HTTP 503 Service "
        "Unavailable; gave up after 4 attempts (`retries: 3`) [HTTP 503]\n"
        '  response: {"message": "down for maintenance"}')


def test_retries_zero_fails_on_the_first_error(server: LocalServer) -> None:
    with pytest.raises(SourceError, match="gave up after 1 attempt "):
        read_all(plan_one(source(server.url("/flaky/500?key=z"), "      retries: 0")))
    assert server.hits["/flaky/500"] == 1


def test_a_404_is_not_retried_and_says_so(server: LocalServer) -> None:
    with pytest.raises(SourceError) as info:
        read_all(plan_one(source(server.url("/nowhere"))))
    assert info.value.status == 404
    assert "not found; check `url`" in info.value.message
    assert server.hits["/nowhere"] == 1


def test_a_body_that_is_not_json_is_an_error_with_its_start(server: LocalServer) -> None:
    with pytest.raises(SourceError) as info:
        read_all(plan_one(source(server.url("/html"))))
    error = info.value
    assert error.message.startswith("the response is not JSON (text/html): ")
    assert error.body == "<!doctype html><p>Sign in</p>"
    assert error.status == 200


def test_a_truncated_page_names_the_page(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/malformed"), "      paginate: {link_header: next}"))
    with pytest.raises(SourceError) as info:
        read_all(plan)
    assert info.value.location == f"GET {server.base}/malformed?page=2 page 2"
    assert info.value.body == '[{"id": 6, "name": "item6"}, {"id": 7'


def test_connection_refused_is_retried_then_reported(server: LocalServer) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plan = plan_one(source(f"http://127.0.0.1:{port}/x?token=abc123", "      retries: 2"))
    with pytest.raises(SourceError) as info:
        read_all(plan)
    error = info.value
    assert error.message.startswith("connection failed: ")
    assert "Connection refused" in error.message
    assert error.message.endswith("gave up after 3 attempts (`retries: 2`)")
    assert error.location == f"GET http://127.0.0.1:{port}/x?token=*** page 1"
    assert "abc123" not in str(error)


def test_a_hanging_server_times_out_instead_of_hanging(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/hang?delay=3"), "      timeout: 0.2\n      retries: 1"))
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        read_all(plan)
    assert time.monotonic() - started < 1.5
    assert info.value.message == "no data within 0.2 s (timeout); gave up after 2 attempts " \
        "(`retries: 1`)"
    assert server.hits["/hang"] == 2


def test_a_trickling_server_hits_the_response_deadline(server: LocalServer) -> None:
    # Every byte arrives within the read timeout, but the whole body would take ~4 s.
    plan = plan_one(source(server.url("/drip?every=0.05"), "      timeout: 0.1\n      retries: 0"))
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        read_all(plan)
    assert time.monotonic() - started < 2.5
    assert info.value.message == ("the response took longer than 1 s to arrive; gave up after "
                                  "1 attempt (`retries: 0`)")


def test_retry_after_forms() -> None:
    from email.utils import formatdate

    from oaamap.sources.http.client import _rate_limit_wait, _retry_after
    assert _retry_after("7") == 7.0
    assert _retry_after(" ") is None and _retry_after("soon") is None
    assert 55 < (_retry_after(formatdate(time.time() + 60, usegmt=True)) or 0) <= 60
    assert _retry_after(formatdate(time.time() - 60, usegmt=True)) == 0.0
    reset = str(int(time.time()) + 30)
    assert 25 < (_rate_limit_wait({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
                 or 0) <= 30
    assert _rate_limit_wait({"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": reset}) is None


def test_records_selecting_null_is_an_error_not_an_empty_result(server: LocalServer) -> None:
    with pytest.raises(SourceError) as info:
        read_all(plan_one(source(server.url("/wrapped"), "      records: missing")))
    assert info.value.message == "`records: missing` selects nothing (null) in the response"
    assert info.value.location == f"GET {server.base}/wrapped page 1"


def test_records_that_are_not_objects_are_an_error(server: LocalServer) -> None:
    with pytest.raises(SourceError) as info:
        read_all(plan_one(source(server.url("/wrapped"), "      records: data.items")))
    assert info.value.message == "record is a number, not an object: `1`"
    assert str(info.value.ref) == f"GET {server.base}/wrapped page 1[#0]"


def test_an_object_body_without_records_is_one_record(server: LocalServer) -> None:
    records = read_all(plan_one(source(server.url("/single"))))
    assert data(records) == [{"login": "acme", "id": 1, "default_repository_permission": "read"}]


def test_a_url_that_does_not_render_to_http_is_an_error(server: LocalServer) -> None:
    plan = plan_one(source("{{ vars.base }}/x"))
    with pytest.raises(SourceError, match=r"`url` renders to `ftp://example.test/x`, which is not"):
        read_all(plan, vars={"base": "ftp://example.test"})


def test_an_undefined_variable_in_the_url_is_a_mapping_error(server: LocalServer) -> None:
    from oaamap.errors import MappingError
    plan = plan_one(source("{{ vars.base_url }}/x"))
    with pytest.raises(MappingError, match="uses an undefined value"):
        read_all(plan, vars={})
