"""The server: handshake handling, handlers, timeouts, real sockets, TLS, a websockets client."""

from __future__ import annotations

import gc
import logging
import re
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
import websockets.sync.client
from helpers import (
    HAS_IPV6,
    MemoryListener,
    SimpleEncryptionClientFactory,
    SimpleEncryptionServerFactory,
    handshake_client,
    receive_all,
)

from trio_wsext import (
    ConnectionClosed,
    ConnectionRejected,
    Endpoint,
    HandshakeError,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
    open_websocket_url,
    serve_websocket,
)
from trio_wsext.extensions.permessage_deflate import (
    PerMessageDeflate,
    enable_client_permessage_deflate,
)
from trio_wsext.frames import CloseReason
from trio_wsext.handshake import ClientHandshake

Handler = Callable[[WebSocketRequest], Awaitable[None]]


async def echo(request: WebSocketRequest) -> None:
    """Accept and echo every message until the client closes."""
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@asynccontextmanager
async def serving(handler: Handler, **options: Any) -> AsyncIterator[MemoryListener]:
    """Run a WebSocketServer on an in-memory listener; yield the listener to connect to."""
    listener = MemoryListener()
    options.setdefault("ping_interval", None)
    server = WebSocketServer(handler, [listener], **options)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        yield listener
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def serving_tcp(
    handler: Handler,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
    **options: Any,
) -> AsyncIterator[WebSocketServer]:
    """Run serve_websocket on ``host``, port 0; yield the server."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve_websocket, handler, host, 0, ssl_context, **options)
        )
        yield server
        nursery.cancel_scope.cancel()


def _request(resource: str = "/") -> bytes:
    return ClientHandshake("example.com", 80, resource).request_bytes()


# -- accepting, rejecting, the request --------------------------------------------------------


async def test_server_accepts_and_negotiates_deflate_by_default(
    autojump_clock: trio.abc.Clock,
) -> None:
    """compression="deflate" (the default) answers a deflate offer; messages echo."""
    connections: list[WebSocketConnection] = []

    async def handler(request: WebSocketRequest) -> None:
        connections.append(await request.accept())
        await connections[0].send_message(await connections[0].get_message())

    factories = enable_client_permessage_deflate(None)
    async with serving(handler) as listener, trio.open_nursery() as nursery:
        client = await handshake_client(nursery, await listener.connect(), extensions=factories)
        await client.send_message("hello " * 100)
        assert await client.get_message() == "hello " * 100
        assert [type(ext) for ext in client.extensions] == [PerMessageDeflate]
        assert [type(ext) for ext in connections[0].extensions] == [PerMessageDeflate]
        assert client.statistics().wire_bytes_sent < 600  # compressed
        await client.aclose()


async def test_accepted_request_lets_go_of_its_opening_handshake(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Once accepted, nothing keeps the h11 handshake state alive for the connection's life."""
    handshakes: list[weakref.ref[object]] = []

    async def handler(request: WebSocketRequest) -> None:
        handshakes.append(weakref.ref(request._handshake))
        ws = await request.accept()
        gc.collect()
        await ws.send_message("alive" if handshakes[0]() is None else "leaked")
        with pytest.raises(RuntimeError, match=r"^this request was already accepted$"):
            await request.reject(400)
        await ws.get_message()

    async with serving(handler) as listener, trio.open_nursery() as nursery:
        client = await handshake_client(nursery, await listener.connect())
        assert await client.get_message() == "alive"
        await client.aclose()


async def test_server_without_compression_negotiates_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    """compression=None declines the client's deflate offer."""
    factories = enable_client_permessage_deflate(None)
    async with serving(echo, compression=None) as listener, trio.open_nursery() as nursery:
        client = await handshake_client(nursery, await listener.connect(), extensions=factories)
        assert client.extensions == []
        await client.send_message(b"raw")
        assert await client.get_message() == b"raw"
        await client.aclose()


async def test_request_shows_what_the_client_sent(autojump_clock: trio.abc.Clock) -> None:
    """path, headers, offered subprotocols and extensions; accept's subprotocol and headers."""
    seen: dict[str, Any] = {}

    async def handler(request: WebSocketRequest) -> None:
        seen.update(
            path=request.path,
            headers=request.headers,
            subprotocols=request.subprotocols,
            proposed=request.proposed_subprotocols,
            extensions=request.extensions,
            local=request.local,
            remote=request.remote,
            repr=repr(request),
        )
        ws = await request.accept("superchat", [("X-Reply", "yes")])
        seen["server_subprotocol"] = ws.subprotocol
        seen["server_path"] = ws.path
        await ws.get_message()

    async with serving(handler, compression=None) as listener, trio.open_nursery() as nursery:
        client = await handshake_client(
            nursery,
            await listener.connect(),
            "/room?id=7",
            subprotocols=["chat", "superchat"],
            extensions=enable_client_permessage_deflate(None),
            extra_headers=[("X-Token", "t0k")],
        )
        assert client.subprotocol == "superchat"
        assert (b"x-reply", b"yes") in client.response_headers
        await client.aclose()
    assert seen["path"] == seen["server_path"] == "/room?id=7"
    assert (b"x-token", b"t0k") in seen["headers"]
    assert seen["subprotocols"] == ["chat", "superchat"]
    assert seen["proposed"] == ("chat", "superchat")
    assert [name for name, _ in seen["extensions"]] == ["permessage-deflate"]
    assert seen["server_subprotocol"] == "superchat"
    assert isinstance(seen["local"], str)  # an in-memory stream has no address
    assert isinstance(seen["remote"], str)
    assert seen["repr"] == f"<WebSocketRequest '/room?id=7' from {seen['remote']}>"


async def test_reject_sends_status_headers_and_body(autojump_clock: trio.abc.Clock) -> None:
    """reject(403, headers, body) reaches the client as ConnectionRejected."""

    async def handler(request: WebSocketRequest) -> None:
        await request.reject(403, [("X-Why", "members only")], b"go away")

    async with serving(handler) as listener, trio.open_nursery() as nursery:
        with pytest.raises(ConnectionRejected) as caught:
            await handshake_client(nursery, await listener.connect())
    assert caught.value.status_code == 403
    assert caught.value.body == b"go away"
    assert (b"x-why", b"members only") in caught.value.headers


@pytest.mark.parametrize(
    ("first", "message"),
    [
        ("accept", r"^this request was already accepted$"),
        ("reject", r"^this request was already rejected$"),
    ],
    ids=["accepted", "rejected"],
)
async def test_request_answered_twice_raises_runtime_error(
    autojump_clock: trio.abc.Clock, first: str, message: str
) -> None:
    """A request is accepted or rejected once."""
    errors: list[BaseException] = []

    async def handler(request: WebSocketRequest) -> None:
        if first == "accept":
            await request.accept()
        else:
            await request.reject(400)
        try:
            await request.accept()
        except RuntimeError as exc:
            errors.append(exc)
        done.set()

    done = trio.Event()
    async with serving(handler) as listener:
        stream = await listener.connect()
        await stream.send_all(_request())
        await done.wait()
    assert len(errors) == 1
    with pytest.raises(RuntimeError, match=message):
        raise errors[0]


async def test_accept_refuses_a_subprotocol_not_offered(autojump_clock: trio.abc.Clock) -> None:
    """accept(subprotocol) must pick an offered one; the request stays open to a retry."""
    errors: list[ValueError] = []

    async def handler(request: WebSocketRequest) -> None:
        try:
            await request.accept("other")
        except ValueError as exc:
            errors.append(exc)
        await request.accept("chat")

    async with serving(handler) as listener, trio.open_nursery() as nursery:
        client = await handshake_client(nursery, await listener.connect(), subprotocols=["chat"])
        assert client.subprotocol == "chat"
        await client.aclose()
    assert [str(error) for error in errors] == [
        "subprotocol 'other' was not offered by the client"
    ]


async def test_handler_that_neither_accepts_nor_rejects_gets_the_tcp_connection_closed(
    autojump_clock: trio.abc.Clock,
) -> None:
    """As in trio-websocket: no HTTP answer, the stream is closed."""

    async def handler(request: WebSocketRequest) -> None:
        pass

    async with serving(handler) as listener:
        stream = await listener.connect()
        await stream.send_all(_request())
        assert await receive_all(stream) == b""


async def test_handler_crash_before_accepting_answers_500_and_is_logged(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The client gets a 500, the error is logged, and the next client is served."""
    calls = 0

    async def handler(request: WebSocketRequest) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ZeroDivisionError("handler bug")
        await echo(request)

    async with serving(handler) as listener, trio.open_nursery() as nursery:
        with pytest.raises(ConnectionRejected) as caught:
            await handshake_client(nursery, await listener.connect())
        assert caught.value.status_code == 500
        client = await handshake_client(nursery, await listener.connect())
        await client.send_message("still serving")
        assert await client.get_message() == "still serving"
        await client.aclose()
    records = [r for r in caplog.records if r.name == "trio_wsext.server"]
    assert [re.sub(r"^conn \d+: ", "", r.getMessage()) for r in records] == [
        "connection handler failed for '/'"
    ]
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], ZeroDivisionError)


async def test_handler_crash_after_accepting_closes_with_1011(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception after accept() closes the connection with 1011 (internal error)."""

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.get_message()
        raise RuntimeError("handler bug")

    async with serving(handler) as listener, trio.open_nursery() as nursery:
        client = await handshake_client(nursery, await listener.connect())
        await client.send_message("trigger")
        with pytest.raises(ConnectionClosed, match=r"^1011 \(INTERNAL_ERROR\)$"):
            await client.get_message()
    assert [r.levelno for r in caplog.records if r.name == "trio_wsext.server"] == [logging.ERROR]


async def test_handler_returning_closes_with_1000(autojump_clock: trio.abc.Clock) -> None:
    """When the handler returns, the server closes the connection normally."""

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("bye")

    async with serving(handler) as listener, trio.open_nursery() as nursery:
        client = await handshake_client(nursery, await listener.connect())
        assert [message async for message in client] == ["bye"]
        assert client.closed == CloseReason(1000, "NORMAL_CLOSURE", None)


async def test_handler_runs_in_the_given_handler_nursery(autojump_clock: trio.abc.Clock) -> None:
    """handler_nursery= hosts the connection tasks."""
    parents: list[trio.Nursery | None] = []

    async def handler(request: WebSocketRequest) -> None:
        parents.append(trio.lowlevel.current_task().parent_nursery)
        await request.reject(404)

    async with trio.open_nursery() as handler_nursery:
        async with serving(handler, handler_nursery=handler_nursery) as listener:
            stream = await listener.connect()
            await stream.send_all(_request())
            await receive_all(stream)
        handler_nursery.cancel_scope.cancel()
    assert parents == [handler_nursery]


# -- bad clients ----------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: exa"], ids=["silent", "partial"])
async def test_client_without_a_whole_request_is_dropped_after_connect_timeout(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture, sent: bytes
) -> None:
    """A socket that sends nothing (or half a request) holds no slot past connect_timeout."""
    caplog.set_level(logging.INFO, logger="trio_wsext.server")
    async with serving(echo, connect_timeout=7) as listener:
        stream = await listener.connect()
        await stream.send_all(sent)
        start = trio.current_time()
        assert await receive_all(stream) == b""
        assert trio.current_time() - start == pytest.approx(7)
    # Each line starts with the connection's name (the memory stream has no address).
    assert [re.sub(r"^conn \d+: ", "", r.getMessage()) for r in caplog.records] == [
        "dropped a connection that sent no opening handshake within 7 seconds"
    ]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"hello\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"426"),
        (_request().replace(b"Version: 13", b"Version: 12"), b"426"),
    ],
    ids=["not-http", "post", "not-an-upgrade", "version-12"],
)
async def test_malformed_handshake_gets_an_http_error_then_close(
    autojump_clock: trio.abc.Clock, request_bytes: bytes, status: bytes
) -> None:
    """A bad request gets ServerHandshake's error response, then EOF; the server goes on."""
    async with serving(echo) as listener, trio.open_nursery() as nursery:
        stream = await listener.connect()
        await stream.send_all(request_bytes)
        response = await receive_all(stream)
        assert response.startswith(b"HTTP/1.1 " + status + b" ")
        assert re.search(rb"\r\nconnection: [^\r]*close\r\n", response.lower())
        client = await handshake_client(nursery, await listener.connect())
        await client.aclose()


async def test_client_that_connects_and_leaves_is_not_answered(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A port check (connect, close) gets no response and no log line above DEBUG."""
    caplog.set_level(logging.INFO, logger="trio_wsext.server")
    async with serving(echo) as listener:
        stream = await listener.connect()
        await stream.send_eof()  # type: ignore[attr-defined]
        assert await receive_all(stream) == b""
    assert caplog.records == []


# -- the server object ---------------------------------------------------------------------


def test_server_needs_a_listener() -> None:
    """No listeners is a ValueError."""
    with pytest.raises(ValueError, match=r"^listeners must contain at least one listener$"):
        WebSocketServer(echo, [])


def test_port_needs_exactly_one_socket_listener() -> None:
    """.port is for one TCP listener; otherwise RuntimeError says why."""
    one = WebSocketServer(echo, [MemoryListener()])
    with pytest.raises(RuntimeError, match=r"^this listener has no port: <helpers.MemoryListener"):
        _ = one.port
    two = WebSocketServer(echo, [MemoryListener(), MemoryListener()])
    with pytest.raises(RuntimeError, match=r"^this server has 2 listeners; read their ports from"):
        _ = two.port
    assert all(isinstance(listener, str) for listener in two.listeners)


async def test_serve_websocket_refuses_a_bad_compression_before_binding() -> None:
    """compression is "deflate" or None."""
    with pytest.raises(ValueError, match=r"^compression must be 'deflate' or None, not 'gzip'$"):
        await serve_websocket(echo, "127.0.0.1", 0, None, compression="gzip")


# -- real sockets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        pytest.param("::1", marks=pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")),
    ],
    ids=["ipv4", "ipv6"],
)
async def test_serve_websocket_on_port_0(host: str) -> None:
    """Port 0 picks a free port; .port, .listeners and the endpoints report it."""
    with trio.fail_after(10):
        async with serving_tcp(echo, host) as server:
            assert server.port > 0
            assert server.listeners == [Endpoint(host, server.port, False)]
            url = Endpoint(host, server.port, False).url + "/path"
            async with open_websocket_url(url) as ws:
                await ws.send_message("over TCP")
                assert await ws.get_message() == "over TCP"
                assert ws.remote == Endpoint(host, server.port, False)
                assert isinstance(ws.local, Endpoint)


async def test_serve_websocket_over_tls(
    tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    """ssl_context serves wss; the listener and both endpoints say TLS."""
    with trio.fail_after(10):
        async with serving_tcp(echo, ssl_context=tls_server_context) as server:
            assert server.listeners == [Endpoint("127.0.0.1", server.port, True)]
            url = f"wss://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, tls_client_context) as ws:
                await ws.send_message(b"secret" * 1000)
                assert await ws.get_message() == b"secret" * 1000
                assert isinstance(ws.remote, Endpoint)
                assert ws.remote.is_ssl


@pytest.mark.parametrize("password", ["shared-secret-password", "wrong"], ids=["right", "wrong"])
async def test_seed_simple_encryption_negotiated_over_tcp(password: str) -> None:
    """The seed's SimpleEncryption factories, beside deflate; a wrong key is declined."""
    server_extensions: list[list[str]] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        server_extensions.append([ext.name for ext in ws.extensions])
        async for message in ws:
            assert isinstance(message, str)
            await ws.send_message(f"Encrypted echo: {message}")

    factories = [SimpleEncryptionServerFactory("shared-secret-password")]
    client_factories = [SimpleEncryptionClientFactory(password)]
    with trio.fail_after(10):
        async with (
            serving_tcp(handler, extensions=factories) as server,
            open_websocket_url(
                f"ws://127.0.0.1:{server.port}/", extensions=client_factories
            ) as ws,
        ):
            await ws.send_message("This message is encrypted!")
            assert await ws.get_message() == "Encrypted echo: This message is encrypted!"
            names = [ext.name for ext in ws.extensions]
    expected = ["permessage-deflate"]
    if password == "shared-secret-password":
        expected.insert(0, "simple-encrypt")
    assert names == server_extensions[0] == expected


def _websockets_client(url: str, compression: str | None) -> list[Any]:
    """Talk to ``url`` with websockets' sync client; return what it saw (runs in a thread)."""
    results: list[Any] = []
    with websockets.sync.client.connect(
        url, compression=compression, open_timeout=5, close_timeout=5
    ) as ws:
        assert ws.response is not None
        results.append(ws.response.headers.get("Sec-WebSocket-Extensions"))
        messages: list[str | bytes] = ["text é", b"\x00binary", "x" * 100_000]
        for message in messages:
            ws.send(message)
            results.append(ws.recv(timeout=5) == message)
        ws.ping(b"hi").wait(5)
    results.append(ws.close_code)
    return results


@pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])
async def test_websockets_sync_client_talks_to_our_server(compression: str | None) -> None:
    """An independent client (websockets, in a thread): echo, ping, clean close."""
    with trio.fail_after(15):
        async with serving_tcp(echo) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            results = await trio.to_thread.run_sync(_websockets_client, url, compression)
    header, *echoes, close_code = results
    assert echoes == [True, True, True]
    assert close_code == 1000
    if compression is None:
        assert header is None
    else:
        assert header.startswith("permessage-deflate")


@pytest.mark.parametrize("answer", ["accept", "reject"])
async def test_client_gone_before_the_answer(autojump_clock: trio.abc.Clock, answer: str) -> None:
    """accept() to a vanished client raises ConnectionClosed(1006); reject() just closes."""
    outcomes: list[str] = []
    client_gone = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        await client_gone.wait()
        try:
            if answer == "accept":
                await request.accept()
            else:
                await request.reject(503)
            outcomes.append("ok")
        except ConnectionClosed as exc:
            outcomes.append(str(exc))

    async with serving(handler) as listener:
        stream = await listener.connect()
        await stream.send_all(_request())
        await trio.testing.wait_all_tasks_blocked()
        await stream.aclose()
        client_gone.set()
        await trio.testing.wait_all_tasks_blocked()
    expected = "1006 (ABNORMAL_CLOSURE) client went away" if answer == "accept" else "ok"
    assert outcomes == [expected]


async def test_plain_client_on_a_tls_server_is_dropped_and_the_server_goes_on(
    tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    """A ws:// client on a wss:// port fails its handshake; the next TLS client is served."""
    with trio.fail_after(10):
        async with serving_tcp(echo, ssl_context=tls_server_context) as server:
            with pytest.raises(HandshakeError):
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/"):
                    pass  # pragma: no cover
            url = f"wss://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, tls_client_context) as ws:
                await ws.send_message("fine")
                assert await ws.get_message() == "fine"


async def test_server_lingers_after_error_response_so_client_can_finish_sending() -> None:
    """After an HTTP error the server half-closes and drains, so the answer is not reset away."""
    from trio_wsext.server import _send_and_close

    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            _send_and_close, server, b"HTTP/1.1 431 Too Large\r\n\r\n", 10, "conn 1"
        )
        received = b""
        while chunk := await client.receive_some():
            received += chunk
        assert received == b"HTTP/1.1 431 Too Large\r\n\r\n"  # then EOF: a half-close
        await client.send_all(b"x" * 100_000)  # the rest of an oversized head: still read
        await client.aclose()


async def test_server_linger_is_bounded_in_time(autojump_clock: trio.abc.Clock) -> None:
    """A client that neither reads nor closes holds the server for LINGER_SECONDS at most."""
    from trio_wsext.server import LINGER_SECONDS, _send_and_close

    client, server = trio.testing.memory_stream_pair()
    start = trio.current_time()
    await _send_and_close(server, b"HTTP/1.1 400 Bad Request\r\n\r\n", 10, "conn 1")
    assert trio.current_time() - start == pytest.approx(LINGER_SECONDS)
    with pytest.raises(trio.BrokenResourceError):
        await client.send_all(b"more")
