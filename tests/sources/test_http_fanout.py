"""`http` source fan-out (`for_each`): parent in templates, concurrency, deterministic order."""

from __future__ import annotations

import time

import pytest
from http_server import LocalServer
from source_helpers import data, plan_one, read_all

from oaamap.errors import Origin, SourceError
from oaamap.sources import Record


def parents(n: int) -> list[Record]:
    origin = Origin("teams", "teams.json", "index")
    return [Record({"id": i, "slug": f"p{i}"}, origin, i - 1) for i in range(1, n + 1)]


def children_source(url: str, extra: str = "") -> str:
    return f"""
sources:
  members:
    http:
      for_each: {{team: teams}}
      url: "{url}"
      paginate: {{page: {{}}}}
{extra}"""


def test_each_child_record_carries_its_parent(server: LocalServer) -> None:
    plan = plan_one(children_source(server.url("/children/{{ team.slug }}")),
                    other_sources=["teams"])
    assert plan.depends_on == ("teams",)
    records = read_all(plan, parents={"teams": parents(2)})
    assert data(records) == [
        {"child": f"p{p}-{page}-{k}", "team": {"id": p, "slug": f"p{p}"}}
        for p in (1, 2) for page in (1, 2) for k in (1, 2)]
    assert str(records[2].ref) == f"GET {server.base}/children/p1?page=2 page 2[#0]"


@pytest.mark.parametrize("concurrency", [1, 3, 8, 16])
def test_order_is_parent_then_page_whatever_the_latency(server: LocalServer,
                                                        concurrency: int) -> None:
    plan = plan_one(children_source(server.url("/children/{{ team.slug }}?jitter=0.01"),
                                    f"      concurrency: {concurrency}"), other_sources=["teams"])
    records = read_all(plan, parents={"teams": parents(40)})
    assert [r["child"] for r in data(records)] == [
        f"p{p}-{page}-{k}" for p in range(1, 41) for page in (1, 2) for k in (1, 2)]
    assert server.hits["/children/p40"] == 3


def test_requests_run_concurrently(server: LocalServer) -> None:
    def timed(concurrency: int) -> float:
        plan = plan_one(f"""
sources:
  slow:
    http:
      for_each: {{team: teams}}
      url: "{server.url('/slow')}?delay=0.1&team={{{{ team.id }}}}"
      concurrency: {concurrency}
""", other_sources=["teams"])
        started = time.monotonic()
        assert len(read_all(plan, parents={"teams": parents(8)})) == 8
        return time.monotonic() - started
    assert timed(8) < 0.45 < 0.8 < timed(1)


def test_the_run_option_overrides_concurrency(server: LocalServer) -> None:
    plan = plan_one(f"""
sources:
  slow:
    http:
      for_each: {{team: teams}}
      url: "{server.url('/slow')}?delay=0.1&team={{{{ team.id }}}}"
      concurrency: 1
""", other_sources=["teams"])
    started = time.monotonic()
    read_all(plan, parents={"teams": parents(8)}, options={"http_concurrency": 8})
    assert time.monotonic() - started < 0.45


def test_a_failing_child_names_its_request_and_stops_the_rest(server: LocalServer) -> None:
    plan = plan_one(children_source(server.url("/children/{{ team.slug }}?fail=p5&jitter=0.005")),
                    other_sources=["teams"])
    with pytest.raises(SourceError) as info:
        read_all(plan, parents={"teams": parents(200)})
    error = info.value
    assert error.status == 404
    assert error.location == f"GET {server.base}/children/p5?fail=p5&jitter=0.005&page=1 page 1"
    # the window bounds how far the pool ran ahead: far fewer than 200 parents were requested
    assert len({r.path for r in server.requests}) < 100


def test_a_parent_without_the_templated_field_names_the_parent(server: LocalServer) -> None:
    plan = plan_one(children_source(server.url("/children/{{ team.login }}")),
                    other_sources=["teams"])
    with pytest.raises(SourceError) as info:
        read_all(plan, parents={"teams": parents(3)})
    error = info.value
    assert str(error.ref) == "teams.json[#0]"
    assert error.message.startswith("cannot build the request for parent record teams.json[#0]: "
                                    "template `")
    assert "has no attribute 'login'" in error.message


def test_templates_see_env_vars_and_the_parent_everywhere(server: LocalServer) -> None:
    plan = plan_one("""
sources:
  echo:
    http:
      for_each: {team: teams}
      url: "{{ vars.base }}/echo"
      method: POST
      headers: {X-Team: "{{ team.slug }}", Accept: "application/vnd.test+json"}
      params: {team: "{{ team.id }}", include: [a, "{{ env.EXTRA }}"], flag: true}
      body: {query: {team: "{{ team.slug }}", ids: [1, "{{ team.id }}"]}, n: 5}
""", other_sources=["teams"])
    records = read_all(plan, parents={"teams": parents(1)}, vars={"base": server.base},
                       env={"EXTRA": "b"})
    (echo,) = data(records)
    assert echo["method"] == "POST"
    assert echo["headers"]["x-team"] == "p1"
    assert echo["headers"]["accept"] == "application/vnd.test+json"
    assert echo["headers"]["user-agent"].startswith("oaamap/")
    assert echo["body"] == {"query": {"team": "p1", "ids": [1, "1"]}, "n": 5}
    request = server.requests[0]
    assert request.query == {"team": "1", "include": "b", "flag": "true"}
    assert request.raw_query == "team=1&include=a&include=b&flag=true"


def test_an_empty_parent_source_makes_no_request(server: LocalServer) -> None:
    plan = plan_one(children_source(server.url("/children/{{ team.slug }}")),
                    other_sources=["teams"])
    assert read_all(plan, parents={"teams": []}) == []
    assert not server.requests


def test_a_child_field_named_like_the_parent_is_replaced_with_a_warning(
        server: LocalServer) -> None:
    from source_helpers import read_context
    plan = plan_one(f"""
sources:
  echo:
    http:
      for_each: {{method: teams}}
      url: "{server.url('/echo')}?t={{{{ method.id }}}}"
""", other_sources=["teams"])
    ctx = read_context(parents={"teams": parents(2)})
    records = list(plan.read(ctx))
    assert records[0].data["method"] == {"id": 1, "slug": "p1"}
    assert [w.message for w in ctx.warnings] == [
        "source `echo`: records have a field `method`; the fan-out parent replaces it"]


def test_stopping_early_shuts_the_pool_down_without_hanging(server: LocalServer) -> None:
    import threading

    from source_helpers import read_context
    plan = plan_one(children_source(server.url("/children/{{ team.slug }}?jitter=0.02"),
                                    "      concurrency: 8"), other_sources=["teams"])
    started = time.monotonic()
    records = plan.read(read_context(parents={"teams": parents(500)}))
    first = next(records)
    records.close()
    assert first.data["child"] == "p1-1-1"
    assert time.monotonic() - started < 2
    assert not [t for t in threading.enumerate() if t.name.startswith("oaamap-members")]
    assert len({r.path for r in server.requests}) < 100  # the window stopped the submissions


def test_ordered_map_keeps_order_and_raises_the_first_failure_in_order() -> None:
    import random
    import threading

    from oaamap.sources.http.fanout import ordered_map

    def task(n: int) -> int:
        time.sleep(random.uniform(0, 0.003))
        if n in (30, 20):
            raise ValueError(f"task {n}")
        return n * n

    stop = threading.Event()
    assert list(ordered_map(task, range(19), 4, stop)) == [n * n for n in range(19)]
    assert not stop.is_set()
    results = []
    with pytest.raises(ValueError, match="task 20"):
        for value in ordered_map(task, range(100), 4, stop):
            results.append(value)
    assert results == [n * n for n in range(20)]
    assert stop.is_set()
