"""The deflate ceiling: what stdlib zlib (and zlib-ng, if installed) does alone on the payloads.

Compression runs the way permessage-deflate runs it: one raw-deflate stream
per direction (``wbits=-15``, zlib's default level and memLevel), context
kept across messages, each message ended with ``Z_SYNC_FLUSH``. No library
can compress faster than this on one core; the gap is its overhead.
"""

from __future__ import annotations

import contextlib
import importlib
import time
import zlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final

from benchmarks.payloads import LARGE_POOL, json_messages

SIZES: Final = ((64 * 1024, "64 KiB"), (2**20, "1 MiB"))
"""The message sizes of the throughput workload."""

RAW_DEFLATE_WBITS: Final = -15
"""Raw deflate with a 32 KiB window: RFC 7692's default (no zlib header)."""


def backends() -> dict[str, ModuleType]:
    """Return the deflate implementations present: ``zlib``, and ``zlib-ng`` if installed."""
    found: dict[str, ModuleType] = {"zlib": zlib}
    with contextlib.suppress(ImportError):
        found["zlib-ng"] = importlib.import_module("zlib_ng.zlib_ng")
    return found


def _timed(step: Callable[[int], int], duration: float) -> float:
    """Call ``step(i)`` for i = 0, 1, ... until ``duration`` has passed; return bytes/s.

    ``step`` returns the input bytes it handled.
    """
    done = 0
    i = 0
    start = time.perf_counter()
    while True:
        done += step(i)
        i += 1
        elapsed = time.perf_counter() - start
        if elapsed >= duration and i >= LARGE_POOL:
            return done / elapsed


def measure(module: ModuleType, size: int, duration: float) -> dict[str, Any]:
    """Return compress and decompress MB/s of ``module`` on ``size``-byte JSON-like messages.

    Returns:
        ``compress`` and ``decompress`` (MB/s of uncompressed bytes) and ``ratio``
        (compressed / uncompressed, context kept across messages).
    """
    messages = [m.encode() for m in json_messages(size)]
    sync_flush = module.Z_SYNC_FLUSH
    compressor = module.compressobj(wbits=RAW_DEFLATE_WBITS)
    compressed: list[bytes] = []

    def compress(i: int) -> int:
        data = messages[i % LARGE_POOL]
        out = compressor.compress(data) + compressor.flush(sync_flush)
        if len(compressed) < LARGE_POOL * 4:
            compressed.append(out)
        return len(data)

    compress_rate = _timed(compress, duration)
    ratio = sum(len(c) for c in compressed) / sum(
        len(messages[i % LARGE_POOL]) for i in range(len(compressed))
    )
    # Replaying the recorded messages in order keeps the decompressor's context valid;
    # a fresh decompressor starts each replay.
    decompressor = module.decompressobj(wbits=RAW_DEFLATE_WBITS)

    def decompress(i: int) -> int:
        nonlocal decompressor
        j = i % len(compressed)
        if j == 0:
            decompressor = module.decompressobj(wbits=RAW_DEFLATE_WBITS)
        out: bytes = decompressor.decompress(compressed[j])
        return len(out)

    decompress_rate = _timed(decompress, duration)
    return {"compress": compress_rate / 1e6, "decompress": decompress_rate / 1e6, "ratio": ratio}


def measure_all(duration: float) -> list[dict[str, Any]]:
    """Run :func:`measure` for every backend and size; one dict per pair."""
    results = []
    for name, module in backends().items():
        for size, label in SIZES:
            results.append(
                {"backend": name, "size": size, "label": label} | measure(module, size, duration)
            )
    return results
