"""A local emulator of Veza's OAA REST API, for tests and for trying oaamap without a tenant.

It serves the endpoints of REFERENCE section 6.3 for providers, data sources, icons, `:push`,
`:parts` and the templates list; checks the bearer key; pages and filters like Veza; decodes
gzip+base64 payloads; validates them as Veza does (`validate.py`), and keeps every accepted
payload (decoded) in memory and, with a data directory, on disk. `--tls` serves HTTPS with a
self-signed certificate made at start by the `openssl` command (or the `cryptography` package
when it happens to be installed).

Example:
    >>> with start_emulator(api_key="k") as emulator:  # doctest: +SKIP
    ...     requests.get(f"{emulator.url}/api/v1/providers/custom",
    ...                  headers={"authorization": "Bearer k"}).json()
    {'values': [], 'has_more': False, 'next_page_token': ''}
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OaamapError
from .client import MAX_BODY_BYTES
from .emulator_http import EmulatorServer, FaultInjector, Faults
from .emulator_store import PushRecord, RequestRecord, Store

__all__ = [
    "EmulatorConfig",
    "EmulatorError",
    "EmulatorHandle",
    "Faults",
    "make_certificate",
    "start_emulator",
]


class EmulatorError(OaamapError):
    """The emulator cannot start: the port is taken, or no way to make a TLS certificate."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"oaamap: error: emulator: {self.message}{hint}"


@dataclass(frozen=True)
class EmulatorConfig:
    """How to run the emulator.

    Attributes:
        host / port: where to listen (port 0 picks a free port).
        api_key: the only bearer key accepted.
        data_dir: where to persist providers, data sources and accepted payloads.
        tls: serve HTTPS; with no `cert_file`, a self-signed certificate is made at start.
        cert_file / key_file: a certificate and key to use instead.
        faults: injected 429/500 answers and latency.
        max_body_bytes: largest request body accepted (Veza: 100 MB).
        log: called with one line per request (None: silent).
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = "emulator-key"
    data_dir: Path | None = None
    tls: bool = False
    cert_file: Path | None = None
    key_file: Path | None = None
    faults: Faults = field(default_factory=Faults)
    max_body_bytes: int = MAX_BODY_BYTES
    log: Callable[[str], None] | None = None


def _openssl_certificate(folder: Path, hosts: list[str]) -> tuple[Path, Path] | None:
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    names = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() or ":" in h else f"DNS:{h}"
                     for h in hosts)
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
               "-days", "30", "-subj", "/CN=localhost", "-addext", f"subjectAltName={names}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return (cert, key) if done.returncode == 0 else None


def _cryptography_certificate(folder: Path, hosts: list[str]) -> tuple[Path, Path] | None:
    """The same with the `cryptography` package, when it happens to be installed (optional)."""
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    alt: list[x509.GeneralName] = []
    for h in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


def make_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate and key for `host`, `localhost` and `127.0.0.1` in `folder`.

    Raises:
        EmulatorError: the `openssl` command is not available.
    """
    folder.mkdir(parents=True, exist_ok=True)
    hosts = list(dict.fromkeys([host, "localhost", "127.0.0.1", "::1"]))
    made = _openssl_certificate(folder, hosts) or _cryptography_certificate(folder, hosts)
    if made is None:
        raise EmulatorError("cannot make a TLS certificate",
                            "install the openssl command, or pass --cert and --key")
    return made


class EmulatorHandle:
    """A running emulator: its URL, its store, fault controls, and `stop()`.

    Use it as a context manager to stop it at the end of a block.
    """

    def __init__(self, server: EmulatorServer, thread: threading.Thread, config: EmulatorConfig,
                 cert_file: Path | None, tempdir: tempfile.TemporaryDirectory[str] | None) -> None:
        self.server = server
        self.config = config
        self.cert_file = cert_file
        self._thread = thread
        self._tempdir = tempdir
        host, port = server.server_address[:2]
        scheme = "https" if config.tls else "http"
        name = str(host)
        shown = f"[{name}]" if ":" in name else name
        self.url = f"{scheme}://{shown}:{port}"
        self.port = int(port)

    @property
    def store(self) -> Store:
        """Everything the emulator holds."""
        return self.server.store

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received so far, in order."""
        return self.server.store.requests

    @property
    def pushes(self) -> list[PushRecord]:
        """Every accepted payload, in order."""
        return self.server.store.pushes

    def payloads(self, provider: str | None = None, data_source: str | None = None
                 ) -> list[PushRecord]:
        """Accepted payloads, optionally of one provider and data source (by name)."""
        return [p for p in self.pushes
                if provider in (None, p.provider) and data_source in (None, p.data_source)]

    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None,
                  path_contains: str | None = None) -> None:
        """Answer the next `count` matching requests with `status` (429 or 5xx) first."""
        self.server.faults.fail_next(status, count, retry_after=retry_after,
                                     path_contains=path_contains)

    def lose_next(self, count: int = 1, *, path_contains: str | None = None,
                  applied: bool = True, operation: str | None = None) -> None:
        """Drop the connection of the next `count` matching requests without answering.

        `applied=True`: the request is processed, then its answer is lost (a reset after
        Veza received it); `applied=False`: dropped before it is processed. `operation`
        narrows to one multipart operation (`complete`).
        """
        self.server.faults.lose_next(count, path_contains=path_contains, applied=applied,
                                     operation=operation)

    def serve_until_stopped(self) -> None:
        """Block until the server stops (the CLI's foreground mode)."""
        self._thread.join()

    def stop(self) -> None:
        """Stop serving, close the socket and remove a generated certificate."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _ssl_context(config: EmulatorConfig) -> tuple[ssl.SSLContext, Path, Any]:
    tempdir = None
    if config.cert_file is not None:
        cert, key = config.cert_file, config.key_file or config.cert_file
    else:
        tempdir = tempfile.TemporaryDirectory(prefix="oaamap-emulator-tls-")
        cert, key = make_certificate(Path(tempdir.name), config.host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        raise EmulatorError(f"cannot load the TLS certificate `{cert}`: {e}") from e
    return context, cert, tempdir


def start_emulator(config: EmulatorConfig | None = None, **options: Any) -> EmulatorHandle:
    """Start the emulator in a background thread; returns once it listens.

    Args:
        config: the settings; keyword `options` override its fields
            (`start_emulator(api_key="k", tls=True)`).

    Raises:
        EmulatorError: the address is taken, or TLS cannot be set up.
    """
    config = EmulatorConfig(**{**(config or EmulatorConfig()).__dict__, **options})
    context, cert, tempdir = _ssl_context(config) if config.tls else (None, None, None)
    try:
        server = EmulatorServer(
            (config.host, config.port), store=Store(config.data_dir), api_key=config.api_key,
            faults=FaultInjector(config.faults), max_body_bytes=config.max_body_bytes,
            ssl_context=context, log=config.log,
        )
    except OSError as e:
        raise EmulatorError(f"cannot listen on {config.host}:{config.port}: {e.strerror}") from e
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="oaamap-emulator", daemon=True)
    thread.start()
    return EmulatorHandle(server, thread, config, cert, tempdir)
