"""Stage 3: Document -> MappingPlan. Compiles every JMESPath and Jinja once; checks references.

Every mistake is collected and reported at once with its file:line:col. No data is read here.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ErrorCollector, MappingError, Span, Warning_
from .expressions import (
    Expression,
    ExpressionError,
    OaamapFunctions,
    combine_list,
    combine_object,
    compile_expression,
    literal,
)
from .language import DEFINITION_SCOPES, PROPERTY_TYPES, TEMPLATES, FieldSpec, SectionSpec
from .loader import Document
from .model import MappingPlan, PropertySpec, Rule, TagSpec
from .redact import VEZA_KEY_VAR, remember
from .schema import validate_document
from .sources import SOURCE_KINDS, PlanContext, SourcePlan, plan_source
from .templating import Template, compile_template

__all__ = ["plan"]

Path_ = tuple[Any, ...]
TEMPLATE_NAMES = frozenset({"env", "vars"})
NULL_ITEM_FIELDS = frozenset({"identities"})
# Reference fields a rule may send undefined (`unchecked_refs:`), per section: the SDK sends a
# role's permission names unchecked and Veza accepts them (Jira's `VIEW_ISSUES`).
UNCHECKED_REF_FIELDS = {"roles": frozenset({"permissions"})}
_TAG_KEY = re.compile(r"^[\w\d_]+$")


class _Planner:
    """Walks a schema-valid document once, compiling and checking as it goes."""

    def __init__(self, doc: Document, base_dir: Path, collector: ErrorCollector) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.base_dir = base_dir
        self.errors = collector
        self.functions = OaamapFunctions()
        # (source, key field) of every lookup() -> where it is first used.
        self.lookups: dict[tuple[str, str], Span | None] = {}
        self.source_names = frozenset((self.data.get("sources") or {}).keys())
        self.var_names: frozenset[str] = frozenset(map(str, (self.data.get("vars") or {})))
        self.secrets = self._secrets()
        self.context = self._context()
        # Configuration strings may read the context sources' records by name.
        self.template_names = TEMPLATE_NAMES | frozenset(self.context)
        self.functions.bind_tables(self.data.get("tables") or {})
        self.definition_conditions: dict[str, dict[str, Template]] = {}
        self.definitions = self._definitions()

    def _context(self) -> tuple[str, ...]:
        """The `context:` sources: declared, and named unlike `env` and `vars`."""
        out = []
        for index, name in enumerate(self.data.get("context") or []):
            if not isinstance(name, str):
                continue
            if name not in self.source_names:
                self._unknown_source(name, ("context", index), "`context:` names")
            elif name in TEMPLATE_NAMES:
                self.error(f"a context source cannot be named `{name}`: configuration strings "
                           f"already use `{name}`", ("context", index))
            else:
                out.append(name)
        return tuple(out)

    def _definitions(self) -> dict[str, dict[str, str]]:
        """`property_definitions:` as scope -> {name: TYPE}, in declared order."""
        raw = self.data.get("property_definitions") or {}
        scopes = DEFINITION_SCOPES.get(str(self.data.get("template")), {})
        out: dict[str, dict[str, str]] = {}
        for key, names in raw.items():
            if key not in scopes or not isinstance(names, dict):
                continue
            if key == "resources":
                for kind, props in names.items():
                    if isinstance(props, dict):
                        out[f"resources:{kind}"] = self._declared(
                            props, ("property_definitions", key, kind))
            else:
                out[scopes[key]] = self._declared(names, ("property_definitions", key))
        return out

    def _declared(self, names: Mapping[str, Any], path: Path_) -> dict[str, str]:
        out: dict[str, str] = {}
        seen: dict[str, str] = {}
        for name, kind in names.items():
            if isinstance(kind, Mapping):  # {type: TYPE, when: COND}: declared when COND holds
                self._definition_condition(kind, path, str(name))
                kind = kind.get("type")
            upper = str(kind).upper()
            if upper not in PROPERTY_TYPES:
                self.error(f"property type `{kind}` is not one of {', '.join(PROPERTY_TYPES)}",
                           (*path, name))
                continue
            if str(name).lower() in seen:
                self.error(f"property `{name}` is defined twice (as `{seen[str(name).lower()]}`"
                           "); Veza compares property names case-insensitively",
                           (*path, name), on_key=True)
                continue
            seen[str(name).lower()] = str(name)
            out[str(name)] = upper
        return out

    def _definition_condition(self, entry: Mapping[str, Any], path: Path_, name: str) -> None:
        raw = entry.get("when")
        if raw is None:
            return
        text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw).strip()
        if "{{" not in text and "{%" not in text:
            text = f"{{{{ {text} }}}}"
        scope = (f"resources:{path[2]}" if path[1] == "resources" else
                 DEFINITION_SCOPES.get(str(self.data.get("template")), {}).get(path[1], ""))
        self.definition_conditions.setdefault(scope, {})[name] = self.template(
            text, (*path, name, "when"))

    def error(self, message: str, path: Path_, *, hint: str | None = None,
              expression: str | None = None, on_key: bool = False) -> None:
        span = self.doc.key_span(path) if on_key else self.doc.span(path)
        self.errors.add(MappingError(message, span, hint=hint, expression=expression,
                                     path=_json_path(path)))

    def expression(self, text: str, path: Path_) -> Expression | None:
        try:
            compiled = compile_expression(text, self.functions)
        except ExpressionError as e:
            shown = text if len(text) <= 120 else text[:117] + "..."  # a hostile 10k-char one
            self.errors.add(MappingError(
                e.message + (f" in `{shown}`" if "`" not in e.message else ""),
                self.doc.expression_span(path, e.position, e.length), expression=text,
                hint=e.hint, path=_json_path(path)))
            return None
        for name in sorted(compiled.variables - self.var_names):
            close = difflib.get_close_matches(name, sorted(self.var_names), n=1)
            self.error(f"var('{name}') names a var that `vars:` does not declare", path,
                       expression=text,
                       hint=f"did you mean `{close[0]}`?" if close else "declare it under `vars:`")
        for source, key in compiled.lookups:
            if source not in self.source_names:
                self._unknown_source(source, path, "lookup() names")
            self.lookups.setdefault((source, key), self.doc.span(path))
        return compiled

    def _secrets(self) -> frozenset[str]:
        """The `secrets:` allow-list; `VEZA_API_KEY` may never be listed."""
        listed = self.data.get("secrets") or []
        if not isinstance(listed, list):
            return frozenset()
        for index, name in enumerate(listed):
            if name == VEZA_KEY_VAR:
                self.error(f"`{VEZA_KEY_VAR}` cannot be listed in `secrets:`: it is oaamap's "
                           "own credential for Veza and no mapping may read it",
                           ("secrets", index))
        names = frozenset(str(n) for n in listed if isinstance(n, str) and n != VEZA_KEY_VAR)
        # A listed variable may reach names and the payload, never a message.
        remember(*(os.environ.get(n) for n in sorted(names)))
        return names

    def template(self, text: str, path: Path_) -> Template:
        span = self.doc.span(path)
        try:
            return compile_template(str(text), span, self.template_names, secrets=self.secrets)
        except MappingError as e:
            e.path = _json_path(path)
            self.errors.add(e)
            return Template(str(text), span)

    def _unknown_source(self, name: str, path: Path_, what: str) -> None:
        close = difflib.get_close_matches(name, sorted(self.source_names), n=1)
        hint = f"did you mean `{close[0]}`?" if close else (
            f"declared sources: {', '.join(sorted(self.source_names)) or 'none'}")
        self.error(f"{what} unknown source `{name}`", path, hint=hint)

    # -- sources ---------------------------------------------------------------------------

    def sources(self) -> dict[str, SourcePlan]:
        ctx = PlanContext(
            base_dir=self.base_dir, collector=self.errors, span_of=self.doc.span,
            key_span_of=self.doc.key_span, compile_expression=self.expression,
            template_names=self.template_names, source_names=self.source_names,
            secrets=self.secrets)
        planned: dict[str, SourcePlan] = {}
        for name, config in (self.data.get("sources") or {}).items():
            if not isinstance(config, dict):
                continue
            # A context source may read the context sources declared before it, not itself.
            earlier = self.context[:self.context.index(name)] if name in self.context else None
            source_ctx = ctx if earlier is None else dataclasses.replace(
                ctx, template_names=TEMPLATE_NAMES | frozenset(earlier))
            kinds = [k for k in config if k in SOURCE_KINDS]
            if len(kinds) != 1:
                if not kinds and any(k in config for k in ("http", "sql")):
                    self.error(f"source kind `{next(k for k in config if k in ('http', 'sql'))}`"
                               " is not available in this installation", ("sources", name))
                elif len(kinds) > 1:
                    self.error(f"source `{name}` has several kinds: {', '.join(kinds)}",
                               ("sources", name), on_key=True)
                continue
            planned[name] = plan_source(kinds[0], name, config, source_ctx)
        return planned

    # -- rules -----------------------------------------------------------------------------

    def header(self, section: SectionSpec) -> Rule:
        values = self.data.get(section.name) or {}
        return self.rule(section, values, (section.name,), 0)

    def rules(self, spec_sections: Mapping[str, SectionSpec]) -> list[Rule]:
        out: list[Rule] = []
        for name, entries in self.data.items():
            section = spec_sections.get(name)
            if section is None or section.single or not isinstance(entries, list):
                continue
            for index, entry in enumerate(entries):
                if isinstance(entry, dict):
                    out.append(self.rule(section, entry, (name, index), index))
        return out

    def rule(self, section: SectionSpec, entry: Mapping[str, Any], path: Path_,
             index: int) -> Rule:
        source = entry.get("from")
        derived = source is not None
        if derived and source not in self.source_names:
            self._unknown_source(str(source), (*path, "from"), "`from:` names")
        self._check_one_of(section, entry, path)
        fields: dict[str, Any] = {}
        for key, spec in section.fields.items():
            if key in entry and spec.kind not in ("properties", "tags"):
                value = self.value(spec, entry[key], (*path, key), derived)
                if value is not None:
                    fields[key] = value
        props_key = "assignment_properties" if "assignment_properties" in entry else "properties"
        keep = (bool(entry.get("keep_null", False)), bool(entry.get("keep_empty", False)))
        if entry.get("merge") and section.name in ("grants", "app_assignments"):
            self.error(f"`merge:` applies to entities; `{section.name}` rows are not merged "
                       "into entities (each adds what it grants)", (*path, "merge"))
        return Rule(
            section=section.name, index=index, span=self.doc.span(path),
            source=str(source) if derived else None, fields=fields,
            field_spans={k: self.doc.span((*path, k)) for k in entry},
            properties=self._typed(
                self.properties(entry.get(props_key) or {}, (*path, props_key), derived, keep),
                self._scope_of(section.name, entry), (*path, props_key)),
            tags=self.tags(entry.get("tags"), (*path, "tags"), derived),
            where=self.expression(entry["where"], (*path, "where")) if "where" in entry else None,
            each=self.each(entry.get("each"), (*path, "each")),
            merge=str(entry["merge"]) if entry.get("merge") else None,
            keep_null_items=self._keep_items(section, entry, path, "keep_null_items",
                                             "keep null elements"),
            keep_repeated_items=self._keep_items(section, entry, path, "keep_repeated_items",
                                                 "keep repeated elements"),
            unchecked_refs=self._unchecked_refs(section, entry, path),
        )

    def _unchecked_refs(self, section: SectionSpec, entry: Mapping[str, Any], path: Path_
                        ) -> frozenset[str]:
        """`unchecked_refs:` names the reference fields whose names need not be defined."""
        names = entry.get("unchecked_refs") or []
        allowed = sorted(UNCHECKED_REF_FIELDS.get(section.name, ()))
        for index, name in enumerate(names):
            if name not in allowed:
                self.error(f"`{name}` cannot be an unchecked reference in `{section.name}`; "
                           f"unchecked_refs takes: {', '.join(allowed) or 'nothing here'}",
                           (*path, "unchecked_refs", index))
        return frozenset(n for n in names if n in allowed)

    def _keep_items(self, section: SectionSpec, entry: Mapping[str, Any], path: Path_,
                    key: str, what: str) -> frozenset[str]:
        """`keep_null_items:` / `keep_repeated_items:` name the list fields whose null or
        repeated elements the SDK sends (a local user's or group's `identities`:
        `add_identity(None)`, `add_identities` without de-duplication); a null or repeated
        reference means nothing."""
        names = entry.get(key) or []
        allowed = [k for k in section.fields if k in NULL_ITEM_FIELDS]
        for index, name in enumerate(names):
            if name not in allowed:
                self.error(f"`{name}` cannot {what} in `{section.name}`; "
                           f"{key} takes: {', '.join(allowed) or 'nothing here'}",
                           (*path, key, index))
        return frozenset(n for n in names if n in allowed)

    def _scope_of(self, section: str, entry: Mapping[str, Any]) -> str | None:
        """The definition scope of a rule's properties when known before reading (a resource
        rule's scope depends on its type: known only when the type is a constant)."""
        if section != "resources":
            return DEFINITION_SCOPES.get(str(self.data.get("template")), {}).get(section)
        kind = entry.get("type")
        if entry.get("from") is None and isinstance(kind, str) and "{{" not in kind:
            return f"resources:{kind}"
        if isinstance(kind, str) and kind.startswith("'") and kind.endswith("'"):
            return f"resources:{kind[1:-1]}"
        return None

    def _typed(self, props: tuple[PropertySpec, ...], scope: str | None, path: Path_
               ) -> tuple[PropertySpec, ...]:
        """Properties whose name is defined under `property_definitions:` take its type."""
        declared = {n.lower(): (n, t) for n, t in self.definitions.get(scope or "", {}).items()}
        if not declared:
            return props
        out = []
        for prop in props:
            found = declared.get(prop.name.lower())
            if found is not None and prop.type is None:
                prop = dataclasses.replace(prop, type=found[1])
            elif found is not None and prop.type != found[1]:
                self.error(f"property `{prop.name}` is declared {prop.type} here but "
                           f"{found[1]} under `property_definitions:`", (*path, prop.name))
            out.append(prop)
        return tuple(out)

    def _check_one_of(self, section: SectionSpec, entry: Mapping[str, Any], path: Path_) -> None:
        for group in section.one_of:
            present = [k for k in group if k in entry]
            if len(present) != 1:
                said = "none" if not present else ", ".join(f"`{k}`" for k in present)
                self.error(f"a `{section.name}` rule needs exactly one of "
                           f"{', '.join(f'`{k}`' for k in group)} (has {said})", path)

    def value(self, spec: FieldSpec, raw: Any, path: Path_, derived: bool) -> Any:
        """A derived string is an expression; anything else is a constant (checked here)."""
        if derived and isinstance(raw, str):
            return self.expression(raw, path)
        if derived and spec.kind in ("object", "objects") and isinstance(raw, dict | list):
            return self.object_expression(raw, path)
        constant = self.constant(raw, path)
        self._check_enum(spec, raw, path)
        return literal(constant) if derived else constant

    def object_expression(self, raw: dict[str, Any] | list[Any], path: Path_) -> Any:
        """Members written as a YAML mapping (or a list of them): each string is an expression."""
        if isinstance(raw, list):
            items = [self.object_expression(item, (*path, i)) for i, item in enumerate(raw)]
            if any(i is None for i in items):
                return None
            return combine_list(items, str(raw))
        members = {}
        for key, value in raw.items():
            member = (self.expression(value, (*path, key)) if isinstance(value, str)
                      else literal(value))
            if member is None:
                return None
            members[str(key)] = member
        return combine_object(members, str(raw))

    def constant(self, raw: Any, path: Path_) -> Any:
        if isinstance(raw, str) and ("{{" in raw or "{%" in raw):
            return self.template(raw, path)
        if isinstance(raw, list):
            return [self.constant(v, (*path, i)) for i, v in enumerate(raw)]
        if isinstance(raw, dict):
            return {k: self.constant(v, (*path, k)) for k, v in raw.items()}
        return raw

    def _check_enum(self, spec: FieldSpec, raw: Any, path: Path_) -> None:
        if not spec.choices:
            return
        allowed = {c.lower() for c in spec.choices}
        for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
            if isinstance(item, str) and "{{" not in item and item.lower() not in allowed:
                close = difflib.get_close_matches(item, spec.choices, n=1)
                where = (*path, i) if isinstance(raw, list) else path
                self.error(f"`{item}` is not one of {', '.join(spec.choices)}", where,
                           hint=f"did you mean `{close[0]}`?" if close else None)

    def properties(self, raw: Mapping[str, Any], path: Path_, derived: bool,
                   keep: tuple[bool, bool] = (False, False)) -> tuple[PropertySpec, ...]:
        out = []
        for name, value in raw.items():
            declared = None
            keep_null, keep_empty = keep
            if isinstance(value, dict) and "value" in value:
                keep_null = bool(value.get("keep_null", keep_null))
                keep_empty = bool(value.get("keep_empty", keep_empty))
                declared = value.get("type")
                if declared is not None and str(declared).upper() not in PROPERTY_TYPES:
                    self.error(f"property type `{declared}` is not one of "
                               f"{', '.join(PROPERTY_TYPES)}", (*path, name, "type"))
                declared = str(declared).upper() if declared else None
                value, vpath = value["value"], (*path, name, "value")
            else:
                vpath = (*path, name)
            compiled = (self.expression(value, vpath) if derived and isinstance(value, str)
                        else self.constant(value, vpath))
            if value is None and keep_null:
                compiled = literal(None) if derived else None  # an explicit null, sent
            elif compiled is None:
                continue
            out.append(PropertySpec(str(name), compiled, declared, self.doc.span(vpath),
                                    keep_null, keep_empty))
        return tuple(out)

    def tags(self, raw: Any, path: Path_, derived: bool) -> TagSpec:
        if raw is None:
            return TagSpec()
        if isinstance(raw, str):
            expr = self.expression(raw, path) if derived else None
            if not derived:
                self.error("a static rule's tags must be a list of {key, value}", path)
            return TagSpec(expression=expr)
        pairs = []
        for i, tag in enumerate(raw):
            key = str(tag.get("key", ""))
            if not _TAG_KEY.match(key):
                self.error(f"tag key `{key}` has characters Veza rejects (letters, digits and "
                           "`_` only)", (*path, i, "key"))
            value = tag.get("value", "")
            vpath = (*path, i, "value")
            compiled = (self.expression(value, vpath) if derived and isinstance(value, str)
                        and value != "" else self.constant(value, vpath))
            if compiled is not None:
                pairs.append((key, compiled))
        return TagSpec(pairs=tuple(pairs))

    def each(self, raw: Mapping[str, Any] | None, path: Path_) -> tuple[str, Expression] | None:
        if not raw:
            return None
        name, text = next(iter(raw.items()))
        expr = self.expression(str(text), (*path, name))
        return (str(name), expr) if expr is not None else None

    def source_cycles(self, sources: Mapping[str, SourcePlan]) -> None:
        """Sources that read each other's records (fan-outs, derived sources) in a cycle would
        never finish reading: each is a mapping error. (Every source kind reads at most one
        other source: an http fan-out's parent, a derived source's `from`.)"""
        reported: set[str] = set()
        for start in sources:
            path = [start]
            while path[-1] in sources and sources[path[-1]].depends_on:
                following = sources[path[-1]].depends_on[0]
                if following in path:
                    cycle = path[path.index(following):]
                    if not reported & set(cycle):
                        reported |= set(cycle)
                        shown = " -> ".join(f"`{n}`" for n in [*cycle, following])
                        self.error(f"sources read each other's records in a cycle: {shown}",
                                   ("sources", following), on_key=True)
                    break
                path.append(following)

    def unused_sources(self, rules: list[Rule], sources: Mapping[str, SourcePlan]) -> None:
        used = {r.source for r in rules} | {s for s, _ in self.lookups} | set(self.context)
        for plan_ in sources.values():
            used |= set(plan_.depends_on)
        for name in sources:
            if name not in used:
                self.errors.warn(f"source `{name}` is declared but no rule uses it",
                                 self.doc.key_span(("sources", name)))


def _json_path(path: Path_) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _variables(planner: _Planner, overrides: Mapping[str, str]) -> dict[str, Template]:
    out: dict[str, Template] = {}
    for name, value in (planner.data.get("vars") or {}).items():
        out[str(name)] = planner.template(str(value), ("vars", name))
    for name, value in overrides.items():
        out[name] = Template(str(value))
    return out


def _provider(planner: _Planner) -> tuple[Template, Template | None]:
    raw = planner.data.get("provider")
    if isinstance(raw, dict):
        icon = planner.template(raw["icon"], ("provider", "icon")) if raw.get("icon") else None
        return planner.template(str(raw.get("name", "")), ("provider", "name")), icon
    return planner.template(str(raw), ("provider",)), None


def plan(doc: Document, variables: Mapping[str, str] | None = None,
         base_dir: Path | None = None) -> tuple[MappingPlan, list[Warning_]]:
    """Check and compile a loaded mapping.

    Args:
        doc: the loaded mapping (stage 1).
        variables: `--var` overrides of the file's `vars:`.
        base_dir: the folder relative paths are resolved against (the mapping file's).

    Returns:
        The plan and the warnings about the mapping (e.g. unused sources).

    Raises:
        MappingErrors: every mistake found, each with its file:line:col.

    Example:
        >>> from .loader import load_text
        >>> p, _ = plan(load_text(open("examples/app-csv/mapping.yaml").read(), "m.yaml"))
        >>> p.template
        'application'
    """
    collector = ErrorCollector(doc.file)
    collector.extend(validate_document(doc))
    if not isinstance(doc.data, dict) or doc.data.get("template") not in TEMPLATES:
        collector.raise_if_any()
    planner = _Planner(doc, base_dir or Path(doc.file).resolve().parent, collector)
    planner.var_names |= frozenset(variables or {})
    spec = TEMPLATES[doc.data["template"]]
    header_name = next(name for name, s in spec.sections.items() if s.single)
    provider, icon = _provider(planner)
    sources = planner.sources()
    planner.source_cycles(sources)
    header = planner.header(spec.sections[header_name])
    rules = planner.rules(spec.sections)
    planner.unused_sources(rules, sources)
    result = MappingPlan(
        file=doc.file, base_dir=planner.base_dir, template=spec.name, provider=provider,
        provider_icon=icon, data_source=planner.template(str(doc.data.get("data_source", "")),
                                                          ("data_source",)),
        variables=_variables(planner, variables or {}), sources=sources, header=header,
        rules=tuple(rules), functions=planner.functions,
        lookups=dict(planner.lookups), context=planner.context,
        definitions=planner.definitions, definition_conditions=planner.definition_conditions)
    collector.raise_if_any()
    return result, collector.warnings
