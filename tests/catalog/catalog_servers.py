"""Helpers of the catalog golden tests: an example's fixture server on an ephemeral port, and the
compile of a catalog mapping against it."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from helpers import ROOT, run_cli


@contextmanager
def fixture_server(folder: str, **options: Any) -> Iterator[str]:
    """`examples/<folder>/server.py` serving on 127.0.0.1 (ephemeral port); yields its root URL."""
    path = ROOT / "examples" / folder / "server.py"
    spec = importlib.util.spec_from_file_location(
        f"catalog_server_{folder.replace('-', '_')}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.make_server("127.0.0.1", 0, **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def compile_catalog(mapping: str, variables: dict[str, str]) -> tuple[int, Any, str]:
    """`oaamap compile mappings/<mapping> --var ...`: (exit code, payload or None, stderr)."""
    args = ["compile", f"mappings/{mapping}", "--quiet"]
    for key, value in variables.items():
        args += ["--var", f"{key}={value}"]
    result = run_cli(*args)
    return result.code, json.loads(result.out) if result.code == 0 else None, result.err


def expected(folder: str, name: str) -> Any:
    """A payload Veza's own connector produced on the example's fixture server."""
    return json.loads((ROOT / "examples" / folder / name).read_text())
