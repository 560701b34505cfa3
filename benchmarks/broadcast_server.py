"""The broadcast benchmark's server process: ``python -m benchmarks.broadcast_server``.

Usage: ``python -m benchmarks.broadcast_server LIBRARY CONFIGURATION CONNECTIONS MESSAGES``.

One library's server (:data:`LIBRARIES`) in one permessage-deflate
configuration (:data:`CONFIGURATIONS`), alone in its process so that its CPU
time is its own. It builds its messages first (:func:`tick_messages`, the
same for every library), listens on 127.0.0.1 and answers
``{"port": ..., "pid": ...}``. On a ``{"go": true}`` line it waits until
CONNECTIONS clients have completed their handshake, then broadcasts the
MESSAGES messages one after the other, as fast as it can, yielding to its
event loop between two broadcasts so that its writes flush, waits until its
outgoing buffers are empty (:data:`DRAIN_BOUND` at most), and answers one
line: the wall-clock and CPU seconds of that phase and what was delivered.
It then exits when its stdin closes. Keepalive pings are off in every
library: the clients never answer them, and nothing but the broadcast
should cost CPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from functools import partial
from typing import Any, Final, Literal, TypeAlias, get_args

import trio

from benchmarks.adapters.base import HOST

Library: TypeAlias = Literal["trio_wsext", "websockets", "websockets.trio"]
"""The servers measured: ``websockets`` is websockets' asyncio implementation."""

LIBRARIES: Final[tuple[Library, ...]] = get_args(Library)

Configuration: TypeAlias = Literal["no_context_takeover", "context_takeover"]
"""``no_context_takeover``: each library's ``ServerPerMessageDeflateFactory(
server_no_context_takeover=True)`` and nothing else; ``context_takeover``: each
library's default permessage-deflate (``compression="deflate"``)."""

CONFIGURATIONS: Final[tuple[Configuration, ...]] = get_args(Configuration)

CONNECT_BOUND: Final = 60.0
"""Seconds the server waits, after ``go``, for all its connections to be registered."""

DRAIN_BOUND: Final = 30.0
"""Seconds the server waits for its outgoing buffers to empty after the last broadcast."""

DRAIN_POLL: Final = 0.001
"""Seconds between two looks at the outgoing buffers while draining."""

TICKS: Final = 296
"""Price ticks per message: with :func:`tick_messages`' fields, about 16 KiB of JSON."""


def tick_messages(count: int, seed: int = 20240601) -> list[str]:
    """Return ``count`` JSON messages of about 16 KiB: each a batch of :data:`TICKS` price ticks.

    Every message is new (prices move, volumes and timestamps change), so
    that neither a library nor zlib can reuse an earlier result; the symbols
    and the structure repeat, as in a real feed, which is what context
    takeover gains from. The same ``seed`` gives the same messages in every
    process, so every library sends the same bytes.
    """
    rng = random.Random(seed)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    symbols = sorted({"".join(rng.choices(letters, k=rng.randint(3, 5))) for _ in range(TICKS)})
    while len(symbols) < TICKS:
        symbols.append(f"{symbols[-1]}X")
    prices = {symbol: rng.uniform(5, 900) for symbol in symbols}
    messages = []
    clock = 1_717_200_000_000
    for seq in range(count):
        ticks = []
        for symbol in symbols:
            price = prices[symbol] = max(0.5, prices[symbol] * (1 + rng.gauss(0, 0.0015)))
            spread = rng.randint(1, 5) / 100
            ticks.append({
                "s": symbol, "p": round(price, 2), "b": round(price - spread, 2),
                "a": round(price + spread, 2), "v": rng.randint(1, 99_999),
            })  # fmt: skip
        clock += rng.randint(200, 300)
        messages.append(
            json.dumps(
                {"type": "ticks", "seq": seq, "ts": clock, "ticks": ticks}, separators=(",", ":")
            )
        )
    return messages


class Tally:
    """What the broadcasts of one phase did, summed over messages."""

    def __init__(self) -> None:
        """Start at zero."""
        self.delivered = 0
        self.skipped = 0
        self.not_open = 0
        self.backlogged = 0
        self.encodings = 0

    def as_json(self) -> dict[str, int]:
        """Return the counts as a JSON-ready dict."""
        return dict(vars(self))


def answer(message: dict[str, Any]) -> None:
    """Write one JSON line to stdout, for the benchmark's driver."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def read_command() -> dict[str, Any]:
    """Return the next JSON line of stdin; exit the process at once if stdin is closed.

    Exiting without closing the connections is deliberate: the run is over,
    and a graceful close of a thousand connections would only slow it down.
    """
    line = sys.stdin.readline()
    if not line:
        os._exit(0)
    command: dict[str, Any] = json.loads(line)
    return command


async def wait_until(
    done: Callable[[], bool], bound: float, sleep: Callable[[float], Awaitable[None]]
) -> bool:
    """Poll ``done`` every :data:`DRAIN_POLL` seconds; return whether it held within ``bound``."""
    deadline = time.monotonic() + bound
    while not done():
        if time.monotonic() > deadline:
            return False
        await sleep(DRAIN_POLL)
    return True


def phase_result(
    tally: Tally, start: tuple[float, float], sent: float, drained: bool, connections: int
) -> dict[str, Any]:
    """Return the answer to ``go``: the phase's seconds (wall, CPU) and the tally.

    ``start`` is ``(time.perf_counter(), time.process_time())`` at the first
    broadcast, ``sent`` the ``perf_counter`` after the last one.
    """
    return {
        "wall": time.perf_counter() - start[0],
        "cpu": time.process_time() - start[1],
        "send_wall": sent - start[0],
        "drained": drained,
        "connections": connections,
        **tally.as_json(),
    }


async def control(
    connections: Collection[object],
    expected: int,
    read: Callable[[], Awaitable[dict[str, Any]]],
    sleep: Callable[[float], Awaitable[None]],
    phase: Callable[[], Awaitable[dict[str, Any]]],
) -> None:
    """Wait for ``go`` and for ``expected`` connections, run ``phase``, answer; exit at EOF."""
    await read()
    if not await wait_until(lambda: len(connections) >= expected, CONNECT_BOUND, sleep):
        answer({"error": f"{len(connections)} of {expected} connections after {CONNECT_BOUND} s"})
    else:
        answer(await phase())
    while True:
        await read()


def serve_options(configuration: Configuration, factory: Callable[..., object]) -> dict[str, Any]:
    """A server's keywords for ``configuration``, with that library's deflate ``factory``.

    ``no_context_takeover``: only the factory that asks for it (the library's
    default compression off, so that it is not added twice); otherwise the
    library's defaults.
    """
    if configuration == "no_context_takeover":
        return {"extensions": [factory(server_no_context_takeover=True)], "compression": None}
    return {}


# -- trio_wsext --------------------------------------------------------------------------


async def serve_trio_wsext(
    configuration: Configuration, expected: int, messages: list[str]
) -> None:
    """Serve with trio_wsext and broadcast with ``trio_wsext.broadcast``."""
    import trio_wsext
    from trio_wsext.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    connections: set[trio_wsext.WebSocketConnection] = set()

    async def handler(request: trio_wsext.WebSocketRequest) -> None:
        ws = await request.accept()
        connections.add(ws)
        try:
            while True:
                await ws.get_message()
        except trio_wsext.ConnectionClosed:
            pass
        finally:
            connections.discard(ws)

    options = serve_options(configuration, ServerPerMessageDeflateFactory)

    async def phase() -> dict[str, Any]:
        targets = list(connections)
        tally = Tally()
        start = time.perf_counter(), time.process_time()
        for message in messages:
            result = await trio_wsext.broadcast(targets, message)
            tally.delivered += result.delivered
            tally.skipped += len(result.skipped)
            tally.not_open += len(result.not_open) + len(result.closed)
            tally.encodings += result.encodings
            await trio.lowlevel.checkpoint()
        sent = time.perf_counter()
        # The bytes each connection holds for the wire (in flight included): a
        # private counter, read here only because no public call waits for it.
        drained = await wait_until(
            lambda: not any(ws._engine._unsent_bytes for ws in targets), DRAIN_BOUND, trio.sleep
        )
        figures = phase_result(tally, start, sent, drained, len(targets))
        figures["wire_bytes"] = sum(ws.statistics().wire_bytes_sent for ws in targets)
        figures["negotiated"] = repr(targets[0].extensions) if targets else None
        return figures

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(
                trio_wsext.serve_websocket,
                handler,
                HOST,
                0,
                None,
                ping_interval=None,
                ping_timeout=None,
                **options,
            )
        )
        answer({"port": server.port, "pid": os.getpid()})
        await control(
            connections,
            expected,
            partial(trio.to_thread.run_sync, read_command),
            trio.sleep,
            phase,
        )


# -- websockets (asyncio) -------------------------------------------------------------------


async def serve_websockets_asyncio(
    configuration: Configuration, expected: int, messages: list[str]
) -> None:
    """Serve with websockets' asyncio implementation and broadcast with its ``broadcast``."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
    from websockets.protocol import State

    connections: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        connections.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connections.discard(ws)

    options = serve_options(configuration, ServerPerMessageDeflateFactory)

    async def phase() -> dict[str, Any]:
        targets = list(connections)
        high = targets[0].transport.get_write_buffer_limits()[1] if targets else 0
        tally = Tally()
        start = time.perf_counter(), time.process_time()
        for message in messages:
            # broadcast() skips what is not OPEN and writes to every other
            # connection, however full its buffer; count both, for the table.
            for ws in targets:
                if ws.protocol.state is not State.OPEN:
                    tally.not_open += 1
                elif ws.transport.get_write_buffer_size() > high:
                    tally.backlogged += 1
            broadcast(targets, message)
            tally.encodings += len(targets)
            await asyncio.sleep(0)
        sent = time.perf_counter()
        drained = await wait_until(
            lambda: not any(ws.transport.get_write_buffer_size() for ws in targets),
            DRAIN_BOUND,
            asyncio.sleep,
        )
        tally.delivered = len(messages) * len(targets) - tally.not_open
        return phase_result(tally, start, sent, drained, len(targets))

    async def read() -> dict[str, Any]:
        return await asyncio.to_thread(read_command)

    async with serve(handler, HOST, 0, ping_interval=None, **options) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        answer({"port": port, "pid": os.getpid()})
        await control(connections, expected, read, asyncio.sleep, phase)


# -- websockets.trio ----------------------------------------------------------------------


async def serve_websockets_trio(
    configuration: Configuration, expected: int, messages: list[str]
) -> None:
    """Serve with ``websockets.trio`` and broadcast with its ``broadcast``."""
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
    from websockets.protocol import State
    from websockets.trio.server import Server, ServerConnection, broadcast, serve

    connections: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        connections.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connections.discard(ws)

    options = serve_options(configuration, ServerPerMessageDeflateFactory)

    async def phase() -> dict[str, Any]:
        targets = list(connections)
        tally = Tally()
        start = time.perf_counter(), time.process_time()
        for message in messages:
            # broadcast() skips what is not OPEN and awaits every other send.
            for ws in targets:
                if ws.protocol.state is not State.OPEN:
                    tally.not_open += 1
            await broadcast(targets, message)
            tally.encodings += len(targets)
            await trio.lowlevel.checkpoint()
        sent = time.perf_counter()
        tally.delivered = len(messages) * len(targets) - tally.not_open
        # Every send was awaited: nothing waits in user space any more.
        return phase_result(tally, start, sent, True, len(targets))

    async with trio.open_nursery() as nursery:
        server: Server = await nursery.start(
            partial(serve, handler, 0, host=HOST, ping_interval=None, **options)
        )
        answer({"port": server.listeners[0].socket.getsockname()[1], "pid": os.getpid()})
        await control(
            connections,
            expected,
            partial(trio.to_thread.run_sync, read_command),
            trio.sleep,
            phase,
        )


def main(argv: Sequence[str]) -> None:
    """Parse ``LIBRARY CONFIGURATION CONNECTIONS MESSAGES``, build the messages, serve."""
    from benchmarks.load.agent import raise_fd_limit

    library, configuration, expected, count = argv[0], argv[1], int(argv[2]), int(argv[3])
    if library not in LIBRARIES or configuration not in CONFIGURATIONS:
        raise SystemExit(
            f"usage: LIBRARY ({'|'.join(LIBRARIES)}) CONFIGURATION CONNECTIONS MESSAGES"
        )
    raise_fd_limit()
    messages = tick_messages(count)
    config: Configuration = (
        "no_context_takeover" if configuration == CONFIGURATIONS[0] else "context_takeover"
    )
    if library == "trio_wsext":
        trio.run(serve_trio_wsext, config, expected, messages)
    elif library == "websockets":
        asyncio.run(serve_websockets_asyncio(config, expected, messages))
    else:
        trio.run(serve_websockets_trio, config, expected, messages)


if __name__ == "__main__":
    main(sys.argv[1:])
