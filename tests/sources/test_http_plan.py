"""`http` source planning: every configuration mistake is reported at once, at its line:col."""

from __future__ import annotations

import pytest
from source_helpers import errors_of, plan_one, plan_yaml

from oaamap.sources.http import AUTH_TYPES, PAGINATOR_TYPES, register_auth, register_paginator


def http(body: str, before: str = "") -> str:
    return f"""
sources:
{before}  repos:
    http:
{body}"""


TEAMS = "  teams:\n    json: teams.json\n"
U = "      url: https://x.test/repos\n"

INVALID = [
    ("unknown_key", http(U + "      pagination: {link_header: next}\n"),
     "test.yaml:6:7: error: unexpected key `pagination` in an `http` source "
     "(did you mean `paginate`?)"),
    ("missing_url", http('      records: "@"\n'),
     "test.yaml:5:7: error: an `http` source needs `url`"),
    ("method", http(U + "      method: DELETE\n"),
     "test.yaml:6:15: error: `method` must be GET or POST, got `DELETE`"),
    ("body_needs_post", http(U + "      body: {a: 1}\n"),
     "test.yaml:6:13: error: `body` needs `method: POST`"),
    ("paginate_kind", http(U + "      paginate: {link: next}\n"),
     "test.yaml:6:18: error: unknown pagination kind `link` (expected one of: link_header, "
     "next_url, cursor, offset, page, graphql, graphql_variables)"),
    ("paginate_two_kinds", http(U + "      paginate: {link_header: next, page: {}}\n"),
     "test.yaml:6:17: error: pagination must have exactly one key, one of: link_header, "
     "next_url, cursor, offset, page, graphql, graphql_variables; got 2"),
    ("cursor_without_next", http(U + "      paginate: {cursor: {param: after}}\n"),
     "test.yaml:6:26: error: `cursor` pagination needs `next`"),
    ("offset_limit", http(U + "      paginate: {offset: {param: start, limit: 0}}\n"),
     "test.yaml:6:48: error: `limit` of `offset` must be at least 1, got 0"),
    ("offset_typo", http(U + "      paginate: {offset: {limit: 10, limt_param: n}}\n"),
     "test.yaml:6:38: error: unexpected key `limt_param` in `offset` pagination "
     "(did you mean `limit_param`?)"),
    ("page_in", http(U + "      paginate: {page: {in: header}}\n"),
     "test.yaml:6:29: error: `in` must be `query` or `body`, got `header`"),
    ("next_url_expression", http(U + '      paginate: {next_url: "links.[next"}\n'),
     None),
    ("auth_kind", http(U + "      auth: {beare: abc}\n"),
     "test.yaml:6:14: error: unknown auth kind `beare` (did you mean `bearer`?)"),
    ("api_key_header_and_param",
     http(U + '      auth: {api_key: {header: X-Key, param: key, value: "{{ env.K }}"}}\n'),
     "test.yaml:6:23: error: `auth: api_key` needs exactly one of `header` (a header name) or "
     "`param` (a query parameter name)"),
    ("basic_without_password", http(U + "      auth: {basic: {username: u}}\n"),
     "test.yaml:6:21: error: `auth: basic` needs `password`"),
    ("auth_uses_parent", http('      for_each: {team: teams}\n      url: "https://x/{{ team.id }}"'
                              '\n      auth: {bearer: "{{ team.token }}"}\n', TEAMS),
     "test.yaml:9:22: error: unknown template variable `team` in `{{ team.token }}` "
     "(available here: env, vars)"),
    ("for_each_unknown_source",
     http('      for_each: {team: team}\n      url: "https://x/{{ team.id }}"\n', TEAMS),
     "test.yaml:7:24: error: `for_each` names an unknown source `team` (did you mean `teams`?)"),
    ("for_each_itself", http('      for_each: {r: repos}\n      url: "https://x/{{ r.id }}"\n'),
     "test.yaml:5:21: error: source `repos` cannot fan out over itself"),
    ("for_each_reserved_name", http('      for_each: {env: teams}\n      url: "https://x/"\n',
                                    TEAMS),
     "test.yaml:7:23: error: `for_each` name `env` must be a template variable name other than "
     "`env` and `vars`"),
    ("parent_without_for_each", http('      url: "https://x.test/{{ repo.id }}"\n'),
     "test.yaml:5:12: error: unknown template variable `repo` in `https://x.test/{{ repo.id }}` "
     "(available here: env, vars)"),
    ("records_syntax", http(U + '      records: "data[?"\n'),
     "test.yaml:6:23: error: incomplete expression"),
    ("jinja_syntax", http('      url: "https://x.test/{{ vars.org }"\n'),
     "test.yaml:5:12: error: Jinja syntax error: unexpected '}'"),
    ("param_shape", http(U + "      params: {a: {b: 1}}\n"),
     "test.yaml:6:19: error: query parameter `a` must be a string, a number or a list of them"),
    ("header_shape", http(U + "      headers: {X: [1]}\n"),
     "test.yaml:6:20: error: header `X` must be a string"),
    ("concurrency", http(U + "      for_each: {t: teams}\n      concurrency: 0\n", TEAMS),
     "test.yaml:9:20: error: `concurrency` must be between 1 and 64, got 0"),
    ("timeout", http(U + "      timeout: -1\n"),
     "test.yaml:6:16: error: `timeout` must be a positive number of seconds, got `-1`"),
    ("retries", http(U + "      retries: 100\n"),
     "test.yaml:6:16: error: `retries` must be between 0 and 20, got 100"),
    ("max_pages", http(U + "      max_pages: many\n"),
     "test.yaml:6:18: error: `max_pages` must be an integer, got `many`"),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_configurations_are_reported_at_their_position(text: str,
                                                                expected: str | None) -> None:
    errors = [e for e in errors_of(text) if "template variable `t`" not in e]
    assert len(errors) == 1, errors
    if expected is not None:
        assert errors[0] == expected


def test_every_mistake_is_reported_at_once() -> None:
    errors = errors_of(http(
        "      url: 1\n      metod: GET\n      retries: -1\n      paginate: {page: {strt: 1}}\n"
        "      auth: {bearer: {tokn: x}}\n"))
    assert errors == [
        "test.yaml:6:7: error: unexpected key `metod` in an `http` source "
        "(did you mean `method`?)",
        "test.yaml:9:23: error: unexpected key `tokn` in `auth: bearer` (did you mean `token`?)",
        "test.yaml:9:22: error: `auth: bearer` needs `token`",
        "test.yaml:8:25: error: unexpected key `strt` in `page` pagination "
        "(did you mean `start`?)",
        "test.yaml:7:16: error: `retries` must be between 0 and 20, got -1",
    ]


def test_warnings_for_configurations_that_are_probably_mistakes() -> None:
    _, collector = plan_yaml(http('      for_each: {team: teams}\n      url: "https://x.test/all"\n',
                                  TEAMS) + '  other:\n    http:\n      url: "https://x.test/all"'
                             '\n      concurrency: 4\n')
    assert not collector.errors
    assert [str(w) for w in collector.warnings] == [
        "test.yaml:7:17: warning: the fan-out parent `team` is used in no url, header, param or "
        "body: every parent would send the same request",
        "test.yaml:12:20: warning: `concurrency` has no effect without `for_each`",
    ]


def test_the_design_documents_examples_plan_cleanly() -> None:
    # mapping-language.md, section Sources: these must work exactly as written.
    plans, collector = plan_yaml("""
sources:
  repos:                                   # REST JSON
    http:
      url: "https://api.example.test/orgs/{{ vars.org }}/repos"
      headers: {Accept: application/json}
      params: {per_page: "100"}
      auth: {bearer: "{{ env.API_TOKEN }}"}
      records: "@"
      paginate: {link_header: next}
  collaborators:
    http:
      for_each: {repo: repos}
      url: "https://api.example.test/repos/{{ repo.name }}/collaborators"
      records: "@"
  grants:
    sql:
      url: "sqlite:///data/portal.db"
      query: "SELECT user_id, role, repo_id FROM grants"
""")
    assert not collector.errors and not collector.warnings
    assert plans["collaborators"].depends_on == ("repos",)
    assert plans["repos"].depends_on == ()


@pytest.mark.parametrize("paginate", [
    "{link_header: next}", '{next_url: "paging.next"}',
    "{cursor: {param: cursor, next: meta.next}}",
    "{offset: {param: offset, limit_param: limit, limit: 100}}",
    "{page: {param: page, start: 1}}",
])
def test_the_documented_pagination_forms_plan(paginate: str) -> None:
    assert plan_one(http(U + f"      paginate: {paginate}\n")).paginator is not None


@pytest.mark.parametrize("auth", [
    '{bearer: "{{ env.T }}"}', "{basic: {username: u, password: p}}",
    "{api_key: {header: X-API-Key, value: v}}", "{api_key: {param: api_key, value: v}}",
    "{oauth2_client_credentials: {token_url: 'https://x/t', client_id: a, client_secret: b, "
    "scope: s}}",
])
def test_the_documented_auth_forms_plan(auth: str) -> None:
    assert plan_one(http(U + f"      auth: {auth}\n")).auth is not None


def test_registries_refuse_a_taken_name() -> None:
    with pytest.raises(ValueError, match="paginator `page` is already registered"):
        register_paginator("page", PAGINATOR_TYPES["page"])
    with pytest.raises(ValueError, match="auth kind `bearer` is already registered"):
        register_auth("bearer", AUTH_TYPES["bearer"])


def test_planning_does_not_modify_the_configuration() -> None:
    import copy

    from source_helpers import make_context

    from oaamap.loader import load_text
    from oaamap.sources.http import plan_http
    doc = load_text(http(
        U + '      params: {a: "1", b: [x, y]}\n      paginate: {offset: {limit: 5}}\n'
        '      auth: {bearer: x}\n      method: post\n      body: {q: [1, "{{ env.X }}"]}\n'),
        "test.yaml")
    before = copy.deepcopy(doc.data)
    ctx, collector = make_context(doc)
    plan_http("repos", doc.data["sources"]["repos"], ctx)
    assert not collector.errors
    assert doc.data == before
