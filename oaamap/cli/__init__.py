"""The command line: the only place that prints. Subcommands live in a registry; exit codes here."""

from __future__ import annotations

import argparse
import io
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TextIO

from .. import __version__
from ..errors import (
    DataErrors,
    MappingError,
    MappingErrors,
    OaamapError,
    Warning_,
    WarningsAsErrors,
)
from ..redact import mask_text, remember_environment, secret_scope

__all__ = ["COMMANDS", "Command", "ExitStatus", "main", "register_command"]


class ExitStatus(IntEnum):
    """Process exit codes (the mapping-language reference's table)."""

    OK = 0
    ERROR = 1
    MAPPING_INVALID = 2
    SOURCE_FAILED = 3
    DATA_INVALID = 4
    PUSH_FAILED = 5
    CHANGES = 6  # `plan --detailed-exitcode`: the run would change something
    INTERRUPTED = 130


@dataclass(frozen=True)
class Command:
    """A subcommand: its help line, how it declares its arguments, and what it runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register_command(command: Command) -> None:
    """Add a subcommand to the CLI.

    Raises:
        ValueError: the name is taken.
    """
    if command.name in COMMANDS:
        raise ValueError(f"command `{command.name}` is already registered")
    COMMANDS[command.name] = command


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="every warning on stderr, not just the first 20")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print errors only (no summary; only the warnings that changed "
                        "the payload)")
    parser.add_argument("--traceback", action="store_true",
                        help="show the Python traceback of an unexpected error")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="oaamap",
        description="Compile YAML mapping files into Veza OAA payloads, check them, push them.",
    )
    parser.add_argument("--version", action="version", version=f"oaamap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # A snapshot: a command's add_arguments may import (and so register) another's module.
    for command in tuple(COMMANDS.values()):
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        _common(child)
        command.add_arguments(child)
        child.set_defaults(handler=command.run)
    return parser


def _exit_code(error: OaamapError) -> int:
    return int(getattr(error, "exit_code", ExitStatus.ERROR))


def print_warnings(warnings: Sequence[Warning_], verbose: int, limit: int = 20,
                   quiet: bool = False) -> None:
    """Print warnings on stderr (the first `limit` unless verbose).

    `quiet` hides them, except those that changed the payload: those are always shown.
    """
    if quiet:
        warnings = [w for w in warnings if w.changes_payload]
    shown = warnings if verbose else warnings[:limit]
    for warning in shown:
        print(warning, file=sys.stderr)
    if len(shown) < len(warnings):
        print(f"... and {len(warnings) - len(shown)} more warnings (-v shows all)",
              file=sys.stderr)


def report_error(error: OaamapError, args: argparse.Namespace) -> int:
    """Print an expected error in full on stderr; return its exit code."""
    if isinstance(error, MappingErrors | DataErrors | WarningsAsErrors):
        error.max_shown = getattr(args, "max_errors", error.max_shown) or error.max_shown
    print_warnings(getattr(error, "warnings", []), getattr(args, "verbose", 0),
                   quiet=getattr(args, "quiet", False))
    text = mask_text(error.render())
    if isinstance(error, MappingError) and error.span is None:
        text = f"oaamap: {text}"
    print(text, file=sys.stderr)
    return _exit_code(error)


class _MaskedStream(io.TextIOBase):
    """stderr with every secret masked (`redact.mask_text`): the last line of defence."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(mask_text(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see `ExitStatus`).

    Everything printed on stderr (errors, warnings, notes, tracebacks, log lines) passes through
    `redact.mask_text`, which knows the run's secrets: the Veza API key, the values of
    secret-looking environment variables and the credentials rendered during the run.
    """
    stderr = sys.stderr
    with secret_scope():
        remember_environment(os.environ)
        sys.stderr = _MaskedStream(stderr)
        try:
            return _main(argv)
        finally:
            sys.stderr = stderr


def _main(argv: Sequence[str] | None) -> int:
    _load_commands(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except OaamapError as e:
        return report_error(e, args)
    except KeyboardInterrupt:
        # A Ctrl-C during a push is reported by the push itself (`PushInterrupted`, which says
        # whether Veza has the payload); one that gets here came when no push was under way.
        print("oaamap: interrupted while no push was under way (pushes reported above as done "
              "were done)", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return ExitStatus.OK
    except (RecursionError, MemoryError) as e:  # the last line: inputs are bounded before this
        if getattr(args, "traceback", False):
            traceback.print_exc()
        print(_EXHAUSTED[type(e)], file=sys.stderr)
        return ExitStatus.DATA_INVALID if isinstance(e, RecursionError) else ExitStatus.ERROR
    except Exception as e:  # a bug: keep it short unless asked
        if getattr(args, "traceback", False):
            traceback.print_exc()
        else:
            print(f"oaamap: unexpected error: {type(e).__name__}: {mask_text(str(e))} "
                  "(run again with --traceback and report it)", file=sys.stderr)
        return ExitStatus.ERROR


_EXHAUSTED: dict[type[BaseException], str] = {
    RecursionError: "oaamap: error: an input is nested too deeply to process (Python's recursion "
                    "limit was reached); look for deeply nested JSON or YAML in the mapping or "
                    "the data (--traceback shows where)",
    MemoryError: "oaamap: error: out of memory; an input (a source, a response, a value built by "
                 "an expression) is too large to process (--traceback shows where)",
}


# Which module registers each command: a run imports only its command's module (`compile` does
# not import the HTTP client, the emulator or jsonschema's push-side users; 0.2 s of start-up).
_COMMAND_MODULES: dict[str, str] = {
    "validate": "compile", "compile": "compile", "schema": "compile",
    "preview": "inspect", "explain": "inspect",
    "plan": "plan", "run": "veza", "push": "veza", "emulator": "veza",
}
_OPTIONAL_MODULES = frozenset({"plan", "veza"})  # absent from a build without the Veza client


def _load_commands(argv: Sequence[str] | None = None) -> None:
    """Import the modules registering the commands: only the named command's when the first
    argument names one, every module otherwise (help, a mistyped command)."""
    import importlib
    import importlib.util

    args = sys.argv[1:] if argv is None else argv
    named = _COMMAND_MODULES.get(args[0]) if args else None
    modules = [named] if named is not None else list(dict.fromkeys(_COMMAND_MODULES.values()))
    for module in modules:
        name = f"{__name__}.{module}"
        if module in _OPTIONAL_MODULES and importlib.util.find_spec(f"{__name__}.veza") is None:
            continue
        importlib.import_module(name)
