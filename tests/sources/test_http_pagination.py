"""`http` source: every pagination style against the local server, and the loop guards."""

from __future__ import annotations

import pytest
from http_server import ITEMS, LocalServer
from source_helpers import data, plan_one, read_all, read_context

from oaamap.errors import SourceError
from oaamap.sources import ReadContext

IDS = [item["id"] for item in ITEMS]


def source(url: str, extra: str) -> str:
    return f"""
sources:
  items:
    http:
      url: "{url}"
{extra}
"""


STYLES = {
    "link_header": ("/link", """      params: {per_page: 5}
      paginate: {link_header: next}"""),
    "link_header_relative": ("/link", """      params: {per_page: 5, relative: 1}
      paginate: {link_header: next}"""),
    "next_url_absolute": ("/next-url", """      records: items
      paginate: {next_url: paging.next}"""),
    "next_url_relative": ("/next-url", """      params: {relative: "1"}
      records: items
      paginate: {next_url: paging.next}"""),
    "cursor": ("/cursor", """      records: data
      paginate: {cursor: {param: cursor, next: meta.next_cursor}}"""),
    "offset_short_page": ("/offset", """      records: items
      paginate: {offset: {param: offset, limit_param: limit, limit: 5}}"""),
    "offset_has_more": ("/offset", """      records: items
      paginate: {offset: {limit: 5, has_more: more}}"""),
    "page": ("/page", """      params: {per_page: "5"}
      records: results
      paginate: {page: {param: page, start: 1}}"""),
}


@pytest.mark.parametrize("style", list(STYLES), ids=list(STYLES))
def test_every_style_reads_every_record_in_order(server: LocalServer, style: str) -> None:
    path, extra = STYLES[style]
    records = read_all(plan_one(source(server.url(path), extra)))
    assert [r.data["id"] for r in records] == IDS


@pytest.mark.parametrize("style,requests", [
    ("link_header", 5), ("next_url_absolute", 5), ("cursor", 5),
    ("offset_short_page", 5), ("offset_has_more", 5), ("page", 6),
])
def test_stop_conditions_send_no_extra_request(server: LocalServer, style: str,
                                               requests: int) -> None:
    path, extra = STYLES[style]
    read_all(plan_one(source(server.url(path), extra)))
    # 23 items in pages of 5: five pages; `page` stops only on an empty sixth page.
    assert server.hits[path] == requests


def test_offset_with_has_more_survives_a_server_side_page_cap(server: LocalServer) -> None:
    # We ask for 10, the server caps pages at 4: `has_more` keeps going; offsets advance by 4.
    records = read_all(plan_one(source(server.url("/offset"), """      params: {cap: "4"}
      records: items
      paginate: {offset: {limit: 10, has_more: more}}""")))
    assert [r.data["id"] for r in records] == IDS
    offsets = [r.query["offset"] for r in server.requests]
    assert offsets == ["0", "4", "8", "12", "16", "20"]


def test_offset_without_has_more_stops_on_the_short_page(server: LocalServer) -> None:
    records = read_all(plan_one(source(server.url("/offset"), """      records: items
      paginate: {offset: {limit: 10}}""")))
    assert len(records) == 23
    assert [r.query["offset"] for r in server.requests] == ["0", "10", "20"]
    assert {r.query["limit"] for r in server.requests} == {"10"}


def test_post_search_with_the_cursor_in_the_json_body(server: LocalServer) -> None:
    records = read_all(plan_one(source(server.url("/search"), """      method: POST
      body: {query: "item1", size: 3}
      records: results
      paginate: {cursor: {param: cursor, next: next, in: body}}""")))
    assert [r.data["name"] for r in records] == [
        "item1", *(f"item{i}" for i in range(10, 20))]
    bodies = [r.json() for r in server.requests]
    assert bodies[0] == {"query": "item1", "size": 3}
    assert all(b["query"] == "item1" and b["size"] == 3 for b in bodies)
    assert "cursor" in bodies[1]


def test_row_refs_name_the_method_url_page_and_index(server: LocalServer) -> None:
    records = read_all(plan_one(source(server.url("/link"), """      params: {per_page: 5}
      paginate: {link_header: next}""")))
    assert str(records[0].ref) == f"GET {server.base}/link?per_page=5 page 1[#0]"
    assert str(records[7].ref) == f"GET {server.base}/link?page=2&per_page=5 page 2[#2]"
    assert records[7].ref.source == "items"


def test_a_paginator_repeating_its_request_is_an_error_not_a_loop(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/loop"), """      records: items
      paginate: {next_url: next}"""))
    with pytest.raises(SourceError) as info:
        read_all(plan)
    error = info.value
    assert error.source == "items"
    assert error.message == ("pagination does not advance: page 3 would repeat the request of "
                             "page 2; check `paginate`")
    assert error.location == f"GET {server.base}/loop?page=2 page 3"
    assert server.hits["/loop"] == 2


def test_a_pagination_cycle_is_caught(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/cycle?at=a"), """      records: items
      paginate: {next_url: next}"""))
    with pytest.raises(SourceError, match="page 3 would repeat the request of page 1"):
        read_all(plan)


def test_max_pages_stops_an_endless_pagination(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/endless"), """      records: items
      paginate: {next_url: next}
      max_pages: 7"""))
    with pytest.raises(SourceError) as info:
        read_all(plan)
    assert "pagination did not stop after 7 pages" in info.value.message
    assert info.value.location == f"GET {server.base}/endless?n=6 page 7"
    assert server.hits["/endless"] == 7


def test_an_error_after_some_pages_never_yields_a_silent_partial_result(
        server: LocalServer) -> None:
    plan = plan_one(source(server.url("/malformed"), "      paginate: {link_header: next}"))
    seen = []
    with pytest.raises(SourceError) as info:
        for record in plan.read(_ctx()):
            seen.append(record)
    assert len(seen) == 5  # page 1 was streamed; page 2 raised instead of ending quietly
    assert info.value.location == f"GET {server.base}/malformed?page=2 page 2"
    assert "the response is not JSON" in info.value.message


def test_a_next_url_that_is_not_a_string_is_an_error(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/wrapped"), """      records: list
      paginate: {next_url: obj}"""))
    with pytest.raises(SourceError, match=r"cannot follow the pagination: `next_url: obj` is a "
                       r"dict"):
        read_all(plan)


def test_records_expression_selects_nested_lists(server: LocalServer) -> None:
    plan = plan_one(source(server.url("/next-url"), "      records: items[?id > `3`]"))
    assert [r["id"] for r in data(read_all(plan))] == [4, 5]


def _ctx() -> ReadContext:
    return read_context()
