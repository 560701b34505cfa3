"""``python -m benchmarks.http2``: WebSockets over HTTP/2 (RFC 8441) against a TCP connection each.

Two figures, each for HTTP/1.1 (a TCP connection per WebSocket) and HTTP/2
(every WebSocket a stream of one cleartext HTTP/2 connection, prior
knowledge, through an :class:`~trio_wsext.http2.Http2Pool`):

- **memory**: the growth of the server process's resident memory (VmRSS)
  per WebSocket, with ``--sockets`` WebSockets open and idle (compression
  off and keepalive off, so that the figure is the transport's own, not
  deflate's), after one echo each;
- **messages/s**: ``--streams`` WebSockets echoing small messages in
  lockstep at once (each sends one, waits for the echo, sends the next),
  all messages of all WebSockets per second of wall time.

The server runs in a process of its own (``python -m benchmarks.http2
serve``), fresh for every repetition; the clients run here. Each figure is
the median of ``--repeat`` repetitions. ``--quick`` runs a small version.
Never asserts: it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Final, Literal

import trio

from benchmarks.procfs import rss_bytes
from trio_wsext import (
    WebSocketConnection,
    WebSocketRequest,
    connect_websocket_url,
    serve_websocket,
)
from trio_wsext.http2 import Http2Options, Http2Pool

Protocol = Literal["1.1", "2"]
PROTOCOLS: Final[tuple[Protocol, ...]] = ("1.1", "2")

#: The message echoed: small, as chat and game traffic is.
MESSAGE: Final = b"x" * 32

#: Seconds the server process has to start and print its port.
STARTUP_TIMEOUT: Final = 30.0

#: Seconds to let the server settle (its allocations return) before reading RSS.
SETTLE: Final = 0.5


# ---------------------------------------------------------------------- the server process


async def _echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def _serve() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status: serve_websocket(
                _echo,
                "127.0.0.1",
                0,
                None,
                compression=None,
                ping_interval=None,
                http2=Http2Options(max_concurrent_streams=4096),
                task_status=task_status,
            )
        )
        print(server.port, flush=True)
        await trio.sleep_forever()


# ---------------------------------------------------------------------- the client side


class ServerProcess:
    """The echo server in a process of its own."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.http2", "serve"],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the server process ended before printing its port")
        self.port = int(line)
        self.url = f"ws://127.0.0.1:{self.port}/"

    def rss(self) -> int:
        return rss_bytes(self.process.pid)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


async def _open(
    nursery: trio.Nursery, url: str, protocol: Protocol, pool: Http2Pool, count: int
) -> list[WebSocketConnection]:
    """Open ``count`` WebSockets to ``url``, 50 at a time; echo once on each."""
    sockets: list[WebSocketConnection] = []
    limit = trio.CapacityLimiter(50)

    async def one() -> None:
        async with limit:
            ws = await connect_websocket_url(
                nursery,
                url,
                compression=None,
                ping_interval=None,
                http2="prior-knowledge" if protocol == "2" else False,
                http2_pool=pool if protocol == "2" else None,
                connect_timeout=60,
            )
            await ws.send_message(MESSAGE)
            await ws.get_message()
            sockets.append(ws)

    async with trio.open_nursery() as openers:
        for _ in range(count):
            openers.start_soon(one)
    return sockets


async def _memory_once(protocol: Protocol, count: int) -> float:
    """Bytes of server RSS per open WebSocket, one fresh server."""
    server = ServerProcess()
    try:
        async with Http2Pool() as pool, trio.open_nursery() as nursery:
            # Warm up: a first WebSocket (and, for HTTP/2, the connection) costs imports.
            warm = await _open(nursery, server.url, protocol, pool, 1)
            await trio.sleep(SETTLE)
            before = server.rss()
            sockets = await _open(nursery, server.url, protocol, pool, count)
            await trio.sleep(SETTLE)
            after = server.rss()
            for ws in [*warm, *sockets]:
                await ws.aclose()
            nursery.cancel_scope.cancel()
        return (after - before) / count
    finally:
        server.stop()


async def _throughput_once(protocol: Protocol, streams: int, messages: int) -> float:
    """Messages per second, ``streams`` WebSockets in lockstep, one fresh server."""
    server = ServerProcess()
    try:
        async with Http2Pool() as pool, trio.open_nursery() as nursery:
            sockets = await _open(nursery, server.url, protocol, pool, streams)

            async def echo(ws: WebSocketConnection) -> None:
                for _ in range(messages):
                    await ws.send_message(MESSAGE)
                    await ws.get_message()

            start = time.perf_counter()
            async with trio.open_nursery() as runners:
                for ws in sockets:
                    runners.start_soon(echo, ws)
            elapsed = time.perf_counter() - start
            for ws in sockets:
                await ws.aclose()
            nursery.cancel_scope.cancel()
        return streams * messages * 2 / elapsed
    finally:
        server.stop()


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


async def _main(args: argparse.Namespace) -> None:
    rows: list[tuple[Protocol, float, float]] = []
    for protocol in PROTOCOLS:
        memories = [await _memory_once(protocol, args.sockets) for _ in range(args.repeat)]
        rates = [
            await _throughput_once(protocol, args.streams, args.messages)
            for _ in range(args.repeat)
        ]
        rows.append((protocol, _median(memories), _median(rates)))
        print(f"HTTP/{protocol}: done", file=sys.stderr, flush=True)
    print(
        f"\n{args.sockets} idle WebSockets (memory); {args.streams} WebSockets echoing"
        f" {len(MESSAGE)}-byte messages in lockstep, {args.messages} each (messages/s:"
        f" sent + received); median of {args.repeat}.\n"
    )
    print("| transport | server RSS per WebSocket | messages/s |")
    print("|---|---:|---:|")
    for protocol, per_socket, rate in rows:
        transport = (
            "HTTP/1.1, a TCP connection each"
            if protocol == "1.1"
            else "HTTP/2, one TCP connection"
        )
        print(f"| {transport} | {per_socket / 1024:.1f} KiB | {rate:,.0f} |")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, or (``serve``) be its server process."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http2", description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["run", "serve"], default="run")
    parser.add_argument("--quick", action="store_true", help="a small version (seconds)")
    parser.add_argument("--sockets", type=int, default=500, help="WebSockets for memory")
    parser.add_argument("--streams", type=int, default=100, help="WebSockets for messages/s")
    parser.add_argument("--messages", type=int, default=200, help="messages per WebSocket")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (median)")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        trio.run(_serve)
        return
    if args.quick:
        args.sockets, args.messages, args.repeat = 100, 50, 1
    trio.run(_main, args)


if __name__ == "__main__":
    main()
