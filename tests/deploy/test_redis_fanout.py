"""examples/redis_fanout.py with a real redis-server: every client of every process gets it all.

Three processes of the example subscribe to one channel of a redis-server on
127.0.0.1; clients with and without permessage-deflate (in two parameter
groups, so that a broadcast encodes each message twice plus once
uncompressed) connect to each, and what one publisher sends must reach every
client whole and in order. A client that stops reading must not hold the
others back. The example must also survive a Redis restart, logging the drop,
and stop cleanly on SIGINT. No figure is asserted; every wait has a generous
deadline, so that a busy 2-core machine passes and a hang fails in bounded time.
"""

from __future__ import annotations

import base64
import random
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import attrs
import pytest
import trio

from trio_wsext import ConnectionClosed, open_websocket_url
from trio_wsext.extensions.base import Extension
from trio_wsext.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)

from .conftest import require_program
from .redis_server import (
    FanoutProcess,
    RedisServer,
    ServerFrame,
    handshake_request,
    parse_server_frames,
)

CHANNEL: Final = "fanout-test"
PROCESSES: Final = 3
CLIENTS_PER_PROCESS: Final = 20
MESSAGES: Final = 500
#: Seconds for everything published to reach every client; it takes about
#: two on an idle 2-core machine.
DELIVERY_TIMEOUT: Final = 60

#: What each client offers, in turn: no compression, the default offer, and
#: the default with a 1 KiB server window (a second group of connections
#: that share their encoding): the server's window bits for each, or None.
CLIENT_WINDOWS: Final[tuple[int | None, ...]] = (None, 12, 10)

#: What the ordering test publishes until every client has one: from then on
#: each is known to be among its server's connections.
SYNC: Final = "sync"

#: Sizes of the ordering test's messages, in turn: under the compression
#: threshold (32 bytes) and over it. About 80 KB per client in all, less than
#: a client may fall behind (the server's write_limit, 64 KiB, plus the
#: socket buffers) before the example closes it as too slow: so a busy
#: machine that runs the test clients slowly cannot make them miss anything.
SIZES: Final = (8, 40, 100, 250, 400)

#: Seconds the clients that read may take to get the rest of the messages
#: after the last is published, while a slow client stops reading (under one
#: on an idle machine).
NOT_HELD_BACK: Final = 15

#: Messages published at once, then a pause of PACE seconds: a feed's rate
#: rather than one burst (a burst of more than a client can fall behind by
#: closes the clients that are merely behind: docs/scaling.md).
CHUNK: Final = 50
PACE: Final = 0.1


def text_block(seed: int, size: int) -> str:
    """Return ``size`` characters of base64 text, different for each ``seed``."""
    raw = random.Random(seed).randbytes(size * 3 // 4 + 3)
    return base64.b64encode(raw).decode("ascii")[:size]


def ordered_messages() -> list[str | bytes]:
    """The ordering test's messages: numbered text of varied sizes; every 50th is binary."""
    messages: list[str | bytes] = []
    for number in range(MESSAGES):
        if number % 50 == 49:
            # Not UTF-8, so the example sends it as a binary message.
            messages.append(b"\xff\xfe" + number.to_bytes(4, "big") + bytes(range(256)))
        else:
            messages.append(f"{number:04d} {text_block(number, SIZES[number % len(SIZES)])}")
    return messages


def publish(
    redis_server: RedisServer, channel: str, messages: Sequence[str | bytes], chunk: int = CHUNK
) -> list[int]:
    """Publish ``messages``, ``chunk`` at a time :data:`PACE` s apart; return how many
    subscribers got each one."""
    counts: list[int] = []
    with redis_server.client() as client:
        for start in range(0, len(messages), chunk):
            if start:
                time.sleep(PACE)
            with client.pipeline(transaction=False) as pipeline:
                for message in messages[start : start + chunk]:
                    pipeline.publish(channel, message)
                counts += [int(count) for count in pipeline.execute()]
    return counts


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server on a free port of 127.0.0.1, without persistence."""
    program = require_program("redis-server", "redis-server")
    server = RedisServer.start(program, tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fanouts(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[FanoutProcess]]:
    """:data:`PROCESSES` processes of the example, each subscribed to :data:`CHANNEL`."""
    log_dir = tmp_path_factory.mktemp("fanout")
    processes: list[FanoutProcess] = []
    try:
        for _ in range(PROCESSES):
            processes.append(FanoutProcess.start(redis_server.url, CHANNEL, log_dir))
        redis_server.wait_subscribers(CHANNEL, PROCESSES)
        yield processes
    finally:
        for process in processes:
            process.stop()


@attrs.define
class Collector:
    """One client: what it negotiated and the messages it received, :data:`SYNC` left out."""

    window: int | None
    """The server window bits it offers, or ``None`` for no compression."""
    received: list[str | bytes] = attrs.Factory(list)
    extensions: list[Extension] = attrs.Factory(list)
    synced: trio.Event = attrs.Factory(trio.Event)
    """Set on the first :data:`SYNC` message."""
    done: trio.Event = attrs.Factory(trio.Event)
    """Set once all the messages are in."""

    async def run(
        self,
        url: str,
        count: int,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Connect to ``url``, say started, and receive until ``count`` messages are in."""
        if self.window is None:
            options: dict[str, Any] = {"compression": None}
        else:
            factory = ClientPerMessageDeflateFactory(server_max_window_bits=self.window)
            options = {"extensions": [factory]}
        async with open_websocket_url(url, **options) as ws:
            self.extensions = list(ws.extensions)
            task_status.started()
            while len(self.received) < count:
                message = await ws.get_message()
                if message == SYNC:
                    self.synced.set()
                else:
                    self.received.append(message)
        self.done.set()


async def start_clients(
    nursery: trio.Nursery, url: str, count: int, clients: int
) -> list[Collector]:
    """Connect ``clients`` collectors of ``count`` messages to ``url``, windows in turn."""
    collectors = [
        Collector(CLIENT_WINDOWS[number % len(CLIENT_WINDOWS)]) for number in range(clients)
    ]
    for collector in collectors:
        await nursery.start(collector.run, url, count)
    return collectors


async def sync(redis_server: RedisServer, collectors: list[Collector]) -> None:
    """Publish :data:`SYNC` until every collector has received one."""
    while not all(collector.synced.is_set() for collector in collectors):
        await trio.to_thread.run_sync(publish, redis_server, CHANNEL, [SYNC])
        with trio.move_on_after(0.5):
            for collector in collectors:
                await collector.synced.wait()


def check_negotiated(collector: Collector) -> None:
    """Check the client negotiated what it offered, without server context takeover."""
    if collector.window is None:
        assert collector.extensions == []
        return
    [deflate] = collector.extensions
    assert isinstance(deflate, PerMessageDeflate)
    assert deflate.server_no_context_takeover
    assert deflate.server_max_window_bits == collector.window


async def test_every_client_of_every_process_receives_every_message_in_order(
    redis_server: RedisServer, fanouts: list[FanoutProcess]
) -> None:
    """500 messages published once reach all 60 clients of 3 processes, whole and in order."""
    messages = ordered_messages()
    collectors: list[list[Collector]] = []
    with trio.fail_after(DELIVERY_TIMEOUT):
        async with trio.open_nursery() as nursery:
            for process in fanouts:
                collectors.append(
                    await start_clients(nursery, process.url, MESSAGES, CLIENTS_PER_PROCESS)
                )
            await sync(redis_server, [c for group in collectors for c in group])
            counts = await trio.to_thread.run_sync(publish, redis_server, CHANNEL, messages)
            assert counts == [PROCESSES] * MESSAGES
    for index, group in enumerate(collectors):
        for collector in group:
            check_negotiated(collector)
            # Not `received == messages`: 500 messages make an unreadable diff.
            assert len(collector.received) == MESSAGES
            if collector.received != messages:
                pairs = zip(collector.received, messages, strict=True)
                first = next(i for i, (got, sent) in enumerate(pairs) if got != sent)
                pytest.fail(f"process {index}, window {collector.window}: message {first} differs")


async def open_raw_client(port: int) -> tuple[trio.SocketStream, bytearray]:
    """Connect without extensions through a 4 KiB receive buffer; return the stream and
    the bytes after the 101 answer.

    A receive buffer set before connecting caps the TCP window the server
    may fill: only the server's send buffer is left to hold what this client
    does not read.
    """
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    await stream.send_all(handshake_request(port))
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        chunk = await stream.receive_some(4096)
        assert chunk, f"closed during the handshake: {bytes(buffer)!r}"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return stream, bytearray(rest)


async def read_frames_until_close(
    stream: trio.SocketStream, buffer: bytearray
) -> list[ServerFrame]:
    """Read frames until a close frame, or until the server closes the TCP connection."""
    frames = parse_server_frames(buffer)
    while not any(frame.opcode == 8 for frame in frames):
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            break
        if not chunk:
            break
        buffer += chunk
        frames += parse_server_frames(buffer)
    return frames


async def test_slow_client_does_not_hold_back_the_others(
    redis_server: RedisServer, fanouts: list[FanoutProcess]
) -> None:
    """A client that stops reading is closed with 1008; the others get all 512 KiB."""
    process = fanouts[0]
    # 16 KiB messages, 512 KiB in all, over about 3 s: several times what the
    # slow client can be behind by (about 110 KiB), at a rate any reading
    # client keeps up with.
    big = [f"{number:03d} {text_block(1000 + number, 16 * 1024)}" for number in range(32)]
    with trio.fail_after(DELIVERY_TIMEOUT):
        slow, slow_buffer = await open_raw_client(process.port)
        # Read one message, so that the server is known to count the slow
        # client among its connections; then stop reading.
        counts = await trio.to_thread.run_sync(publish, redis_server, CHANNEL, ["warm-up"])
        assert counts == [PROCESSES]
        while not (frames := parse_server_frames(slow_buffer)):
            slow_buffer += await slow.receive_some(4096)
        assert frames == [ServerFrame(True, False, 1, b"warm-up")]
        async with trio.open_nursery() as nursery:
            collectors = await start_clients(nursery, process.url, len(big), 3)
            await sync(redis_server, collectors)
            counts = await trio.to_thread.run_sync(publish, redis_server, CHANNEL, big, 3)
            assert counts == [PROCESSES] * len(big)
            # Well before the keepalive could drop the slow client (a ping
            # 20 s after it connected, 20 s for the pong), which is what would
            # free a fan-out that waited for it.
            with trio.fail_after(NOT_HELD_BACK):
                for collector in collectors:
                    await collector.done.wait()
    # Every client that reads got everything, while the slow one read nothing.
    assert [collector.received for collector in collectors] == [big] * 3
    # The example closed the slow client (and said so), after a prefix of the messages.
    assert "closed 1 slow client(s) with 1008" in process.log()
    with trio.fail_after(DELIVERY_TIMEOUT):
        frames = await read_frames_until_close(slow, slow_buffer)
    await slow.aclose()
    # The sync messages reached it too, before it fell behind.
    data = [frame for frame in frames if frame.opcode != 8 and frame.payload != SYNC.encode()]
    assert all(frame.fin and frame.opcode == 1 for frame in data)
    assert [frame.payload.decode() for frame in data] == big[: len(data)]
    assert len(data) < len(big)
    # The close frame is written behind the data the client did not read; the
    # server gives it disconnect_timeout to get there, then drops the socket.
    closes = [frame for frame in frames if frame.opcode == 8]
    assert [frame.payload[:2] for frame in closes] in ([], [(1008).to_bytes(2, "big")])


@pytest.fixture
def lone_fanout(tmp_path: Path) -> Iterator[tuple[RedisServer, FanoutProcess]]:
    """A redis-server of its own, and one process of the example subscribed to it."""
    program = require_program("redis-server", "redis-server")
    server = RedisServer.start(program, tmp_path)
    process: FanoutProcess | None = None
    try:
        process = FanoutProcess.start(server.url, CHANNEL, tmp_path)
        server.wait_subscribers(CHANNEL, 1)
        yield server, process
    finally:
        if process is not None:
            process.stop()
        server.stop()


async def test_fanout_resubscribes_after_redis_restarts(
    lone_fanout: tuple[RedisServer, FanoutProcess],
) -> None:
    """Redis going away is logged; once it is back the process subscribes again and delivers."""
    server, process = lone_fanout
    with trio.fail_after(DELIVERY_TIMEOUT):
        async with open_websocket_url(process.url) as ws:
            assert await trio.to_thread.run_sync(publish, server, CHANNEL, ["before"]) == [1]
            assert await ws.get_message() == "before"
            await trio.to_thread.run_sync(server.stop)
            await trio.to_thread.run_sync(process.wait_for, "lost the subscription")
            await trio.to_thread.run_sync(server.restart)
            await trio.to_thread.run_sync(server.wait_subscribers, CHANNEL, 1, 45.0)
            assert await trio.to_thread.run_sync(publish, server, CHANNEL, ["after"]) == [1]
            assert await ws.get_message() == "after"
    log = process.log()
    assert log.count(f"subscribed to {CHANNEL!r} at {server.url}") == 2, log
    assert "messages published until it is back are lost" in log


async def test_fanout_stops_cleanly_on_sigint(
    lone_fanout: tuple[RedisServer, FanoutProcess],
) -> None:
    """SIGINT closes every client with 1001 and the process exits 0, without a traceback."""
    _, process = lone_fanout
    with trio.fail_after(DELIVERY_TIMEOUT):
        async with open_websocket_url(process.url) as ws:
            status = await trio.to_thread.run_sync(partial(process.signal_and_wait, signal.SIGINT))
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
            assert ws.closed is not None
            assert ws.closed.code == 1001
    assert status == 0, process.log()
    log = process.log()
    assert "SIGINT: shutting down" in log
    assert "stopped" in log
    assert "Traceback" not in log
