"""oaamap: YAML mapping files over CSV, JSON, REST and SQL sources, compiled into Veza OAA payloads.

The package reads as the pipeline: load -> validate -> plan -> read -> evaluate -> build -> compile
-> check -> push. `pipeline.py` alone knows that order.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
    DataError,
    DataErrors,
    MappingError,
    MappingErrors,
    OaamapError,
    PayloadError,
    PayloadErrors,
    PushError,
    SourceError,
)

__all__ = [
    "DataError",
    "DataErrors",
    "MappingError",
    "MappingErrors",
    "OaamapError",
    "PayloadError",
    "PayloadErrors",
    "PushError",
    "SourceError",
    "__version__",
]
