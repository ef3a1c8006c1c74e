"""The added JMESPath functions, the fast evaluator's parity with jmespath, and compile errors."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest

from oaamap.expressions import (
    ExpressionError,
    FunctionError,
    OaamapFunctions,
    compile_expression,
)

FUNCS = OaamapFunctions()


def ev(text: str, data: Any) -> Any:
    return compile_expression(text, FUNCS).search(data)


@pytest.mark.parametrize(("text", "data", "expected"), [
    ("split(s, ';')", {"s": "a; b;;c "}, ["a", "b", "c"]),
    ("split(s, ';')", {"s": None}, None),
    ("lower(s)", {"s": "ÀB"}, "àb"),
    ("lower(s)", {}, None),
    ("upper(s)", {"s": "ab"}, "AB"),
    ("trim(s)", {"s": "  x "}, "x"),
    ("replace(s, '-', '_')", {"s": "a-b-c"}, "a_b_c"),
    ("regex_match(s, '^svc-')", {"s": "svc-x"}, True),
    ("regex_match(s, '^svc-')", {"s": None}, None),
    ("regex_replace(s, '@.*$', '')", {"s": "a@b.c"}, "a"),
    ("concat(a, ' ', b)", {"a": "x", "b": None}, "x "),
    ("concat(a, b)", {}, None),
    ("concat(a, '-', n)", {"a": "id", "n": 7}, "id-7"),
    ("to_bool(v)", {"v": "Yes"}, True),
    ("to_bool(v)", {"v": "ENABLED"}, True),
    ("to_bool(v)", {"v": "inactive"}, False),
    ("to_bool(v)", {"v": "0"}, False),
    ("to_bool(v)", {"v": ""}, None),
    ("to_bool(v)", {"v": None}, None),
    ("to_bool(v)", {"v": True}, True),
    ("to_rfc3339(v)", {"v": "2021-03-04"}, "2021-03-04T00:00:00Z"),
    ("to_rfc3339(v)", {"v": "2000-01-01T00:00:00.000Z"}, "2000-01-01T00:00:00.000Z"),
    ("to_rfc3339(v)", {"v": "2021-03-04T10:00:00+02:00"}, "2021-03-04T10:00:00+02:00"),
    ("to_rfc3339(v)", {"v": "2021-03-04 10:00:00"}, "2021-03-04T10:00:00Z"),
    ("to_rfc3339(v, '%m/%d/%Y')", {"v": "03/04/2021"}, "2021-03-04T00:00:00Z"),
    ("to_rfc3339(v, '%d.%m.%Y %H:%M %z')", {"v": "04.03.2021 10:30 -0500"},
     "2021-03-04T10:30:00-05:00"),
    ("to_rfc3339(v)", {"v": 1614816000}, "2021-03-04T00:00:00Z"),
    ("to_rfc3339(v)", {"v": 1614816000000}, "2021-03-04T00:00:00Z"),
    ("to_rfc3339(v)", {"v": "1614816000"}, "2021-03-04T00:00:00Z"),
    ("to_rfc3339(v)", {"v": None}, None),
    ("zero_pad(v, `6`)", {"v": "42"}, "000042"),
    ("zero_pad(v, `6`)", {"v": 42}, "000042"),
    ("zero_pad(v, `6`)", {"v": None}, None),
    ("unique(v)", {"v": ["a", "b", "a"]}, ["a", "b"]),
    ("range(`3`)", {}, [0, 1, 2]),
    ("range(`2`, `5`)", {}, [2, 3, 4]),
    ("range(`10`, `0`, `-4`)", {}, [10, 6, 2]),
    ("range(n)", {"n": 0}, []),
    ("unique(v)", {"v": None}, None),
    ("parse_json(v)", {"v": '{"a": [1]}'}, {"a": [1]}),
    ("parse_json(v)", {"v": None}, None),
], ids=lambda v: v if isinstance(v, str) else None)
def test_added_functions(text: str, data: dict[str, Any], expected: Any) -> None:
    """Each added function's result, including null for a null input."""
    assert ev(text, data) == expected


@pytest.mark.parametrize(("text", "data"), [
    ("to_bool(v)", {"v": "maybe"}),
    ("to_rfc3339(v)", {"v": "yesterday"}),
    ("to_rfc3339(v, '%m/%d/%Y')", {"v": "2021-03-04"}),
    ("parse_json(v)", {"v": "{nope"}),
    ("regex_match(v, p)", {"v": "x", "p": "("}),
])
def test_function_errors(text: str, data: dict[str, Any]) -> None:
    """Bad input is an error, never a silent null."""
    with pytest.raises(FunctionError):
        ev(text, data)


@pytest.mark.parametrize("text", [
    "a", "a.b.c", "a[0]", "a[*].b", "a[?b=='x'].c | [0]", "[a, b]", "{x: a, y: b.c}",
    "a && [a]", "a || 'd'", "!a", "a == 'x'", "length(a)", "`true`", "'lit'", "@",
    "sort_by(l, &n)[0].n", "a.b && [a.b]", "not_null(a, b)", "join(',', l[].n)",
])
@pytest.mark.parametrize("data", [
    {"a": "x", "b": 0, "l": [{"n": 2}, {"n": 1}]},
    {"a": {"b": {"c": 1}}, "l": []},
    {"a": [], "b": None, "l": [{"n": "z"}]},
    {"a": [{"b": "x", "c": 1}, {"b": "y"}], "l": [{"n": 3}]},
    {"a": 0, "b": False, "l": [{"n": 1}]},
    {},
])
def test_fast_evaluator_matches_jmespath(text: str, data: dict[str, Any]) -> None:
    """The compiled closures give exactly jmespath's results (and errors)."""
    options = jmespath.Options(custom_functions=OaamapFunctions())
    try:
        expected: Any = jmespath.search(text, data, options=options)
    except jmespath.exceptions.JMESPathError as e:
        with pytest.raises(type(e)):
            ev(text, data)
        return
    assert ev(text, data) == expected


@pytest.mark.parametrize(("text", "message", "position", "hint"), [
    ("lowr(email)", "unknown JMESPath function `lowr()`", 0, "did you mean `lower`?"),
    ("concat(a, trm(b))", "unknown JMESPath function `trm()`", 10, "did you mean `trim`?"),
    ("lower(a, b)", "function `lower()` takes 1 argument(s), got 2", 0, None),
    ("to_rfc3339()", "function `to_rfc3339()` takes 1 to 2 argument(s), got 0", 0, None),
    ("[dept", "incomplete expression", 5, None),
    ("a ~ b", "invalid JMESPath: Unknown token ~", 2, None),
    ("lookup(src, 'k', v)", "`lookup()` needs the source name and key field as string "
     "literals, e.g. lookup('people', 'email', manager_email)", 0, None),
])
def test_compile_errors(text: str, message: str, position: int, hint: str | None) -> None:
    """Errors carry the message, the 0-based position and a hint."""
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, FUNCS)
    assert (info.value.message, info.value.position, info.value.hint) == (message, position, hint)


def test_root_fields_and_lookups() -> None:
    """The planner learns which record fields and lookup tables an expression reads."""
    expr = compile_expression("concat(lookup('hr', 'email', mail).name, a.b, l[0])", FUNCS)
    assert expr.root_fields == {"mail", "a", "l"}
    assert expr.lookups == {("hr", "email")}


def test_lookup_uses_bound_tables() -> None:
    """lookup() matches case-insensitively; ambiguity is an error unless lookup_all is used."""
    funcs = OaamapFunctions()
    table = {"a@x": [{"id": 1}], "dup@x": [{"id": 2}, {"id": 3}]}
    funcs.bind_lookups(lambda source, key: table)
    assert compile_expression("lookup('s', 'k', m)", funcs).search({"m": "A@X"}) == {"id": 1}
    assert compile_expression("lookup('s', 'k', m)", funcs).search({"m": "none"}) is None
    assert compile_expression("lookup_all('s', 'k', m)", funcs).search({"m": "dup@x"}) == [
        {"id": 2}, {"id": 3}]
    with pytest.raises(FunctionError, match="2 records"):
        compile_expression("lookup('s', 'k', m)", funcs).search({"m": "dup@x"})


def test_var_reads_the_rendered_vars() -> None:
    """var(name) gives a record expression a configuration value (e.g. a date format)."""
    funcs = OaamapFunctions()
    funcs.bind_vars({"date_format": "%m/%d/%Y", "empty": ""})
    expr = compile_expression("to_rfc3339(d, var('date_format'))", funcs)
    assert expr.variables == {"date_format"}
    assert expr.search({"d": "03/04/2021"}) == "2021-03-04T00:00:00Z"
    assert compile_expression("to_rfc3339(d, var('empty'))", funcs).search(
        {"d": "2021-03-04"}) == "2021-03-04T00:00:00Z"
    with pytest.raises(ExpressionError, match="needs the var's name as a string literal"):
        compile_expression("var(name)", funcs)
