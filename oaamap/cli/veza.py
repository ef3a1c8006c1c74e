"""`oaamap run`, `oaamap push` and `oaamap emulator`: compile, guard, push, report.

A run never pushes a partial or suspicious payload: any source or data error stops it during the
compile; the shrink guard compares entity counts with the last successful push to the same data
source; one lock per data source prevents concurrent pushes; a failed push leaves its payload in
the state directory for `oaamap push --resend`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PayloadError, PayloadErrors, PushError
from ..veza.client import PROVIDER_TEMPLATES, PushOutcome, VezaClient, VezaConfigError
from ..veza.client import settings_from_env as _settings_from_env
from ..veza.state import (
    DEFAULT_MAX_SHRINK,
    ShrinkError,
    SpooledPush,
    StateStore,
    default_state_dir,
    payload_counts,
    read_spool_meta,
)
from . import Command, ExitStatus, register_command

__all__ = ["PushTarget", "guarded_push"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def parse_size(text: str) -> int:
    """`50MB` -> 50_000_000, `64KiB` -> 65536, `1000` -> 1000 (for argparse)."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size such as 50MB or 1048576, got `{text}`")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


def _percent(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a percentage such as 20, got `{text}`") from e
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("the percentage must be between 0 and 100")
    return value / 100


@dataclass(frozen=True)
class PushTarget:
    """Where a payload goes."""

    provider: str
    data_source: str
    template: str
    icon: Path | None = None


# -- arguments --------------------------------------------------------------------------------


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    """Connection, transfer and safety options shared by `run` and `push`."""
    # `--api-key X` must never be read as an abbreviation of `--api-key-file`.
    parser.allow_abbrev = False
    veza = parser.add_argument_group("Veza connection (VEZA_URL, VEZA_API_KEY)")
    veza.add_argument("--veza-url", metavar="URL", help="Veza URL (default: $VEZA_URL)")
    veza.add_argument("--api-key-file", type=Path, metavar="FILE",
                      help="read the API key from FILE instead of $VEZA_API_KEY")
    veza.add_argument("--api-key", dest="api_key_on_command_line", help=argparse.SUPPRESS)
    veza.add_argument("--insecure", action="store_true",
                      help="do not verify Veza's TLS certificate (self-signed test servers)")
    veza.add_argument("--ca-bundle", metavar="FILE", help="verify TLS with this CA bundle")
    veza.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                      help="read timeout per request (default 300)")
    veza.add_argument("--retries", type=int, default=5, metavar="N",
                      help="retries of 429/5xx answers and connection errors (default 5)")
    veza.add_argument("--no-compression", action="store_true",
                      help="send json_data uncompressed (default: gzip+base64)")
    veza.add_argument("--multipart-threshold", type=parse_size, default=50_000_000,
                      metavar="SIZE", help="use the multipart upload above SIZE (default 50MB)")
    veza.add_argument("--part-size", type=parse_size, default=50_000_000, metavar="SIZE",
                      help="bytes per part of a multipart upload (default 50MB, 99 parts max)")
    safety = parser.add_argument_group("push safety")
    safety.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="where last-push counts, locks and failed payloads are kept "
                        f"(default: {default_state_dir()})")
    safety.add_argument("--max-shrink", type=_percent, default=DEFAULT_MAX_SHRINK,
                        metavar="PERCENT", help="refuse a payload that drops more than PERCENT "
                        "of any entity kind since the last push (default 20)")
    safety.add_argument("--allow-shrink", action="store_true",
                        help="push even when the payload shrank beyond --max-shrink")


def client_settings(args: argparse.Namespace) -> Any:
    """`ClientSettings` from the environment and the options (the key never from a flag).

    Raises:
        VezaConfigError: no URL, no key, or the key was given on the command line.
    """
    if getattr(args, "api_key_on_command_line", None) is not None:
        raise VezaConfigError(
            "--api-key", "the API key is not accepted on the command line (it would show in "
            "process lists and shell history)", "set VEZA_API_KEY or use --api-key-file FILE")
    return _settings_from_env(
        url=args.veza_url, api_key_file=args.api_key_file, insecure=args.insecure,
        ca_bundle=args.ca_bundle, read_timeout=args.timeout, max_retries=args.retries,
        compression=not args.no_compression, multipart_threshold=args.multipart_threshold,
        part_size=args.part_size,
    )


def _state(args: argparse.Namespace) -> StateStore:
    return StateStore(args.state_dir or default_state_dir())


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


def _make_client(args: argparse.Namespace, settings: Any) -> VezaClient:
    if settings.verify is False:
        import urllib3

        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        _say(args, "oaamap: warning: TLS certificate verification is off (--insecure)")
    return VezaClient(settings, notify=lambda note: _say(args, f"oaamap: {note}"))


# -- the guarded push -------------------------------------------------------------------------


def _check_shrink(args: argparse.Namespace, store: StateStore, target: PushTarget,
                  counts: dict[str, int]) -> None:
    shrinks = store.check_shrink(target.provider, target.data_source, counts, args.max_shrink)
    if shrinks and not args.allow_shrink:
        raise ShrinkError(target.data_source, shrinks, args.max_shrink)
    for shrink in shrinks:
        _say(args, f"oaamap: warning: {shrink} since the last push (allowed by --allow-shrink)")


def guarded_push(args: argparse.Namespace, client: VezaClient, target: PushTarget,
                 payload_json: str, counts: dict[str, int]) -> PushOutcome:
    """Lock the data source, apply the shrink guard, push; record success or spool failure.

    Raises:
        LockedError: another run holds the data source.
        ShrinkError: the payload shrank beyond `--max-shrink` (and no `--allow-shrink`).
        PushError: Veza refused or failed the push (the payload is spooled).
    """
    store = _state(args)
    with store.lock(target.provider, target.data_source):
        _check_shrink(args, store, target, counts)
        try:
            outcome = client.push_payload(target.provider, target.data_source, target.template,
                                          payload_json, icon=target.icon)
        except PushError as e:
            _spool(args, store, target, payload_json, e)
            raise
        store.record_push(
            target.provider, target.data_source, counts, template=target.template,
            provider_id=outcome.provider.id, data_source_id=outcome.data_source.id,
            bytes=outcome.bytes_sent, multipart=outcome.multipart,
            sha256=hashlib.sha256(payload_json.encode("utf-8")).hexdigest(),
        )
        store.unspool(target.provider, target.data_source)
    return outcome


def _spool(args: argparse.Namespace, store: StateStore, target: PushTarget, payload_json: str,
           error: PushError) -> None:
    failed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    icon = str(target.icon) if target.icon else None
    path = store.spool(SpooledPush(Path(), target.provider, target.data_source, target.template,
                                   failed_at, error.message, icon), payload_json)
    _say(args, f"oaamap: the payload was kept in {path}; send it again with `oaamap push "
               f"--resend` (or `oaamap push {path}`)")


def report_push(args: argparse.Namespace, outcome: PushOutcome, counts: dict[str, int],
                started: float) -> None:
    """Print every Veza warning and a summary line on stderr (neither with `--quiet`)."""
    if args.quiet:
        return
    for message in outcome.warnings:
        print(f"veza: warning: {message}", file=sys.stderr)
    made = [f"{what} created" for what, new in (("provider", outcome.provider.created),
                                                ("data source", outcome.data_source.created))
            if new]
    how = f"multipart, {outcome.parts} parts" if outcome.multipart else (
        "gzip" if not args.no_compression else "uncompressed")
    entities = ", ".join(f"{n:,} {kind}" for kind, n in counts.items() if n)
    notes = [*made, f"{outcome.bytes_sent:,} bytes, {how}",
             f"{len(outcome.warnings)} Veza warning{'s' if len(outcome.warnings) != 1 else ''}"]
    if outcome.retries:
        notes.append(f"{outcome.retries} retr{'ies' if outcome.retries != 1 else 'y'}")
    print(f"oaamap: pushed {entities or 'an empty payload'} to `{outcome.provider.name}` / "
          f"`{outcome.data_source.name}` ({'; '.join(notes)}; "
          f"{time.monotonic() - started:.1f} s)", file=sys.stderr)


# -- oaamap run -------------------------------------------------------------------------------


def _write_payload(path: Path, payload_json: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(payload_json + "\n", encoding="utf-8")
    tmp.replace(path)


def _dry_run(args: argparse.Namespace, target: PushTarget, payload_json: str,
             counts: dict[str, int]) -> int:
    path = args.save_json or Path(f"{re.sub(r'[^A-Za-z0-9._-]+', '_', target.data_source)}.json")
    if not args.save_json:
        _write_payload(path, payload_json)
    shrinks = _state(args).check_shrink(target.provider, target.data_source, counts,
                                        args.max_shrink)
    for shrink in shrinks:
        _say(args, f"oaamap: warning: {shrink} since the last push: a real run would refuse "
                   "to push without --allow-shrink")
    _say(args, f"oaamap: dry run: payload for `{target.provider}` / `{target.data_source}` "
               f"written to {path}; nothing was pushed")
    return ExitStatus.OK


def _run_run(args: argparse.Namespace) -> int:
    from ..pipeline import compile_mapping
    from .compile import compile_options_from_args, print_warnings, summary_line

    started = time.monotonic()
    settings = None if args.dry_run else client_settings(args)  # fail before reading sources
    variables, options = compile_options_from_args(args)
    result = compile_mapping(args.mapping, variables, options)  # source/data errors stop here
    payload_json = result.payload_json()
    counts = payload_counts(result.template, result.payload)
    target = PushTarget(result.provider, result.data_source, result.template,
                        result.provider_icon)
    if not args.quiet:
        print_warnings(result.warnings, args.verbose)
        print(summary_line(result, time.monotonic() - started), file=sys.stderr)
    if args.save_json:
        _write_payload(args.save_json, payload_json)
    if args.dry_run:
        return _dry_run(args, target, payload_json, counts)
    outcome = guarded_push(args, _make_client(args, settings), target, payload_json, counts)
    report_push(args, outcome, counts, started)
    return ExitStatus.OK


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    from .compile import add_compile_arguments

    add_compile_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="compile and check, write the payload (to --save-json FILE or "
                        "DATA_SOURCE.json), but do not push")
    parser.add_argument("--save-json", type=Path, metavar="FILE",
                        help="also write the payload exactly as pushed to FILE")
    add_push_arguments(parser)


# -- oaamap push ------------------------------------------------------------------------------


def _jobs(args: argparse.Namespace) -> list[tuple[PushTarget, Path]]:
    """The payloads to send: a file (targets from the options or its spool record) or the spool."""
    if args.resend:
        if args.payload is not None:
            raise VezaConfigError("--resend", "give either PAYLOAD or --resend, not both")
        store = _state(args)
        kept = [s for s in store.spooled()
                if args.provider in (None, s.provider)
                and args.data_source in (None, s.data_source)]
        if not kept:
            raise VezaConfigError("--resend", f"no failed push is kept in {store.root}")
        return [(PushTarget(s.provider, s.data_source, s.template,
                            Path(s.icon) if s.icon else None), s.payload_path) for s in kept]
    if args.payload is None:
        raise VezaConfigError("PAYLOAD", "give a payload file, or --resend")
    meta = read_spool_meta(args.payload)
    provider = args.provider or (meta.provider if meta else None)
    data_source = args.data_source or (meta.data_source if meta else None)
    template = args.template or (meta.template if meta else None)
    icon = args.icon or (Path(meta.icon) if meta and meta.icon else None)
    for flag, value in (("--provider", provider), ("--data-source", data_source),
                        ("--template", template)):
        if not value:
            raise VezaConfigError(flag, f"{flag} is required to push `{args.payload}`")
    return [(PushTarget(str(provider), str(data_source), str(template), icon), args.payload)]


def _load_payload(args: argparse.Namespace, target: PushTarget, path: Path) -> str:
    """The payload file as compact JSON, checked with Veza's rules unless `--no-check`.

    Raises:
        PayloadErrors: not JSON, not an object, or breaking Veza's rules (exit 4).
    """
    from ..limits import load_json

    try:
        payload = load_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PayloadErrors([PayloadError(f"cannot read payload `{path}`: {e}")]) from e
    if not isinstance(payload, dict):
        raise PayloadErrors([PayloadError(f"payload `{path}` is not a JSON object")])
    if not args.no_check:
        from ..veza.validate import validate_payload

        result = validate_payload(target.template, payload)
        if result.errors:
            raise PayloadErrors([PayloadError(v.description, pointer=v.field)
                                 for v in result.errors])
    return json.dumps(payload, separators=(",", ":"))


def _run_push(args: argparse.Namespace) -> int:
    settings = client_settings(args)  # configuration problems first
    jobs = _jobs(args)
    client = _make_client(args, settings)
    for target, path in jobs:
        started = time.monotonic()
        payload_json = _load_payload(args, target, path)
        counts = payload_counts(target.template, json.loads(payload_json))
        _say(args, f"oaamap: pushing {path} to `{target.provider}` / `{target.data_source}`")
        outcome = guarded_push(args, client, target, payload_json, counts)
        report_push(args, outcome, counts, started)
    return ExitStatus.OK


def _push_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("payload", type=Path, nargs="?",
                        help="the payload JSON file (e.g. from `oaamap compile` or the spool)")
    parser.add_argument("--provider", help="provider name (created if missing)")
    parser.add_argument("--data-source", help="data source name (created if missing)")
    parser.add_argument("--template", choices=PROVIDER_TEMPLATES,
                        help="the provider's OAA template")
    parser.add_argument("--icon", type=Path, help="provider icon (PNG or SVG under 64 KB)")
    parser.add_argument("--resend", action="store_true",
                        help="send again the payloads of failed pushes kept in the state "
                        "directory (narrow with --provider/--data-source)")
    parser.add_argument("--no-check", action="store_true",
                        help="do not check the payload against Veza's rules before sending")
    add_push_arguments(parser)


# -- oaamap emulator --------------------------------------------------------------------------


def _emulator_config(args: argparse.Namespace) -> tuple[Any, bool]:
    from ..veza.emulator import EmulatorConfig, Faults

    key, generated = args.api_key or os.environ.get("VEZA_API_KEY", ""), False
    if args.api_key_file is not None:
        key = args.api_key_file.read_text(encoding="utf-8").strip()
    if not key:
        key, generated = secrets.token_urlsafe(18), True
    faults = Faults(rate_429=args.fault_429, rate_500=args.fault_500,
                    retry_after=args.retry_after, latency=args.latency, seed=args.seed)
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    config = EmulatorConfig(
        host=args.host, port=args.port, api_key=key, data_dir=args.data_dir, tls=args.tls,
        cert_file=args.cert, key_file=args.key, faults=faults, max_body_bytes=args.max_body,
        log=log,
    )
    return config, generated


def _run_emulator(args: argparse.Namespace) -> int:
    from ..veza.emulator import start_emulator

    config, generated = _emulator_config(args)
    handle = start_emulator(config)
    key_note = f"API key: {config.api_key}" if generated else "API key: as given"
    data_note = f"; data in {config.data_dir}" if config.data_dir else ""
    print(f"oaamap emulator: listening on {handle.url} ({key_note}{data_note})", flush=True)
    if config.tls:
        print("oaamap emulator: self-signed certificate: use --insecure with oaamap, "
              "VEZA_UNSAFE_HTTPS=true with oaaclient", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: handle.server.shutdown())
    try:
        handle.serve_until_stopped()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    return ExitStatus.OK


def _emulator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--api-key", metavar="KEY",
                        help="the bearer key to accept (default: $VEZA_API_KEY, else a random "
                        "key that is printed)")
    parser.add_argument("--api-key-file", type=Path, metavar="FILE",
                        help="read the key to accept from FILE")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="persist providers, data sources and every accepted payload here")
    parser.add_argument("--tls", action="store_true",
                        help="serve HTTPS with a self-signed certificate made at start")
    parser.add_argument("--cert", type=Path, metavar="FILE", help="TLS certificate (PEM)")
    parser.add_argument("--key", type=Path, metavar="FILE", help="TLS private key (PEM)")
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--fault-429", type=float, default=0.0, metavar="RATE",
                        help="share of requests answered 429 with Retry-After (0 to 1)")
    faults.add_argument("--fault-500", type=float, default=0.0, metavar="RATE",
                        help="share of requests answered 500 (0 to 1)")
    faults.add_argument("--retry-after", type=float, default=1.0, metavar="SECONDS",
                        help="Retry-After of injected 429s (default 1)")
    faults.add_argument("--latency", type=float, default=0.0, metavar="SECONDS",
                        help="delay added to every answer")
    faults.add_argument("--seed", type=int, help="seed of the fault draws")
    faults.add_argument("--max-body", type=parse_size, default=100_000_000, metavar="SIZE",
                        help="largest request body accepted (default 100MB, as Veza)")


register_command(Command(
    "run", "compile a mapping, check it, and push it to Veza (VEZA_URL, VEZA_API_KEY)",
    _run_arguments, _run_run))
register_command(Command(
    "push", "push a payload file (or resend a failed push) to Veza", _push_arguments, _run_push))
register_command(Command(
    "emulator", "serve a local emulator of Veza's OAA API (for tests and trying oaamap)",
    _emulator_arguments, _run_emulator))
