"""Connect/close cycles as fast as a few clients can make them, a fifth of them aborted.

Strategy: each cycle is the shortest honest life of a connection: TCP
connect, opening handshake with a deflate offer, closing handshake (the
client sends 1000, waits for the server's close frame and its end of
stream, as :rfc:`6455#section-7.1.1` has the server close TCP first). One
cycle in ten resets right after the 101 and one in ten in the middle of its
request, the way clients that crash or time out do. Each process binds its
own 127.0.0.x source address, so that 20,000 cycles cannot run out of
ephemeral ports to one server port, whatever sockets linger.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, Final, Literal

from benchmarks.load import wire
from benchmarks.load.attacks import connect, handshake, reset
from benchmarks.load.traffic import CLOSE_BOUND, error_name

CycleKind = Literal["close", "abort_after_handshake", "abort_mid_handshake"]
"""How a cycle ends."""

SOURCE_BASE: Final = 10
"""Churn process ``i`` connects from 127.0.0.(10 + i)."""


def cycle_kind(i: int) -> CycleKind:
    """Return how cycle ``i`` ends: 1 in 10 aborted after the handshake, 1 in 10 during it."""
    if i % 10 == 0:
        return "abort_after_handshake"
    if i % 10 == 5:
        return "abort_mid_handshake"
    return "close"


async def _await_close(sock: socket.socket, rest: bytes) -> str:
    """Wait for the server's close frame, then its end of stream; return how it went."""
    loop = asyncio.get_running_loop()
    reader = wire.FrameReader()
    got_close = any(f.opcode == wire.CLOSE for f in reader.feed(rest))
    try:
        async with asyncio.timeout(CLOSE_BOUND):
            for _ in range(1_000):
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    return "ok" if got_close else "eof before close frame"
                got_close = got_close or any(f.opcode == wire.CLOSE for f in reader.feed(data))
    except TimeoutError:
        return "server kept it open" if got_close else "no close frame"
    except ConnectionResetError:
        return "rst after close frame" if got_close else "rst"
    except wire.WireError:
        return "invalid frames"
    return "too many frames"


async def one_cycle(i: int, port: int, source: str) -> str:
    """Run cycle ``i``; return its outcome (``ok``, ``aborted``, or what went wrong)."""
    loop = asyncio.get_running_loop()
    kind = cycle_kind(i)
    try:
        sock = await connect(port, source)
    except (OSError, TimeoutError) as exc:
        return f"connect: {error_name(exc)}"
    try:
        if kind == "abort_mid_handshake":
            request = wire.handshake_request(port, wire.new_key())
            await loop.sock_sendall(sock, request[: len(request) // 2])
            return "aborted"
        _, rest, problem = await handshake(sock, port)
        if problem is not None:
            return f"handshake: {problem}"
        if kind == "abort_after_handshake":
            return "aborted"
        await loop.sock_sendall(sock, wire.close_frame(1000))
        return await _await_close(sock, rest)
    except (ConnectionResetError, BrokenPipeError):
        return "rst"
    finally:
        reset(sock)


async def run_churn(spec: dict[str, Any], stop: asyncio.Event) -> dict[str, Any]:
    """Run cycles ``index``, ``index + processes``, ... below ``cycles``, ``concurrency`` at once.

    ``spec``: ``port``, ``index``, ``processes``, ``cycles``,
    ``concurrency``, ``bound`` (seconds; cycles not started by then are skipped).
    """
    source = f"127.0.0.{SOURCE_BASE + spec['index']}"
    mine = iter(range(spec["index"], spec["cycles"], spec["processes"]))
    outcomes: dict[str, int] = {}
    start = time.monotonic()
    deadline = start + spec["bound"]

    async def worker() -> None:
        for i in mine:
            if time.monotonic() > deadline:
                outcomes["skipped (client bound)"] = outcomes.get("skipped (client bound)", 0) + 1
                continue
            outcome = await one_cycle(i, spec["port"], source)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    return {
        "outcomes": outcomes,
        "start": start,
        "end": time.monotonic(),
    }
