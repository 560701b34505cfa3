"""Http2Connection and Http2Stream over an in-memory pair: flow control, closing, GOAWAY."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from trio_wsext.http2.connection import Http2Connection
from trio_wsext.http2.handshake import Http2ClientHandshake
from trio_wsext.http2.settings import DEFAULT_STREAM_WINDOW
from trio_wsext.http2.streams import Http2Stream

Headers = list[tuple[bytes, bytes]]


class Pair:
    """A client and a server Http2Connection, and the server's streams as they arrive."""

    def __init__(self) -> None:
        self.client: Http2Connection
        self.server: Http2Connection
        self.requests: trio.MemorySendChannel[Http2Stream]
        self.incoming: trio.MemoryReceiveChannel[Http2Stream]
        self.requests, self.incoming = trio.open_memory_channel[Http2Stream](100)

    def on_request(self, stream: Http2Stream, headers: Headers, ended: bool) -> None:
        self.server.send_headers(stream.stream_id, [(b":status", b"200")])
        self.requests.send_nowait(stream)

    async def open(self) -> tuple[Http2Stream, Http2Stream]:
        """Open a stream; return its client and server ends once the 200 came."""
        request = Http2ClientHandshake("localhost", 80, "/", secure=False).request_headers
        client_stream = self.client.open_stream(request)
        server_stream = await self.incoming.receive()
        await client_stream.receive_headers()
        return client_stream, server_stream


@asynccontextmanager
async def connection_pair() -> AsyncIterator[Pair]:
    """A client and a server connection running over a memory stream pair."""
    pair = Pair()
    client_end, server_end = trio.testing.memory_stream_pair()
    pair.client = Http2Connection(client_end, client=True)
    pair.server = Http2Connection(server_end, client=False, on_request=pair.on_request)
    async with trio.open_nursery() as nursery:
        await nursery.start(pair.server.run)
        await nursery.start(pair.client.run)
        await pair.client.wait_settings()
        yield pair
        nursery.cancel_scope.cancel()


async def test_server_settings_enable_extended_connect() -> None:
    """RFC 8441 §3: the server's SETTINGS carry ENABLE_CONNECT_PROTOCOL = 1."""
    async with connection_pair() as pair:
        assert pair.client.connect_protocol_enabled
        assert not pair.server.connect_protocol_enabled  # a client does not send it
        assert pair.client.can_open_stream()


async def test_stalled_stream_holds_one_window_and_stops_no_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A reader that stalls closes its stream's window; another stream carries 1 MiB meanwhile."""
    async with connection_pair() as pair:
        stalled_client, stalled_server = await pair.open()
        busy_client, busy_server = await pair.open()
        sent = 0

        async def flood() -> None:
            nonlocal sent
            while True:
                await stalled_client.send_all(b"x" * 16384)
                sent += 16384

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            await trio.testing.wait_all_tasks_blocked()
            # The stalled stream took one window and waits for a WINDOW_UPDATE.
            assert sent <= DEFAULT_STREAM_WINDOW
            assert stalled_server._buffered <= DEFAULT_STREAM_WINDOW
            received = 0

            async def read_busy() -> None:
                nonlocal received
                while received < 2**20:
                    received += len(await busy_server.receive_some())

            async with trio.open_nursery() as inner:
                inner.start_soon(read_busy)
                await busy_client.send_all(b"y" * 2**20)
            assert received == 2**20
            # Reading the stalled stream reopens its window: the flood goes on.
            before = sent
            await stalled_server.receive_some()
            await trio.testing.wait_all_tasks_blocked()
            assert sent > before
            nursery.cancel_scope.cancel()


async def test_closing_one_stream_leaves_the_others_open() -> None:
    """END_STREAM both ways on one stream; another still carries data both ways."""
    async with connection_pair() as pair:
        a_client, a_server = await pair.open()
        b_client, b_server = await pair.open()
        await a_server.send_eof()
        assert await a_client.receive_some() == b""
        await a_client.aclose()
        assert await a_server.receive_some() == b""
        await a_server.aclose()
        await b_client.send_all(b"ping")
        assert await b_server.receive_some() == b"ping"
        await b_server.send_all(b"pong")
        assert await b_client.receive_some() == b"pong"
        assert set(pair.server.streams) == {b_server.stream_id}


async def test_reset_stream_breaks_only_that_stream() -> None:
    """A peer's RST_STREAM (an aclose cancelled) breaks its stream; the others go on."""
    async with connection_pair() as pair:
        a_client, a_server = await pair.open()
        b_client, b_server = await pair.open()
        await trio.aclose_forcefully(a_client)
        with pytest.raises(trio.BrokenResourceError, match=r"was reset \(CANCEL\)"):
            await a_server.receive_some()
        await b_client.send_all(b"still here")
        assert await b_server.receive_some() == b"still here"


async def test_server_going_away_refuses_new_streams_and_ends_after_the_last() -> None:
    """GOAWAY: open streams run on, no new one opens, the socket closes after the last."""
    async with connection_pair() as pair:
        a_client, a_server = await pair.open()
        pair.server.go_away()
        await trio.testing.wait_all_tasks_blocked()
        assert pair.client.peer_goaway is not None
        assert not pair.client.can_open_stream()
        with pytest.raises(trio.BrokenResourceError, match=r"going away"):
            pair.client.open_stream([])
        # The stream that was open before the GOAWAY still works both ways.
        await a_client.send_all(b"after goaway")
        assert await a_server.receive_some() == b"after goaway"
        await a_server.send_all(b"reply")
        assert await a_client.receive_some() == b"reply"
        await a_server.send_eof()
        await a_client.aclose()
        await a_server.aclose()
        with trio.fail_after(1):
            await pair.server.wait_finished()
            await pair.client.wait_finished()


async def test_lost_connection_breaks_every_stream() -> None:
    """The socket closing under the connection breaks every stream at once."""
    async with connection_pair() as pair:
        a_client, _ = await pair.open()
        b_client, _ = await pair.open()
        pair.server.abort()
        for stream in (a_client, b_client):
            with trio.fail_after(1), pytest.raises(trio.BrokenResourceError):
                await stream.receive_some()
