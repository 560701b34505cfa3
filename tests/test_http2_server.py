"""WebSockets over HTTP/2 end to end: our client against our server, over TLS and in cleartext."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import pytest
import trio
import trustme

from trio_wsext import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
    connect_websocket_url,
    open_websocket_url,
    serve_websocket,
)
from trio_wsext.endpoints import Endpoint
from trio_wsext.frames import Close, Frame, Opcode, serialize_frame
from trio_wsext.http2 import Http2Options, Http2Pool, StaticResponse
from trio_wsext.http2.connection import Http2Connection
from trio_wsext.http2.handshake import Http2ClientHandshake, response_status

Handler = Callable[[WebSocketRequest], Awaitable[None]]
TIMEOUT = 10


@pytest.fixture
def ca() -> trustme.CA:
    """A certificate authority of this test's own (the server sets ALPN on its context)."""
    return trustme.CA()


class Recorder:
    """An echo handler that records each request's path, HTTP version and peer."""

    def __init__(self) -> None:
        self.requests: list[WebSocketRequest] = []
        self.connections: list[WebSocketConnection] = []
        self.release = trio.Event()  # ends the /stall handlers

    async def handler(self, request: WebSocketRequest) -> None:
        """Echo every message; ``/stall`` reads nothing; ``/reject/N`` answers N."""
        self.requests.append(request)
        if request.path.startswith("/reject/"):
            await request.reject(int(request.path.rsplit("/", 1)[1]), body=b"go away")
            return
        ws = await request.accept(subprotocol=next(iter(request.subprotocols), None))
        self.connections.append(ws)
        if request.path == "/stall":
            await self.release.wait()
            return
        async for message in ws:
            await ws.send_message(message)

    @property
    def peers(self) -> set[str]:
        """The distinct client addresses (IP and port): one per TCP connection."""
        return {str(request.remote) for request in self.requests}


@asynccontextmanager
async def serving(
    handler: Handler, ca: trustme.CA | None, **options: Any
) -> AsyncIterator[tuple[WebSocketServer, str, ssl.SSLContext | None]]:
    """Serve on 127.0.0.1 port 0 (TLS with ``ca``'s certificate if given).

    Yields the server, its base URL and a client context that trusts it.
    """
    server_context = client_context = None
    if ca is not None:
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(server_context)
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
    options.setdefault("ping_interval", None)
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                handler, "127.0.0.1", 0, server_context, task_status=task_status, **options
            )
        )
        scheme = "wss" if ca is not None else "ws"
        yield server, f"{scheme}://127.0.0.1:{server.port}", client_context
        nursery.cancel_scope.cancel()


MODES = [pytest.param(True, id="tls-alpn"), pytest.param(False, id="cleartext-prior-knowledge")]


def _http2(tls: bool) -> bool | Literal["prior-knowledge"]:
    return True if tls else "prior-knowledge"


@pytest.mark.parametrize("tls", MODES)
async def test_server_answers_http2_and_http11_on_one_port(tls: bool, ca: trustme.CA) -> None:
    """One port: an HTTP/2 client gets http_version "2", an HTTP/1.1 client "1.1"."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serving(recorder.handler, ca if tls else None) as (_, url, context):
            async with open_websocket_url(f"{url}/a", context, http2=_http2(tls)) as ws:
                assert ws.http_version == "2"
                await ws.send_message("over h2")
                assert await ws.get_message() == "over h2"
            async with open_websocket_url(f"{url}/b", context) as ws:
                assert ws.http_version == "1.1"
                await ws.send_message(b"over 1.1")
                assert await ws.get_message() == b"over 1.1"
    assert [(r.path, r.http_version) for r in recorder.requests] == [("/a", "2"), ("/b", "1.1")]
    assert recorder.connections[0].http_version == "2"
    local = recorder.requests[0].local
    assert isinstance(local, Endpoint)
    assert recorder.requests[0].headers[0] == (b"host", f"127.0.0.1:{local.port}".encode())


@pytest.mark.parametrize("tls", MODES)
async def test_pooled_websockets_share_one_tcp_connection(tls: bool, ca: trustme.CA) -> None:
    """Five WebSockets through a pool: one TCP connection (one client port), each echoing."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with (
            serving(recorder.handler, ca if tls else None) as (_, url, context),
            Http2Pool() as pool,
            trio.open_nursery() as nursery,
        ):
            sockets = [
                await connect_websocket_url(
                    nursery, f"{url}/{i}", context, http2=_http2(tls), http2_pool=pool
                )
                for i in range(5)
            ]
            for i, ws in enumerate(sockets):
                await ws.send_message(f"message {i}")
            for i, ws in enumerate(sockets):
                assert await ws.get_message() == f"message {i}"
                await ws.aclose()
            assert pool.connections_opened == 1
    assert len(recorder.requests) == 5
    assert {r.http_version for r in recorder.requests} == {"2"}
    assert len(recorder.peers) == 1


async def test_stalled_websocket_does_not_stop_another_on_its_connection(
    ca: trustme.CA,
) -> None:
    """A handler that reads nothing stops its sender after a window; the other stream echoes on."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with (
            serving(recorder.handler, ca, message_queue_size=1) as (_, url, context),
            Http2Pool() as pool,
            trio.open_nursery() as nursery,
        ):
            stalled = await connect_websocket_url(
                nursery, f"{url}/stall", context, http2=True, http2_pool=pool,
                compression=None,
            )  # fmt: skip
            busy = await connect_websocket_url(
                nursery, f"{url}/echo", context, http2=True, http2_pool=pool
            )
            sent = 0
            with trio.move_on_after(1) as flooding:
                while True:
                    await stalled.send_message(b"z" * 4096)
                    sent += 4096
            # The flood was held back: the peer's window, the engine's queue and
            # the write limits, far below what a second of loopback could carry.
            assert flooding.cancelled_caught
            assert sent < 1024 * 1024, sent
            for i in range(100):
                await busy.send_message(f"still flowing {i}")
                assert await busy.get_message() == f"still flowing {i}"
            assert pool.connections_opened == 1
            recorder.release.set()
            nursery.cancel_scope.cancel()


async def test_closing_one_websocket_leaves_the_others_open(ca: trustme.CA) -> None:
    """One WebSocket closes (1000, END_STREAM both ways); the others on its connection go on."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with (
            serving(recorder.handler, ca) as (_, url, context),
            Http2Pool() as pool,
            trio.open_nursery() as nursery,
        ):
            first, second, third = [
                await connect_websocket_url(nursery, url, context, http2=True, http2_pool=pool)
                for _ in range(3)
            ]
            connection = pool.connections[0]
            await second.aclose()
            assert second.closed is not None
            assert second.closed.code == 1000
            for ws in (first, third):
                await ws.send_message("after one closed")
                assert await ws.get_message() == "after one closed"
            assert len(connection.streams) == 2
            await first.aclose()
            await third.aclose()
    assert len(recorder.peers) == 1


async def test_server_shutdown_sends_goaway_and_1001_to_every_stream(ca: trustme.CA) -> None:
    """server.aclose(): GOAWAY on the connection, 1001 on each of its WebSockets, socket closed."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with (
            serving(recorder.handler, ca) as (server, url, context),
            Http2Pool() as pool,
            trio.open_nursery() as nursery,
        ):
            sockets = [
                await connect_websocket_url(nursery, url, context, http2=True, http2_pool=pool)
                for _ in range(3)
            ]
            connection = pool.connections[0]
            await server.aclose()
            for ws in sockets:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.get_message()
                assert closed.value.reason.code == 1001
            assert connection.peer_goaway is not None
            assert connection.peer_goaway.error_code == 0
            await connection.wait_finished()
            assert not pool.connections


@pytest.mark.parametrize("status", [400, 403, 404, 503])
async def test_handler_reject_answers_its_status_over_http2(status: int, ca: trustme.CA) -> None:
    """reject(status, body=...) reaches the client as ConnectionRejected with both."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serving(recorder.handler, ca) as (_, url, context):
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket_url(f"{url}/reject/{status}", context, http2=True):
                    pass  # pragma: no cover - rejected
    assert rejected.value.status_code == status
    assert rejected.value.body == b"go away"
    assert recorder.requests[0].http_version == "2"


async def test_origin_check_refuses_over_http2(ca: trustme.CA) -> None:
    """origins applies to HTTP/2 requests as to HTTP/1.1 ones: 403."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serving(recorder.handler, ca, origins=["https://ok.example"]) as (
            _,
            url,
            context,
        ):
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket_url(
                    url, context, http2=True, extra_headers={"Origin": "https://evil.example"}
                ):
                    pass  # pragma: no cover - rejected
            async with open_websocket_url(
                url, context, http2=True, extra_headers={"Origin": "https://ok.example"}
            ) as ws:
                assert ws.http_version == "2"
    assert rejected.value.status_code == 403
    assert recorder.requests[0].headers[-1] == (b"origin", b"https://ok.example")


async def test_compression_is_negotiated_per_stream(ca: trustme.CA) -> None:
    """On one connection, a WebSocket with permessage-deflate and one without."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with (
            serving(recorder.handler, ca) as (_, url, context),
            Http2Pool() as pool,
            open_websocket_url(url, context, http2=True, http2_pool=pool) as deflated,
            open_websocket_url(
                url, context, http2=True, http2_pool=pool, compression=None
            ) as plain,
        ):
            assert [e.name for e in deflated.extensions] == ["permessage-deflate"]
            assert plain.extensions == []
            message = "compressible " * 4000
            for ws in (deflated, plain):
                await ws.send_message(message)
                assert await ws.get_message() == message
            assert deflated.statistics().wire_bytes_sent < len(message) / 10
            assert plain.statistics().wire_bytes_sent > len(message)
            assert pool.connections_opened == 1


@pytest.mark.parametrize("alpn", [None, ["http/1.1"]], ids=["no-alpn", "alpn-http11"])
async def test_client_falls_back_to_http11_when_alpn_does_not_choose_h2(
    alpn: list[str] | None, ca: trustme.CA
) -> None:
    """A TLS server without h2 in ALPN: http2=True gets HTTP/1.1 on that same connection."""
    recorder = Recorder()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    if alpn is not None:
        server_context.set_alpn_protocols(alpn)  # the owner's choice: left alone
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(
                lambda task_status: serve_websocket(
                    recorder.handler,
                    "127.0.0.1",
                    0,
                    server_context,
                    http2=alpn is not None,  # no ALPN: a server without HTTP/2
                    task_status=task_status,
                )
            )
            url = f"wss://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, client_context, http2=True) as ws:
                assert ws.http_version == "1.1"
                await ws.send_message("fallback")
                assert await ws.get_message() == "fallback"
            nursery.cancel_scope.cancel()
    assert [r.http_version for r in recorder.requests] == ["1.1"]


async def test_client_falls_back_when_settings_do_not_enable_connect(
    ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An h2 server without SETTINGS_ENABLE_CONNECT_PROTOCOL: a fresh HTTP/1.1 connection."""
    original = Http2Connection.__init__

    def without_connect_protocol(self: Http2Connection, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not self.client:  # an HTTP/2 server that does not do RFC 8441
            import h2.settings

            self.h2.local_settings = h2.settings.Settings(client=False)

    monkeypatch.setattr(Http2Connection, "__init__", without_connect_protocol)
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with (
            serving(recorder.handler, ca) as (_, url, context),
            open_websocket_url(url, context, http2=True) as ws,
        ):
            assert ws.http_version == "1.1"
            await ws.send_message("fresh connection")
            assert await ws.get_message() == "fresh connection"
    assert [r.http_version for r in recorder.requests] == ["1.1"]


async def test_prior_knowledge_against_an_http11_only_server_fails() -> None:
    """Prior knowledge is a promise: an HTTP/1.1 server's answer is a HandshakeError."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serving(recorder.handler, None, http2=False) as (_, url, _context):
            with pytest.raises(HandshakeError, match=r"did not answer in HTTP/2"):
                async with open_websocket_url(url, http2="prior-knowledge"):
                    pass  # pragma: no cover - refused


async def _plain_request(url: str, method: bytes, path: bytes) -> tuple[int, bytes]:
    """Send one plain request over HTTP/2 (prior knowledge); return its status and body."""
    port = int(url.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    connection = Http2Connection(stream, client=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(connection.run)
        await connection.wait_settings()
        request = [
            (b":method", method),
            (b":scheme", b"http"),
            (b":path", path),
            (b":authority", b"127.0.0.1"),
        ]
        h2_stream = connection.open_stream(request)
        status = response_status(await h2_stream.receive_headers())
        body = b""
        while data := await h2_stream.receive_some():
            body += data
        await h2_stream.aclose()
        nursery.cancel_scope.cancel()
    return status, body


async def test_plain_get_over_http2_gets_405_or_its_static_answer() -> None:
    """A GET is no WebSocket: 405 naming extended CONNECT, unless Http2Options.static has it."""
    recorder = Recorder()
    static = {"/page": StaticResponse(b"<p>hello</p>")}
    with trio.fail_after(TIMEOUT):
        async with serving(recorder.handler, None, http2=Http2Options(static=static)) as (
            _,
            url,
            _context,
        ):
            assert await _plain_request(url, b"GET", b"/page?x=1") == (200, b"<p>hello</p>")
            assert await _plain_request(url, b"HEAD", b"/page") == (200, b"")
            status, body = await _plain_request(url, b"GET", b"/other")
    assert status == 405
    assert b"extended CONNECT (RFC 8441)" in body
    assert recorder.requests == []


async def test_http2_without_h2_installed_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asking the client for HTTP/2 without h2: ImportError naming trio_wsext[http2], no I/O."""
    monkeypatch.setattr("trio_wsext.http2.settings.h2_available", lambda: False)
    with pytest.raises(ImportError, match=r"trio_wsext\[http2\]"):
        async with open_websocket_url("wss://127.0.0.1:1/", http2=True):
            pass  # pragma: no cover - refused


async def test_server_answers_a_close_frame_that_came_with_end_stream() -> None:
    """Chromium sets END_STREAM on its close frame: the server still sends its own close frame.

    RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not
    previously send a Close frame, the endpoint MUST send a Close frame in
    response"; without it chromium reports 1006 instead of 1000. Whether the
    server's reader sees the EOF before its writer took the close frame
    depends on trio's (shuffled) scheduling order: 20 rounds.
    """
    recorder = Recorder()
    close = Frame(Opcode.CLOSE, Close(1000, "bye").serialize())
    missing = 0
    with trio.fail_after(TIMEOUT):
        async with serving(recorder.handler, None) as (_, url, _context):
            port = int(url.rsplit(":", 1)[1])
            request = Http2ClientHandshake("127.0.0.1", port, "/", secure=False).request_headers
            for _ in range(20):
                connection = Http2Connection(
                    await trio.open_tcp_stream("127.0.0.1", port), client=True
                )
                async with trio.open_nursery() as nursery:
                    await nursery.start(connection.run)
                    await connection.wait_settings()
                    stream = connection.open_stream(request)
                    await stream.receive_headers()
                    # One DATA frame: the close frame, with END_STREAM.
                    connection.h2.send_data(
                        stream.stream_id, serialize_frame(close, mask=True), end_stream=True
                    )
                    stream._local_ended = True
                    connection.kick()
                    received = b""
                    while data := await stream.receive_some():
                        received += data
                    missing += received != serialize_frame(close, mask=False)
                    nursery.cancel_scope.cancel()
    assert missing == 0
