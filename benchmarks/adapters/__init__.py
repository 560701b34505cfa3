"""The libraries under test, one adapter module each, loaded by name.

Adapters are imported lazily: a library that is not installed (or, for
trio_wsext, not finished) shows up in the report as unavailable with the
import error, and the rest of the run goes on.
"""

from __future__ import annotations

import importlib
from typing import Final

from benchmarks.adapters.base import Adapter

__all__ = ["CEILINGS", "COMMON_CLIENT", "LIBRARIES", "SUBJECT", "Adapter", "load"]

LIBRARIES: Final = (
    "trio_wsext",
    "websockets",
    "websockets.trio",
    "trio-websocket",
    "aiohttp",
    "picows",
)
"""Column order of the report; the first is the library the ratios are about."""

CEILINGS: Final = ("tcp-trio", "tcp-asyncio")
"""Plain TCP echo servers and clients: what an event loop costs with no WebSocket at all."""

SUBJECT: Final = LIBRARIES[0]
"""The library whose ratio to each peer the report prints."""

COMMON_CLIENT: Final = "picows"
"""The client run against every server: the fastest client measured, so the server is the
bottleneck (its compression-on path is picows.websockets, which also speaks deflate)."""

_MODULES: Final = {
    "trio_wsext": "benchmarks.adapters.trio_wsext",
    "websockets": "benchmarks.adapters.websockets_asyncio",
    "websockets.trio": "benchmarks.adapters.websockets_trio",
    "trio-websocket": "benchmarks.adapters.trio_websocket",
    "aiohttp": "benchmarks.adapters.aiohttp",
    "picows": "benchmarks.adapters.picows",
    "tcp-trio": "benchmarks.adapters.tcp",
    "tcp-asyncio": "benchmarks.adapters.tcp",
}


def load(name: str) -> Adapter:
    """Import and return the adapter called ``name``.

    Raises:
        KeyError: If no adapter has that name.
        ImportError: If the library (or one of its modules) cannot be imported.
    """
    module = importlib.import_module(_MODULES[name])
    adapters: dict[str, type[Adapter]] = module.ADAPTERS
    return adapters[name]()
