"""Pipelined 64-byte text messages: all sent without waiting, messages echoed per second."""

from __future__ import annotations

import time
from typing import Any

import attrs

from benchmarks.adapters.base import Adapter
from benchmarks.payloads import SMALL_POOL, small_messages
from benchmarks.runtime import Runtime
from benchmarks.workloads.common import check_echo, echo_once


@attrs.frozen
class Params:
    """What the harness asks for."""

    url: str
    compression: bool
    count: int
    """Messages sent back to back (issue 6: 100k)."""
    warmup: int = 200


async def run(adapter: Adapter, runtime: Runtime, params: Params) -> dict[str, Any]:
    """Send ``params.count`` messages as fast as the library takes them while a second
    task receives the echoes; time from the first send to the last echo.

    One figure for the whole run, not a median of slices: echoes arrive in bursts (a
    library that reads 64 KiB at a time hands over a thousand messages at once), so
    the rate between two counts of echoes says nothing.

    Returns:
        ``rate`` (messages/s), ``count``, ``elapsed`` (seconds), ``payload_bytes``.
    """
    messages = small_messages()
    count = params.count
    async with adapter.connect(params.url, compression=params.compression) as conn:
        for i in range(params.warmup):
            await echo_once(conn, messages[i % SMALL_POOL])
        send, recv = conn.send, conn.recv

        async def sender() -> None:
            for i in range(count):
                await send(messages[i % SMALL_POOL])

        async def receiver() -> None:
            for i in range(count):
                check_echo(messages[i % SMALL_POOL], await recv())

        start = time.perf_counter()
        await runtime.gather(sender, receiver)
        elapsed = time.perf_counter() - start
    return {
        "rate": count / elapsed,
        "count": count,
        "elapsed": elapsed,
        "payload_bytes": (count + params.warmup) * len(messages[0]),
    }
