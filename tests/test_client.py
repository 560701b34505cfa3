"""The client: URL parsing, arguments, connect failures and timeouts, TLS, a websockets server."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
import websockets.sync.server
from helpers import HAS_IPV6

from trio_wsext import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    Endpoint,
    HandshakeError,
    WebSocketRequest,
    WebSocketServer,
    connect_websocket,
    connect_websocket_url,
    open_websocket,
    open_websocket_url,
    serve_websocket,
)
from trio_wsext.client import parse_url
from trio_wsext.exceptions import body_summary
from trio_wsext.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from trio_wsext.frames import CloseReason
from trio_wsext.handshake import ServerHandshake
from trio_wsext.proxies import ProxyError

Handler = Callable[[WebSocketRequest], Awaitable[None]]


async def echo(request: WebSocketRequest) -> None:
    """Accept and echo every message until the client closes."""
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@asynccontextmanager
async def serving(
    handler: Handler = echo,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
    **options: Any,
) -> AsyncIterator[WebSocketServer]:
    """Run our server on ``host``, port 0."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve_websocket, handler, host, 0, ssl_context, **options)
        )
        yield server
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def websockets_server(
    handler: Callable[[websockets.sync.server.ServerConnection], None], **options: Any
) -> AsyncIterator[int]:
    """Run websockets' sync server in a thread on 127.0.0.1; yield its port."""
    server = websockets.sync.server.serve(handler, "127.0.0.1", 0, **options)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, server.serve_forever)
        try:
            yield server.socket.getsockname()[1]
        finally:
            await trio.to_thread.run_sync(server.shutdown)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://example.com", ("example.com", 80, "/", False, None)),
        ("wss://example.com", ("example.com", 443, "/", True, None)),
        ("ws://example.com:8080/chat", ("example.com", 8080, "/chat", False, None)),
        ("ws://[::1]:9000/a/b?x=1&y=2", ("::1", 9000, "/a/b?x=1&y=2", False, None)),
        ("wss://[2001:db8::1]/", ("2001:db8::1", 443, "/", True, None)),
        ("ws://example.com?x", ("example.com", 80, "/?x", False, None)),
        ("WS://Example.COM/", ("example.com", 80, "/", False, None)),
        ("ws://user:p%40ss@example.com/", ("example.com", 80, "/", False, "Basic dXNlcjpwQHNz")),
    ],
    ids=[
        "ws-default-port",
        "wss-default-port",
        "port-and-path",
        "ipv6-path-query",
        "ipv6-wss",
        "query-without-path",
        "uppercase",
        "credentials",
    ],
)
def test_parse_url(url: str, expected: tuple[Any, ...]) -> None:
    """RFC 6455 §3: host, default ports, path and query as the resource."""
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    ("url", "use_tls", "message"),
    [
        (
            "http://example.com/",
            False,
            r"^WebSocket URL scheme must be 'ws' or 'wss', not 'http'$",
        ),
        ("ws:///path", False, r"^WebSocket URL has no host: 'ws:///path'$"),
        (
            "ws://example.com:99999/",
            False,
            r"^WebSocket URL has an invalid port: 'ws://example\.com:99999/'$",
        ),
        (
            "ws://example.com:0/",
            False,
            r"^WebSocket URL has an invalid port: 'ws://example\.com:0/'$",
        ),
        (
            "ws://example.com/#top",
            False,
            r"^WebSocket URL must not have a fragment: 'ws://example\.com/#top'$",
        ),
        ("ws://example.com/", True, r"^ssl_context must be None for a ws:// URL$"),
    ],
    ids=["http", "no-host", "bad-port", "port-0", "fragment", "context-for-ws"],
)
def test_parse_url_refuses(url: str, use_tls: bool, message: str) -> None:
    """Every malformed URL gets a ValueError naming the problem."""
    context = ssl.create_default_context() if use_tls else None
    with pytest.raises(ValueError, match=message):
        parse_url(url, context)


def test_parse_url_keeps_the_given_context_for_wss() -> None:
    """A wss URL with ssl_context uses that context."""
    context = ssl.create_default_context()
    assert parse_url("wss://example.com/", context)[3] is context


# -- arguments and connect failures ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"compression": "gzip"},
            ValueError,
            r"^compression must be 'deflate' or None, not 'gzip'$",
        ),
        (
            {"use_ssl": "yes"},
            TypeError,
            r"^use_ssl must be True, False or an ssl\.SSLContext, not 'yes'$",
        ),
        (
            {"connect_timeout": 0},
            ValueError,
            r"^connect_timeout must be > 0 seconds, not 0$",
        ),
        ({"message_queue_size": -1}, ValueError, r"^message_queue_size must be >= 0, not -1$"),
    ],
    ids=["compression", "use-ssl", "connect-timeout", "queue-size"],
)
async def test_bad_arguments_raise_before_connecting(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Arguments are checked before any socket is opened (port 1 is never reached)."""
    with pytest.raises(error, match=message):
        async with open_websocket("127.0.0.1", 1, **options):
            pass  # pragma: no cover


async def test_connection_refused_is_a_handshake_error() -> None:
    """Nobody listening: HandshakeError naming the address, the OSError as cause."""
    port = _free_port()
    with trio.fail_after(10), pytest.raises(HandshakeError) as caught:
        async with open_websocket("127.0.0.1", port):
            pass  # pragma: no cover
    assert str(caught.value) == f"cannot connect to 127.0.0.1:{port}: connection refused"
    assert isinstance(caught.value.__cause__, OSError)


async def test_a_plain_http_answer_shows_its_status_and_one_line(nursery: trio.Nursery) -> None:
    """A web server's HTML error page reads as its title, not as 11 lines of markup."""
    page = (
        b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
        b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
        b"</body>\r\n</html>\r\n"
    )

    async def web_server(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        head = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
        await stream.send_all(head % len(page) + page)
        await stream.aclose()

    listeners = await nursery.start(trio.serve_tcp, web_server, 0)
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(10), pytest.raises(ConnectionRejected) as caught:
        async with open_websocket("127.0.0.1", port):
            pass  # pragma: no cover
    assert str(caught.value) == "server rejected WebSocket connection: HTTP 404: 404 Not Found"
    assert caught.value.body == page


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        (None, ""),
        (b"", ""),
        (b"\n\n  members only  \n", "members only"),
        (b"first\nsecond", "first ..."),
        (b"x" * 500, "x" * 120 + " ..."),
        (b"<HTML><TITLE>Service\n  Unavailable</TITLE>", "Service Unavailable"),
        ("caf\u00e9".encode(), "caf\u00e9"),
    ],
)
def test_body_summary(body: bytes | None, summary: str) -> None:
    assert body_summary(body) == summary


async def test_connect_timeout_covers_a_silent_server() -> None:
    """A server that accepts TCP and never answers: ConnectionTimeout after connect_timeout."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    try:
        with trio.fail_after(10), pytest.raises(ConnectionTimeout) as caught:
            async with open_websocket("127.0.0.1", port, connect_timeout=0.3):
                pass  # pragma: no cover
    finally:
        await listeners[0].aclose()
    assert str(caught.value) == (
        f"opening a WebSocket connection to 127.0.0.1:{port} took more than 0.3 seconds"
    )


async def test_server_closing_during_the_handshake_is_a_handshake_error() -> None:
    """EOF instead of a response: HandshakeError, not a hang."""

    async def hang_up(stream: trio.SocketStream) -> None:
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, hang_up, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(10), pytest.raises(HandshakeError, match=r"^connection closed"):
            async with open_websocket("127.0.0.1", port):
                pass  # pragma: no cover
        nursery.cancel_scope.cancel()


async def test_rejection_raises_connection_rejected() -> None:
    """The server's reject(403, body) is ConnectionRejected with status and body."""

    async def handler(request: WebSocketRequest) -> None:
        await request.reject(403, body=b"members only")

    with trio.fail_after(10):
        async with serving(handler) as server:
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/"):
                    pass  # pragma: no cover
    assert (caught.value.status_code, caught.value.body) == (403, b"members only")
    assert str(caught.value) == "server rejected WebSocket connection: HTTP 403: members only"


# -- open_websocket's block ------------------------------------------------------------------


def _recording_handler(closes: list[CloseReason | None]) -> Handler:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            async for message in ws:
                await ws.send_message(message)
        except ConnectionClosed:
            pass
        closes.append(ws.closed)

    return handler


async def test_leaving_the_block_closes_with_1000() -> None:
    """A normal exit runs the closing handshake with 1000."""
    closes: list[CloseReason | None] = []
    with trio.fail_after(10):
        async with serving(_recording_handler(closes)) as server:
            async with open_websocket("127.0.0.1", server.port) as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"
            assert ws.closed == CloseReason(1000, "NORMAL_CLOSURE", None)
    assert closes == [CloseReason(1000, "NORMAL_CLOSURE", None)]


async def test_exception_in_the_block_is_raised_unwrapped_and_closes_with_1011() -> None:
    """The caller's exception comes out as itself (no ExceptionGroup); the server sees 1011."""
    closes: list[CloseReason | None] = []
    with trio.fail_after(10):
        async with serving(_recording_handler(closes)) as server:
            with pytest.raises(KeyError, match=r"^'mine'$"):
                async with open_websocket("127.0.0.1", server.port):
                    raise KeyError("mine")
    assert closes == [CloseReason(1011, "INTERNAL_ERROR", None)]


async def test_disconnect_timeout_when_the_server_never_answers_the_close() -> None:
    """A server that ignores our close frame: DisconnectionTimeout after disconnect_timeout."""

    async def mute_server(stream: trio.SocketStream) -> None:
        handshake = ServerHandshake()
        request = None
        while request is None:
            request = handshake.receive_data(bytes(await stream.receive_some(65536)))
        response, _, _ = handshake.accept(request)
        await stream.send_all(response)
        while await stream.receive_some(65536):  # read, never answer, until the client leaves
            pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, mute_server, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(10), pytest.raises(DisconnectionTimeout) as caught:
            async with open_websocket("127.0.0.1", port, disconnect_timeout=0.3) as ws:
                await ws.send_message("hello?")
        assert str(caught.value) == (
            "the server did not finish the closing handshake within 0.3 seconds"
        )
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("by_url", [False, True], ids=["host-port", "url"])
async def test_connect_websocket_runs_in_the_callers_nursery(by_url: bool) -> None:
    """connect_websocket[_url] returns an open connection; aclose() ends it."""
    with trio.fail_after(10):
        async with serving() as server, trio.open_nursery() as nursery:
            if by_url:
                ws = await connect_websocket_url(nursery, f"ws://127.0.0.1:{server.port}/u")
            else:
                ws = await connect_websocket(nursery, "127.0.0.1", server.port, "/u")
            assert ws.path == "/u"
            await ws.send_message(b"x")
            assert await ws.get_message() == b"x"
            await ws.aclose()
            assert ws.closed == CloseReason(1000, "NORMAL_CLOSURE", None)


async def test_request_carries_host_headers_subprotocols_and_credentials() -> None:
    """What the client sends reaches the server's request."""
    requests: list[WebSocketRequest] = []

    async def handler(request: WebSocketRequest) -> None:
        requests.append(request)
        ws = await request.accept(request.subprotocols[-1])
        await ws.send_message("ok")

    with trio.fail_after(10):
        async with serving(handler) as server:
            url = f"ws://me:secret@127.0.0.1:{server.port}/q?a=1"
            async with open_websocket_url(
                url, subprotocols=["v1", "v2"], extra_headers=[("X-App", "demo")]
            ) as ws:
                assert ws.subprotocol == "v2"
                assert await ws.get_message() == "ok"
    (request,) = requests
    headers = dict(request.headers)
    assert request.path == "/q?a=1"
    assert headers[b"host"] == f"127.0.0.1:{server.port}".encode()
    assert headers[b"x-app"] == b"demo"
    assert headers[b"authorization"] == b"Basic bWU6c2VjcmV0"
    assert request.subprotocols == ["v1", "v2"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, [PerMessageDeflate]),
        ({"compression": None}, []),
        (
            {"extensions": [ClientPerMessageDeflateFactory(client_max_window_bits=10)]},
            [PerMessageDeflate],
        ),
    ],
    ids=["default-deflate", "off", "own-factory"],
)
async def test_compression_option(options: dict[str, Any], expected: list[type]) -> None:
    """compression="deflate" adds deflate unless a factory is given; None turns it off."""
    with trio.fail_after(10):
        async with serving() as server, open_websocket("127.0.0.1", server.port, **options) as ws:
            assert [type(ext) for ext in ws.extensions] == expected
            if "extensions" in options:
                assert isinstance(ws.extensions[0], PerMessageDeflate)
                assert ws.extensions[0].client_max_window_bits == 10
            await ws.send_message("abc" * 1000)
            assert await ws.get_message() == "abc" * 1000


# -- TLS and IPv6 ---------------------------------------------------------------------------


async def test_use_ssl_with_a_context(
    tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    """use_ssl=SSLContext connects over TLS, verified against the test CA."""
    with trio.fail_after(10):
        async with (
            serving(ssl_context=tls_server_context) as server,
            open_websocket("127.0.0.1", server.port, use_ssl=tls_client_context) as ws,
        ):
            await ws.send_message("over TLS")
            assert await ws.get_message() == "over TLS"


async def test_untrusted_certificate_is_a_handshake_error(
    tls_server_context: ssl.SSLContext,
) -> None:
    """The default context does not trust the test CA: HandshakeError, stream closed."""
    with trio.fail_after(10):
        async with serving(ssl_context=tls_server_context) as server:
            with pytest.raises(HandshakeError, match=r"certificate verify failed"):
                async with open_websocket_url(f"wss://127.0.0.1:{server.port}/"):
                    pass  # pragma: no cover


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")
async def test_ipv6_url() -> None:
    """ws://[::1]:port/ connects, and Host carries the brackets."""
    hosts: list[bytes] = []

    async def handler(request: WebSocketRequest) -> None:
        hosts.append(dict(request.headers)[b"host"])
        await echo(request)

    with trio.fail_after(10):
        async with (
            serving(handler, "::1") as server,
            open_websocket_url(f"ws://[::1]:{server.port}/") as ws,
        ):
            await ws.send_message("v6")
            assert await ws.get_message() == "v6"
    assert hosts == [f"[::1]:{server.port}".encode()]


# -- an independent server: websockets ------------------------------------------------------------


def _websockets_echo(ws: websockets.sync.server.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


@pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])
async def test_our_client_talks_to_the_websockets_sync_server(compression: str | None) -> None:
    """Echo of text, binary and 100 KB, a ping, and a clean close against websockets."""
    messages: list[str | bytes] = ["text é", b"\x00binary", "x" * 100_000]
    with trio.fail_after(15):
        async with (
            websockets_server(_websockets_echo, compression=compression) as port,
            open_websocket_url(f"ws://127.0.0.1:{port}/") as ws,
        ):
            expected = [] if compression is None else [PerMessageDeflate]
            assert [type(ext) for ext in ws.extensions] == expected
            for message in messages:
                await ws.send_message(message)
                assert await ws.get_message() == message
            await ws.ping()
            statistics = ws.statistics()
    assert ws.closed == CloseReason(1000, "NORMAL_CLOSURE", None)
    assert statistics.messages_sent == statistics.messages_received == 3
    if compression is not None:
        assert statistics.wire_bytes_sent < statistics.bytes_sent


async def test_websockets_server_closing_ends_our_iteration() -> None:
    """The server closes with 1001 after one message: async for ends, no timeout waited."""

    def say_goodbye(ws: websockets.sync.server.ServerConnection) -> None:
        ws.send("bye")
        ws.close(1001, "going")

    with trio.fail_after(10):
        async with (
            websockets_server(say_goodbye) as port,
            open_websocket("127.0.0.1", port, disconnect_timeout=60) as ws,
        ):
            assert [message async for message in ws] == ["bye"]
    assert ws.closed == CloseReason(1001, "GOING_AWAY", "going")


@pytest.mark.parametrize(
    ("extra_headers", "expected"),
    [
        ({"X-App": "demo"}, b"Basic bWU6c2VjcmV0"),
        ({"Authorization": "Bearer abc"}, b"Bearer abc"),
        ([(b"authorization", b"Bearer abc")], b"Bearer abc"),
    ],
    ids=["mapping", "explicit-wins", "explicit-bytes-wins"],
)
async def test_url_credentials_and_explicit_authorization(
    extra_headers: Any, expected: bytes
) -> None:
    """URL credentials become Basic auth unless extra_headers has an Authorization."""
    seen: list[bytes] = []

    async def handler(request: WebSocketRequest) -> None:
        seen.append(dict(request.headers)[b"authorization"])
        await request.reject(401)

    with trio.fail_after(10):
        async with serving(handler) as server:
            url = f"ws://me:secret@127.0.0.1:{server.port}/"
            with pytest.raises(ConnectionRejected):
                async with open_websocket_url(url, extra_headers=extra_headers):
                    pass  # pragma: no cover
    assert seen == [expected]


# -- through a proxy (an HTTP CONNECT proxy of the test's own; real ones: tests/deploy) ------


async def _relay(source: trio.abc.Stream, sink: trio.abc.Stream, done: trio.CancelScope) -> None:
    """Copy ``source`` to ``sink`` until EOF or an error, then end the other direction too."""
    try:
        while data := await source.receive_some():
            await sink.send_all(data)
    except trio.BrokenResourceError:
        pass
    done.cancel()


@asynccontextmanager
async def connect_proxy(heads: list[bytes]) -> AsyncIterator[int]:
    """Run a minimal CONNECT proxy on 127.0.0.1; record each request head; yield its port."""

    async def handle(stream: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some()
        heads.append(head)
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        async with await trio.open_tcp_stream(host.strip("[]"), int(port)) as upstream:
            await stream.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_relay, upstream, stream, nursery.cancel_scope)
                nursery.start_soon(_relay, stream, upstream, nursery.cancel_scope)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any proxy variable."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    return monkeypatch


async def test_client_connects_through_the_proxy_the_environment_names(
    environ: pytest.MonkeyPatch,
) -> None:
    """proxy=True (the default) takes http_proxy for a ws URL: CONNECT host:port, then echo."""
    heads: list[bytes] = []
    with trio.fail_after(10):
        async with serving() as server, connect_proxy(heads) as proxy_port:
            environ.setenv("http_proxy", f"http://127.0.0.1:{proxy_port}")
            async with open_websocket_url(f"ws://127.0.0.1:{server.port}/p") as ws:
                await ws.send_message("proxied")
                assert await ws.get_message() == "proxied"
    (head,) = heads
    assert head.startswith(f"CONNECT 127.0.0.1:{server.port} HTTP/1.1\r\n".encode())


async def test_client_runs_tls_with_the_target_inside_the_tunnel(
    environ: pytest.MonkeyPatch,
    tls_server_context: ssl.SSLContext,
    tls_client_context: ssl.SSLContext,
) -> None:
    """wss through an explicit proxy URL: the certificate is checked for the target's name."""
    heads: list[bytes] = []
    with trio.fail_after(10):
        async with serving(ssl_context=tls_server_context) as server, connect_proxy(heads) as port:
            url = f"wss://localhost:{server.port}/"
            proxy = f"http://127.0.0.1:{port}"
            async with open_websocket_url(url, tls_client_context, proxy=proxy) as ws:
                assert ws.remote == Endpoint("127.0.0.1", port, is_ssl=True)  # the proxy
                await ws.send_message("tls in the tunnel")
                assert await ws.get_message() == "tls in the tunnel"
    assert heads[0].startswith(f"CONNECT localhost:{server.port} HTTP/1.1\r\n".encode())


async def test_client_with_proxy_none_ignores_the_environment(
    environ: pytest.MonkeyPatch,
) -> None:
    """proxy=None connects directly although the environment names a proxy (port 1: unused)."""
    environ.setenv("http_proxy", "http://127.0.0.1:1")
    environ.setenv("all_proxy", "http://127.0.0.1:1")
    with trio.fail_after(10):
        async with serving() as server:
            async with open_websocket("127.0.0.1", server.port, proxy=None) as ws:
                await ws.send_message("direct")
                assert await ws.get_message() == "direct"
            with pytest.raises(ProxyError, match=r"^could not connect to proxy 127\.0\.0\.1:1: "):
                async with open_websocket("127.0.0.1", server.port):
                    pass  # pragma: no cover


async def test_client_names_a_proxy_it_cannot_reach(environ: pytest.MonkeyPatch) -> None:
    """Nobody listens where the proxy should: ProxyError 'could not connect to proxy host:port'."""
    port = _free_port()
    with trio.fail_after(10), pytest.raises(ProxyError) as caught:
        async with open_websocket_url("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}"):
            pass  # pragma: no cover
    assert str(caught.value).startswith(f"could not connect to proxy 127.0.0.1:{port}: ")
    assert isinstance(caught.value, HandshakeError)
    assert isinstance(caught.value.__cause__, OSError)
