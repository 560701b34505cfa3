"""Large JSON-like text messages echoed one at a time: megabytes per second.

One message in flight, not several: with two or more 1 MiB messages in
flight each way, websockets.trio 17.4 deadlocks (its reader task flushes
outgoing data under the same lock as ``send``, so when both peers are stuck
in ``send_all`` neither reads again). Echoing one message at a time measures
the same per-message cost (client and server, encode and decode) on every
library, and the common-client rows show the servers alone.
"""

from __future__ import annotations

import time
from typing import Any, Final

import attrs

from benchmarks.adapters.base import Adapter
from benchmarks.payloads import LARGE_POOL, json_messages
from benchmarks.runtime import Runtime
from benchmarks.workloads.common import (
    SLICES,
    check_echo,
    echo_once,
    rate_figures,
    server_tcp_bytes,
)

MIN_COUNT: Final = 3
"""Messages timed at least, however slow a library is."""

MAX_COUNT: Final = 1_000_000
"""Messages timed at most whatever the clock says."""


@attrs.frozen
class Params:
    """What the harness asks for."""

    url: str
    compression: bool
    size: int
    """Bytes per message (64 KiB or 1 MiB)."""
    duration: float
    """Seconds to measure for, after the warm-up."""
    warmup: int = 3


async def run(adapter: Adapter, runtime: Runtime, params: Params) -> dict[str, Any]:
    """Echo ``size``-byte messages one at a time for ``duration`` seconds.

    Returns:
        ``rate`` (MB/s, 10**6 payload bytes one way per second: the median of
        :data:`SLICES` time slices, a slice holding at least one whole message),
        ``mean_rate``, ``slices``, ``count``, ``elapsed`` (seconds), ``payload_bytes``
        (sent, warm-up included), and where ``ss`` works ``wire_ratio`` (bytes the
        server sent on the wire per payload byte: its compression ratio, framing and
        handshake included) and ``wire_ratio_client`` (the same for the client's bytes).
    """
    messages = json_messages(params.size)
    megabytes = params.size / 1e6
    async with adapter.connect(params.url, compression=params.compression) as conn:
        for i in range(params.warmup):
            await echo_once(conn, messages[i % LARGE_POOL])
        send, recv = conn.send, conn.recv
        count = 0
        start = time.perf_counter()
        deadline = start + params.duration
        step = params.duration / SLICES
        next_mark = start + step
        marks: list[tuple[float, float]] = [(start, 0)]
        while count < MAX_COUNT:
            message = messages[count % LARGE_POOL]
            await send(message)
            check_echo(message, await recv())
            count += 1
            now = time.perf_counter()
            if now >= next_mark:
                marks.append((now, count * megabytes))
                next_mark = max(next_mark + step, now)
                if now >= deadline and count >= MIN_COUNT:
                    break
        if marks[-1][1] != count * megabytes:
            marks.append((time.perf_counter(), count * megabytes))
        wire = server_tcp_bytes(params.url)
    payload = (count + params.warmup) * params.size
    result = rate_figures(marks) | {
        "count": count,
        "elapsed": marks[-1][0] - start,
        "payload_bytes": payload,
    }
    if wire is not None:
        result["wire_ratio"] = wire[0] / payload
        result["wire_ratio_client"] = wire[1] / payload
    return result
