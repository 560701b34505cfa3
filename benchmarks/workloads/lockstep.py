"""Lockstep echo of 64-byte text messages: one in flight, round trips per second."""

from __future__ import annotations

import time
from typing import Any, Final

import attrs

from benchmarks.adapters.base import Adapter
from benchmarks.payloads import SMALL_POOL, small_messages
from benchmarks.runtime import Runtime
from benchmarks.workloads.common import SLICES, check_echo, echo_once, rate_figures

MAX_ROUND_TRIPS: Final = 10_000_000
"""Upper bound on the loop whatever the clock says (about 100 s at 100k round trips/s)."""


@attrs.frozen
class Params:
    """What the harness asks for."""

    url: str
    compression: bool
    duration: float
    """Seconds to measure for (after the warm-up)."""
    warmup: int = 200
    """Round trips before the clock starts (imports, caches, zlib objects)."""


async def run(adapter: Adapter, runtime: Runtime, params: Params) -> dict[str, Any]:
    """Echo 64-byte messages one at a time for ``params.duration`` seconds.

    Returns:
        ``rate`` (round trips/s: the median of :data:`SLICES` time slices), ``mean_rate``,
        ``slices``, ``count``, ``elapsed`` (seconds), ``payload_bytes``.
    """
    messages = small_messages()
    async with adapter.connect(params.url, compression=params.compression) as conn:
        for i in range(params.warmup):
            await echo_once(conn, messages[i % SMALL_POOL])
        send, recv = conn.send, conn.recv
        count = 0
        start = time.perf_counter()
        deadline = start + params.duration
        step = params.duration / SLICES
        next_mark = start + step
        marks: list[tuple[float, float]] = [(start, 0)]
        while count < MAX_ROUND_TRIPS:
            message = messages[count % SMALL_POOL]
            await send(message)
            check_echo(message, await recv())
            count += 1
            if count % 16 == 0 and (now := time.perf_counter()) >= next_mark:
                marks.append((now, count))
                next_mark += step
                if now >= deadline:
                    break
        if marks[-1][1] != count:
            marks.append((time.perf_counter(), count))
    return rate_figures(marks) | {
        "count": count,
        "elapsed": marks[-1][0] - start,
        "payload_bytes": (count + params.warmup) * len(messages[0]),
    }
