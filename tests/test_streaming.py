"""Streaming messages: send_message(iterable) as one fragmented message, get_message_stream()."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import pytest
import trio
import trio.lowlevel
import trio.testing
from helpers import open_connection_pair, open_raw_pair

from trio_wsext import ConnectionClosed, Frame, Opcode, WebSocketConnection
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate


async def test_an_iterable_goes_out_as_one_fragmented_message() -> None:
    async with open_raw_pair() as (ws, peer):
        await ws.send_message(["hé", "llo", " world"])
        frames = [await peer.receive_frame() for _ in range(4)]
        assert [(f.opcode, f.fin) for f in frames] == [
            (Opcode.TEXT, False),
            (Opcode.CONT, False),
            (Opcode.CONT, False),
            (Opcode.CONT, True),
        ]
        assert b"".join(f.data for f in frames).decode() == "héllo world"
        assert frames[-1].data == b""
        assert ws.statistics().messages_sent == 1
        assert ws.statistics().bytes_sent == len("héllo world".encode())


async def test_an_async_iterable_of_bytes_round_trips() -> None:
    async def chunks() -> AsyncIterator[bytes | bytearray | memoryview]:
        yield b"ab"
        await trio.lowlevel.checkpoint()
        yield bytearray(b"cd")
        yield memoryview(b"ef")

    async with open_connection_pair() as (client, server):
        await client.send_message(chunks())
        assert await server.get_message() == b"abcdef"


async def test_compression_runs_per_fragment_with_rsv1_on_the_first_only() -> None:
    extension = PerMessageDeflate(False)
    async with open_raw_pair(extensions=[extension]) as (ws, peer):
        text = "compress me " * 200
        await ws.send_message([text, text, text])
        frames = [await peer.receive_frame() for _ in range(4)]
        assert [f.rsv1 for f in frames] == [True, False, False, False]
        inflater = zlib.decompressobj(-15)
        data = inflater.decompress(b"".join(f.data for f in frames) + b"\x00\x00\xff\xff")
        assert data.decode() == text * 3
        assert sum(len(f.data) for f in frames) < len(text)


async def test_an_empty_iterable_sends_nothing() -> None:
    async with open_connection_pair() as (client, server):
        await client.send_message([])
        await client.send_message("next")
        assert await server.get_message() == "next"


async def test_a_bad_first_chunk_sends_nothing_and_the_connection_stays_open() -> None:
    async with open_connection_pair() as (client, server):
        with pytest.raises(TypeError, match="chunks must be str or bytes-like, not int"):
            await client.send_message([5])  # type: ignore[list-item]
        await client.send_message("still open")
        assert await server.get_message() == "still open"


async def test_mixed_chunk_types_fail_the_connection_with_1011() -> None:
    async with open_connection_pair() as (client, server):
        with pytest.raises(TypeError, match="chunks must all be str, not bytes"):
            await client.send_message(["text", b"bytes"])
        assert client.closed is not None
        assert client.closed.code == 1011
        with pytest.raises(ConnectionClosed) as caught:
            await server.get_message()
        assert caught.value.reason.code == 1011


async def test_a_stream_cancelled_half_way_fails_the_connection() -> None:
    release = trio.Event()

    async def chunks() -> AsyncIterator[str]:
        yield "first"
        await release.wait()
        yield "never"

    async with open_connection_pair() as (client, server):
        with trio.move_on_after(0.2):
            await client.send_message(chunks())
        assert client.closed is not None
        assert client.closed.code == 1011
        with pytest.raises(ConnectionClosed):
            await server.get_message()


async def test_other_senders_wait_for_the_end_of_a_stream_while_pings_flow() -> None:
    go_on = trio.Event()

    async def chunks() -> AsyncIterator[str]:
        yield "one,"
        await go_on.wait()
        yield "two"

    received: list[str | bytes] = []

    async def receive(server: WebSocketConnection) -> None:
        received.append(await server.get_message())
        received.append(await server.get_message())

    async with open_connection_pair() as (client, server), trio.open_nursery() as nursery:
        nursery.start_soon(receive, server)
        nursery.start_soon(client.send_message, chunks())
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(client.send_message, "after")
        await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(5):
            await client.ping()  # a control frame between fragments
        assert received == []
        go_on.set()
    assert received == ["one,two", "after"]


async def test_a_slow_reader_pauses_a_streaming_sender() -> None:
    produced = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(1000):
            produced += 1
            yield b"x" * 1024

    async with (
        open_connection_pair(lockstep=True, write_limit=8192) as (client, server),
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(client.send_message, chunks())
        await trio.testing.wait_all_tasks_blocked()
        # Nobody asks for the message: the producer stopped once write_limit
        # bytes waited, plus what the reader took before it held (at most
        # one receive buffer, 64 KiB): far from the 1000 chunks.
        assert produced <= 8 + 64 + 4
        total = 0
        async for piece in server.get_message_stream(max_size=None):
            assert isinstance(piece, bytes)
            total += len(piece)
        assert total == 1000 * 1024
        assert produced == 1000


async def test_get_message_stream_yields_each_frame_as_it_comes() -> None:
    async with open_connection_pair() as (client, server):
        await client.send_message([b"a" * 10, b"b" * 20, b"c" * 30])
        pieces = [piece async for piece in server.get_message_stream()]
        assert pieces == [b"a" * 10, b"b" * 20, b"c" * 30]
        await client.send_message("whole")
        assert [piece async for piece in server.get_message_stream()] == ["whole"]


async def test_text_pieces_hold_whole_characters() -> None:
    async with open_raw_pair(client=False) as (ws, peer):
        data = "é€😀".encode()
        await peer.send_frame(Frame(Opcode.TEXT, data[:1], fin=False))
        await peer.send_frame(Frame(Opcode.CONT, data[1:4], fin=False))
        await peer.send_frame(Frame(Opcode.CONT, data[4:], fin=True))
        pieces = [piece async for piece in ws.get_message_stream()]
        assert "".join(pieces) == "é€😀"  # type: ignore[arg-type]
        assert all(isinstance(piece, str) for piece in pieces)


async def test_invalid_utf8_in_a_stream_fails_with_1007() -> None:
    async with open_raw_pair(client=False) as (ws, peer):
        await peer.send_frame(Frame(Opcode.TEXT, b"ok", fin=False))
        await peer.send_frame(Frame(Opcode.CONT, b"\xff", fin=True))
        stream = ws.get_message_stream()
        assert await stream.__anext__() == "ok"
        with pytest.raises(ConnectionClosed) as caught:
            await stream.__anext__()
        assert caught.value.reason.code == 1007


async def test_a_message_already_queued_comes_as_one_piece() -> None:
    async with open_connection_pair() as (client, server):
        await client.send_message([b"x", b"y"])
        await client.send_message(b"z")
        await trio.testing.wait_all_tasks_blocked()
        assert [p async for p in server.get_message_stream()] == [b"xy"]
        assert await server.get_message() == b"z"


async def test_a_message_half_assembled_continues_as_a_stream() -> None:
    async with open_raw_pair(client=False) as (ws, peer):
        await peer.send_frame(Frame(Opcode.BINARY, b"12", fin=False))
        await peer.send_frame(Frame(Opcode.CONT, b"34", fin=False))
        await trio.testing.wait_all_tasks_blocked()
        # Parsing waits after the first frame until someone asks for the message.
        assert ws.statistics().bytes_received == 2
        # A get_message() that gave up had the message assembled so far.
        with trio.move_on_after(0.1):
            await ws.get_message()
        stream = ws.get_message_stream()
        assert await stream.__anext__() == b"1234"
        await peer.send_frame(Frame(Opcode.CONT, b"56", fin=True))
        assert [p async for p in stream] == [b"56"]


async def test_max_message_size_holds_for_streams_unless_lifted() -> None:
    chunk = b"x" * 1000
    async with open_connection_pair(max_message_size=4000) as (client, server):
        await client.send_message([chunk] * 3)
        assert sum([len(p) async for p in server.get_message_stream()]) == 3000
        # Lifted for one stream: 20 frames of 1000 bytes, 20 000 bytes in all.
        await client.send_message([chunk] * 20)
        total = 0
        async for piece in server.get_message_stream(max_size=None):
            total += len(piece)
        assert total == 20000
        # By default the limit holds: 1009.
        await client.send_message([chunk] * 5)
        with pytest.raises(ConnectionClosed) as caught:
            async for _ in server.get_message_stream():
                pass
        assert caught.value.reason.code == 1009


async def test_a_frame_over_max_message_size_fails_even_in_a_lifted_stream() -> None:
    async with open_connection_pair(max_message_size=4000) as (client, server):
        await client.send_message([b"x" * 5000])
        with pytest.raises(ConnectionClosed) as caught:
            async for _ in server.get_message_stream(max_size=None):
                pass
        assert caught.value.reason.code == 1009


async def test_a_compressed_stream_decodes_frame_by_frame() -> None:
    async with open_connection_pair(
        client_extensions=[PerMessageDeflate(False)],
        server_extensions=[PerMessageDeflate(True)],
        max_message_size=100_000,
    ) as (client, server):
        chunk = "0123456789" * 5000  # 50 000 characters a frame
        await client.send_message([chunk] * 10)
        total = 0
        async for piece in server.get_message_stream(max_size=None):
            assert piece == chunk
            total += len(piece)
        assert total == 500_000


async def test_leaving_a_stream_early_discards_the_rest_of_that_message() -> None:
    async with open_connection_pair() as (client, server):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_message, [b"1", b"2", b"3"])
            async for piece in server.get_message_stream():
                assert piece == b"1"
                break
        await client.send_message("next")
        assert await server.get_message() == "next"


async def test_max_size_is_checked() -> None:
    async with open_connection_pair() as (_, server):
        with pytest.raises(ValueError, match="max_size must be a positive int or None"):
            server.get_message_stream(max_size=0)


async def test_a_stream_ends_with_connection_closed_when_the_peer_leaves() -> None:
    async with open_raw_pair(client=False) as (ws, peer):
        await peer.send_frame(Frame(Opcode.BINARY, b"12", fin=False))
        stream = ws.get_message_stream()
        assert await stream.__anext__() == b"12"
        await peer.stream.aclose()
        with pytest.raises(ConnectionClosed) as caught:
            await stream.__anext__()
        assert caught.value.reason.code == 1006
