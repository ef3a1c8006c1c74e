"""`oaamap preview` of an HTTP source fetches one page only (the `http_pages` read option)."""

from __future__ import annotations

from pathlib import Path

from http_server import LocalServer
from source_helpers import plan_one, read_all

from oaamap.preview import preview_sources

PAGED = """      params: {per_page: 5}
      paginate: {link_header: next}"""


def _mapping(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(f"""oaamap: 1
template: identity_provider
provider: P
data_source: D
sources:
  items:
    http:
      url: "{url}"
{PAGED}
idp:
  name: P
  type: custom_idp
  domain: example.com
users:
  - from: items
    name: id
""")
    return path


def test_the_http_pages_option_stops_after_that_many_pages(server: LocalServer) -> None:
    records = read_all(plan_one(f"""
sources:
  items:
    http:
      url: "{server.url('/link')}"
{PAGED}
"""), options={"http_pages": 2})
    assert len(records) == 10
    assert server.hits["/link"] == 2


def test_preview_reads_one_page(server: LocalServer, tmp_path: Path) -> None:
    [preview] = preview_sources(_mapping(tmp_path, server.url("/link")), count=20)
    assert server.hits["/link"] == 1
    assert len(preview.records) == 5 and not preview.more
    assert "id" in preview.fields
    assert str(preview.records[0].ref).startswith("GET http://")
