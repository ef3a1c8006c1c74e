"""`oaamap validate`, `oaamap compile` and `oaamap schema`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..pipeline import CompileOptions, CompileResult, compile_mapping, plan_mapping
from . import Command, ExitStatus, print_warnings, register_command

__all__ = ["add_compile_arguments", "compile_options_from_args", "print_warnings",
           "summary_line"]


def _parse_var(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got `{text}`")
    key, value = text.split("=", 1)
    return key.strip(), value


def _mapping_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mapping", type=Path, help="the mapping file (YAML)")
    parser.add_argument("--var", action="append", type=_parse_var, default=[],
                        metavar="KEY=VALUE", help="override a `vars:` entry (repeatable)")
    parser.add_argument("--max-errors", type=int, default=20, help="errors shown (default 20)")


def add_compile_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every command that compiles a mapping takes."""
    _mapping_arguments(parser)
    parser.add_argument("--on-data-error", choices=("fail", "skip", "warn"), default="fail",
                        help="a row that cannot become a valid entity: fail the run (default), "
                        "skip it with a warning, or skip it and count it")
    parser.add_argument("--strict", action="store_true",
                        help="two rows giving one entity different values is an error, and so "
                        "is every warning (implies --warnings-as-errors)")
    parser.add_argument("--warnings-as-errors", action="store_true",
                        help="fail the run (exit 4, nothing written or pushed) when it has any "
                        "warning")


def compile_options_from_args(args: argparse.Namespace) -> tuple[dict[str, str], CompileOptions]:
    """The variables and options of `add_compile_arguments`, with a progress bar when useful."""
    variables = dict(args.var)
    progress = _Progress() if sys.stderr.isatty() and not args.quiet else None
    return variables, CompileOptions(on_data_error=args.on_data_error, strict=args.strict,
                                     warnings_as_errors=args.warnings_as_errors,
                                     progress=progress)


class _Progress:
    """A one-line progress display on stderr, shown only once reading has taken over 2 s."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, source: str, count: int) -> None:
        if count < 0:
            if self.shown:
                sys.stderr.write(f"\r  {source}: {-count:,} records read\033[K\n")
            return
        elapsed = time.monotonic() - self.started
        if elapsed > 2:
            self.shown = True
            rate = count / elapsed
            sys.stderr.write(f"\r  {source}: {count:,} records ({rate:,.0f}/s)\033[K")
            sys.stderr.flush()


def summary_line(result: CompileResult, elapsed: float) -> str:
    """`oaamap: users.csv 1,204 records; 1,198 users, 12 groups; 6 rows skipped (0.4 s)`."""
    records = ", ".join(f"{name} {count:,}" for name, count in result.records.items())
    entities = ", ".join(f"{count:,} {kind}" for kind, count in result.counts.items() if count)
    skipped = result.entities.skipped
    return (f"oaamap: read {records or 'no records'}; built {entities or 'nothing'}; "
            f"{skipped:,} row{'s' if skipped != 1 else ''} skipped ({elapsed:.1f} s)")


def _run_validate(args: argparse.Namespace) -> int:
    mapping, warnings = plan_mapping(args.mapping, dict(args.var))
    if not args.quiet:
        print_warnings(warnings, args.verbose)
        rules = len(mapping.rules)
        print(f"oaamap: {args.mapping} is valid ({mapping.template}, {len(mapping.sources)} "
              f"sources, {rules} rule{'s' if rules != 1 else ''})", file=sys.stderr)
    return ExitStatus.OK


def _run_compile(args: argparse.Namespace) -> int:
    started = time.monotonic()
    variables, options = compile_options_from_args(args)
    result = compile_mapping(args.mapping, variables, options)
    if args.output and str(args.output) != "-":
        tmp = args.output.with_name(args.output.name + ".tmp")
        with open(tmp, "w", encoding="ascii") as out:
            result.write(out, indent=args.indent)
        tmp.replace(args.output)
    else:
        result.write(sys.stdout, indent=args.indent)
    print_warnings(result.warnings, args.verbose, quiet=args.quiet)
    if not args.quiet:
        print(summary_line(result, time.monotonic() - started), file=sys.stderr)
    return ExitStatus.OK


def _run_schema(args: argparse.Namespace) -> int:
    from ..schema import mapping_schema

    json.dump(mapping_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return ExitStatus.OK


def _compile_arguments(parser: argparse.ArgumentParser) -> None:
    add_compile_arguments(parser)
    parser.add_argument("-o", "--output", type=Path,
                        help="write the payload to FILE (default: stdout); written atomically")
    parser.add_argument("--indent", type=int, default=None,
                        help="pretty-print with this indent (default: compact, as pushed)")


register_command(Command("validate", "check a mapping file without reading any data",
                         _mapping_arguments, _run_validate))
register_command(Command("compile", "read the sources and write the checked OAA payload",
                         _compile_arguments, _run_compile))
register_command(Command("schema", "print the JSON Schema of the mapping language",
                         lambda parser: None, _run_schema))

