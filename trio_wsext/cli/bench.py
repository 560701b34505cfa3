"""What ``python -m trio_wsext bench`` runs: websockets' extension performance test, done properly.

Strategy: the original test timed ten round trips including the connection's opening
handshake, and its "No Compression" configuration still compressed (its
``extensions=None`` left websockets' default ``compression="deflate"`` on).
Here each case (compression off or on, times one of the original four sizes,
with JSON-like text from :mod:`trio_wsext.cli.samples`) opens its own connection,
warms it up, then times lockstep round trips only: send one message, wait for
its echo. Messages cycle through enough different texts (64 KiB of them) that
permessage-deflate's context takeover cannot turn a repeat into a few
back-references, as it would if one message were sent again and again.
Throughput counts application bytes in both directions, as the original did; the
wire ratio comes from
:meth:`~trio_wsext.connection.WebSocketConnection.statistics`. The echo server
runs in this process unless a URL is given, so by default both ends' work is
in the figures.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import trio

from ..client import open_websocket_url
from .echo import serve_echo
from .samples import MESSAGE_SIZES, sample_message

__all__ = [
    "COMPRESSIONS",
    "BenchResult",
    "distinct_messages",
    "format_bench_table",
    "results_as_json",
    "run_bench",
]

#: The two configurations compared: the label shown, and ``compression=``.
COMPRESSIONS: Final[tuple[tuple[str, str | None], ...]] = (("off", None), ("deflate", "deflate"))

#: Untimed round trips before each measurement: the first messages pay for
#: lazily built zlib objects and cold caches.
WARMUP_ROUND_TRIPS: Final = 3

#: One megabyte, for MB/s: SI, 10**6 bytes.
MEGABYTE: Final = 1_000_000

#: Each case cycles through different texts of at least this many bytes in
#: all: twice the largest deflate window (RFC 7692 §7.1.2: 2**15 bytes), so
#: that a text is never still in the window when it is sent again.
DISTINCT_TEXT_BYTES: Final = 2 * 2**15


def distinct_messages(size: int) -> list[str]:
    """Return different sample messages of ``size`` bytes: 64 KiB in all, and two at least."""
    count = max(2, -(-DISTINCT_TEXT_BYTES // max(size, 1)))
    return [sample_message(size, seed=seed) for seed in range(count)]


@attrs.frozen
class BenchResult:
    """One measured case: a compression setting and a message size."""

    compression: str
    """``"off"`` or ``"deflate"``."""
    size_name: str
    """The original test's name for the size: ``Small``, ``Medium``, ``Large``, ``Huge``."""
    message_bytes: int
    """The length of each message, in bytes."""
    round_trips: int
    """How many messages were sent and echoed while the clock ran."""
    seconds: float
    """How long they took."""
    app_bytes: int
    """Payload bytes sent plus received, as the application sees them."""
    wire_bytes: int
    """Bytes sent plus received on the socket, frame headers included."""

    @property
    def round_trips_per_second(self) -> float:
        """Round trips completed per second."""
        return self.round_trips / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_second(self) -> float:
        """Application bytes (both directions) per second, in MB (10**6 bytes)."""
        return self.app_bytes / MEGABYTE / self.seconds if self.seconds > 0 else 0.0

    @property
    def wire_ratio(self) -> float:
        """Wire bytes per application byte: below 1 when compression pays."""
        return self.wire_bytes / self.app_bytes if self.app_bytes else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the fields and the derived figures, for JSON."""
        return {
            **attrs.asdict(self),
            "round_trips_per_second": self.round_trips_per_second,
            "mb_per_second": self.mb_per_second,
            "wire_ratio": self.wire_ratio,
        }


async def _bench_case(
    url: str,
    compression: str | None,
    messages: Sequence[str],
    *,
    iterations: int | None,
    duration: float,
) -> tuple[int, float, int, int]:
    """Time lockstep round trips of ``messages``, in turn, on a new connection.

    Returns:
        Round trips, seconds, application bytes and wire bytes (both directions).
    """
    async with open_websocket_url(url, compression=compression, proxy=None) as ws:
        for message in messages[-WARMUP_ROUND_TRIPS:]:
            await ws.send_message(message)
            await ws.get_message()
        before = ws.statistics()
        count = 0
        start = time.perf_counter()
        deadline = start + duration
        while (count < iterations) if iterations is not None else (time.perf_counter() < deadline):
            await ws.send_message(messages[count % len(messages)])
            await ws.get_message()
            count += 1
        seconds = time.perf_counter() - start
        after = ws.statistics()
    app = after.bytes_sent + after.bytes_received - before.bytes_sent - before.bytes_received
    wire = (
        after.wire_bytes_sent
        + after.wire_bytes_received
        - before.wire_bytes_sent
        - before.wire_bytes_received
    )
    return count, seconds, app, wire


async def run_bench(
    *,
    url: str | None = None,
    iterations: int | None = None,
    duration: float = 1.0,
    sizes: Sequence[tuple[str, int]] = MESSAGE_SIZES,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[BenchResult]:
    """Measure every compression setting at every message size.

    Args:
        url: an echo server to measure against; ``None`` starts one in this
            process on 127.0.0.1.
        iterations: round trips per case; ``None`` runs each case for ``duration``.
        duration: seconds per case when ``iterations`` is ``None``.
        sizes: ``(name, bytes)`` pairs; the original test's four by default.
        progress: called as ``progress(done, total, label)`` before each case
            (and once with ``done == total`` at the end).

    Returns:
        One result per case, sizes in order, compression off before on.

    Raises:
        OSError: the server could not be reached (or no port listened on).
        HandshakeError: the server refused the connection.
    """
    cases = [
        (name, size, label, compression)
        for name, size in sizes
        for label, compression in COMPRESSIONS
    ]
    messages = {size: distinct_messages(size) for _, size in sizes}
    results: list[BenchResult] = []
    async with trio.open_nursery() as nursery:
        if url is None:
            server = await nursery.start(serve_echo, "127.0.0.1", 0)
            url = f"ws://127.0.0.1:{server.port}/bench"
        for done, (name, size, label, compression) in enumerate(cases):
            if progress is not None:
                progress(done, len(cases), f"{name} ({size:,} B), compression {label}")
            measured = await _bench_case(
                url, compression, messages[size], iterations=iterations, duration=duration
            )
            results.append(BenchResult(label, name, size, *measured))
        if progress is not None:
            progress(len(cases), len(cases), "done")
        nursery.cancel_scope.cancel()
    return results


def format_bench_table(results: Sequence[BenchResult]) -> str:
    """Format the results as a text table, one row per case."""
    header = (
        f"{'Size':<8} {'Message':>9} {'Compression':<11} {'Round trips/s':>13} "
        f"{'MB/s':>8} {'Wire/app':>8}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        lines.append(
            f"{result.size_name:<8} {result.message_bytes:>7,} B {result.compression:<11} "
            f"{result.round_trips_per_second:>13,.0f} {result.mb_per_second:>8.2f} "
            f"{result.wire_ratio:>8.2f}"
        )
    return "\n".join(lines)


def results_as_json(
    results: Sequence[BenchResult],
    *,
    server: str,
    iterations: int | None = None,
    duration: float | None = None,
) -> dict[str, Any]:
    """Return the results with what they were measured on, ready for ``json.dumps``.

    Args:
        results: what :func:`run_bench` returned.
        server: where the echo server ran (``"in-process"`` or its URL).
        iterations: the round trips asked per case, if a count was asked.
        duration: the seconds asked per case, if no count was asked.
    """
    try:
        version: str | None = importlib.metadata.version("trio_wsext")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout
        version = None
    return {
        "trio_wsext": version,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "trio": trio.__version__,
        "server": server,
        "iterations": iterations,
        "duration": duration if iterations is None else None,
        "results": [result.as_dict() for result in results],
    }
