"""broadcast(): one message to many connections, encoded once where they share an encoding."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from helpers import SimpleEncryptionExtension, open_connection_pair

import trio_wsext
from trio_wsext import BroadcastResult, ConnectionClosed, WebSocketConnection, broadcast
from trio_wsext.broadcasting import TOO_SLOW_REASON, prepare_message, sharing_key
from trio_wsext.extensions.base import Extension
from trio_wsext.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from trio_wsext.protocol import Protocol, Side

Pair = tuple[WebSocketConnection, WebSocketConnection]

NEWS = json.dumps({"event": "tick", "prices": {f"s{i}": i * 1.5 for i in range(600)}})


def deflate_pair(**parameters: Any) -> dict[str, Any]:
    """Client and server extensions for a permessage-deflate agreed with ``parameters``."""
    return {
        "client_extensions": [PerMessageDeflate(False, **parameters)],
        "server_extensions": [PerMessageDeflate(True, **parameters)],
    }


@asynccontextmanager
async def open_pairs(*configurations: dict[str, Any]) -> AsyncIterator[list[Pair]]:
    """One running (client, server) pair per configuration (keywords of open_connection_pair)."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(open_connection_pair(**configuration))
            for configuration in configurations
        ]


def servers(pairs: list[Pair]) -> list[WebSocketConnection]:
    return [server for _, server in pairs]


async def test_plain_connections_share_one_encoding() -> None:
    async with open_pairs(*[{}] * 5) as pairs:
        result = await broadcast(servers(pairs), "hello")
        assert result == BroadcastResult(5, (), (), (), encodings=1)
        result = await broadcast(servers(pairs), bytearray(b"\x00\x01"))
        assert result.delivered == 5
        for client, _ in pairs:
            assert await client.get_message() == "hello"
            assert await client.get_message() == b"\x00\x01"


async def test_no_context_takeover_compresses_once_and_every_client_decodes() -> None:
    async with open_pairs(
        *[deflate_pair(server_no_context_takeover=True) for _ in range(6)]
    ) as pairs:
        for round_ in range(3):
            result = await broadcast(servers(pairs), NEWS + str(round_))
            assert result.delivered == 6
            assert result.encodings == 1
        for client, server in pairs:
            for round_ in range(3):
                assert await client.get_message() == NEWS + str(round_)
            statistics = server.statistics()
            # Compressed: far fewer bytes on the wire than in the messages.
            assert statistics.wire_bytes_sent < statistics.bytes_sent / 3
            assert statistics.messages_sent == 3
        # Every connection was handed the same bytes.
        assert len({server.statistics().wire_bytes_sent for server in servers(pairs)}) == 1


async def test_connections_own_messages_still_decode_after_a_shared_one() -> None:
    async with open_pairs(
        *[deflate_pair(server_no_context_takeover=True) for _ in range(2)]
    ) as pairs:
        client, server = pairs[0]
        await server.send_message(NEWS)
        await broadcast(servers(pairs), NEWS[::-1])
        await server.send_message(NEWS)
        assert [await client.get_message() for _ in range(3)] == [NEWS, NEWS[::-1], NEWS]
        assert await pairs[1][0].get_message() == NEWS[::-1]


async def test_context_takeover_encodes_per_connection_and_keeps_each_history() -> None:
    async with open_pairs(*[deflate_pair() for _ in range(3)]) as pairs:
        for round_ in range(4):
            result = await broadcast(servers(pairs), NEWS + str(round_))
            assert result.delivered == 3
            assert result.encodings == 3
        client, server = pairs[0]
        await server.send_message(NEWS)
        for round_ in range(4):
            assert await client.get_message() == NEWS + str(round_)
        assert await client.get_message() == NEWS
        # The history made later copies of the message almost free.
        assert server.statistics().wire_bytes_sent < len(NEWS) / 2


async def test_groups_follow_the_negotiated_parameters() -> None:
    configurations: list[dict[str, Any]] = [
        deflate_pair(server_no_context_takeover=True),
        deflate_pair(server_no_context_takeover=True),
        deflate_pair(server_no_context_takeover=True, server_max_window_bits=10),
        deflate_pair(server_no_context_takeover=True, server_max_window_bits=10),
        deflate_pair(),
        deflate_pair(),
        {},
        {
            "client_extensions": [SimpleEncryptionExtension(b"k" * 16)],
            "server_extensions": [SimpleEncryptionExtension(b"k" * 16)],
        },
    ]
    async with open_pairs(*configurations) as pairs:
        result = await broadcast(servers(pairs), NEWS)
        # Two shared deflate groups, two takeover connections, the plain one,
        # and the extension without a broadcast key.
        assert result.encodings == 1 + 1 + 2 + 1 + 1
        assert result.delivered == len(pairs)
        for client, _ in pairs:
            assert await client.get_message() == NEWS


async def test_threshold_and_compress_are_honoured() -> None:
    def configuration() -> dict[str, Any]:
        return {
            "client_extensions": [PerMessageDeflate(False, server_no_context_takeover=True)],
            "server_extensions": [
                PerMessageDeflate(True, server_no_context_takeover=True, threshold=1024)
            ],
        }

    async with open_pairs(configuration(), configuration()) as pairs:
        await broadcast(servers(pairs), "x" * 100)  # under the threshold: plain
        await broadcast(servers(pairs), "y" * 5000, compress=False)
        await broadcast(servers(pairs), "z" * 5000)
        for client, server in pairs:
            assert await client.get_message() == "x" * 100
            assert await client.get_message() == "y" * 5000
            assert await client.get_message() == "z" * 5000
            statistics = server.statistics()
            assert 5100 < statistics.wire_bytes_sent < 5200 + 100


def test_the_shared_frame_is_what_the_connection_would_send() -> None:
    extension = PerMessageDeflate(True, server_no_context_takeover=True)
    protocol = Protocol(Side.SERVER, [extension])
    for message in (NEWS, b"\x00" * 70000, "", "short"):
        parts, size = prepare_message(message, [extension], None)
        protocol.send_message(message)
        assert b"".join(parts) == protocol.data_to_send()
        assert size == len(message.encode() if isinstance(message, str) else message)


def test_sharing_keys() -> None:
    assert sharing_key(Protocol(Side.SERVER)) == ()
    assert sharing_key(Protocol(Side.CLIENT)) is None
    shared = PerMessageDeflate(True, server_no_context_takeover=True)
    assert sharing_key(Protocol(Side.SERVER, [shared])) is not None
    takeover = PerMessageDeflate(True)
    assert sharing_key(Protocol(Side.SERVER, [takeover])) is None
    # The client's no_context_takeover does not make the server's output shareable.
    assert PerMessageDeflate(True, client_no_context_takeover=True).broadcast_key() is None
    assert PerMessageDeflate(False, server_no_context_takeover=True).broadcast_key() is None
    small = PerMessageDeflate(True, server_no_context_takeover=True, server_max_window_bits=9)
    assert shared.broadcast_key() != small.broadcast_key()
    assert Extension("x").broadcast_key() is None


async def test_client_connections_mask_each_message_themselves() -> None:
    async with open_pairs({}, {}, {}) as pairs:
        clients = [client for client, _ in pairs]
        result = await broadcast(clients, "up")
        assert (result.delivered, result.encodings) == (3, 3)
        for _, server in pairs:
            assert await server.get_message() == "up"


async def test_a_slow_connection_is_skipped_and_holds_back_no_one() -> None:
    async with open_pairs({}, {}, {"lockstep": True, "write_limit": 1024}) as pairs:
        slow_client, slow = pairs[2]
        message = b"m" * 4096
        # The lockstep peer reads nothing: the first message waits in the buffer.
        first = await broadcast(servers(pairs), message)
        assert first.delivered == 3
        second = await broadcast(servers(pairs), message)
        assert second.delivered == 2
        assert second.skipped == (slow,)
        for client, _ in pairs[:2]:
            assert [await client.get_message() for _ in range(2)] == [message, message]
        # The slow one got what it was sent before it fell behind, and is open.
        with trio.fail_after(10):
            assert await slow_client.get_message() == message
        assert slow.closed is None
        # Once its writer has written out what waited, it takes broadcasts again.
        await trio.testing.wait_all_tasks_blocked()
        later = await broadcast(servers(pairs), b"later")
        assert later.delivered == 3
        with trio.fail_after(10):
            assert await slow_client.get_message() == b"later"


async def test_the_close_policy_closes_a_slow_connection_with_1008() -> None:
    async with open_pairs(
        {}, {"lockstep": True, "write_limit": 1024, "disconnect_timeout": 5}
    ) as pairs:
        slow_client, slow = pairs[1]
        await broadcast(servers(pairs), b"m" * 4096)
        result = await broadcast(servers(pairs), b"n", on_slow="close")
        assert result.closed == (slow,)
        assert result.delivered == 1
        assert slow.closed is not None
        assert slow.closed.code == 1008
        # The client reads what was sent before, then the close frame.
        assert await slow_client.get_message() == b"m" * 4096
        with pytest.raises(ConnectionClosed) as caught:
            await slow_client.get_message()
        assert caught.value.reason.code == 1008
        assert caught.value.reason.reason == TOO_SLOW_REASON
        again = await broadcast(servers(pairs), b"o")
        assert again.not_open == (slow,)


async def test_closed_connections_are_reported_not_open() -> None:
    async with open_pairs({}, {}) as pairs:
        await pairs[0][1].aclose()
        result = await broadcast(servers(pairs), "x")
        assert result.not_open == (pairs[0][1],)
        assert result.delivered == 1


async def test_a_cancelled_broadcast_sends_nothing() -> None:
    async with open_pairs({}) as pairs:
        with trio.CancelScope() as scope:
            scope.cancel()
            await broadcast(servers(pairs), "never")
        await broadcast(servers(pairs), "after")
        assert await pairs[0][0].get_message() == "after"


async def test_bad_arguments_say_what_is_wrong() -> None:
    with pytest.raises(TypeError, match="message must be str or bytes-like, not int"):
        await broadcast([], 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="compress must be True, False or None"):
        await broadcast([], "x", compress="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_slow must be 'skip' or 'close'"):
        await broadcast([], "x", on_slow="drop")  # type: ignore[arg-type]


def test_top_level_name() -> None:
    assert trio_wsext.broadcast is broadcast


async def test_over_tcp_every_client_gets_what_was_delivered_in_order(
    nursery: trio.Nursery,
) -> None:
    connected: dict[str, WebSocketConnection] = {}
    everyone_here = trio.Event()

    async def handler(request: trio_wsext.WebSocketRequest) -> None:
        name = dict(request.headers)[b"x-client"].decode()
        ws = await request.accept()
        connected[name] = ws
        if len(connected) == 20:
            everyone_here.set()
        with pytest.raises(ConnectionClosed):
            await ws.get_message()

    # The server asks for no context takeover: every connection shares the encoding.
    serve = functools.partial(
        trio_wsext.serve_websocket,
        extensions=[ServerPerMessageDeflateFactory(server_no_context_takeover=True)],
    )
    server = await nursery.start(serve, handler, "127.0.0.1", 0, None)
    async with AsyncExitStack() as stack:
        clients = {
            f"c{i}": await stack.enter_async_context(
                trio_wsext.open_websocket(
                    "127.0.0.1",
                    server.port,
                    "/",
                    use_ssl=False,
                    extra_headers={"X-Client": f"c{i}"},
                )
            )
            for i in range(20)
        }
        with trio.fail_after(30):
            await everyone_here.wait()
        expected: dict[str, list[int]] = {name: [] for name in clients}
        for round_ in range(50):
            result = await broadcast(connected.values(), f"{round_}:{NEWS}")
            assert result.encodings == 1
            assert result.delivered + len(result.skipped) == 20
            for name, ws in connected.items():
                if ws not in result.skipped:
                    expected[name].append(round_)
            if result.skipped:  # a client fell behind: let its buffer drain
                await trio.sleep(0.05)
        for name, client in clients.items():
            received: list[int] = []
            with trio.fail_after(30):
                while len(received) < len(expected[name]):
                    message = await client.get_message()
                    assert isinstance(message, str)
                    number, text = message.split(":", 1)
                    assert text == NEWS
                    received.append(int(number))
            assert received == expected[name]


async def test_write_limit_is_an_option_of_server_and_client(nursery: trio.Nursery) -> None:
    """serve_websocket and the client functions take websockets' write_limit."""
    limits: list[int] = []

    async def handler(request: trio_wsext.WebSocketRequest) -> None:
        ws = await request.accept()
        limits.append(ws._engine._high_water)
        await ws.send_message("hi")

    serve = functools.partial(trio_wsext.serve_websocket, write_limit=1024)
    server = await nursery.start(serve, handler, "127.0.0.1", 0, None)
    async with trio_wsext.open_websocket(
        "127.0.0.1", server.port, "/", use_ssl=False, write_limit=2048
    ) as ws:
        assert await ws.get_message() == "hi"
        assert ws._engine._high_water == 2048
    assert limits == [1024]
