"""Idle connections: the server's resident memory per connection, at 1,000 connections.

The client (in its own process) reads the server's ``VmRSS`` itself, from
/proc, at three points: before, with every connection open and idle, and
after each connection has echoed one 1 KiB JSON message (the usual life of an
idle connection: it subscribed, then waits), and once more after the
connections have been idle for :data:`IDLE_WAIT` seconds. Lazy zlib
allocation shows in the first figure, context kept after a message in the
second, what a library gives back when a connection goes quiet in the third
(trio_wsext frees its compressor after 10 s without sending; the same wait
is applied to every library).
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

import attrs

from benchmarks.adapters.base import Adapter
from benchmarks.payloads import json_message
from benchmarks.procfs import rss_bytes
from benchmarks.runtime import Runtime
from benchmarks.workloads.common import echo_once

MESSAGE_SIZE: Final = 1024
"""The one message each connection echoes before going idle."""

IDLE_WAIT: Final = 12.0
"""Seconds the connections stay idle before the last reading: past trio_wsext's 10 s release."""

WARMUP_CONNECTIONS: Final = 20
"""Connections opened, used and closed before the baseline, so one-off costs (lazy imports,
first-use caches) do not count as per-connection memory."""


@attrs.frozen
class Params:
    """What the harness asks for."""

    url: str
    compression: bool
    count: int
    """Connections held open at once (issue 6: 1,000)."""
    server_pid: int
    settle: float = 0.5
    """Seconds to let the server finish its work before reading its RSS."""


async def run(adapter: Adapter, runtime: Runtime, params: Params) -> dict[str, Any]:
    """Open ``count`` connections to the server, read its RSS, use each once, read again.

    Returns:
        ``rss_before``, ``rss_open``, ``rss_used``, ``rss_idle`` (bytes),
        ``per_conn_open``, ``per_conn_used``, ``per_conn_idle`` (bytes per
        connection) and ``count``.
    """
    message = json_message(MESSAGE_SIZE, 0)
    for _ in range(WARMUP_CONNECTIONS):
        async with adapter.connect(params.url, compression=params.compression) as conn:
            await echo_once(conn, message)
    await runtime.sleep(params.settle)
    before = rss_bytes(params.server_pid)
    async with contextlib.AsyncExitStack() as stack:
        conns = [
            await stack.enter_async_context(
                adapter.connect(params.url, compression=params.compression)
            )
            for _ in range(params.count)
        ]
        await runtime.sleep(params.settle)
        opened = rss_bytes(params.server_pid)
        for conn in conns:
            await echo_once(conn, message)
        await runtime.sleep(params.settle)
        used = rss_bytes(params.server_pid)
        await runtime.sleep(IDLE_WAIT)
        idle = rss_bytes(params.server_pid)
    return {
        "count": params.count,
        "rss_before": before,
        "rss_open": opened,
        "rss_used": used,
        "rss_idle": idle,
        "per_conn_open": (opened - before) / params.count,
        "per_conn_used": (used - before) / params.count,
        "per_conn_idle": (idle - before) / params.count,
    }
