"""The client through real forward proxies: tinyproxy (HTTP CONNECT) and Dante (SOCKS).

Each test runs trio_wsext echo servers (ws and wss, a trustme certificate) on
127.0.0.1 in its own trio run, starts the proxy it needs from
tests/deploy/tinyproxy.conf or danted.conf (a foreground process in a tmp
dir, on 127.0.0.1 only, killed at teardown), and connects through it: by an
explicit proxy URL and by the environment's variables, ws and wss (TLS with
the target inside the tunnel), with and without credentials; and checks the
messages a user gets when the proxy refuses (407, 403), cannot reach the
target (tinyproxy's 500, SOCKS reply 0x05), refuses by its rules (reply 0x02),
or cannot be reached at all. An ``https://`` proxy is tinyproxy behind a TLS
front (tinyproxy has no TLS of its own). A client that went through a proxy
has the proxy as ``ws.remote``; one that went straight has the server.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Final

import attrs
import pytest
import trio
import trustme

from trio_wsext import (
    Endpoint,
    HandshakeError,
    WebSocketConnection,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)
from trio_wsext.proxies import ProxyError, ProxyStatusError

from .conftest import free_port
from .daemons import Daemon
from .proxy_daemons import danted_daemon, serve_tls_front, tinyproxy_daemon

#: The credentials tinyproxy's BasicAuth instance wants.
USER: Final = "alice"
PASSWORD: Final = "s3cret"

#: Every test's bound: a proxy starts in well under a second.
TIMEOUT: Final = 30

#: A TEST-NET-1 address (RFC 5737): Dante's rules refuse it before connecting anywhere.
OUTSIDE: Final = "192.0.2.1"


async def echo(request: WebSocketRequest) -> None:
    """Accept and echo every message until the client closes."""
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@attrs.frozen
class Servers:
    """Our echo servers on 127.0.0.1, and a port where nobody listens."""

    ws: int
    wss: int
    wss_localhost_only: int
    """A wss server whose certificate names ``localhost`` only (not 127.0.0.1)."""
    closed: int

    def url(self, secure: bool, host: str = "127.0.0.1") -> str:
        """The echo server's URL, ws or wss."""
        return f"wss://{host}:{self.wss}/echo" if secure else f"ws://{host}:{self.ws}/echo"


@pytest.fixture(autouse=True)
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without proxy variables; tests set those they need."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
async def servers(
    nursery: trio.Nursery, tls_ca: trustme.CA, tls_server_context: ssl.SSLContext
) -> Servers:
    """Start the echo servers in the test's nursery (cancelled after the test).

    No keepalive, and a short closing handshake, so that teardown is quick.
    """
    localhost_only = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("localhost").configure_cert(localhost_only)
    ports = []
    for context in (None, tls_server_context, localhost_only):
        serve = partial(
            serve_websocket,
            echo,
            "127.0.0.1",
            0,
            context,
            ping_interval=None,
            disconnect_timeout=2,
        )
        ports.append((await nursery.start(serve)).port)
    ws, wss, wss_localhost_only = ports
    return Servers(ws, wss, wss_localhost_only, free_port())


@pytest.fixture
def client_context(tls_client_context: ssl.SSLContext) -> ssl.SSLContext:
    """The client's TLS context for the target, trusting the test CA."""
    return tls_client_context


async def running(daemon: Daemon) -> AsyncIterator[Daemon]:
    """Start ``daemon``, yield it, and kill it (and its children) afterwards."""
    try:
        await daemon.start()
        yield daemon
    finally:
        daemon.kill()


@pytest.fixture
async def tinyproxy(tmp_path: Path, servers: Servers) -> AsyncIterator[str]:
    """tinyproxy without authentication; CONNECT allowed to the servers and the closed port."""
    ports = [servers.ws, servers.wss, servers.wss_localhost_only, servers.closed]
    async for daemon in running(tinyproxy_daemon(tmp_path / "tinyproxy", ports)):
        yield f"http://127.0.0.1:{daemon.ports['proxy']}"


@pytest.fixture
async def tinyproxy_auth(tmp_path: Path, servers: Servers) -> AsyncIterator[int]:
    """tinyproxy that wants Basic credentials (USER, PASSWORD); yields its port."""
    ports = [servers.ws, servers.wss]
    directory = tmp_path / "tinyproxy-auth"
    async for daemon in running(tinyproxy_daemon(directory, ports, (USER, PASSWORD))):
        yield daemon.ports["proxy"]


@pytest.fixture
async def dante(tmp_path: Path) -> AsyncIterator[int]:
    """Dante with no SOCKS authentication; yields its port."""
    async for daemon in running(danted_daemon(tmp_path / "danted")):
        yield daemon.ports["proxy"]


@pytest.fixture
async def dante_username(tmp_path: Path) -> AsyncIterator[int]:
    """Dante that wants a user name and password (RFC 1929); yields its port."""
    async for daemon in running(danted_daemon(tmp_path / "danted-username", "username")):
        yield daemon.ports["proxy"]


def port_of(endpoint: Endpoint | str) -> int:
    """The port of a TCP endpoint."""
    assert isinstance(endpoint, Endpoint), endpoint
    return endpoint.port


async def check_echo(ws: WebSocketConnection) -> None:
    """Two messages there and back, a large one compressed."""
    await ws.send_message("through the proxy")
    assert await ws.get_message() == "through the proxy"
    await ws.send_message(b"x" * 100_000)
    assert await ws.get_message() == b"x" * 100_000


def proxy_port(url: str) -> int:
    """The port of a proxy URL ``scheme://host:port``."""
    return int(url.rsplit(":", 1)[1])


# -- HTTP CONNECT: tinyproxy ---------------------------------------------------------------


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_client_echoes_through_tinyproxy_given_by_url(
    servers: Servers, tinyproxy: str, client_context: ssl.SSLContext, secure: bool
) -> None:
    """proxy="http://..." tunnels ws, and wss with TLS to the server inside the tunnel."""
    context = client_context if secure else None
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(servers.url(secure), context, proxy=tinyproxy) as ws:
            assert port_of(ws.remote) == proxy_port(tinyproxy)
            await check_echo(ws)


@pytest.mark.parametrize(
    ("variable", "secure"),
    [
        ("http_proxy", False),
        ("HTTP_PROXY", False),
        ("https_proxy", True),
        ("HTTPS_PROXY", False),
        ("all_proxy", True),
        ("ALL_PROXY", False),
        ("wss_proxy", True),
    ],
)
async def test_client_takes_tinyproxy_from_the_environment(
    environ: pytest.MonkeyPatch,
    servers: Servers,
    tinyproxy: str,
    client_context: ssl.SSLContext,
    variable: str,
    secure: bool,
) -> None:
    """proxy=True (the default) finds the proxy in each variable it should."""
    environ.setenv(variable, tinyproxy)
    context = client_context if secure else None
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(servers.url(secure), context) as ws:
            assert port_of(ws.remote) == proxy_port(tinyproxy)
            await check_echo(ws)


async def test_client_goes_straight_to_a_host_no_proxy_names(
    environ: pytest.MonkeyPatch, servers: Servers, tinyproxy: str
) -> None:
    """NO_PROXY=127.0.0.1 bypasses the environment's proxy; without it the proxy is used."""
    environ.setenv("HTTPS_PROXY", tinyproxy)
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(servers.url(False)) as ws:
            assert port_of(ws.remote) == proxy_port(tinyproxy)
        environ.setenv("NO_PROXY", "localhost,127.0.0.1")
        async with open_websocket_url(servers.url(False)) as ws:
            assert port_of(ws.remote) == servers.ws
            await check_echo(ws)


async def test_client_with_proxy_none_goes_straight(
    environ: pytest.MonkeyPatch, servers: Servers, tinyproxy: str
) -> None:
    """proxy=None ignores the environment's proxy."""
    environ.setenv("all_proxy", tinyproxy)
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(servers.url(False), proxy=None) as ws:
            assert port_of(ws.remote) == servers.ws
            await check_echo(ws)


async def test_tls_inside_the_tunnel_checks_the_target_name_not_the_proxys(
    servers: Servers, tinyproxy: str, client_context: ssl.SSLContext
) -> None:
    """A certificate for localhost only: wss://localhost passes, wss://127.0.0.1 fails."""
    port = servers.wss_localhost_only
    with trio.fail_after(TIMEOUT):
        url = f"wss://localhost:{port}/"
        async with open_websocket_url(url, client_context, proxy=tinyproxy) as ws:
            await check_echo(ws)
        url = f"wss://127.0.0.1:{port}/"
        with pytest.raises(
            HandshakeError, match=r"certificate verify failed: IP address mismatch"
        ):
            async with open_websocket_url(url, client_context, proxy=tinyproxy):
                pass  # pragma: no cover


async def test_client_authenticates_to_tinyproxy_with_the_urls_credentials(
    servers: Servers, tinyproxy_auth: int
) -> None:
    """user:password@ in the proxy URL becomes Proxy-Authorization: Basic."""
    proxy = f"http://{USER}:{PASSWORD}@127.0.0.1:{tinyproxy_auth}"
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(servers.url(False), proxy=proxy) as ws:
            await check_echo(ws)


@pytest.mark.parametrize(
    ("credentials", "answer"),
    [
        (
            "",
            "HTTP 407 Proxy Authentication Required"
            " (give credentials in the proxy URL: scheme://user:password@host)",
        ),
        # tinyproxy answers wrong credentials with 401, not 407.
        (
            f"{USER}:wrong@",
            f"HTTP 401 Unauthorized (the credentials of user '{USER}' were refused)",
        ),
    ],
    ids=["none", "wrong-password"],
)
async def test_tinyproxy_refusing_credentials_names_the_proxy_and_the_status(
    servers: Servers, tinyproxy_auth: int, credentials: str, answer: str
) -> None:
    """407/401: ProxyStatusError naming the proxy (no password), the target, the status, a hint."""
    proxy = f"http://{credentials}127.0.0.1:{tinyproxy_auth}"
    with trio.fail_after(TIMEOUT), pytest.raises(ProxyStatusError) as caught:
        async with open_websocket_url(servers.url(False), proxy=proxy):
            pass  # pragma: no cover
    assert str(caught.value) == (
        f"proxy http://127.0.0.1:{tinyproxy_auth} refused to open a tunnel to"
        f" 127.0.0.1:{servers.ws}: {answer}"
    )
    assert "wrong" not in str(caught.value)


async def test_tinyproxy_that_cannot_reach_the_target_says_so(
    servers: Servers, tinyproxy: str
) -> None:
    """Nobody listens on the target port: tinyproxy's 500 Unable to connect, named."""
    url = f"ws://127.0.0.1:{servers.closed}/"
    with trio.fail_after(TIMEOUT), pytest.raises(ProxyStatusError) as caught:
        async with open_websocket_url(url, proxy=tinyproxy):
            pass  # pragma: no cover
    assert str(caught.value) == (
        f"proxy {tinyproxy} refused to open a tunnel to 127.0.0.1:{servers.closed}:"
        " HTTP 500 Unable to connect"
    )
    assert caught.value.status_code == 500
    assert b"Unable to connect" in caught.value.body


async def test_tinyproxy_refusing_a_port_by_its_rules_says_so(
    servers: Servers, tinyproxy: str
) -> None:
    """A port outside tinyproxy's ConnectPort list: 403 Access violation, named."""
    port = free_port()
    with trio.fail_after(TIMEOUT), pytest.raises(ProxyStatusError) as caught:
        async with open_websocket_url(f"ws://127.0.0.1:{port}/", proxy=tinyproxy):
            pass  # pragma: no cover
    assert str(caught.value) == (
        f"proxy {tinyproxy} refused to open a tunnel to 127.0.0.1:{port}:"
        " HTTP 403 Access violation"
    )


# -- an https:// proxy: TLS to the proxy, then (for wss) TLS inside it ----------------------


@pytest.fixture
async def https_proxy(
    nursery: trio.Nursery, tinyproxy: str, tls_server_context: ssl.SSLContext
) -> str:
    """tinyproxy behind a TLS front whose certificate the test CA signed."""
    port = await nursery.start(serve_tls_front, proxy_port(tinyproxy), tls_server_context)
    return f"https://localhost:{port}"


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_client_echoes_through_an_https_proxy(
    environ: pytest.MonkeyPatch,
    tmp_path: Path,
    tls_ca: trustme.CA,
    servers: Servers,
    https_proxy: str,
    client_context: ssl.SSLContext,
    secure: bool,
) -> None:
    """https:// proxy: TLS to the proxy (the default context, trusting SSL_CERT_FILE's CA)."""
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    environ.setenv("SSL_CERT_FILE", str(ca_file))
    context = client_context if secure else None
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(servers.url(secure), context, proxy=https_proxy) as ws:
            assert port_of(ws.remote) == proxy_port(https_proxy)  # TLS in TLS for wss
            await check_echo(ws)


async def test_https_proxy_with_an_untrusted_certificate_is_a_proxy_error(
    environ: pytest.MonkeyPatch, tmp_path: Path, servers: Servers, https_proxy: str
) -> None:
    """The proxy's certificate is checked: without the test CA, ProxyError, no tunnel."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    environ.setenv("SSL_CERT_FILE", str(other))
    with trio.fail_after(TIMEOUT), pytest.raises(ProxyError) as caught:
        async with open_websocket_url(servers.url(False), proxy=https_proxy):
            pass  # pragma: no cover
    assert str(caught.value).startswith(
        f"connection to proxy {https_proxy} broke before the tunnel to 127.0.0.1:{servers.ws}"
        " was open: [SSL: CERTIFICATE_VERIFY_FAILED]"
    )


# -- SOCKS: Dante --------------------------------------------------------------------------


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
@pytest.mark.parametrize("scheme", ["socks5h", "socks5", "socks4"])
async def test_client_echoes_through_dante_given_by_url(
    servers: Servers, dante: int, client_context: ssl.SSLContext, scheme: str, secure: bool
) -> None:
    """socks5h (Dante resolves), socks5 (we resolve), socks4 (IPv4 only): ws and wss."""
    proxy = f"{scheme}://127.0.0.1:{dante}"
    context = client_context if secure else None
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(servers.url(secure), context, proxy=proxy) as ws:
            assert port_of(ws.remote) == dante
            await check_echo(ws)


async def test_socks5h_sends_the_name_and_tls_checks_it(
    servers: Servers, dante: int, client_context: ssl.SSLContext
) -> None:
    """socks5h to localhost: Dante resolves it; the certificate (localhost only) is checked."""
    url = f"wss://localhost:{servers.wss_localhost_only}/"
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(
            url, client_context, proxy=f"socks5h://127.0.0.1:{dante}"
        ) as ws:
            await check_echo(ws)


@pytest.mark.parametrize(
    ("variable", "scheme", "secure"),
    [
        ("all_proxy", "socks5h", False),
        ("ALL_PROXY", "socks5", True),
        ("https_proxy", "socks5h", True),
        ("http_proxy", "socks5", False),
    ],
)
async def test_client_takes_dante_from_the_environment(
    environ: pytest.MonkeyPatch,
    servers: Servers,
    dante: int,
    client_context: ssl.SSLContext,
    variable: str,
    scheme: str,
    secure: bool,
) -> None:
    """Any proxy variable may name a SOCKS proxy."""
    environ.setenv(variable, f"{scheme}://127.0.0.1:{dante}")
    context = client_context if secure else None
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(servers.url(secure), context) as ws:
            assert port_of(ws.remote) == dante
            await check_echo(ws)


@pytest.mark.parametrize(
    ("host", "port", "answer"),
    [
        ("127.0.0.1", None, "Connection refused by destination host (SOCKS reply 0x05)"),
        (OUTSIDE, 80, "Connection not allowed by ruleset (SOCKS reply 0x02)"),
    ],
    ids=["closed-port", "refused-by-rules"],
)
async def test_dante_that_cannot_open_the_tunnel_says_why(
    servers: Servers, dante: int, host: str, port: int | None, answer: str
) -> None:
    """The SOCKS reply is named: the target refused, or Dante's rules did."""
    port = port or servers.closed
    proxy = f"socks5://127.0.0.1:{dante}"
    with trio.fail_after(TIMEOUT), pytest.raises(ProxyError) as caught:
        async with open_websocket_url(f"ws://{host}:{port}/", proxy=proxy):
            pass  # pragma: no cover
    assert (
        str(caught.value) == f"proxy {proxy} refused to open a tunnel to {host}:{port}: {answer}"
    )


@pytest.mark.parametrize(
    ("credentials", "answer"),
    [
        ("", "No acceptable authentication methods were offered"),
        ("nobody-here:wrong@", "Username and password authentication failure"),
    ],
    ids=["none", "unknown-user"],
)
async def test_dante_refusing_the_credentials_says_so(
    servers: Servers, dante_username: int, credentials: str, answer: str
) -> None:
    """socksmethod username: no credentials, or wrong ones, are refused, named."""
    proxy = f"socks5h://{credentials}127.0.0.1:{dante_username}"
    with trio.fail_after(TIMEOUT), pytest.raises(ProxyError) as caught:
        async with open_websocket_url(servers.url(False), proxy=proxy):
            pass  # pragma: no cover
    assert str(caught.value) == (
        f"proxy socks5h://127.0.0.1:{dante_username} refused to open a tunnel to"
        f" 127.0.0.1:{servers.ws}: {answer}"
    )


# -- a proxy nobody runs -------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https", "socks5h", "socks5"])
async def test_client_names_the_proxy_it_cannot_reach(servers: Servers, scheme: str) -> None:
    """Nobody listens at the proxy's address: 'could not connect to proxy host:port'."""
    port = free_port()
    with trio.fail_after(TIMEOUT), pytest.raises(ProxyError) as caught:
        async with open_websocket_url(servers.url(False), proxy=f"{scheme}://127.0.0.1:{port}"):
            pass  # pragma: no cover
    assert str(caught.value).startswith(f"could not connect to proxy 127.0.0.1:{port}: ")
    assert isinstance(caught.value.__cause__, OSError)
