"""Small-message latency on one connection while another sends 16 MiB compressed messages.

Two client processes talk to one server: the bulk client echoes 16 MiB
JSON-like messages back to back for ``duration`` seconds; the probe client,
starting a little later, sends a 64-byte message every ``interval`` seconds
and records each round trip. A server that compresses on its event loop
holds every other connection for as long as a 16 MiB message takes.
"""

from __future__ import annotations

import math
import time
from typing import Any, Final

import attrs

from benchmarks.adapters.base import Adapter
from benchmarks.payloads import SMALL_POOL, json_message, small_messages
from benchmarks.runtime import Runtime
from benchmarks.workloads.common import check_echo, echo_once

BULK_SIZE: Final = 16 * 2**20
"""Bytes per bulk message (issue 6: 16 MiB)."""

MAX_BULK_MESSAGES: Final = 1_000
"""Upper bound on the bulk loop whatever the clock says."""

MAX_PROBES: Final = 1_000_000
"""Upper bound on the probe loop whatever the clock says."""


@attrs.frozen
class PrepareParams:
    """Nothing: the bulk messages are always the same two."""


@attrs.frozen
class BulkParams:
    """What the harness asks of the bulk client."""

    url: str
    duration: float
    """Seconds to keep sending for; the message under way is finished."""


@attrs.frozen
class ProbeParams:
    """What the harness asks of the probe client."""

    url: str
    delay: float
    """Seconds to wait, connected, before probing: lets the bulk transfer get going."""
    duration: float
    """Seconds to probe for."""
    interval: float
    """Seconds between the end of one probe and the start of the next."""


def bulk_messages() -> list[str]:
    """Return the two 16 MiB messages the bulk client alternates (built once per process)."""
    return [json_message(BULK_SIZE, i) for i in range(2)]


async def run_prepare(adapter: Adapter, runtime: Runtime, params: PrepareParams) -> dict[str, Any]:
    """Build the bulk messages (about a second) before the measurement, not during it."""
    return {"size": sum(len(m) for m in bulk_messages())}


async def run_bulk(adapter: Adapter, runtime: Runtime, params: BulkParams) -> dict[str, Any]:
    """Echo 16 MiB messages with compression on until ``duration`` has passed.

    Returns:
        ``count`` (messages echoed) and ``elapsed``.
    """
    messages = bulk_messages()
    async with adapter.connect(params.url, compression=True) as conn:
        start = time.perf_counter()
        count = 0
        while count < MAX_BULK_MESSAGES:
            await echo_once(conn, messages[count % 2])
            count += 1
            if time.perf_counter() - start >= params.duration:
                break
    return {"count": count, "elapsed": time.perf_counter() - start}


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``sorted_values`` (non-empty, ascending)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


async def run_probe(adapter: Adapter, runtime: Runtime, params: ProbeParams) -> dict[str, Any]:
    """Time 64-byte round trips with compression on, one every ``interval`` seconds.

    Returns:
        ``count``, ``p50``, ``p99`` and ``max`` (seconds).
    """
    messages = small_messages()
    rtts: list[float] = []
    async with adapter.connect(params.url, compression=True) as conn:
        await echo_once(conn, messages[0])
        await runtime.sleep(params.delay)
        send, recv = conn.send, conn.recv
        deadline = time.perf_counter() + params.duration
        while len(rtts) < MAX_PROBES and time.perf_counter() < deadline:
            message = messages[len(rtts) % SMALL_POOL]
            start = time.perf_counter()
            await send(message)
            echoed = await recv()
            rtts.append(time.perf_counter() - start)
            check_echo(message, echoed)
            await runtime.sleep(params.interval)
    if not rtts:
        raise RuntimeError("no probe completed within the probing time")
    rtts.sort()
    return {
        "count": len(rtts),
        "p50": percentile(rtts, 0.50),
        "p99": percentile(rtts, 0.99),
        "max": rtts[-1],
    }
