"""The client follows 301/302/303/307/308 to ws/wss URLs, up to max_redirects, never wss -> ws."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

from trio_wsext import (
    ConnectionRejected,
    ConnectionTimeout,
    HandshakeError,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
    connect_websocket,
    connect_websocket_url,
    open_websocket,
    open_websocket_url,
    serve_websocket,
)
from trio_wsext.client import RedirectError

Handler = Callable[[WebSocketRequest], Awaitable[None]]


async def echo(request: WebSocketRequest) -> None:
    """Accept and echo every message until the client closes."""
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


def redirect_to(location: str, status: int = 302) -> Handler:
    """A handler that answers every request with ``status`` and ``Location: location``."""

    async def handler(request: WebSocketRequest) -> None:
        await request.reject(status, extra_headers=[("Location", location)])

    return handler


@asynccontextmanager
async def serving(
    handler: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[WebSocketServer]:
    """Run our server on 127.0.0.1, port 0."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve_websocket, handler, "127.0.0.1", 0, ssl_context, ping_interval=None)
        )
        yield server
        nursery.cancel_scope.cancel()


async def check_echo(ws: WebSocketConnection) -> None:
    """One message there and back."""
    await ws.send_message("through the redirect")
    assert await ws.get_message() == "through the redirect"


# -- followed --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_client_follows_redirect_status_to_another_server(status: int) -> None:
    """Each redirect status with an absolute ws Location leads to the other server."""
    with trio.fail_after(10):
        async with serving(echo) as target:
            location = f"ws://127.0.0.1:{target.port}/moved?to=here"
            async with (
                serving(redirect_to(location, status)) as origin,
                open_websocket_url(f"ws://127.0.0.1:{origin.port}/start") as ws,
            ):
                assert ws.path == "/moved?to=here"
                await check_echo(ws)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("next", "/dir/next"),
        ("../up?q=1", "/up?q=1"),
        ("/root", "/root"),
        ("?only=query", "/dir/start?only=query"),
        ("next#fragment", "/dir/next"),
    ],
    ids=["relative", "parent", "absolute-path", "query", "fragment-dropped"],
)
async def test_client_resolves_relative_location_against_the_request_url(
    location: str, expected: str
) -> None:
    """RFC 9110 §10.2.2: a relative Location is resolved against the URL that was asked."""
    paths: list[str] = []

    async def handler(request: WebSocketRequest) -> None:
        paths.append(request.path)
        if request.path == "/dir/start":
            await request.reject(307, extra_headers=[("Location", location)])
        else:
            await echo(request)

    with trio.fail_after(10):
        async with serving(handler) as server:
            url = f"ws://127.0.0.1:{server.port}/dir/start"
            async with open_websocket_url(url) as ws:
                await check_echo(ws)
    assert paths == ["/dir/start", expected]


def chain(hops: int) -> tuple[Handler, list[str]]:
    """A handler that redirects /0 -> /1 -> ... -> /hops, then accepts; and the paths it saw."""
    paths: list[str] = []

    async def handler(request: WebSocketRequest) -> None:
        paths.append(request.path)
        step = int(request.path[1:])
        if step < hops:
            await request.reject(302, extra_headers=[("Location", f"/{step + 1}")])
        else:
            await echo(request)

    return handler, paths


async def test_client_follows_exactly_max_redirects() -> None:
    """Three redirects with max_redirects=3: connected at the fourth request."""
    handler, paths = chain(3)
    with trio.fail_after(10):
        async with serving(handler) as server:
            url = f"ws://127.0.0.1:{server.port}/0"
            async with open_websocket_url(url, max_redirects=3) as ws:
                await check_echo(ws)
    assert paths == ["/0", "/1", "/2", "/3"]


async def test_client_gives_up_after_max_redirects() -> None:
    """One redirect more than max_redirects: RedirectError, a ConnectionRejected that says so."""
    handler, paths = chain(4)
    with trio.fail_after(10):
        async with serving(handler) as server:
            url = f"ws://127.0.0.1:{server.port}/0"
            with pytest.raises(RedirectError) as caught:
                async with open_websocket_url(url, max_redirects=3):
                    pass  # pragma: no cover
    assert paths == ["/0", "/1", "/2", "/3"]
    error = caught.value
    assert isinstance(error, ConnectionRejected)
    assert str(error) == (
        "more than 3 redirects (max_redirects); the last:"
        f" HTTP 302 to ws://127.0.0.1:{server.port}/4"
    )
    assert error.status_code == 302
    assert (b"location", b"/4") in error.headers
    assert error.location == f"ws://127.0.0.1:{server.port}/4"


async def test_client_follows_ten_redirects_by_default_as_websockets() -> None:
    """A redirect loop ends after the default max_redirects=10: eleven requests in all."""
    handler, paths = chain(1000)
    with trio.fail_after(10):
        async with serving(handler) as server:
            with pytest.raises(RedirectError, match=r"^more than 10 redirects \(max_redirects\)"):
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/0"):
                    pass  # pragma: no cover
    assert len(paths) == 11


async def test_client_with_max_redirects_zero_follows_none() -> None:
    """max_redirects=0: the first redirect raises, and no second request is made."""
    handler, paths = chain(1)
    with trio.fail_after(10):
        async with serving(handler) as server:
            with pytest.raises(RedirectError, match=r"^more than 0 redirects"):
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/0", max_redirects=0):
                    pass  # pragma: no cover
    assert paths == ["/0"]


@pytest.mark.parametrize("by", ["open_websocket", "connect_websocket", "connect_websocket_url"])
async def test_every_client_entry_point_follows_redirects(by: str) -> None:
    """open_websocket(host, port) and the connect_* functions follow redirects too."""
    with trio.fail_after(10):
        async with serving(echo) as target:
            location = f"ws://127.0.0.1:{target.port}/there"
            async with serving(redirect_to(location)) as origin:
                if by == "open_websocket":
                    async with open_websocket("127.0.0.1", origin.port, "/here") as ws:
                        assert ws.path == "/there"
                        await check_echo(ws)
                    return
                async with trio.open_nursery() as nursery:
                    if by == "connect_websocket":
                        ws = await connect_websocket(nursery, "127.0.0.1", origin.port, "/here")
                    else:
                        url = f"ws://127.0.0.1:{origin.port}/here"
                        ws = await connect_websocket_url(nursery, url)
                    assert ws.path == "/there"
                    await check_echo(ws)
                    await ws.aclose()


# -- not followed ----------------------------------------------------------------------------


async def test_client_refuses_redirect_from_wss_to_ws(
    tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    """A wss server's redirect to ws: RedirectError, and the ws server never hears of it."""
    requests: list[str] = []

    async def plain(request: WebSocketRequest) -> None:
        requests.append(request.path)  # pragma: no cover - the point is that it never runs
        await echo(request)  # pragma: no cover

    with trio.fail_after(10):
        async with serving(plain) as target:
            location = f"ws://127.0.0.1:{target.port}/"
            async with serving(redirect_to(location, 301), tls_server_context) as origin:
                url = f"wss://127.0.0.1:{origin.port}/secure"
                with pytest.raises(RedirectError) as caught:
                    async with open_websocket_url(url, tls_client_context):
                        pass  # pragma: no cover
    assert str(caught.value) == (
        f"refused to follow HTTP 301 from wss://127.0.0.1:{origin.port}/secure to {location}:"
        " a redirect may not leave wss for ws"
    )
    assert caught.value.status_code == 301
    assert requests == []


async def test_client_keeps_its_ssl_context_from_wss_to_wss(
    tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    """The given context (which trusts the test CA) is used for the wss redirect too."""
    with trio.fail_after(10):
        async with serving(echo, tls_server_context) as target:
            location = f"wss://localhost:{target.port}/tls"
            async with (
                serving(redirect_to(location), tls_server_context) as origin,
                open_websocket_url(f"wss://127.0.0.1:{origin.port}/", tls_client_context) as ws,
            ):
                assert ws.path == "/tls"
                await check_echo(ws)


async def test_client_upgrades_from_ws_to_wss_with_the_default_context(
    tls_ca: trustme.CA,
    tls_server_context: ssl.SSLContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ws -> wss is followed with the default context (trusting the test CA: SSL_CERT_FILE)."""
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    with trio.fail_after(10):
        async with serving(echo, tls_server_context) as target:
            location = f"wss://127.0.0.1:{target.port}/upgraded"
            async with (
                serving(redirect_to(location, 308)) as origin,
                open_websocket_url(f"ws://127.0.0.1:{origin.port}/") as ws,
            ):
                assert ws.path == "/upgraded"
                await check_echo(ws)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        (
            "http://127.0.0.1/page",
            r"^cannot follow HTTP 302 to 'http://127\.0\.0\.1/page': WebSocket URL scheme must"
            r" be 'ws' or 'wss', not 'http'$",
        ),
        (
            "ws://127.0.0.1:99999/",
            r"^cannot follow HTTP 302 to 'ws://127\.0\.0\.1:99999/': WebSocket URL has an"
            r" invalid port",
        ),
    ],
    ids=["http", "bad-port"],
)
async def test_client_refuses_redirect_to_a_url_that_is_not_websocket(
    location: str, message: str
) -> None:
    """A Location that is no ws/wss URL: RedirectError with the reason."""
    with trio.fail_after(10):
        async with serving(redirect_to(location)) as origin:
            with pytest.raises(RedirectError, match=message) as caught:
                async with open_websocket_url(f"ws://127.0.0.1:{origin.port}/"):
                    pass  # pragma: no cover
    assert caught.value.status_code == 302


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (302, []),
        (300, [("Location", "/choice")]),
        (304, [("Location", "/cached")]),
        (302, [("Location", "/a"), ("Location", "/b")]),
    ],
    ids=["302-without-location", "300", "304", "two-locations"],
)
async def test_client_raises_connection_rejected_for_an_answer_that_is_no_redirect(
    status: int, headers: list[tuple[str, str]]
) -> None:
    """No single Location, or a 3xx that is not a redirection: the plain ConnectionRejected."""

    async def handler(request: WebSocketRequest) -> None:
        await request.reject(status, extra_headers=headers)

    with trio.fail_after(10):
        async with serving(handler) as server:
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/"):
                    pass  # pragma: no cover
    assert type(caught.value) is ConnectionRejected
    assert caught.value.status_code == status


# -- credentials and time --------------------------------------------------------------------


def recording(requests: list[dict[bytes, bytes]], then: Handler) -> Handler:
    """A handler that records each request's headers, then runs ``then``."""

    async def handler(request: WebSocketRequest) -> None:
        requests.append(dict(request.headers))
        await then(request)

    return handler


HEADERS = {"Cookie": "session=1", "X-App": "demo", "Proxy-Authorization": "Basic eDp5"}


async def test_client_drops_credentials_and_cookies_on_a_redirect_to_another_origin() -> None:
    """Another port is another origin: Authorization, Cookie, Proxy-Authorization stay behind."""
    seen: list[dict[bytes, bytes]] = []
    with trio.fail_after(10):
        async with serving(recording(seen, echo)) as target:
            location = f"ws://127.0.0.1:{target.port}/"
            async with serving(redirect_to(location)) as origin:
                url = f"ws://me:secret@127.0.0.1:{origin.port}/"
                async with open_websocket_url(url, extra_headers=HEADERS) as ws:
                    await check_echo(ws)
    (headers,) = seen
    assert headers[b"x-app"] == b"demo"
    assert headers[b"host"] == f"127.0.0.1:{target.port}".encode()
    assert {b"authorization", b"cookie", b"proxy-authorization"} & headers.keys() == set()


async def test_client_keeps_credentials_and_cookies_on_a_redirect_within_the_origin() -> None:
    """Same scheme, host and port: the URL's credentials and the extra headers go along."""
    seen: list[dict[bytes, bytes]] = []

    async def handler(request: WebSocketRequest) -> None:
        if request.path == "/first":
            await request.reject(302, extra_headers=[("Location", "/second")])
        else:
            await echo(request)

    with trio.fail_after(10):
        async with serving(recording(seen, handler)) as server:
            url = f"ws://me:secret@127.0.0.1:{server.port}/first"
            async with open_websocket_url(url, extra_headers=HEADERS) as ws:
                await check_echo(ws)
    assert len(seen) == 2
    for headers in seen:
        assert headers[b"authorization"] == b"Basic bWU6c2VjcmV0"
        assert headers[b"cookie"] == b"session=1"


async def test_client_uses_the_credentials_of_the_location_url() -> None:
    """A Location with user:password@ brings its own Basic credentials, even to another origin."""
    seen: list[dict[bytes, bytes]] = []
    with trio.fail_after(10):
        async with serving(recording(seen, echo)) as target:
            location = f"ws://you:other@127.0.0.1:{target.port}/"
            async with (
                serving(redirect_to(location)) as origin,
                open_websocket_url(f"ws://me:secret@127.0.0.1:{origin.port}/") as ws,
            ):
                await check_echo(ws)
    assert seen[0][b"authorization"] == b"Basic eW91Om90aGVy"


async def test_connect_timeout_covers_every_redirect() -> None:
    """One connect_timeout for the whole chain: a silent server after a redirect times out."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")  # accepts, never answers
    silent = listeners[0].socket.getsockname()[1]
    try:
        with trio.fail_after(10):
            location = f"ws://127.0.0.1:{silent}/"
            async with serving(redirect_to(location)) as origin:
                url = f"ws://127.0.0.1:{origin.port}/"
                with pytest.raises(ConnectionTimeout) as caught:
                    async with open_websocket_url(url, connect_timeout=0.5):
                        pass  # pragma: no cover
    finally:
        await listeners[0].aclose()
    assert str(caught.value) == (
        f"opening a WebSocket connection to 127.0.0.1:{silent} took more than 0.5 seconds"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on (bound, then given back)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_redirect_to_a_closed_port_is_a_handshake_error_naming_it() -> None:
    """Following a redirect to where nobody listens: the connect error names the new address."""
    port = free_port()
    with trio.fail_after(10):
        async with serving(redirect_to(f"ws://127.0.0.1:{port}/")) as origin:
            with pytest.raises(HandshakeError, match=rf"^cannot connect to 127\.0\.0\.1:{port}: "):
                async with open_websocket_url(f"ws://127.0.0.1:{origin.port}/"):
                    pass  # pragma: no cover


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-1, ValueError, r"^max_redirects must be >= 0, not -1$"),
        (True, TypeError, r"^max_redirects must be an int, not bool$"),
        (2.5, TypeError, r"^max_redirects must be an int, not float$"),
    ],
    ids=["negative", "bool", "float"],
)
async def test_bad_max_redirects_raises_before_connecting(
    value: Any, error: type[Exception], message: str
) -> None:
    """max_redirects is checked before any socket is opened (port 1 is never reached)."""
    with pytest.raises(error, match=message):
        async with open_websocket("127.0.0.1", 1, max_redirects=value):
            pass  # pragma: no cover
