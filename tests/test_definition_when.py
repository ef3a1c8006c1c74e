"""`property_definitions:` entries `{type: T, when: COND}`: declared only when COND holds."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli, write_case

MAPPING = """\
oaamap: 1
template: application
provider: Demo
data_source: demo
vars: {probe: "yes"}
property_definitions:
  resources:
    repo:
      slug: STRING
      protected: {type: BOOLEAN, when: "vars.probe == 'yes'"}
application: {name: Demo, type: Demo}
resources:
  - {name: api, type: repo, properties: {slug: api}}
"""


def _definitions(tmp_path: Path, *args: str) -> dict[str, str]:
    mapping = write_case(tmp_path, MAPPING, {})
    result = run_cli("compile", str(mapping), "--quiet", *args)
    assert result.code == 0, result.err
    payload = json.loads(result.out)
    resources = payload["custom_property_definition"]["applications"][0]["resources"]
    return dict(resources[0]["properties"])


def test_declared_when_the_condition_holds(tmp_path: Path) -> None:
    assert _definitions(tmp_path) == {"slug": "STRING", "protected": "BOOLEAN"}


def test_left_out_when_it_does_not(tmp_path: Path) -> None:
    assert _definitions(tmp_path, "--var", "probe=no") == {"slug": "STRING"}


def test_a_wrong_type_in_the_long_form_is_a_mapping_error(tmp_path: Path) -> None:
    mapping = write_case(tmp_path, MAPPING.replace("type: BOOLEAN", "type: BOOL"), {})
    result = run_cli("validate", str(mapping))
    assert result.code == 2
    assert "property type `BOOL` is not one of" in result.err
