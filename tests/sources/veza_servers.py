"""The examples' fixture servers (github-org, pagerduty) on ephemeral ports, for the http tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from test_http_examples import _load_server


@contextmanager
def serving(folder: str, **options: Any) -> Iterator[str]:
    """Run `examples/FOLDER/server.py` with `fixtures-veza`; yields its base URL."""
    server = _load_server(folder).make_server("127.0.0.1", 0, fixtures="fixtures-veza", **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
