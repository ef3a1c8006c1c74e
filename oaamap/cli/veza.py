"""`oaamap run`, `oaamap push` and `oaamap emulator`: compile, guard, push, report.

A run never pushes a partial or suspicious payload: any source or data error stops it during the
compile; the guards compare counts and entity ids with the last push Veza accepted for the same
(Veza URL, provider, data source), and refuse a first push with an empty kind that has rules;
one lock per data source prevents concurrent pushes; a failed push leaves its payload in the
state directory for `oaamap push --resend`; a lost answer or a Ctrl-C during the push is told
from the data source's state.
"""

from __future__ import annotations

import argparse
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
from typing import Any, TextIO

from ..errors import PayloadError, PayloadErrors, PushError
from ..veza.client import (
    APPLIED,
    PROVIDER_TEMPLATES,
    UNKNOWN,
    PushCheck,
    PushInterrupted,
    PushLostError,
    PushOutcome,
    VezaClient,
    VezaConfigError,
    normalize_url,
    read_key_file,
)
from ..veza.client import settings_from_env as _settings_from_env
from ..veza.guard import EmptyKindsError, GuardFindings, ReplacedError, compare
from ..veza.state import (
    DEFAULT_MAX_SHRINK,
    LastPush,
    ShrinkError,
    SpooledPush,
    StateError,
    StateKey,
    StateStore,
    default_state_dir,
    payload_counts,
    read_spool_meta,
    state_url,
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
    safety.add_argument("--allow-replace", action="store_true",
                        help="push even when more than --max-shrink of an entity kind's ids "
                        "are replaced by new ones")
    safety.add_argument("--allow-empty", action="store_true",
                        help="allow a first push in which an entity kind the mapping has rules "
                        "for is empty (or, for `push FILE`, a payload with no entities)")
    safety.add_argument("--ignore-state", action="store_true",
                        help="push even when the state file of the data source is unreadable "
                        "or corrupt, as if there were no previous push (the file is replaced)")


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


def _previous(args: argparse.Namespace, store: StateStore, key: StateKey) -> list[LastPush]:
    if args.ignore_state:
        try:
            return store.previous(key)
        except StateError as e:
            _say(args, f"oaamap: warning: {e.path} {e.problem}; ignored (--ignore-state)")
            return []
    return store.previous(key)


def find_guard_issues(args: argparse.Namespace, store: StateStore, key: StateKey,
                      target: PushTarget, payload_json: str, counts: dict[str, int],
                      empty_kinds: list[str]) -> GuardFindings:
    """Compare a payload with what Veza may hold for `key` (see `guard.compare`).

    Raises:
        StateError: the state is unreadable or corrupt (and no `--ignore-state`).
    """
    return compare(_previous(args, store, key), target.template, payload_json, counts,
                   empty_kinds, args.max_shrink)


def _apply_guards(args: argparse.Namespace, key: StateKey, target: PushTarget,
                  found: GuardFindings) -> None:
    """Refuse what is not allowed; note on stderr what an `--allow-*` flag let through."""
    if found.shrinks and not args.allow_shrink:
        raise ShrinkError(target.data_source, found.shrinks, args.max_shrink)
    if found.replacements and not args.allow_replace:
        raise ReplacedError(target.data_source, found.replacements, args.max_shrink)
    if found.empty and not args.allow_empty:
        raise EmptyKindsError(target.data_source, found.empty, key.url, *_empty_reason(args))
    for shrink in found.shrinks:
        _say(args, f"oaamap: warning: {shrink} since the last push (allowed by --allow-shrink)")
    for replaced in found.replacements:
        _say(args, f"oaamap: warning: {replaced} (allowed by --allow-replace)")
    if found.empty:
        _say(args, f"oaamap: warning: first push with no {', '.join(found.empty)} "
                   "(allowed by --allow-empty)")


def _empty_reason(args: argparse.Namespace) -> tuple[str, ...]:
    return () if getattr(args, "mapping", None) else ("the payload has no entities at all",)


def guarded_push(args: argparse.Namespace, client: VezaClient, target: PushTarget,
                 payload_json: str, counts: dict[str, int],
                 empty_kinds: list[str] | None = None,
                 incremental: float | None = None) -> PushOutcome:
    """Lock the data source, apply the guards, push; keep what Veza has, or spool the payload.

    Args:
        empty_kinds: entity kinds that are empty although they should not be (refused on a
            first push unless `--allow-empty`).
        incremental: send only the difference with the last push as an incremental update
            when it is at most this share of the payload's entities (`veza.incremental`); the
            guards, the state and the spool always see the full payload.

    Raises:
        LockedError: another run holds the data source.
        StateError: the state file is unreadable or corrupt (no `--ignore-state`).
        ShrinkError / ReplacedError / EmptyKindsError: a guard refused the payload.
        PushError: Veza refused or failed the push (the payload is spooled).
        PushInterrupted: Ctrl-C during the push; says whether Veza has the payload.
    """
    store = _state(args)
    key = StateKey.of(client.settings.url, target.provider, target.data_source)
    with store.lock(target.provider, target.data_source):
        found = find_guard_issues(args, store, key, target, payload_json, counts,
                                  empty_kinds or [])
        _apply_guards(args, key, target, found)
        sent = payload_json
        if incremental is not None:
            sent = _incremental_text(args, store, key, target, payload_json, incremental)
        try:
            outcome = client.push_payload(target.provider, target.data_source, target.template,
                                          sent, icon=target.icon)
        except (PushInterrupted, PushLostError) as e:
            _keep_after(args, store, key, target, payload_json, counts, e.check.verdict, e,
                        empty_kinds or [])
            raise
        except PushError as e:
            _spool(args, store, key, target, payload_json, e, empty_kinds or [])
            raise
        try:
            _record(store, key, target, payload_json, counts, outcome)
        except KeyboardInterrupt:
            # Veza has it: the state must say so before we stop.
            _record(store, key, target, payload_json, counts, outcome)
            raise PushInterrupted(target.data_source,
                                  PushCheck(APPLIED, "Veza answered the push")) from None
        store.unspool(target.provider, target.data_source)
    return outcome


def _incremental_text(args: argparse.Namespace, store: StateStore, key: StateKey,
                      target: PushTarget, payload_json: str, max_share: float) -> str:
    """The incremental update to send, or the full payload (the choice is said on stderr)."""
    from ..veza.incremental import choose_push

    choice = choose_push(_previous(args, store, key), target.template, payload_json, max_share)
    if choice.incremental:
        _say(args, f"oaamap: incremental push: {choice.reason} since the last push")
    else:
        _say(args, f"oaamap: full push: {choice.reason}")
    return choice.json_text


def _record(store: StateStore, key: StateKey, target: PushTarget, payload_json: str,
            counts: dict[str, int], outcome: PushOutcome) -> None:
    store.record_push(
        key, target.template, payload_json, counts,
        provider_id=outcome.provider.id, data_source_id=outcome.data_source.id,
        multipart=outcome.multipart,
        confirmed_by="data source state" if outcome.answer_lost else "answer",
    )


def _keep_after(args: argparse.Namespace, store: StateStore, key: StateKey, target: PushTarget,
                payload_json: str, counts: dict[str, int], verdict: str,
                error: PushError | PushInterrupted, empty_kinds: list[str]) -> None:
    """After a lost answer or Ctrl-C: record what Veza has; spool what it may not have."""
    if verdict == APPLIED:
        store.record_push(key, target.template, payload_json, counts,
                          confirmed_by="data source state")
        store.unspool(target.provider, target.data_source)
        return
    if verdict == UNKNOWN:
        # Veza may hold it: later payloads are compared with it as well as the last one.
        store.record_push(key, target.template, payload_json, counts, confirmed=False,
                          reason=str(error).splitlines()[0])
    _spool(args, store, key, target, payload_json, error, empty_kinds)


def _spool(args: argparse.Namespace, store: StateStore, key: StateKey, target: PushTarget,
           payload_json: str, error: PushError | PushInterrupted, empty_kinds: list[str]
           ) -> None:
    failed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    icon = str(target.icon) if target.icon else None
    message = error.message if isinstance(error, PushError) else str(error)
    path = store.spool(SpooledPush(Path(), target.provider, target.data_source, target.template,
                                   failed_at, message, icon, key.url, tuple(empty_kinds)),
                       payload_json)
    _say(args, f"oaamap: the payload was kept in {path}; send it again with `oaamap push "
               f"--resend` (or `oaamap push {path}`)")


def report_push(args: argparse.Namespace, outcome: PushOutcome, counts: dict[str, int],
                started: float) -> None:
    """Print every Veza warning and a summary line on stderr (neither with `--quiet`)."""
    if outcome.answer_lost:
        # Said even with --quiet: the user must know Veza's answer (and warnings) are unknown.
        print(f"oaamap: warning: the answer to the push to `{outcome.data_source.name}` was "
              "lost, but Veza's data source shows the push applied; Veza's warnings, if any, "
              "were lost with the answer", file=sys.stderr)
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
    from .compile import write_atomically

    def write(out: TextIO) -> None:
        out.write(payload_json + "\n")

    write_atomically(path, write, "utf-8")


def _dry_run_guards(args: argparse.Namespace, target: PushTarget, payload_json: str,
                    counts: dict[str, int], empty_kinds: list[str]) -> None:
    """Tell what the guards of a real run would refuse (as warnings; the state is per URL)."""
    url = args.veza_url or os.environ.get("VEZA_URL", "")
    if not url.strip():
        _say(args, "oaamap: note: no Veza URL (VEZA_URL or --veza-url): the push guards, "
                   "which compare with the last push to that URL, were not checked")
        return
    try:
        key = StateKey.of(normalize_url(url), target.provider, target.data_source)
    except VezaConfigError as e:
        _say(args, f"oaamap: note: {e.message}: the push guards were not checked")
        return
    try:
        found = find_guard_issues(args, _state(args), key, target, payload_json, counts,
                                  empty_kinds)
    except StateError as e:
        _say(args, f"oaamap: warning: a real run would refuse to push: {e.path} {e.problem} "
                   "(--ignore-state overrides)")
        return
    for flag, items in (("--allow-shrink", found.shrinks), ("--allow-replace",
                                                           found.replacements)):
        for item in items:
            _say(args, f"oaamap: warning: {item} since the last push: a real run would refuse "
                       f"to push without {flag}")
    if found.empty:
        _say(args, f"oaamap: warning: first push with no {', '.join(found.empty)}: a real run "
                   "would refuse to push without --allow-empty")
    if getattr(args, "incremental", False):
        from ..veza.incremental import choose_push

        choice = choose_push(_previous(args, _state(args), key), target.template, payload_json,
                             args.max_incremental)
        how = "an incremental update" if choice.incremental else "the full payload"
        _say(args, f"oaamap: note: a real run would push {how} ({choice.reason})")


def _dry_run(args: argparse.Namespace, target: PushTarget, payload_json: str,
             counts: dict[str, int], empty_kinds: list[str]) -> int:
    path = args.save_json or Path(f"{re.sub(r'[^A-Za-z0-9._-]+', '_', target.data_source)}.json")
    if not args.save_json:
        _write_payload(path, payload_json)
    _dry_run_guards(args, target, payload_json, counts, empty_kinds)
    _say(args, f"oaamap: dry run: payload for `{target.provider}` / `{target.data_source}` "
               f"written to {path}; nothing was pushed")
    return ExitStatus.OK


def _run_run(args: argparse.Namespace) -> int:
    from ..pipeline import compile_mapping
    from .compile import (
        check_output_folder,
        compile_options_from_args,
        print_warnings,
        summary_line,
    )

    started = time.monotonic()
    settings = None if args.dry_run else client_settings(args)  # fail before reading sources
    if args.save_json:
        check_output_folder(args.save_json)
    variables, options = compile_options_from_args(args)
    result = compile_mapping(args.mapping, variables, options)  # source/data errors stop here
    payload_json = result.payload_json()
    counts = payload_counts(result.template, result.payload)
    target = PushTarget(result.provider, result.data_source, result.template,
                        result.provider_icon)
    print_warnings(result.warnings, args.verbose, quiet=args.quiet)
    if not args.quiet:
        for note in result.notes:
            print(f"oaamap: note: {note}", file=sys.stderr)
        print(summary_line(result, time.monotonic() - started), file=sys.stderr)
    if args.save_json:
        _write_payload(args.save_json, payload_json)
    empty_kinds = empty_rule_sections(result.rule_sections, result.counts)
    if args.dry_run:
        return _dry_run(args, target, payload_json, counts, empty_kinds)
    outcome = guarded_push(args, _make_client(args, settings), target, payload_json, counts,
                           empty_kinds, args.max_incremental if args.incremental else None)
    report_push(args, outcome, counts, started)
    return ExitStatus.OK


# A section whose entities are counted under another name in `CompileResult.counts`.
_SECTION_COUNTS = {"grants": "identity_to_permissions"}


def empty_rule_sections(rule_sections: frozenset[str], counts: dict[str, int]) -> list[str]:
    """The sections the mapping has rules for that produced nothing, e.g. `['users']`."""
    return sorted(s for s in rule_sections if counts.get(_SECTION_COUNTS.get(s, s)) == 0)


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    from .compile import add_compile_arguments

    add_compile_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="compile and check, write the payload (to --save-json FILE or "
                        "DATA_SOURCE.json), but do not push")
    parser.add_argument("--save-json", type=Path, metavar="FILE",
                        help="also write the payload exactly as pushed to FILE")
    parser.add_argument("--incremental", action="store_true",
                        help="push only what changed since the last push (a Veza incremental "
                        "update); a full push when there is no usable state or the change is "
                        "large")
    parser.add_argument("--max-incremental", type=_percent, default=0.30, metavar="PERCENT",
                        help="with --incremental, push in full when the changes exceed PERCENT "
                        "of the payload's entities (default 30)")
    add_push_arguments(parser)


# -- oaamap push ------------------------------------------------------------------------------


def _jobs(args: argparse.Namespace) -> list[tuple[PushTarget, Path, SpooledPush | None]]:
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
                            Path(s.icon) if s.icon else None), s.payload_path, s) for s in kept]
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
    return [(PushTarget(str(provider), str(data_source), str(template), icon), args.payload,
             meta)]


def _check_spooled_url(args: argparse.Namespace, client: VezaClient, path: Path,
                       spooled: SpooledPush | None) -> None:
    """A kept payload goes back to the Veza it failed to reach, never silently to another one
    (an emulator trial's payload must not land in a real tenant)."""
    if spooled is None or not spooled.veza_url or args.allow_other_url:
        return
    url = state_url(client.settings.url)
    if url != spooled.veza_url:
        raise VezaConfigError(
            "--resend" if args.resend else "PAYLOAD",
            f"`{path}` is a payload that failed to reach {spooled.veza_url}, not {url}: set "
            "VEZA_URL (or --veza-url) to that URL, or pass --allow-other-url to send it here")


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
    for _target, path, spooled in jobs:
        _check_spooled_url(args, client, path, spooled)
    for target, path, spooled in jobs:
        started = time.monotonic()
        payload_json = _load_payload(args, target, path)
        counts = payload_counts(target.template, json.loads(payload_json))
        _say(args, f"oaamap: pushing {path} to `{target.provider}` / `{target.data_source}`")
        # A payload kept by a failed run knows which kinds its rules left empty; without a
        # mapping, only a payload with no entities at all is suspicious.
        if spooled is not None and spooled.empty_kinds:
            empty = list(spooled.empty_kinds)
        else:
            empty = sorted(counts) if counts and not any(counts.values()) else []
        outcome = guarded_push(args, client, target, payload_json, counts, empty)
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
    parser.add_argument("--allow-other-url", action="store_true",
                        help="send a kept payload to another Veza URL than the one it failed "
                        "to reach")
    add_push_arguments(parser)


# -- oaamap emulator --------------------------------------------------------------------------


def _emulator_config(args: argparse.Namespace) -> tuple[Any, bool]:
    from ..veza.emulator import EmulatorConfig, Faults

    key, generated = args.api_key or os.environ.get("VEZA_API_KEY", ""), False
    if args.api_key_file is not None:
        key = read_key_file(args.api_key_file)
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
