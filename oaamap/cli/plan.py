"""`oaamap plan`: what a run would change in Veza, compared with the last push to that URL."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..diff import PayloadDiff, diff_payloads
from . import Command, ExitStatus, register_command

__all__ = ["plan_text"]

SHOWN = 20  # identifiers listed per kind and change, unless -v


def _last_payload(args: argparse.Namespace, provider: str, data_source: str
                  ) -> tuple[dict[str, Any], list[str]]:
    """The payload of the last confirmed push to the Veza URL, and notes about the state."""
    from ..veza.client import normalize_url
    from ..veza.state import StateKey, StateStore, default_state_dir

    url = normalize_url(args.veza_url or os.environ.get("VEZA_URL", ""))
    key = StateKey.of(url, provider, data_source)
    previous = StateStore(args.state_dir or default_state_dir()).previous(key)
    notes = []
    confirmed = [p for p in previous if p.confirmed]
    if any(not p.confirmed for p in previous):
        notes.append("the outcome of a later push is unknown: Veza may hold that one instead "
                     "(compared here with the last confirmed push)")
    if not confirmed:
        notes.append(f"no push to {key.url} is recorded: everything would be added")
        return {}, notes
    last = confirmed[0]
    if last.payload is None:
        notes.append(f"the state of the last push ({last.path}) keeps counts only (older "
                     "oaamap): everything is shown as added")
        return {}, notes
    notes.insert(0, f"compared with the push of {last.pushed_at} to {key.url}")
    return dict(last.payload), notes


def _kind_lines(diff: PayloadDiff, verbose: int) -> list[str]:
    lines = []
    for kind, found in diff.kinds.items():
        if not found:
            continue
        summary = ", ".join(f"{len(ids)} to {verb}" for verb, ids in (
            ("add", found.added), ("remove", found.removed), ("change", found.changed)) if ids)
        lines.append(f"  {kind}: {summary}")
        for sign, ids in (("+", found.added), ("-", found.removed), ("~", found.changed)):
            shown = ids if verbose else ids[:SHOWN]
            lines += [f"    {sign} {i}" for i in shown]
            if len(shown) < len(ids):
                lines.append(f"    ... and {len(ids) - len(shown)} more (-v shows all)")
    return lines


def plan_text(diff: PayloadDiff, target: str, notes: list[str], verbose: int = 0) -> str:
    """The plan as the lines `oaamap plan` prints."""
    lines = [f"Plan for {target}:", *(f"  ({note})" for note in notes)]
    if diff.header_changed:
        lines.append(f"  payload header changes: {', '.join(diff.header_changed)}")
    lines += _kind_lines(diff, verbose)
    if diff.access:
        lines.append("Access changes:")
        shown = diff.access if verbose else diff.access[:SHOWN * 5]
        lines += [f"  {change}" for change in shown]
        if len(shown) < len(diff.access):
            lines.append(f"  ... and {len(diff.access) - len(shown)} more (-v shows all)")
    totals = [sum(len(getattr(k, what)) for k in diff.kinds.values())
              for what in ("added", "removed", "changed")]
    if diff.changed:
        lines.append(f"Plan: {totals[0]} to add, {totals[1]} to remove, {totals[2]} to change; "
                     f"{len(diff.access)} access change{'s' if len(diff.access) != 1 else ''}.")
    else:
        lines.append("No changes: Veza already holds this payload.")
    return "\n".join(lines)


def _run_plan(args: argparse.Namespace) -> int:
    from ..pipeline import compile_mapping
    from .compile import compile_options_from_args, print_warnings

    variables, options = compile_options_from_args(args)
    result = compile_mapping(args.mapping, variables, options)
    print_warnings(result.warnings, args.verbose, quiet=args.quiet)
    old, notes = _last_payload(args, result.provider, result.data_source)
    diff = diff_payloads(result.template, old, result.payload)
    if args.json:
        out = {"provider": result.provider, "data_source": result.data_source,
               "notes": notes, **diff.as_json()}
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(plan_text(diff, f"`{result.provider}` / `{result.data_source}`", notes,
                        args.verbose))
    if args.detailed_exitcode and diff.changed:
        return ExitStatus.CHANGES
    return ExitStatus.OK


def _plan_arguments(parser: argparse.ArgumentParser) -> None:
    from .compile import add_compile_arguments

    add_compile_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 0 when nothing would change, 6 when something would "
                        "(other codes as usual)")
    parser.add_argument("--veza-url", metavar="URL",
                        help="the Veza URL whose last push is compared (default: $VEZA_URL)")
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        help="the state directory of `oaamap run` (default: as `run`)")


register_command(Command(
    "plan", "compile a mapping and show what pushing it would change in Veza (since the last "
    "push)", _plan_arguments, _run_plan))
