"""The connection engine under pressure: memory bounded in bytes, nothing lost, errors kept.

Each test here pins a defect of an earlier engine: decoded messages piling up
behind a full queue, a slow consumer failed by its own keepalive, one pong for
many pings, ``ping()`` answered by a keepalive's pong, statistics counting
messages that never reached the wire, and an ``open_websocket`` block's
exception replaced by a cancelled close.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import tracemalloc
import zlib
from functools import partial

import pytest
import trio
import trio.testing
from helpers import RawPeer, open_connection_pair, open_raw_pair

from trio_wsext import WebSocketRequest, engine, open_websocket, serve_websocket
from trio_wsext.connection import RECEIVE_SIZE, WebSocketConnection
from trio_wsext.engine import IDLE_RELEASE_AFTER, _coalesce, _unwritten
from trio_wsext.exceptions import ConnectionClosed
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate
from trio_wsext.frames import SEPARATE_PAYLOAD_FROM, Frame, Opcode, serialize_frame
from trio_wsext.options import ConnectionOptions

MiB = 2**20


def _deflate_frames(messages: list[bytes]) -> bytes:
    """Masked permessage-deflate frames (client to server), one compressor with context."""
    compressor = zlib.compressobj(wbits=-15)
    wire = []
    for message in messages:
        data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        wire.append(serialize_frame(Frame(Opcode.BINARY, data[:-4], rsv1=True), mask=True))
    return b"".join(wire)


# -- memory: bounded in bytes ------------------------------------------------------------


@pytest.mark.parametrize("queue_size", [0, 4])
async def test_decoded_memory_of_a_reader_that_never_reads_is_bounded(queue_size: int) -> None:
    """Compressed frames wait compressed: at most (Q + 1) messages are ever decoded ahead.

    Sixty 1 MB messages compress to about a kilobyte each, so one 64 KiB
    read holds all of them: parsing a whole read at once decodes 60 MB.
    """
    message = bytes(1_000_000)
    wire = _deflate_frames([message] * 60)
    assert len(wire) < RECEIVE_SIZE
    tracemalloc.start()
    try:
        async with open_raw_pair(
            client=False,
            extensions=[PerMessageDeflate(True)],
            message_queue_size=queue_size,
            max_message_size=MiB,
        ) as (connection, peer):
            before = tracemalloc.get_traced_memory()[0]
            await peer.stream.send_all(wire)
            await trio.testing.wait_all_tasks_blocked()
            held = tracemalloc.get_traced_memory()[0] - before
            # The bound the docstring gives, with 1 MiB for the interpreter's own.
            assert held < (queue_size + 1) * MiB + RECEIVE_SIZE + MiB
            for _ in range(60):
                assert await connection.get_message() == message
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("write_limit", [1024, 65536])
async def test_outgoing_bytes_waiting_never_pass_the_write_limit_by_more_than_a_message(
    autojump_clock: trio.abc.Clock, write_limit: int
) -> None:
    """Many senders and a peer that reads nothing: bytes waiting stay under the mark."""
    async with (
        open_raw_pair(client=False, lockstep=True, write_limit=write_limit) as (
            connection,
            peer,
        ),
        trio.open_nursery() as nursery,
    ):
        for _ in range(8):
            nursery.start_soon(connection.send_message, bytes(10_000))
        await trio.testing.wait_all_tasks_blocked()
        waiting = connection._engine._unsent_bytes
        # One 10 kB message past the mark at most, however many senders wait.
        assert waiting <= write_limit + 10_004
        frames = [await peer.receive_frame() for _ in range(8)]
    assert frames == [Frame(Opcode.BINARY, bytes(10_000))] * 8


async def test_statistics_count_only_messages_that_reached_the_wire(
    autojump_clock: trio.abc.Clock,
) -> None:
    """After a reset, messages framed but never written are not counted as sent."""
    async with open_raw_pair(client=False, lockstep=True, write_limit=0) as (connection, peer):
        with trio.move_on_after(1):
            for _ in range(16):
                await connection.send_message(bytes(1000))
        await peer.stream.aclose()  # the peer goes away without reading a byte
        with pytest.raises(ConnectionClosed):
            await connection.send_message(b"more")
        statistics = connection.statistics()
    assert statistics.wire_bytes_sent == 0
    assert statistics.messages_sent == 0
    assert statistics.bytes_sent == 0


# -- nothing lost ------------------------------------------------------------------------


async def _slow_consumer_handler(count: int, request: WebSocketRequest) -> None:
    ws = await request.accept()
    for index in range(count):
        await ws.send_message(f"{index}:" + "x" * 65536)
    await ws.get_message()  # the client says when it has everything


async def test_keepalive_never_fails_a_consumer_paused_by_backpressure() -> None:
    """A client that stops reading for 10 keepalive periods loses none of 50 messages.

    Its queue is full, so it reads nothing, and the server's pongs wait behind
    the data it chose not to read: that is not a dead peer.
    """
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                partial(serve_websocket, partial(_slow_consumer_handler, 50), "127.0.0.1", 0, None)
            )
            async with open_websocket(
                "127.0.0.1",
                server.port,
                message_queue_size=1,
                ping_interval=0.05,
                ping_timeout=0.05,
            ) as ws:
                await trio.sleep(1.0)  # the application is busy elsewhere
                received = [await ws.get_message() for _ in range(50)]
                assert ws.closed is None
                await ws.send_message("done")
            nursery.cancel_scope.cancel()
    assert received == [f"{index}:" + "x" * 65536 for index in range(50)]


async def test_keepalive_fails_a_peer_that_sends_but_never_reads(
    autojump_clock: trio.abc.Clock,
) -> None:
    """An echo to a peer that never reads: both ways stuck; 1011 after the pong deadline.

    Our reader is paused (the application waits to send, so the queue is
    full), which alone would move the deadline on; but our bytes, the ping
    among them, have waited unwritten since the ping: the peer reads nothing.
    """
    async with open_raw_pair(
        client=False, lockstep=True, ping_interval=1, ping_timeout=1, message_queue_size=1
    ) as (connection, peer):

        async def flood() -> None:
            for index in range(1000):
                await peer.send_frame(Frame(Opcode.TEXT, str(index).encode()))

        async def echo() -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await connection.send_message(await connection.get_message())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            nursery.start_soon(echo)
            await trio.sleep(30)
            assert connection.closed is not None
            assert connection.closed.code == 1011
            assert connection.closed.reason == (
                "keepalive ping timeout: the peer has read nothing since the ping"
            )
            nursery.cancel_scope.cancel()


async def test_messages_parsed_before_a_local_failure_are_still_delivered(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A keepalive timeout fails the connection; the messages received before it come first."""
    async with open_raw_pair(client=False, ping_interval=1, ping_timeout=1) as (connection, peer):
        for index in range(3):
            await peer.send_frame(Frame(Opcode.TEXT, str(index).encode()))
        await trio.sleep(5)  # the peer never answers a ping
        assert connection.closed is not None
        assert connection.closed.code == 1011
        assert [await connection.get_message() for _ in range(3)] == ["0", "1", "2"]
        with pytest.raises(ConnectionClosed, match="keepalive ping timeout"):
            await connection.get_message()


async def test_messages_before_the_peers_eof_are_delivered_then_1006(
    autojump_clock: trio.abc.Clock,
) -> None:
    """EOF behind unread messages ends the connection only once they are taken."""
    async with open_raw_pair(client=False, message_queue_size=1) as (connection, peer):
        wire = b"".join(
            serialize_frame(Frame(Opcode.TEXT, str(index).encode()), mask=True)
            for index in range(5)
        )
        await peer.stream.send_all(wire)
        await peer.stream.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert [await connection.get_message() for _ in range(5)] == ["0", "1", "2", "3", "4"]
        with pytest.raises(ConnectionClosed, match=r"^1006"):
            await connection.get_message()


# -- pings -------------------------------------------------------------------------------


async def test_every_ping_gets_its_own_pong_in_order() -> None:
    """Ten pings in one read: ten pongs, each with its ping's payload, in order."""
    async with open_raw_pair(client=False) as (_, peer):
        pings = [
            serialize_frame(Frame(Opcode.PING, b"p%d" % index), mask=True) for index in range(10)
        ]
        await peer.stream.send_all(b"".join(pings))
        with trio.fail_after(5):
            pongs = [await peer.receive_frame() for _ in range(10)]
    assert pongs == [Frame(Opcode.PONG, b"p%d" % index) for index in range(10)]


async def test_ping_is_not_answered_by_a_pong_for_a_ping_sent_before_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    """ping() waits for its own pong: a keepalive ping that went out first does not count.

    The application's ping waits behind a large message; the keepalive's ping
    is a control frame and goes out ahead of it. The peer answers only the
    keepalive's ping, which was first on the wire.
    """
    async with open_raw_pair(
        client=False, lockstep=True, write_limit=0, ping_interval=1, ping_timeout=30
    ) as (connection, peer):
        returned: list[bool] = []

        async def application_ping() -> None:
            await connection.ping(b"app")
            returned.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.send_message, bytes(100_000))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(application_ping)
            await trio.sleep(1.5)  # the keepalive pings meanwhile
            first = await peer.receive_frame()
            assert first.opcode is Opcode.BINARY
            keepalive = await peer.receive_frame()
            assert keepalive.opcode is Opcode.PING
            assert keepalive.data != b"app"
            await peer.send_frame(Frame(Opcode.PONG, keepalive.data))
            await trio.sleep(0.5)
            assert returned == []
            app = await peer.receive_frame()
            assert app == Frame(Opcode.PING, b"app")
            await peer.send_frame(Frame(Opcode.PONG, b"app"))
    assert returned == [True]


# -- errors reach the user -----------------------------------------------------------------


async def _silent_websocket_server(stream: trio.SocketStream) -> None:
    """Accept the opening handshake, then never read or answer again."""
    request = b""
    while b"\r\n\r\n" not in request:
        request += await stream.receive_some(65536)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    await stream.send_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    await trio.sleep_forever()


async def test_block_exception_survives_a_deadline_that_expires_during_the_close() -> None:
    """The block's ValueError leaves open_websocket even if the close is cut by a deadline."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(trio.serve_tcp, _silent_websocket_server, 0, host="127.0.0.1")
            )
            port = listeners[0].socket.getsockname()[1]
            with pytest.raises(ValueError, match="from the block"):
                await _raise_in_a_block_under_a_short_deadline(port)
            nursery.cancel_scope.cancel()


async def _raise_in_a_block_under_a_short_deadline(port: int) -> None:
    with trio.move_on_after(0.2):
        async with open_websocket("127.0.0.1", port, disconnect_timeout=1, ping_interval=None):
            raise ValueError("from the block")


# -- idle memory -------------------------------------------------------------------------


def _holds_compressor(extension: PerMessageDeflate) -> bool:
    return extension._compressor is not None


async def test_idle_connection_releases_its_compressor_and_goes_on(
    autojump_clock: trio.abc.Clock,
) -> None:
    """After IDLE_RELEASE_AFTER without sending, the compressor is freed; messages still flow."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = WebSocketConnection(
        client_stream,
        is_client=True,
        extensions=[PerMessageDeflate(False)],
        options=ConnectionOptions(ping_interval=None),
    )
    server_extension = PerMessageDeflate(True)
    server = WebSocketConnection(
        server_stream,
        is_client=False,
        extensions=[server_extension],
        options=ConnectionOptions(ping_interval=None),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await nursery.start(server.run)
        text = "hello, idle world " * 20
        await server.send_message(text)
        assert await client.get_message() == text
        assert _holds_compressor(server_extension)
        await trio.sleep(2.5 * IDLE_RELEASE_AFTER)
        assert not _holds_compressor(server_extension)
        for _ in range(3):
            await server.send_message(text)
            assert await client.get_message() == text
        nursery.cancel_scope.cancel()


# -- the public way to start one -----------------------------------------------------------


async def test_run_starts_a_connection_once() -> None:
    """run() is how a connection over a ready stream starts; a second start is refused."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = WebSocketConnection(
        client_stream, is_client=True, options=ConnectionOptions(ping_interval=None)
    )
    server = WebSocketConnection(
        server_stream, is_client=False, options=ConnectionOptions(ping_interval=None)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await nursery.start(server.run)
        with pytest.raises(RuntimeError, match="started already"):
            await nursery.start(client.run)
        await client.send_message("hi")
        assert await server.get_message() == "hi"
        await client.aclose()
    assert client.closed is not None
    assert client.closed.code == 1000
    assert not client.closing_timed_out
    assert isinstance(RawPeer, type)


# -- writing in parts ----------------------------------------------------------------------


@pytest.mark.parametrize("written", [0, 1, 9, 10, 11, 300_009, 300_010])
def test_unwritten_is_what_a_partial_write_left(written: int) -> None:
    """After a partial writev, exactly the bytes not written remain, in order."""
    parts: list[bytes | bytearray] = [b"h" * 10, bytearray(b"p" * 300_000)]
    whole = b"".join(parts)
    assert b"".join(_unwritten(parts, written)) == whole[written:]


def test_coalesce_joins_small_chunks_and_leaves_large_ones() -> None:
    """Runs of small chunks become one buffer; a large payload is passed through uncopied."""
    large = bytes(SEPARATE_PAYLOAD_FROM)
    chunks: list[bytes | bytearray | memoryview] = [b"a", b"b", large, b"c", memoryview(b"d")]
    out = _coalesce(chunks)
    assert out[0] == b"ab"
    assert out[1] is large
    assert out[2] == b"cd"
    assert len(out) == 3


async def test_large_messages_cross_a_real_socket_in_parts() -> None:
    """Messages above the part size, both ways over TCP, arrive whole (writev, partial writes)."""
    big = bytes(range(256)) * (3 * SEPARATE_PAYLOAD_FROM // 256)

    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        for _ in range(3):
            await ws.send_message(await ws.get_message())

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve_websocket, echo, "127.0.0.1", 0, None))
            async with open_websocket(
                "127.0.0.1", server.port, compression=None, max_message_size=None
            ) as ws:
                for _ in range(3):
                    await ws.send_message(big)
                assert [await ws.get_message() for _ in range(3)] == [big] * 3
            nursery.cancel_scope.cancel()


async def test_heap_trims_are_delayed_and_rate_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many requests in a burst make one trim, TRIM_DELAY later; the next waits half a period."""
    trims: list[bool] = []
    monkeypatch.setattr(engine, "_malloc_trim", lambda: trims.append(True))
    monkeypatch.setattr(engine._TrimState, "last", -math.inf)
    monkeypatch.setattr(engine, "TRIM_DELAY", 0.05)
    monkeypatch.setattr(engine, "IDLE_RELEASE_AFTER", 0.6)
    for _ in range(100):
        engine.request_heap_trim()
    assert trims == []  # delayed, so that a wave of releases shares one trim
    await trio.sleep(0.2)
    assert trims == [True]
    engine.request_heap_trim()  # too soon after the last one
    await trio.sleep(0.2)
    assert trims == [True]
    await trio.sleep(0.2)
    engine.request_heap_trim()
    await trio.sleep(0.2)
    assert trims == [True, True]


def test_trim_heap_does_nothing_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where malloc_trim is missing, trimming is a no-op, not an error."""
    monkeypatch.setattr(engine, "_malloc_trim", None)
    engine.trim_heap()


async def test_keepalive_pings_every_interval_when_the_pong_timeout_is_longer(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A prompt pong moves the next ping to ping_interval after the last, not to its deadline."""
    async with open_raw_pair(ping_interval=1, ping_timeout=10) as (_, peer):
        pings = 0
        with trio.move_on_after(10.5):
            while True:
                frame = await peer.receive_frame()
                assert frame.opcode is Opcode.PING
                pings += 1
                await peer.send_frame(Frame(Opcode.PONG, frame.data))
        assert pings == 10


async def test_an_idle_connection_stops_looking_for_idleness_once_released(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a release with nothing sent since, the reader sleeps until the next message."""
    looks = 0
    release_if_idle = engine.ConnectionEngine._release_if_idle

    def counting(self: engine.ConnectionEngine) -> bool:
        nonlocal looks
        looks += 1
        return release_if_idle(self)

    monkeypatch.setattr(engine.ConnectionEngine, "_release_if_idle", counting)
    extension = PerMessageDeflate(True)
    async with open_connection_pair(
        client_extensions=[PerMessageDeflate(False)], server_extensions=[extension]
    ) as (client, server):
        await server.send_message("x" * 1000)
        assert await client.get_message() == "x" * 1000
        await trio.sleep(20 * IDLE_RELEASE_AFTER)
        # Two looks (the second releases), then none: not one every half period.
        assert looks == 2
        assert not _holds_compressor(extension)
        # The next message wakes the idleness check again.
        await server.send_message("y" * 1000)
        assert await client.get_message() == "y" * 1000
        await trio.sleep(2 * IDLE_RELEASE_AFTER)
        assert looks == 4
        assert not _holds_compressor(extension)
