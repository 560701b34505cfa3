"""WebSocket over Unix sockets: serve_websocket_unix, open/connect_websocket_unix, endpoints."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio

from trio_wsext import (
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
)
from trio_wsext.client import RedirectError, connect_websocket_unix, open_websocket_unix
from trio_wsext.endpoints import unix_endpoint
from trio_wsext.frames import CloseReason
from trio_wsext.server import serve_websocket_unix

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")

Handler = Callable[[WebSocketRequest], Awaitable[None]]


async def echo(request: WebSocketRequest) -> None:
    """Accept and echo every message until the client closes."""
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@pytest.fixture
def socket_path() -> Iterator[str]:
    """A path for a socket file in a fresh directory (short: sun_path holds 108 bytes)."""
    directory = tempfile.mkdtemp(prefix="wsx")
    try:
        yield os.path.join(directory, "ws.sock")
    finally:
        shutil.rmtree(directory)


@asynccontextmanager
async def serving(
    path: str, handler: Handler = echo, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[WebSocketServer]:
    """Run serve_websocket_unix on ``path`` until the block ends."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve_websocket_unix, handler, path, ssl_context, ping_interval=None)
        )
        yield server
        nursery.cancel_scope.cancel()


async def check_echo(ws: WebSocketConnection) -> None:
    """One message there and back."""
    await ws.send_message("over a Unix socket")
    assert await ws.get_message() == "over a Unix socket"


async def test_client_and_server_talk_over_a_unix_socket(socket_path: str) -> None:
    """Echo over the socket; Host is localhost; each side names the socket as nginx does."""
    requests: list[tuple[Any, Any, bytes, str]] = []

    async def handler(request: WebSocketRequest) -> None:
        host = dict(request.headers)[b"host"]
        requests.append((request.local, request.remote, host, request.path))
        await echo(request)

    with trio.fail_after(10):
        async with (
            serving(socket_path, handler) as server,
            open_websocket_unix(socket_path, "/chat?room=1") as ws,
        ):
            await check_echo(ws)
            assert (ws.local, ws.remote) == ("unix:", f"unix:{socket_path}")
            assert server.listeners == [f"unix:{socket_path}"]
            with pytest.raises(RuntimeError, match=r"^this listener has no port: unix:/"):
                _ = server.port
    assert requests == [(f"unix:{socket_path}", "unix:", b"localhost", "/chat?room=1")]


async def test_connect_websocket_unix_runs_in_the_callers_nursery(socket_path: str) -> None:
    """connect_websocket_unix returns an open connection; aclose() ends it with 1000."""
    with trio.fail_after(10):
        async with serving(socket_path), trio.open_nursery() as nursery:
            ws = await connect_websocket_unix(nursery, socket_path, "/n")
            assert ws.path == "/n"
            await check_echo(ws)
            await ws.aclose()
            assert ws.closed == CloseReason(1000, "NORMAL_CLOSURE", None)


async def test_tls_over_a_unix_socket_checks_the_certificate_for_localhost(
    socket_path: str, tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    """use_ssl over a Unix socket: TLS verified against the test CA for the name localhost."""
    with trio.fail_after(10):
        async with (
            serving(socket_path, ssl_context=tls_server_context),
            open_websocket_unix(socket_path, use_ssl=tls_client_context) as ws,
        ):
            await check_echo(ws)


async def test_client_uses_no_proxy_for_a_unix_socket(
    socket_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proxy variables in the environment do not apply to a Unix socket (port 1 would fail)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "ws_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    with trio.fail_after(10):
        async with serving(socket_path), open_websocket_unix(socket_path) as ws:
            await check_echo(ws)


async def test_client_to_a_path_nobody_listens_on_gets_a_handshake_error(socket_path: str) -> None:
    """No socket file: HandshakeError naming unix:PATH, the OSError as cause."""
    with trio.fail_after(10), pytest.raises(HandshakeError) as caught:
        async with open_websocket_unix(socket_path):
            pass  # pragma: no cover
    assert str(caught.value).startswith(f"cannot connect to unix:{socket_path}: ")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


async def test_server_removes_its_socket_file_when_it_stops(socket_path: str) -> None:
    """The socket file exists while serving and is gone once the server is cancelled."""
    with trio.fail_after(10):
        async with serving(socket_path):
            assert await trio.Path(socket_path).is_socket()
    assert not await trio.Path(socket_path).exists()


async def test_server_replaces_a_stale_socket_file(socket_path: str) -> None:
    """A socket file nobody listens on (left by a killed server) is replaced."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(socket_path)
    assert await trio.Path(socket_path).is_socket()
    with trio.fail_after(10):
        async with serving(socket_path), open_websocket_unix(socket_path) as ws:
            await check_echo(ws)


async def test_server_refuses_a_path_another_server_listens_on(socket_path: str) -> None:
    """A live socket is not stolen: EADDRINUSE, and the first server keeps serving."""
    message = rf"^\[Errno {errno.EADDRINUSE}\] a server already listens on Unix socket "
    with trio.fail_after(10):
        async with serving(socket_path), trio.open_nursery() as nursery:
            with pytest.raises(OSError, match=message) as caught:
                await nursery.start(serve_websocket_unix, echo, socket_path)
            assert caught.value.errno == errno.EADDRINUSE
            async with open_websocket_unix(socket_path) as ws:
                await check_echo(ws)


async def test_server_leaves_a_file_that_is_not_a_socket_alone(socket_path: str) -> None:
    """A regular file in the way: bind(2) refuses, and the file is still there, unchanged."""
    await trio.Path(socket_path).write_text("keep me")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            with pytest.raises(OSError, match=r"Address already in use") as caught:
                await nursery.start(serve_websocket_unix, echo, socket_path)
    assert caught.value.errno == errno.EADDRINUSE
    assert await trio.Path(socket_path).read_text() == "keep me"


@pytest.mark.skipif(sys.platform != "linux", reason="Linux's abstract socket namespace")
async def test_abstract_socket_name_on_linux() -> None:
    """A path starting with NUL is in the abstract namespace, shown as unix:@name."""
    name = f"\0trio_wsext-test-{os.getpid()}-{id(object())}"
    with trio.fail_after(10):
        async with serving(name) as server, open_websocket_unix(name) as ws:
            await check_echo(ws)
            assert ws.remote == f"unix:@{name[1:]}"
            assert server.listeners == [f"unix:@{name[1:]}"]


def redirecting(location: str) -> Handler:
    """A handler that redirects /start to ``location`` and echoes elsewhere."""

    async def handler(request: WebSocketRequest) -> None:
        if request.path == "/start":
            await request.reject(302, extra_headers=[("Location", location)])
        else:
            await echo(request)

    return handler


@pytest.mark.parametrize("location", ["/moved", "ws://localhost/moved"], ids=["path", "url"])
async def test_client_follows_a_redirect_within_the_origin_over_the_socket(
    socket_path: str, location: str
) -> None:
    """A redirect to ws://localhost/... is followed over the same socket."""
    with trio.fail_after(10):
        async with (
            serving(socket_path, redirecting(location)),
            open_websocket_unix(socket_path, "/start") as ws,
        ):
            assert ws.path == "/moved"
            await check_echo(ws)


async def test_client_refuses_a_redirect_to_another_origin_over_the_socket(
    socket_path: str,
) -> None:
    """A redirect to another host cannot be followed over a Unix socket: RedirectError."""
    with trio.fail_after(10):
        async with serving(socket_path, redirecting("ws://example.com/moved")):
            with pytest.raises(RedirectError) as caught:
                async with open_websocket_unix(socket_path, "/start"):
                    pass  # pragma: no cover
    assert str(caught.value) == (
        f"cannot follow HTTP 302 to ws://example.com/moved over Unix socket {socket_path}:"
        " it leaves the origin"
    )
    assert isinstance(caught.value, ConnectionRejected)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("/run/app.sock", "unix:/run/app.sock"),
        ("", "unix:"),
        (b"\0abstract", "unix:@abstract"),
        ("\0abstract", "unix:@abstract"),
    ],
    ids=["path", "unnamed", "abstract-bytes", "abstract-str"],
)
def test_unix_endpoint_names_addresses_as_nginx_does(address: str | bytes, expected: str) -> None:
    """unix_endpoint gives unix:PATH, unix: for an unnamed socket, unix:@NAME for abstract ones."""
    assert unix_endpoint(address) == expected
