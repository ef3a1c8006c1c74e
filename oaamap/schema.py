"""Stage 2: the mapping document against the mapping-language JSON Schema, every violation located.

The schema is generated from the vocabulary in `language.py` (`build_mapping_schema`) and shipped as
`schemas/oaamap.schema.json`, which `oaamap schema` prints for editors; a test keeps the two equal.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .errors import MappingError
from .language import (
    DEFINITION_SCOPES,
    ENV_NAME_PATTERN,
    MERGE_POLICIES,
    PROPERTY_NAME_PATTERN,
    PROPERTY_TYPES,
    SECRETS,
    TEMPLATES,
    FieldSpec,
    SectionSpec,
)
from .loader import Document

__all__ = ["build_mapping_schema", "mapping_schema", "validate_document"]

EXPR = {"type": "string", "minLength": 1, "description": "a JMESPath expression over the record"}
_SCALAR = {"type": ["string", "number", "boolean"]}
_JSON_ID = "https://oaamap.dev/schemas/oaamap.schema.json"


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    doc = {"description": spec.doc} if spec.doc else {}
    if spec.kind in ("str", "timestamp", "enum", "ref"):
        body: dict[str, Any] = {"type": ["string", "number"]}
    elif spec.kind == "bool":
        body = {"type": ["boolean", "string"]}
    elif spec.kind in ("str_list", "enum_list", "ref_list"):
        body = {"anyOf": [{"type": "string"}, {"type": "array", "items": _SCALAR}]}
    elif spec.kind == "objects":
        member = {"type": "object", "properties": {m: {} for m in spec.members},
                  "additionalProperties": False}
        body = {"anyOf": [{"type": "string"}, {"type": "array", "items": member}]}
    elif spec.kind == "object":
        body = {"anyOf": [{"type": "string"}, {
            "type": "object", "properties": {m: _SCALAR for m in spec.members},
            "additionalProperties": False}]}
    elif spec.kind == "properties":
        body = {"$ref": "#/$defs/properties"}
    else:
        body = {"$ref": "#/$defs/tags"}
    return {**body, **doc}


def _section_schema(section: SectionSpec) -> dict[str, Any]:
    props = {key: _field_schema(spec) for key, spec in section.fields.items()}
    rule: dict[str, Any] = {"type": "object", "additionalProperties": False,
                            "description": section.doc}
    if section.single:
        rule["properties"] = props
        rule["required"] = [k for k, s in section.fields.items() if s.required]
        return rule
    rule["properties"] = {
        "from": {"type": "string", "minLength": 1,
                 "description": "the source whose records this rule runs over (derived rule)"},
        "where": {**EXPR, "description": "keep the record only when this is truthy"},
        "each": {"type": "object", "minProperties": 1, "maxProperties": 1,
                 "additionalProperties": EXPR,
                 "description": "run once per element of a list: {NAME: EXPR}"},
        "merge": {"enum": list(MERGE_POLICIES),
                  "description": "first: a row merging into an entity that already exists "
                                 "adds only list fields, tags and roles; its scalar fields and "
                                 "properties are ignored, without a conflict"},
        "keep_null": {"type": "boolean",
                      "description": "send a null property value as null (default: omitted)"},
        "keep_null_items": {"type": "array", "uniqueItems": True, "items": {"type": "string"},
                            "description": "list fields (identities) whose null elements are "
                                           "sent as null (default: dropped)"},
        "keep_repeated_items": {"type": "array", "uniqueItems": True,
                                "items": {"type": "string"},
                                "description": "list fields (identities) whose elements are "
                                               "appended with their repeats (default: each "
                                               "element once)"},
        "keep_empty": {"type": "boolean",
                       "description": "send an empty-string property value as \"\" "
                                      "(default: omitted)"},
        "unchecked_refs": {"type": "array", "uniqueItems": True, "items": {"type": "string"},
                           "description": "reference fields (a role's permissions) whose names "
                                          "are sent as written even when nothing defines them, "
                                          "as the SDK does"},
        **props,
    }
    return {"type": "array", "items": rule, "description": section.doc}


def _source_defs() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1}
    return {
        "csv_source": {"type": "object", "additionalProperties": False, "properties": {
            "csv": {**text, "description": "path to the CSV file (Jinja)"},
            "columns": {"type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"type": "string", "minLength": 1},
                        "description": "the column names of a file without a header row "
                                       "(its first row is data)"},
            "delimiter": text, "quotechar": text, "encoding": text,
            "null_values": {"type": "array", "items": {"type": "string"}}}},
        "json_source": {"type": "object", "additionalProperties": False, "properties": {
            "json": {**text, "description": "path to the JSON or JSON Lines file (Jinja)"},
            "records": EXPR, "lines": {"type": "boolean"}, "encoding": text}},
        "http_source": {"type": "object", "additionalProperties": False, "properties": {
            "http": {"type": "object", "additionalProperties": False, "required": ["url"],
                     "properties": _http_properties()}}},
        "derive_source": {"type": "object", "additionalProperties": False, "properties": {
            "derive": _derive_schema()}},
        "sql_source": {"type": "object", "additionalProperties": False, "properties": {
            "sql": {"type": "object", "additionalProperties": False, "required": ["url", "query"],
                    "properties": {
                        "url": text, "query": text,
                        "params": {"type": "object", "additionalProperties": {"anyOf": [
                            {"type": ["string", "number", "boolean", "null"]},
                            {"type": "array"}]}},
                        "batch_size": {"type": "integer", "minimum": 1}}}}},
    }


def _with_common_source_keys(defs: dict[str, Any]) -> dict[str, Any]:
    """Every source kind also accepts `when:` (sources.COMMON_KEYS)."""
    when = {"type": ["string", "boolean"],
            "description": "read the source only when this Jinja expression over `vars`, "
                           "`env` and the context sources' records is true; otherwise it "
                           "yields no record"}
    for definition in defs.values():
        definition["properties"]["when"] = when
    return defs


def _derive_schema() -> dict[str, Any]:
    named = {"type": "object", "minProperties": 1, "maxProperties": 1,
             "additionalProperties": EXPR}
    return {
        "type": "object", "additionalProperties": False, "required": ["from"],
        "description": "records derived from another source's records: exactly one of `each`, "
                       "`distinct`, `recurse`",
        "properties": {
            "from": {"type": "string", "minLength": 1, "description": "the parent source"},
            "each": {**named, "description": "{NAME: EXPR}: one record per element of the list "
                     "EXPR of each parent record: {PARENT: parent, NAME: element}"},
            "distinct": {**named, "description": "{NAME: EXPR}: one record per distinct value "
                         "of EXPR over the parent records: {NAME: value, records: [parents]}"},
            "recurse": {**named, "description": "{NAME: EXPR}: every node of the trees rooted "
                        "at the parent records, EXPR giving a node's children: {NAME: node, "
                        "PARENT: parent node, depth: N, ancestors: [root, ..., parent node]}"},
            "parent": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                       "description": "each/recurse: the field holding the parent (default "
                       "`parent`)"},
            "index": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                      "description": "each: the field holding the element's position in its "
                      "list, from 0"},
            "case": {"enum": ["insensitive", "sensitive"],
                     "description": "distinct: how text values compare (default insensitive)"},
            "key": {**EXPR, "description": "recurse: a node's identity, for cycle detection"},
            "max_depth": {"type": "integer", "minimum": 1, "maximum": 1000,
                          "description": "recurse: the deepest level allowed (default 32)"},
        },
    }


def _strict(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False,
                              "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _one_of_keys(properties: dict[str, Any]) -> dict[str, Any]:
    return {**_strict(properties), "minProperties": 1, "maxProperties": 1}


def _auth_schema(kinds: dict[str, Any]) -> dict[str, Any]:
    """One auth kind, or a list of alternatives `{when: COND, KIND: {...}}`: the first true."""
    alternative = {**_strict({"when": {"type": ["string", "boolean"]}, **kinds}),
                   "minProperties": 1, "maxProperties": 2}
    return {"anyOf": [_one_of_keys(kinds),
                      {"type": "array", "minItems": 1, "items": alternative,
                       "description": "alternatives: the first whose `when` is true (a missing "
                                      "`when` is true) authenticates the source"}]}


def _http_properties() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1}
    string = {"type": "string"}
    scalar = {"type": ["string", "number", "boolean"]}
    where = {"enum": ["query", "body"]}
    return {
        "url": text, "method": {"enum": ["GET", "POST", "get", "post"]},
        "headers": {"type": "object", "additionalProperties": scalar},
        "secret_headers": {"type": "array", "items": string, "uniqueItems": True,
                           "description": "headers that carry a credential: they may read "
                           "secret variables and are dropped on a redirect to another host"},
        "params": {"type": "object", "additionalProperties": {"anyOf": [
            scalar, {"type": "array", "items": scalar}]}},
        "body": {},
        "auth": _auth_schema({
            "bearer": {"anyOf": [text, _strict({"token": string}, ["token"])]},
            "basic": _strict({"username": string, "password": string},
                             ["username", "password"]),
            "api_key": {**_strict({"header": string, "param": string, "value": string},
                                  ["value"]),
                        "oneOf": [{"required": ["header"]}, {"required": ["param"]}]},
            "oauth2_client_credentials": _strict(
                {"token_url": string, "client_id": string, "client_secret": string,
                 "scope": string, "client_auth": {"enum": ["body", "basic"]}},
                ["token_url", "client_id", "client_secret"]),
            "github_app": {
                **_strict({"app_id": scalar, "private_key": string, "private_key_file": string,
                           "installation_id": scalar, "org": string, "api_url": string,
                           "token": string}, []),
                "allOf": [{"anyOf": [{"required": ["private_key"]},
                                     {"required": ["private_key_file"]}]},
                          {"anyOf": [{"required": ["org"]}, {"required": ["installation_id"]}]}],
                "description": "a GitHub App's installation token (JWT RS256 -> installation "
                               "token, refreshed before it expires); a non-empty `token` is "
                               "sent instead"},
        }),
        "records": EXPR,
        "paginate": _one_of_keys({
            "link_header": text, "next_url": text,
            "cursor": _strict({"param": string, "next": string, "in": where},
                              ["param", "next"]),
            "offset": _strict({"param": string, "limit_param": string,
                               "limit": {"type": "integer", "minimum": 1},
                               "start": {"type": "integer", "minimum": 0},
                               "has_more": string, "in": where}, ["limit"]),
            "page": _strict({"param": string, "start": {"type": "integer", "minimum": 0},
                             "in": where}),
            "graphql": {**_strict({"cursor": text, "page_info": text}, ["cursor", "page_info"]),
                        "description": "GraphQL cursor pagination: the cursor goes into the "
                                       "body's `variables` under `cursor`; `page_info` is a "
                                       "JMESPath to {hasNextPage, endCursor}"},
            "graphql_variables": {
                **_strict({"next": text}, ["next"]),
                "description": "GraphQL paging over several cursors: `next` is a JMESPath over "
                               "{response, variables} giving the next request's variables "
                               "(null to stop)"},
        }),
        "for_each": {"type": "object", "minProperties": 1, "maxProperties": 1,
                     "additionalProperties": {"type": "string"}},
        "concurrency": {"type": "integer", "minimum": 1, "maximum": 64},
        "timeout": {"type": "number", "exclusiveMinimum": 0},
        "retries": {"type": "integer", "minimum": 0, "maximum": 20},
        "max_pages": {"type": "integer", "minimum": 1},
        "max_body_bytes": {"type": "integer", "minimum": 1},
        "ignore_status": {"type": "array", "uniqueItems": True,
                          "items": {"type": "integer", "minimum": 400, "maximum": 599},
                          "description": "error statuses whose requests yield no records "
                          "(or one record with `status_field`) instead of failing"},
        "status_field": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                         "description": "the record field that receives the HTTP status"},
        "recurse": {"anyOf": [{"type": "boolean"}, _strict({
            "key": {**EXPR, "description": "a record's identity, for cycle detection"},
            "max_depth": {"type": "integer", "minimum": 1, "maximum": 1000}})],
            "description": "with for_each: also fan out over this source's own records, depth "
                           "first, until none (trees such as subgroups)"},
    }


def _source_schema() -> dict[str, Any]:
    kinds = ("csv", "json", "http", "sql", "derive")
    return {
        "type": "object",
        "x-oaamap-message": "a source needs exactly one of `csv`, `json`, `http`, `sql`, "
                            "`derive`",
        "anyOf": [{"required": [k]} for k in kinds],
        "allOf": [{"if": {"required": [k]}, "then": {"$ref": f"#/$defs/{k}_source"}}
                  for k in kinds],
    }


def _common_defs() -> dict[str, Any]:
    typed = {"type": "object", "additionalProperties": False, "required": ["value"],
             "properties": {"value": {}, "type": {
                 "type": "string", "description": " | ".join(PROPERTY_TYPES)},
                 "keep_null": {"type": "boolean"}, "keep_empty": {"type": "boolean"}}}
    return {
        "properties": {
            "type": "object",
            "propertyNames": {"pattern": PROPERTY_NAME_PATTERN},
            "additionalProperties": {"anyOf": [
                {"type": ["string", "number", "boolean", "array"]}, typed]},
            "description": "custom properties: {name: EXPR} or {name: {value: EXPR, type: T, "
                           "keep_null: BOOL, keep_empty: BOOL}}",
        },
        "definitions": {
            "type": "object", "propertyNames": {"pattern": PROPERTY_NAME_PATTERN},
            "additionalProperties": {"anyOf": [
                {"type": "string", "description": " | ".join(PROPERTY_TYPES)},
                {"type": "object", "additionalProperties": False, "required": ["type"],
                 "properties": {"type": {"type": "string"},
                                "when": {"type": ["string", "boolean"],
                                         "description": "declared only when this condition "
                                                        "over vars and env is true"}}}]},
            "description": "property name -> type, in payload order",
        },
        "tags": {"anyOf": [
            {"type": "string"},
            {"type": "array", "items": {
                "type": "object", "required": ["key"], "additionalProperties": False,
                "properties": {"key": {"type": "string", "minLength": 1},
                               "value": {"type": ["string", "number", "boolean"]}}}}]},
        "source": _source_schema(),
        **_with_common_source_keys(_source_defs()),
    }


def _definitions_schema(template: str) -> dict[str, Any]:
    defs = {"$ref": "#/$defs/definitions"}
    scopes = {key: ({"type": "object", "additionalProperties": defs,
                     "description": "resource type -> {property name: type}"}
                    if key == "resources" else defs)
              for key in DEFINITION_SCOPES[template]}
    return {**_strict(scopes), "description": "custom property definitions per entity kind, "
            "declared even when never set, in this order (the SDK's define_*_property)"}


def _template_branch(name: str) -> dict[str, Any]:
    spec = TEMPLATES[name]
    sections = {s: _section_schema(sec) for s, sec in spec.sections.items()}
    return {"if": {"properties": {"template": {"const": name}}, "required": ["template"]},
            "then": {"properties": {**sections, "property_definitions": _definitions_schema(name)},
                     "required": [s for s, sec in spec.sections.items() if sec.single]}}


def build_mapping_schema() -> dict[str, Any]:
    """The JSON Schema of the mapping language, generated from `language.TEMPLATES`."""
    sections = sorted({s for t in TEMPLATES.values() for s in t.sections})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _JSON_ID,
        "title": "oaamap mapping file",
        "description": "Describes how records become one Veza OAA payload (one template, "
                       "one provider, one data source).",
        "type": "object",
        "required": ["oaamap", "template", "provider", "data_source"],
        "properties": {
            "oaamap": {"const": 1, "description": "language version"},
            "template": {"enum": list(TEMPLATES)},
            "provider": {"anyOf": [{"type": "string", "minLength": 1}, {
                "type": "object", "required": ["name"], "additionalProperties": False,
                "properties": {"name": {"type": "string", "minLength": 1},
                               "icon": {"type": "string", "minLength": 1}}}]},
            "data_source": {"type": "string", "minLength": 1},
            "vars": {"type": "object", "additionalProperties": {
                "type": ["string", "number", "boolean"]}},
            "secrets": {"type": "array", "uniqueItems": True, "description": SECRETS.doc,
                        "items": {"type": "string", "pattern": ENV_NAME_PATTERN}},
            "sources": {"type": "object", "additionalProperties": {"$ref": "#/$defs/source"}},
            "context": {"type": "array", "uniqueItems": True, "minItems": 1,
                        "items": {"type": "string", "minLength": 1},
                        "description": "sources that yield exactly one record, read first; "
                                       "configuration strings read it by the source's name"},
            "tables": {"type": "object", "description": "inline lookup tables for table(): "
                       "{NAME: {KEY: VALUE}}", "additionalProperties": {
                           "type": "object", "additionalProperties": {
                               "type": ["string", "number", "boolean", "null"]}}},
            "property_definitions": {},
            **{s: {} for s in sections},
        },
        "additionalProperties": False,
        "allOf": [_template_branch(t) for t in TEMPLATES],
        "$defs": _common_defs(),
    }


@lru_cache(maxsize=1)
def mapping_schema() -> dict[str, Any]:
    """The shipped mapping-language schema (package data)."""
    text = resources.files("oaamap").joinpath("schemas/oaamap.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(mapping_schema())


def _describe(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), "a value")


def _container_name(path: tuple[Any, ...]) -> str:
    if not path:
        return "the mapping"
    if isinstance(path[-1], int):
        parent = path[-2] if len(path) > 1 else ""
        return f"`{parent}` rule #{path[-1] + 1}"
    return f"`{path[-1]}`"


def _convert(error: ValidationError, doc: Document) -> list[MappingError]:
    path = tuple(error.absolute_path)
    where = error.json_path
    at = doc.key_span(path) if path and isinstance(error.instance, dict) else doc.span(path)
    custom = error.schema.get("x-oaamap-message") if isinstance(error.schema, dict) else None
    if custom:
        return [MappingError(custom, at, path=where)]
    if "propertyNames" in error.schema_path:
        return [MappingError(
            f"property name `{error.instance}` is invalid: Veza allows letters and `_`, "
            "starting with a letter (the SDK checks ^[a-z][a-z_]*$ on the lower-cased name)",
            doc.key_span((*path, error.instance)),
            path=where)]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        out = []
        for key in sorted(set(error.instance) - set(allowed), key=str):
            close = difflib.get_close_matches(str(key), allowed, n=1)
            out.append(MappingError(
                f"unexpected key `{key}` in {_container_name(path)}",
                doc.key_span((*path, key)), path=where,
                hint=f"did you mean `{close[0]}`?" if close else
                f"expected one of: {', '.join(allowed)}"))
        return out
    if error.validator in ("anyOf", "oneOf") and error.context:
        return _convert(best_match(error.context), doc)
    if error.validator == "required":
        return [MappingError(f"{error.message.replace(chr(39), '`')} in {_container_name(path)}",
                             at, path=where)]
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return [MappingError(f"expected {wanted}, got {_describe(error.instance)}",
                             doc.span(path), path=where)]
    if error.validator == "minLength":
        return [MappingError("must not be empty", doc.span(path), path=where)]
    if error.validator == "pattern" and path and path[-1] is not None:
        return [MappingError(f"`{error.instance}` does not match {error.validator_value}",
                             doc.span(path), path=where)]
    return [MappingError(error.message, doc.span(path), path=where)]


def validate_document(doc: Document) -> list[MappingError]:
    """Every schema violation of a mapping document, each located at `file:line:col`.

    Example:
        >>> from .loader import load_text
        >>> [str(e) for e in validate_document(load_text("oaamap: 1", "m.yaml"))][0]
        'm.yaml:1:1: error: `template` is a required property'
    """
    if not isinstance(doc.data, dict):
        return [MappingError("a mapping file must be a YAML mapping (key: value pairs)",
                             doc.span(()))]
    errors = sorted(_validator().iter_errors(doc.data), key=lambda e: list(map(str, e.path)))
    out: list[MappingError] = []
    for error in errors:
        for converted in _convert(error, doc):
            if not any(str(converted) == str(o) for o in out):
                out.append(converted)
    return out
