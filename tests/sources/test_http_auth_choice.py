"""`http` source: `auth:` as a list of alternatives, the first whose `when:` holds."""

from __future__ import annotations

import pytest
from http_server import PASSWORD, TOKEN, USER, LocalServer
from source_helpers import plan_one, read_all

from oaamap.errors import SourceError

CHOICE = """[{when: "env.TOKEN | default('')", bearer: "{{ env.TOKEN | default('') }}"},
              {when: "env.USER | default('')",
               basic: {username: "{{ env.USER | default('') }}",
                       password: "{{ env.PASSWORD | default('') }}"}}]"""


def source(url: str) -> str:
    return f"""
sources:
  things:
    http:
      url: "{url}"
      auth: {CHOICE}
"""


def test_the_first_alternative_that_holds_is_used(server: LocalServer) -> None:
    records = read_all(plan_one(source(server.url("/auth/bearer"))),
                       env={"TOKEN": TOKEN, "USER": USER, "PASSWORD": PASSWORD})
    assert records[0].data["who"] == "bearer"


def test_a_later_alternative_when_the_first_does_not_hold(server: LocalServer) -> None:
    records = read_all(plan_one(source(server.url("/auth/basic"))),
                       env={"USER": USER, "PASSWORD": PASSWORD})
    assert records[0].data["who"] == "basic"


def test_no_alternative_holds_is_a_source_error_before_any_request(server: LocalServer) -> None:
    with pytest.raises(SourceError) as info:
        read_all(plan_one(source(server.url("/auth/basic"))), env={})
    assert "no alternative applies" in info.value.message
    assert server.hits.get("/auth/basic", 0) == 0
