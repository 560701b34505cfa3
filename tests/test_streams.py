"""wrap_client_stream / wrap_server_stream: the opening handshake over the caller's streams."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import trio
import trio.testing
from helpers import receive_all

from trio_wsext import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    Endpoint,
    HandshakeError,
    InvalidHeader,
    WebSocketConnection,
    WebSocketRequest,
    wrap_client_stream,
    wrap_server_stream,
)
from trio_wsext.connection import RECEIVE_SIZE
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate
from trio_wsext.frames import CloseReason
from trio_wsext.server import HANDSHAKE_RECEIVE_SIZE


async def wrap_pair(
    nursery: trio.Nursery,
    client_stream: trio.abc.Stream,
    server_stream: trio.abc.Stream,
    *,
    host: str = "example.com",
    resource: str = "/",
    subprotocol: str | None = None,
    accept_headers: list[tuple[str, str]] | None = None,
    client: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    server_args: tuple[Any, ...] = (),
) -> tuple[WebSocketConnection, WebSocketRequest, WebSocketConnection]:
    """Wrap both ends at once (each waits for the other); keepalive off unless given."""
    client_options = {"ping_interval": None, **(client or {})}
    server_options = {"ping_interval": None, **(server or {})}
    clients: list[WebSocketConnection] = []

    async def connect() -> None:
        clients.append(
            await wrap_client_stream(nursery, client_stream, host, resource, **client_options)
        )

    async with trio.open_nursery() as handshakes:
        handshakes.start_soon(connect)
        request = await wrap_server_stream(nursery, server_stream, *server_args, **server_options)
        server_ws = await request.accept(subprotocol=subprotocol, extra_headers=accept_headers)
    return clients[0], request, server_ws


async def assert_closed(stream: trio.abc.Stream) -> None:
    """Fail unless ``stream`` was closed on this side."""
    with pytest.raises(trio.ClosedResourceError):
        await stream.send_all(b"x")


# -- both ends wrapped --------------------------------------------------------------------


async def test_memory_stream_pair_exchanges_compressed_messages(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Both ends of a memory stream pair: deflate negotiated, messages compressed both ways."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        client, request, server = await wrap_pair(
            nursery,
            client_stream,
            server_stream,
            resource="/chat?room=1",
            subprotocol="chat",
            client={"subprotocols": ["chat", "other"]},
        )
        assert request.path == "/chat?room=1"
        assert request.proposed_subprotocols == ("chat", "other")
        assert [name for name, _ in request.extensions] == ["permessage-deflate"]
        assert request.local == request.remote == repr(server_stream)
        assert [type(e) for e in client.extensions] == [PerMessageDeflate]
        assert [type(e) for e in server.extensions] == [PerMessageDeflate]
        assert client.subprotocol == server.subprotocol == "chat"
        assert client.path == server.path == "/chat?room=1"
        assert client.is_client
        assert server.is_server

        text = "all work and no play " * 500
        await client.send_message(text)
        assert await server.get_message() == text
        await server.send_message(text.encode())
        assert await client.get_message() == text.encode()
        for ws in (client, server):
            statistics = ws.statistics()
            assert statistics.bytes_sent == len(text)
            assert statistics.wire_bytes_sent < len(text) // 10  # compressed
        await client.aclose()
    assert client.closed == server.closed == CloseReason(1000, "NORMAL_CLOSURE", None)


async def test_compression_none_on_both_ends_sends_plain_frames(
    autojump_clock: trio.abc.Clock,
) -> None:
    """compression=None on both wraps: no extension, the payload crosses as it is."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        client, request, server = await wrap_pair(
            nursery,
            client_stream,
            server_stream,
            client={"compression": None},
            server={"compression": None},
        )
        assert request.extensions == []
        assert client.extensions == server.extensions == []
        await client.send_message(b"\x00" * 1000)
        assert await server.get_message() == b"\x00" * 1000
        assert client.statistics().wire_bytes_sent == 1000 + 8  # 4-byte header + 4-byte mask
        await client.aclose()


async def test_handshake_headers_are_what_the_peer_sent(autojump_clock: trio.abc.Clock) -> None:
    """handshake_headers: the response on the client, the request on the server, lowercase."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        client, request, server = await wrap_pair(
            nursery,
            client_stream,
            server_stream,
            accept_headers=[("X-Server", "2")],
            client={"extra_headers": [("X-Client", "1")]},
        )
        assert client.handshake_headers == tuple(client.response_headers)
        assert server.handshake_headers == tuple(server.request_headers) == tuple(request.headers)
        assert (b"x-server", b"2") in client.handshake_headers
        assert b"sec-websocket-accept" in dict(client.handshake_headers)
        assert (b"x-client", b"1") in server.handshake_headers
        assert dict(server.handshake_headers)[b"host"] == b"example.com"
        for ws in (client, server):
            assert all(name == name.lower() for name, _ in ws.handshake_headers)
        await client.aclose()


@pytest.mark.parametrize(
    ("host", "sent"),
    [
        ("example.com", b"example.com"),
        ("example.com:8080", b"example.com:8080"),
        ("example.com:80", b"example.com"),
        ("127.0.0.1:9000", b"127.0.0.1:9000"),
        ("[::1]:8443", b"[::1]:8443"),
        ("[::1]", b"[::1]"),
        ("::1", b"[::1]"),
    ],
    ids=["name", "name-port", "default-port", "ipv4-port", "ipv6-port", "ipv6", "bare-ipv6"],
)
async def test_host_is_sent_as_the_host_header(
    autojump_clock: trio.abc.Clock, host: str, sent: bytes
) -> None:
    """``host`` is the Host header's value, as trio-websocket sends it (port included)."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        client, request, _ = await wrap_pair(nursery, client_stream, server_stream, host=host)
        assert dict(request.headers)[b"host"] == sent
        await client.aclose()


# -- client side: failures ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (
            "example.com:http",
            r"^host must be a host name or address with an optional :port,"
            r" not 'example\.com:http'$",
        ),
        (
            "example.com:",
            r"^host must be a host name or address with an optional :port, not 'example\.com:'$",
        ),
        (
            "[::1]8080",
            r"^host must be a host name or address with an optional :port, not '\[::1\]8080'$",
        ),
        ("[::1", r"^host has an unclosed '\[': '\[::1'$"),
        ("example.com:0", r"^host has a port out of range 1-65535: 'example\.com:0'$"),
        ("example.com:65536", r"^host has a port out of range 1-65535: 'example\.com:65536'$"),
        ("exa mple.com", r"^host 'exa mple\.com' is not a valid host name$"),
    ],
    ids=[
        "named-port",
        "empty-port",
        "junk-after-bracket",
        "unclosed",
        "port-0",
        "port-65536",
        "space",
    ],
)
async def test_bad_host_raises_before_any_io(host: str, message: str) -> None:
    """A bad ``host`` raises ValueError naming it; the stream is left open and untouched."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        with pytest.raises(ValueError, match=message):
            await wrap_client_stream(nursery, client_stream, host, "/")
    await client_stream.send_all(b"still open")
    assert await server_stream.receive_some() == b"still open"


async def test_bad_arguments_raise_before_any_io() -> None:
    """Wrong types and options raise at once, naming the argument; the stream stays open."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        with pytest.raises(TypeError, match=r"^host must be a str, not bytes$"):
            await wrap_client_stream(nursery, client_stream, b"example.com", "/")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"^resource must start with '/', not 'chat'$"):
            await wrap_client_stream(nursery, client_stream, "example.com", "chat")
        with pytest.raises(
            ValueError, match=r"^compression must be 'deflate' or None, not 'gzip'$"
        ):
            await wrap_client_stream(nursery, client_stream, "h", "/", compression="gzip")
        with pytest.raises(ValueError, match=r"^connect_timeout must be > 0 seconds, not 0$"):
            await wrap_client_stream(nursery, client_stream, "h", "/", connect_timeout=0)
    await client_stream.send_all(b"still open")
    assert await server_stream.receive_some() == b"still open"


async def test_silent_server_times_out_and_the_stream_is_closed(
    autojump_clock: trio.abc.Clock,
) -> None:
    """No answer within connect_timeout: ConnectionTimeout, after the request was sent."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        with pytest.raises(
            ConnectionTimeout,
            match=(
                r"^opening a WebSocket connection to example\.com:8080 took more than 5 seconds$"
            ),
        ):
            await wrap_client_stream(
                nursery, client_stream, "example.com:8080", "/", connect_timeout=5
            )
    request = await receive_all(server_stream)  # the request, then EOF: the stream was closed
    assert request.startswith(b"GET / HTTP/1.1\r\n")
    assert request.endswith(b"\r\n\r\n")
    await assert_closed(client_stream)


async def test_server_hanging_up_raises_handshake_error(autojump_clock: trio.abc.Clock) -> None:
    """EOF instead of a response is a HandshakeError, and the client's stream is closed."""
    client_stream, server_stream = trio.testing.memory_stream_pair()

    async def hang_up() -> None:
        await server_stream.receive_some()
        await server_stream.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hang_up)
        with pytest.raises(
            HandshakeError,
            match=r"^connection closed before the handshake response was complete$",
        ):
            await wrap_client_stream(nursery, client_stream, "example.com", "/")
    await assert_closed(client_stream)


async def test_cancelled_client_handshake_closes_the_stream(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Cancellation during the handshake leaves nothing running and the stream closed."""
    client_stream, _server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        with trio.move_on_after(1) as scope:
            await wrap_client_stream(nursery, client_stream, "example.com", "/")
    assert scope.cancelled_caught
    await assert_closed(client_stream)


# -- server side: reject and failures -----------------------------------------------------


async def test_rejected_request_raises_on_the_client_and_closes_both_streams(
    autojump_clock: trio.abc.Clock,
) -> None:
    """request.reject(): the client gets ConnectionRejected with status, headers and body."""
    client_stream, server_stream = trio.testing.memory_stream_pair()

    async def reject() -> None:
        request = await wrap_server_stream(nursery, server_stream)
        await request.reject(403, extra_headers=[("X-Reason", "members only")], body=b"go away")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reject)
        with pytest.raises(ConnectionRejected) as caught:
            await wrap_client_stream(nursery, client_stream, "example.com", "/private")
    assert caught.value.status_code == 403
    assert caught.value.body == b"go away"
    assert (b"x-reason", b"members only") in caught.value.headers
    await assert_closed(client_stream)
    await assert_closed(server_stream)


@pytest.mark.parametrize(
    ("sent", "eof", "error", "message", "status"),
    [
        (
            b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
            False,
            HandshakeError,
            r"^unsupported HTTP method 'POST'$",
            b"405",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            False,
            InvalidHeader,
            r"^missing Upgrade header$",
            b"426",
        ),
        (
            b"GET / HTTP/1.1\r\nHo",
            True,
            HandshakeError,
            r"^connection closed before the request was complete$",
            b"400",
        ),
    ],
    ids=["post", "not-an-upgrade", "eof-mid-request"],
)
async def test_bad_request_is_answered_then_raises(
    autojump_clock: trio.abc.Clock,
    sent: bytes,
    eof: bool,
    error: type[Exception],
    message: str,
    status: bytes,
) -> None:
    """A bad request gets the server's HTTP error response, then the stream is closed."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(sent)
    if eof:
        await client_stream.send_eof()
    async with trio.open_nursery() as nursery:
        with pytest.raises(error, match=message):
            await wrap_server_stream(nursery, server_stream)
    response = await receive_all(client_stream)
    assert response.startswith(b"HTTP/1.1 " + status + b" ")
    await assert_closed(server_stream)


async def test_client_leaving_before_its_request_is_a_handshake_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    """EOF before the first byte: a plain HandshakeError, no answer, the stream closed."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_eof()
    async with trio.open_nursery() as nursery:
        with pytest.raises(
            HandshakeError,
            match=r"^the client closed the connection before sending an opening handshake$",
        ) as caught:
            await wrap_server_stream(nursery, server_stream)
    assert type(caught.value) is HandshakeError
    assert await receive_all(client_stream) == b""
    await assert_closed(server_stream)


async def test_silent_client_times_out_on_the_server(autojump_clock: trio.abc.Clock) -> None:
    """No whole request within connect_timeout: ConnectionTimeout, the stream closed."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    await client_stream.send_all(b"GET / HTTP/1.1\r\n")
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        with pytest.raises(
            ConnectionTimeout,
            match=r"^the client sent no whole opening handshake within 5 seconds$",
        ):
            await wrap_server_stream(nursery, server_stream, connect_timeout=5)
        assert trio.current_time() - start == pytest.approx(5)
    assert await receive_all(client_stream) == b""
    await assert_closed(server_stream)


async def test_server_options_are_checked_before_any_io() -> None:
    """A bad option raises naming it, before reading; the stream is left open."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        with pytest.raises(ValueError, match=r"^message_queue_size must be >= 0, not -1$"):
            await wrap_server_stream(nursery, server_stream, -1)
        with pytest.raises(ValueError, match=r"^compression must be 'deflate' or None, not 'br'$"):
            await wrap_server_stream(nursery, server_stream, compression="br")
    await server_stream.send_all(b"still open")
    assert await client_stream.receive_some() == b"still open"


async def test_accepted_connection_lives_in_the_given_nursery(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Nothing closes a wrapped server connection but its owner: it outlives the request."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        client, _, server = await wrap_pair(nursery, client_stream, server_stream)
        await trio.sleep(3600)
        assert server.closed is None
        await server.send_message("still here")
        assert await client.get_message() == "still here"
        await server.aclose(1001, "bye")
    assert client.closed == CloseReason(1001, "GOING_AWAY", "bye")


# -- receive_buffer_size ------------------------------------------------------------------


class RecordingStream(trio.abc.Stream):
    """Passes everything to ``stream``; records the ``max_bytes`` of each ``receive_some``."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.sizes: list[int | None] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send through."""
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait through."""
        await self.stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Record ``max_bytes``, then receive through."""
        self.sizes.append(max_bytes)
        return await self.stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        """Close through."""
        await self.stream.aclose()


@pytest.mark.parametrize(
    ("options", "expected"),
    [({}, RECEIVE_SIZE), ({"receive_buffer_size": 1}, 1), ({"receive_buffer_size": None}, None)],
    ids=["default", "one-byte", "stream-chooses"],
)
async def test_receive_buffer_size_is_what_each_read_asks_for(
    autojump_clock: trio.abc.Clock, options: dict[str, Any], expected: int | None
) -> None:
    """After the handshake, both ends read ``receive_buffer_size`` bytes at a time."""
    raw_client, raw_server = trio.testing.memory_stream_pair()
    client_stream, server_stream = RecordingStream(raw_client), RecordingStream(raw_server)
    async with trio.open_nursery() as nursery:
        client, _, server = await wrap_pair(
            nursery, client_stream, server_stream, client=options, server=options
        )
        await client.send_message("x" * 100)
        assert await server.get_message() == "x" * 100
        await server.send_message("y" * 100)
        assert await client.get_message() == "y" * 100
        for stream in (client_stream, server_stream):
            assert stream.sizes[-1] == expected
            assert set(stream.sizes) <= {HANDSHAKE_RECEIVE_SIZE, expected}
        await client.aclose()


async def test_server_options_take_trio_websockets_positional_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Positional options bind as trio-websocket's: queue size, max message size, buffer size."""
    raw_client, raw_server = trio.testing.memory_stream_pair()
    server_stream = RecordingStream(raw_server)
    async with trio.open_nursery() as nursery:
        client, _, server = await wrap_pair(
            nursery, raw_client, server_stream, server_args=(0, 10, 3)
        )
        await client.send_message("x" * 11)  # over max_message_size=10: 1009
        with pytest.raises(ConnectionClosed, match=r"^1009 \(MESSAGE_TOO_BIG\)"):
            await server.get_message()
        assert server_stream.sizes[-1] == 3


# -- TLS --------------------------------------------------------------------------------


async def test_tls_streams_over_tcp(
    tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    """TLS streams set up by hand on both ends: wrapped, compressed, endpoints say is_ssl."""
    with trio.fail_after(10):
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listener.socket.getsockname()[1]
        requests: list[WebSocketRequest] = []

        async def serve() -> None:
            tcp = await listener.accept()
            tls = trio.SSLStream(tcp, tls_server_context, server_side=True, https_compatible=True)
            request = await wrap_server_stream(nursery, tls, ping_interval=None)
            requests.append(request)
            ws = await request.accept()
            async for message in ws:
                await ws.send_message(message)

        async with listener, trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            tls = trio.SSLStream(
                tcp, tls_client_context, server_hostname="localhost", https_compatible=True
            )
            ws = await wrap_client_stream(
                nursery, tls, f"localhost:{port}", "/secure", ping_interval=None
            )
            assert ws.remote == Endpoint("127.0.0.1", port, True)
            assert isinstance(ws.local, Endpoint)
            assert ws.local.is_ssl
            assert [type(e) for e in ws.extensions] == [PerMessageDeflate]
            message = "secret " * 1000
            await ws.send_message(message)
            assert await ws.get_message() == message
            assert ws.statistics().wire_bytes_received < len(message) // 10
            await ws.aclose()
        (request,) = requests
        assert request.local == Endpoint("127.0.0.1", port, True)
        assert dict(request.headers)[b"host"] == f"localhost:{port}".encode()
        assert request.path == "/secure"
    assert ws.closed == CloseReason(1000, "NORMAL_CLOSURE", None)
