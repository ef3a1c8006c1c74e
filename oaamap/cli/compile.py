"""`oaamap validate`, `oaamap compile` and `oaamap schema`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..errors import OaamapError, OutputError
from ..pipeline import CompileOptions, CompileResult, compile_mapping, plan_mapping
from . import Command, ExitStatus, print_warnings, register_command, report_error

__all__ = ["add_compile_arguments", "check_output_folder", "compile_options_from_args",
           "print_warnings", "summary_line", "write_atomically"]


def _parse_var(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got `{text}`")
    key, value = text.split("=", 1)
    return key.strip(), value


def _mapping_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mapping", type=Path, help="the mapping file (YAML)")
    _var_arguments(parser)


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mappings", type=Path, nargs="+", metavar="MAPPING",
                        help="the mapping files (YAML); each is checked")
    _var_arguments(parser)


def _var_arguments(parser: argparse.ArgumentParser) -> None:
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
                                     progress=progress, limit=getattr(args, "limit", None))


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
    invalid = 0
    code: int = ExitStatus.OK
    for path in args.mappings:
        try:
            mapping, warnings = plan_mapping(path, dict(args.var))
        except OaamapError as e:
            invalid += 1
            code = max(code, report_error(e, args))
            continue
        if not args.quiet:
            print_warnings(warnings, args.verbose)
            rules = len(mapping.rules)
            print(f"oaamap: {path} is valid ({mapping.template}, {len(mapping.sources)} "
                  f"sources, {rules} rule{'s' if rules != 1 else ''})", file=sys.stderr)
    if len(args.mappings) > 1 and invalid:
        print(f"oaamap: {invalid} of {len(args.mappings)} mapping files are invalid",
              file=sys.stderr)
    return code


def _run_compile(args: argparse.Namespace) -> int:
    started = time.monotonic()
    output = None if args.output is None or str(args.output) == "-" else args.output
    if output is not None:
        check_output_folder(output)
    variables, options = compile_options_from_args(args)
    result = compile_mapping(args.mapping, variables, options)
    if output is not None:
        write_atomically(output, lambda out: result.write(out, indent=args.indent))
    else:
        result.write(sys.stdout, indent=args.indent)
    print_warnings(result.warnings, args.verbose, quiet=args.quiet)
    if not args.quiet:
        for note in result.notes:
            print(f"oaamap: note: {note}", file=sys.stderr)
        print(summary_line(result, time.monotonic() - started), file=sys.stderr)
        if args.limit is not None:
            print(f"oaamap: note: --limit {args.limit}: at most {args.limit} records of each "
                  "source were read; the payload is a trial, not for pushing", file=sys.stderr)
    return ExitStatus.OK


def check_output_folder(output: Path) -> None:
    """Refuse a payload path that cannot be written, before any source is read.

    Raises:
        OutputError: the folder is missing, not a folder or not writable, or the path is a folder.
    """
    folder = output.parent
    if output.is_dir():
        raise OutputError(str(output), "it is a folder; give a file name")
    if not folder.exists():
        raise OutputError(str(output), f"the folder `{folder}` does not exist")
    if not folder.is_dir():
        raise OutputError(str(output), f"`{folder}` is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(str(output), f"the folder `{folder}` is not writable")


def write_atomically(output: Path, write: Callable[[TextIO], None], encoding: str = "ascii"
                     ) -> None:
    """Write to `<output>.tmp`, then rename: the file is complete or absent, never partial.

    Raises:
        OutputError: writing or renaming failed (the temporary file is removed).
    """
    tmp = output.with_name(output.name + ".tmp")
    try:
        with open(tmp, "w", encoding=encoding) as out:
            write(out)
        tmp.replace(output)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = e.strerror or str(e)
        raise OutputError(str(output), f"{reason} (in the folder `{output.parent}`)") from e


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
    parser.add_argument("--limit", type=_positive, metavar="N",
                        help="read only the first N records of each source: a quick trial "
                        "(the payload is partial: never push it)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got `{text}`") from e
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got `{text}`")
    return value


register_command(Command("validate", "check mapping files without reading any data",
                         _validate_arguments, _run_validate))
register_command(Command("compile", "read the sources and write the checked OAA payload",
                         _compile_arguments, _run_compile))
register_command(Command("schema", "print the JSON Schema of the mapping language",
                         lambda parser: None, _run_schema))

