"""The mapping-language JSON Schema: shipped file in sync with the vocabulary; `oaamap schema`."""

from __future__ import annotations

import json

import jsonschema
from helpers import ROOT, run_cli

from oaamap.schema import build_mapping_schema, mapping_schema


def test_shipped_schema_is_generated_from_the_vocabulary() -> None:
    """Regenerate with: python -c 'from oaamap.schema import *; ...' (see schema.py)."""
    assert mapping_schema() == build_mapping_schema()


def test_schema_is_valid_and_accepts_every_shipped_mapping() -> None:
    """Every example, case and catalog mapping validates against the schema."""
    import yaml

    jsonschema.Draft202012Validator.check_schema(mapping_schema())
    validator = jsonschema.Draft202012Validator(mapping_schema())
    files = [*ROOT.glob("examples/*/mapping.yaml"), *ROOT.glob("mappings/*.yaml"),
             *ROOT.glob("tests/cases/doc-*/mapping.yaml")]
    assert files
    for path in files:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert errors == [], path


def test_schema_command_prints_it() -> None:
    """`oaamap schema` prints the schema for editors."""
    result = run_cli("schema")
    assert result.code == 0
    assert json.loads(result.out)["title"] == "oaamap mapping file"
