"""`oaamap preview` (the first raw records of each source) and `oaamap explain` (why an identity
has each of its accesses)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import Command, ExitStatus, register_command

__all__: list[str] = []


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _run_preview(args: argparse.Namespace) -> int:
    from ..preview import preview_sources

    previews = preview_sources(args.mapping, dict(args.var), args.source or (), args.count)
    if args.json:
        out = {p.name: {"fields": p.fields, "more": p.more,
                        "records": [{"ref": str(r.ref), "data": r.data} for r in p.records]}
               for p in previews}
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
        return ExitStatus.OK
    for number, preview in enumerate(previews):
        if number:
            print()
        more = ", more follow" if preview.more else ""
        count = len(preview.records)
        print(f"{preview.name}: {count} record{'s' if count != 1 else ''}{more}")
        print(f"  fields: {', '.join(preview.fields) or '(none)'}")
        for record in preview.records:
            print(f"  {record.ref}  {_shown(record.data)}")
    return ExitStatus.OK


def _preview_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mapping", type=Path, help="the mapping file (YAML)")
    parser.add_argument("--source", action="append", metavar="NAME",
                        help="preview this source only (repeatable; default: every source)")
    parser.add_argument("-n", "--count", type=int, default=5, metavar="N",
                        help="records shown per source (default 5)")
    parser.add_argument("--json", action="store_true", help="print the records as JSON")
    parser.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                        type=_parse_var, help="override a `vars:` entry (repeatable)")


def _parse_var(text: str) -> tuple[str, str]:
    from .compile import _parse_var as parse

    return parse(text)


def _run_explain(args: argparse.Namespace) -> int:
    from ..explain import explain
    from .compile import compile_options_from_args

    variables, options = compile_options_from_args(args)
    found = explain(args.mapping, args.user, args.resource, variables, options)
    entity = found.entity
    name = entity.values.get("name", entity.key)
    print(f"{name} ({found.section} `{entity.key}`), built from {len(found.rows)} "
          f"row{'s' if len(found.rows) != 1 else ''}:")
    for use in found.rows:
        print(f"  {use.where()}")
    if found.merges:
        print("Merges:")
        for note in found.merges:
            print(f"  {note}")
    scope = f" on {args.resource}" if args.resource else ""
    if not found.grants:
        print(f"No grants{scope}.")
    else:
        print(f"Grants{scope}:")
    for grant in found.grants:
        via = f" (through {grant.via})" if grant.via else ""
        print(f"  {grant.text}{via}")
        for use in grant.rows:
            print(f"    from {use.where()}")
    return ExitStatus.OK


def _explain_arguments(parser: argparse.ArgumentParser) -> None:
    from .compile import add_compile_arguments

    add_compile_arguments(parser)
    parser.add_argument("--user", required=True, metavar="NAME",
                        help="the identity: its id, name, identity or email")
    parser.add_argument("--resource", metavar="NAME",
                        help="only the grants on this resource (id or name), and app-wide ones")


register_command(Command(
    "preview", "show the first raw records of each source, with their fields",
    _preview_arguments, _run_preview))
register_command(Command(
    "explain", "show every grant of an identity with the rules and source rows behind it",
    _explain_arguments, _run_explain))
