"""A real server under abuse: every bad client gets its specific answer, good clients lose nothing.

One :func:`~trio_wsext.serve_websocket` on 127.0.0.1 (port 0, real time,
``connect_timeout`` of 1 second) is hit at the same time by a client sending
garbage, a slowloris, a client with a 100 KB header, a client that sends
garbage frames after a valid handshake, one that sends a compression bomb,
and one that disconnects mid-handshake, while a well-behaved client exchanges
100 messages. Each bad client gets exactly its answer (an HTTP status and
body, a close code and reason, or a dropped connection and a log line); the
good client gets every echo in order; and the server then still serves a new
client.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Final

import h11
import pytest
import trio

from trio_wsext import WebSocketServer, open_websocket, serve_websocket
from trio_wsext.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from trio_wsext.handshake import ClientHandshake, ClientHandshakeResult
from trio_wsext.protocol import CloseReceived, Event, Protocol, Side
from trio_wsext.server import WebSocketRequest

#: Seconds a client has to send its whole handshake: short, so the slowloris ends soon.
CONNECT_TIMEOUT: Final = 1.0

#: The whole test's bound: the slowloris's second plus a wide margin for a loaded machine.
TEST_TIMEOUT: Final = 20

#: The server's default max_message_size (API.md).
MAX_MESSAGE_SIZE: Final = 2**20

#: The messages the well-behaved client sends: text and binary, small and large, some
#: compressible and some not.
GOOD_MESSAGES: Final[list[str | bytes]] = [
    f"message {i} " * (i % 7) if i % 2 else random.Random(i).randbytes(i * 97) for i in range(100)
]

#: The server's answer to each bad client, as the test expects it exactly.
ANSWER_PREFIX: Final = b"Failed to open a WebSocket connection: "
ANSWER_431: Final = ANSWER_PREFIX + b"request head exceeds 16384 bytes.\n"


async def echo(request: WebSocketRequest) -> None:
    """Accept, then echo every message until the connection closes."""
    ws = await request.accept()
    while True:
        await ws.send_message(await ws.get_message())


async def connect(port: int) -> trio.SocketStream:
    """Open a TCP connection to the server."""
    return await trio.open_tcp_stream("127.0.0.1", port)


async def read_until_eof(stream: trio.SocketStream) -> bytes:
    """Read everything until the server closes; a reset after the data counts as the end."""
    chunks: list[bytes] = []
    try:
        while data := await stream.receive_some(65536):
            chunks.append(bytes(data))
    except trio.BrokenResourceError:
        # The server closed with our bytes unread, so its kernel answered with
        # RST; what it sent before is already here.
        pass
    return b"".join(chunks)


def parse_response(data: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Parse an HTTP response with h11; return status, headers (lowercase names) and body."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "127.0.0.1")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    client.receive_data(b"")
    head = client.next_event()
    assert isinstance(head, h11.Response)
    body = b""
    while not isinstance(event := client.next_event(), h11.EndOfMessage):
        assert isinstance(event, h11.Data)
        body += event.data
    return head.status_code, dict(head.headers), body


async def websocket_handshake(
    stream: trio.SocketStream, *, deflate: bool
) -> tuple[ClientHandshakeResult, Protocol]:
    """Do a valid opening handshake by hand; return the result and a client Protocol."""
    handshake = ClientHandshake(
        "127.0.0.1",
        80,
        "/",
        extensions=[ClientPerMessageDeflateFactory()] if deflate else None,
    )
    await stream.send_all(handshake.request_bytes())
    result = None
    while result is None:
        result = handshake.receive_data(bytes(await stream.receive_some(65536)))
    if deflate:
        assert [type(e) for e in result.extensions] == [PerMessageDeflate]
    return result, Protocol(Side.CLIENT, result.extensions)


async def receive_events(
    stream: trio.SocketStream, protocol: Protocol, extra_data: bytes
) -> list[Event]:
    """Read frames until the server closes the TCP connection; return their events."""
    data = extra_data + await read_until_eof(stream)
    if data:
        protocol.receive_data(data)
    return protocol.events_received()


# -- the bad clients: each returns what it got, and sets ``sent`` once its damage is done --------


async def garbage_client(port: int, sent: trio.Event) -> bytes:
    """Send random bytes instead of a request."""
    async with await connect(port) as stream:
        garbage = random.Random(6455).randbytes(2000)
        await stream.send_all(b"\x16\x03\x01" + garbage.replace(b"\n", b"") + b"\r\n\r\n")
        sent.set()
        return await read_until_eof(stream)


async def slowloris_client(port: int, sent: trio.Event) -> bytes:
    """Send the start of a request one byte at a time, then stall."""
    async with await connect(port) as stream:
        for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n":
            await stream.send_all(bytes([byte]))
        sent.set()
        return await read_until_eof(stream)


async def big_header_client(port: int, sent: trio.Event) -> bytes:
    """Send a request with a 100 KB header, reading the answer while sending."""
    stream = await connect(port)
    request = (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"X-Big: " + b"b" * 100_000 + b"\r\n\r\n"
    )

    async def send() -> None:
        # The server may answer and close before reading it all.
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(request)
        sent.set()

    async with stream, trio.open_nursery() as nursery:
        nursery.start_soon(send)
        return await read_until_eof(stream)


async def garbage_frames_client(port: int, sent: trio.Event) -> list[Event]:
    """Do a valid handshake, then send a frame with a reserved opcode and random bytes."""
    async with await connect(port) as stream:
        result, protocol = await websocket_handshake(stream, deflate=False)
        await stream.send_all(b"\x83\x85" + random.Random(7692).randbytes(200))
        sent.set()
        return await receive_events(stream, protocol, result.extra_data)


async def bomb_client(port: int, sent: trio.Event) -> list[Event]:
    """Negotiate permessage-deflate, then send 8 MB of zeros compressed to a few KB."""
    async with await connect(port) as stream:
        result, protocol = await websocket_handshake(stream, deflate=True)
        protocol.send_message(bytes(8 * MAX_MESSAGE_SIZE))
        bomb = protocol.data_to_send()
        assert len(bomb) < 16384
        await stream.send_all(bomb)
        sent.set()
        return await receive_events(stream, protocol, result.extra_data)


async def vanishing_client(port: int, sent: trio.Event) -> None:
    """Send half a request, then close the connection."""
    stream = await connect(port)
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
    await stream.aclose()
    sent.set()


async def good_client(port: int) -> list[str | bytes]:
    """Exchange GOOD_MESSAGES with the echo server, one at a time; return the echoes."""
    echoes: list[str | bytes] = []
    async with open_websocket("127.0.0.1", port, "/", ping_interval=None) as ws:
        for message in GOOD_MESSAGES:
            await ws.send_message(message)
            echoes.append(await ws.get_message())
    return echoes


async def test_server_answers_every_bad_client_and_serves_good_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Six abusive clients at once each get their specific answer; no good message is lost."""
    caplog.set_level(logging.DEBUG, logger="trio_wsext")
    results: dict[str, object] = {}
    bad_clients: dict[str, Callable[[int, trio.Event], Awaitable[object]]] = {
        "garbage": garbage_client,
        "slowloris": slowloris_client,
        "big_header": big_header_client,
        "garbage_frames": garbage_frames_client,
        "bomb": bomb_client,
        "vanishing": vanishing_client,
    }

    async def run(name: str, client: Callable[[], Awaitable[object]]) -> None:
        results[name] = await client()

    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(
                lambda task_status: serve_websocket(
                    echo,
                    "127.0.0.1",
                    0,
                    None,
                    connect_timeout=CONNECT_TIMEOUT,
                    disconnect_timeout=CONNECT_TIMEOUT,
                    ping_interval=None,
                    task_status=task_status,
                )
            )
            async with trio.open_nursery() as clients:
                sent = {name: trio.Event() for name in bad_clients}
                for name, bad in bad_clients.items():
                    clients.start_soon(
                        run, name, lambda bad=bad, name=name: bad(server.port, sent[name])
                    )
                # The good client talks while every bad one has done its damage
                # and the slowloris still holds its connection.
                for event in sent.values():
                    await event.wait()
                clients.start_soon(run, "good", lambda: good_client(server.port))
            # After all that, a new client is served.
            results["after"] = await good_client(server.port)
            nursery.cancel_scope.cancel()

    assert results["good"] == GOOD_MESSAGES
    assert results["after"] == GOOD_MESSAGES

    garbage = results["garbage"]
    assert isinstance(garbage, bytes)
    status, headers, body = parse_response(garbage)
    assert (status, headers[b"connection"]) == (400, b"close")
    # h11's description of the bad request line, cut to MAX_HTTP_ERROR_DETAIL characters.
    reason = b"invalid HTTP request: illegal request line: bytearray(b'\\x16\\x03\\x01"
    assert body.startswith(ANSWER_PREFIX + reason)
    assert body.endswith(b"...\n")
    assert len(body) <= len(ANSWER_PREFIX) + len(b"invalid HTTP request: ") + 100 + 1
    garbage_logged = "refused a bad opening handshake: " + body[len(ANSWER_PREFIX) : -1].decode()

    # The slowloris gets no HTTP answer: its connection is dropped at connect_timeout.
    assert results["slowloris"] == b""

    big_header = results["big_header"]
    assert isinstance(big_header, bytes)
    status, headers, body = parse_response(big_header)
    assert (status, headers[b"connection"], body) == (431, b"close", ANSWER_431)

    assert results["garbage_frames"] == [CloseReceived(1002, "reserved opcode 0x3")]
    assert results["bomb"] == [
        CloseReceived(1009, f"message exceeds the size limit of {MAX_MESSAGE_SIZE} bytes")
    ]
    assert results["vanishing"] is None

    # Each line starts with its connection's name and peer ("conn 12 127.0.0.1:5555: ...").
    named = [r.getMessage() for r in caplog.records if r.name == "trio_wsext.server"]
    assert all(re.match(r"conn \d+ 127\.0\.0\.1:\d+: ", line) for line in named[1:]), named
    server_log = [re.sub(r"^conn \d+ [^ ]+: ", "", line) for line in named]
    assert garbage_logged in server_log
    assert "dropped a connection that sent no opening handshake within 1.0 seconds" in server_log
    assert "refused a bad opening handshake: request head exceeds 16384 bytes" in server_log
    assert (
        "refused a bad opening handshake: connection closed before the request was complete"
        in server_log
    )
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
