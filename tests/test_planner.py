"""Mapping errors: every mistake at once, each as file:line:col with the expression and a caret."""

from __future__ import annotations

import textwrap

import pytest

from oaamap.errors import MappingErrors
from oaamap.loader import load_text
from oaamap.planner import plan

HEAD = """\
oaamap: 1
template: application
provider: Acme
data_source: acme
sources:
  people: {csv: people.csv}
application: {name: Acme, type: acme}
"""


def errors_of(body: str, head: str = HEAD) -> list[str]:
    with pytest.raises(MappingErrors) as info:
        plan(load_text(head + textwrap.dedent(body), "m.yaml"))
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize(("body", "expected"), [
    ("users:\n  - from: peple\n    name: login\n",
     "m.yaml:9:11: error: `from:` names unknown source `peple` (did you mean `people`?)"),
    ("users:\n  - from: people\n    name: login\n    emial: email\n",
     "m.yaml:11:5: error: unexpected key `emial` in `users` rule #1 (did you mean `email`?)"),
    ("users:\n  - from: people\n    name: \"lowr(login)\"\n",
     "m.yaml:10:12: error: unknown JMESPath function `lowr()` (did you mean `lower`?)"),
    ("users:\n  - from: people\n    name: lower(login\n",
     "m.yaml:10:22: error: incomplete expression in `lower(login`"),
    ("users:\n  - from: people\n    name: |\n      lower(login\n",
     "m.yaml:10:11: error: incomplete expression in `lower(login\n`"),
    ("grants:\n  - from: people\n    user: u\n    group: g\n    role: r\n",
     "m.yaml:9:5: error: a `grants` rule needs exactly one of `user`, `group`, `idp`, "
     "`access_cred` (has `user`, `group`)"),
    ("grants:\n  - from: people\n    user: u\n",
     "m.yaml:9:5: error: a `grants` rule needs exactly one of `role`, `permission` (has none)"),
    ("permissions:\n  - name: read\n    canonical: [DataRaed]\n",
     "m.yaml:10:17: error: `DataRaed` is not one of DataRead, DataWrite, DataCreate, "
     "DataDelete, MetadataRead, MetadataWrite, MetadataCreate, MetadataDelete, NonData, "
     "Uncategorized (did you mean `DataRead`?)"),
    ("users:\n  - from: people\n    name: n\n    properties: {Title2: t}\n",
     "m.yaml:11:18: error: property name `Title2` is invalid: Veza allows letters and `_`, "
     "starting with a letter (the SDK checks ^[a-z][a-z_]*$ on the lower-cased name)"),
    ("users:\n  - from: people\n    name: n\n    properties: {t: {value: t, type: DATE}}\n",
     "m.yaml:11:38: error: property type `DATE` is not one of STRING, NUMBER, BOOLEAN, "
     "STRING_LIST, TIMESTAMP"),
    ("users:\n  - from: people\n    name: n\n    tags: [{key: a-b, value: x}]\n",
     "m.yaml:11:18: error: tag key `a-b` has characters Veza rejects (letters, digits and `_` "
     "only)"),
    ("users:\n  - from: people\n    name: \"concat(lookup('hr', 'e', m).n)\"\n",
     "m.yaml:10:11: error: lookup() names unknown source `hr` (declared sources: people)"),
    ("users:\n  - from: people\n    name: n\n    name: m\n",
     "m.yaml:11:5: error: duplicate key `name` (first defined at line 10; YAML would silently "
     "keep only the last one)"),
], ids=["unknown-source", "unknown-key", "unknown-function", "incomplete", "block-scalar",
        "two-identities", "no-role-or-permission", "bad-enum", "property-name",
        "property-type", "tag-key", "lookup-source", "duplicate-key"])
def test_mapping_error(body: str, expected: str) -> None:
    """One mistake, one precisely located error."""
    assert errors_of(body) == [expected]


def test_all_errors_at_once_with_carets() -> None:
    """Several mistakes of different kinds are all reported, sorted, each with its caret."""
    body = """\
    sources2: {}
    users:
      - from: peeple
        name: "lowr(login)"
        groups: "[dept"
    """
    with pytest.raises(MappingErrors) as info:
        plan(load_text(HEAD + textwrap.dedent(body), "m.yaml"))
    rendered = info.value.render()
    assert rendered.splitlines()[0].startswith("m.yaml:8:1: error: unexpected key `sources2`")
    assert "m.yaml:10:11: error: `from:` names unknown source `peeple`" in rendered
    assert "   11 |     name: \"lowr(login)\"\n      |            ^^^^" in rendered
    assert "m.yaml:12:19: error: incomplete expression in `[dept`" in rendered
    assert rendered.endswith("oaamap: 4 errors in m.yaml")


def test_jinja_errors_are_located() -> None:
    """Configuration strings: Jinja syntax errors and unknown variables."""
    head = HEAD.replace("data_source: acme", "data_source: \"{{ vars.x \"").replace(
        "people.csv", "\"{{ secrets.dir }}/people.csv\"")
    messages = errors_of("", head)
    assert messages[0].startswith("m.yaml:4:14: error: Jinja syntax error")
    assert messages[1] == ("m.yaml:6:17: error: unknown template variable `secrets` in "
                           "`{{ secrets.dir }}/people.csv` (available here: env, vars)")


def test_a_valid_mapping_plans_with_warnings() -> None:
    """An unused source is a warning, not an error."""
    head = HEAD.replace("  people: {csv: people.csv}", "  people: {csv: people.csv}\n"
                        "  spare: {csv: spare.csv}")
    mapping, warnings = plan(load_text(head + "users:\n  - from: people\n    name: n\n", "m.yaml"))
    assert [r.label for r in mapping.rules] == ["users[0]"]
    assert [str(w) for w in warnings] == [
        "m.yaml:7:3: warning: source `spare` is declared but no rule uses it"]


def test_unknown_var_in_an_expression() -> None:
    """var() must name a declared var (or a --var)."""
    head = HEAD.replace("sources:", "vars: {date_format: '%Y'}\nsources:")
    assert errors_of("users:\n  - {from: people, name: n, created_at: \"to_rfc3339(c, "
                     "var('date_fromat'))\"}\n", head) == [
        "m.yaml:10:41: error: var('date_fromat') names a var that `vars:` does not declare "
        "(did you mean `date_format`?)"]


def test_a_mapping_of_constant_strings_does_not_load_jinja() -> None:
    """Start-up: Jinja is imported by the first string with template syntax, not before."""
    import subprocess
    import sys

    code = ("import sys; from oaamap.templating import compile_template; "
            "compile_template('plain', None, ['env']); assert 'jinja2' not in sys.modules; "
            "t = compile_template('{{ vars.x }}', None, ['vars']); "
            "assert t.render({'vars': {'x': 'y'}}) == 'y' and 'jinja2' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
