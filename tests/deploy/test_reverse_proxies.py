"""trio_wsext behind real nginx and HAProxy, started from tests/deploy/nginx.conf and haproxy.cfg.

Each test runs a trio_wsext server on 127.0.0.1 in the test's own trio run,
then one proxy (as a foreground process of its own, in a tmp dir, listening on
127.0.0.1 only) in front of it, and talks to the proxy with trio_wsext
clients. What is checked, for both proxies: the upgrade and subprotocol pass
through, permessage-deflate is negotiated end to end, TLS ends at the proxy,
``X-Forwarded-For`` reaches the handler, ``ping_interval`` outlives the proxy's
idle timeout (and without it the proxy cuts), a stopped proxy gives the client
1006 at once, and load through the proxy loses no message. docs/deployment.md
shows these configurations.
"""

from __future__ import annotations

import signal
import ssl
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final

import attrs
import pytest
import trio
import trustme

from trio_wsext import (
    CloseCode,
    CloseReason,
    ConnectionClosed,
    Endpoint,
    WebSocketConnection,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate

from .conftest import free_port, require_program
from .daemons import Daemon, render

HERE: Final = Path(__file__).parent

#: The proxies under test: (program, Debian package).
PROXIES: Final = {"nginx": "nginx", "haproxy": "haproxy"}

#: The idle timeout of the ``/short-idle/`` location (nginx) and backend (HAProxy).
IDLE_TIMEOUT: Final = 2.0
SHORT_IDLE: Final = "/short-idle/"

#: A keepalive interval well below IDLE_TIMEOUT, with room for a busy machine's delays.
PING_INTERVAL: Final = IDLE_TIMEOUT / 4

#: What a client that the proxy dropped must see, and how soon: well under the
#: keepalive's ping_interval + ping_timeout (40 s by default), which would
#: otherwise be what ends a silent connection.
ABNORMAL_CLOSURE: Final = CloseCode.ABNORMAL_CLOSURE  # 1006: TCP closed, no close frame
DROP_BOUND: Final = 5.0

#: The server's closing handshake bound, short so that a teardown never waits long.
SERVER_OPTIONS: Final[Mapping[str, Any]] = {"disconnect_timeout": 2}

#: Environment variables that would send a client to a forward proxy instead of
#: straight to the reverse proxy under test.
PROXY_VARIABLES: Final = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


# ---------------------------------------------------------------------- the server behind


def client_address(request: WebSocketRequest, trusted_proxies: Collection[str]) -> str | None:
    """Return the client's IP address as a server behind a reverse proxy should read it.

    ``X-Forwarded-For`` is whatever the client sent, with each proxy's view
    appended (nginx appends to the header, HAProxy adds a header line; taken
    together they read as one comma-separated list, RFC 9110 §5.3). Only the
    last entry was written by the proxy that connected to this server, and
    only when that peer is one of ``trusted_proxies`` is it better than the
    peer's own address. Any earlier entry may be forged.
    """
    remote = request.remote
    peer = str(remote.address) if isinstance(remote, Endpoint) else None
    if peer is None or peer not in trusted_proxies:
        return peer
    entries = forwarded_for(request.headers)
    return entries[-1] if entries else peer


def forwarded_for(headers: Sequence[tuple[bytes, bytes]]) -> list[str]:
    """Return every ``X-Forwarded-For`` entry, first hop first, across all the header's lines."""
    return [
        entry.strip()
        for name, value in headers
        if name == b"x-forwarded-for"
        for entry in value.decode("latin-1").split(",")
    ]


def header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Return the values of every header line called ``name`` (lowercase), in order."""
    return [value for key, value in headers if key == name]


@attrs.frozen
class Seen:
    """One request that reached the server behind the proxy, and the connection it became."""

    path: str
    headers: list[tuple[bytes, bytes]]
    offered_extensions: list[str]
    client_address: str | None
    connection: WebSocketConnection


@attrs.define
class Backend:
    """The trio_wsext server behind the proxy: it records each request and echoes.

    A path ending in ``/sink`` reads and drops what it gets instead of echoing.
    The first subprotocol offered is accepted, so that its passage is visible.
    """

    seen: list[Seen] = attrs.Factory(list)

    async def handler(self, request: WebSocketRequest) -> None:
        """Accept, record, then echo (or sink) until the connection closes."""
        subprotocol = request.subprotocols[0] if request.subprotocols else None
        ws = await request.accept(subprotocol=subprotocol)
        self.seen.append(
            Seen(
                path=request.path,
                headers=request.headers,
                offered_extensions=[name for name, _ in request.extensions],
                client_address=client_address(request, trusted_proxies={"127.0.0.1"}),
                connection=ws,
            )
        )
        if request.path.endswith("/sink"):
            async for _ in ws:
                pass
        else:
            async for message in ws:
                await ws.send_message(message)


# ---------------------------------------------------------------------- the proxy in front


@attrs.frozen
class Certificate:
    """The proxy's certificate for 127.0.0.1, in the files each proxy wants."""

    cert: Path
    """Certificate chain (nginx's ssl_certificate)."""
    key: Path
    """Private key (nginx's ssl_certificate_key)."""
    pem: Path
    """Key and chain in one file (HAProxy's crt)."""

    @classmethod
    def write(cls, ca: trustme.CA, directory: Path) -> Certificate:
        """Issue a certificate for 127.0.0.1 from ``ca`` and write its files to ``directory``."""
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        certificate = cls(directory / "cert.pem", directory / "key.pem", directory / "both.pem")
        certificate.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        certificate.key.write_bytes(leaf.private_key_pem.bytes())
        certificate.pem.write_bytes(leaf.private_key_and_cert_chain_pem.bytes())
        for path in (certificate.key, certificate.pem):
            path.chmod(0o600)
        return certificate


def proxy_command(
    program: str, path: str, directory: Path, backend_port: int, certificate: Certificate
) -> Callable[[Mapping[str, int]], list[str]]:
    """Return what starts ``program`` on a set of ports: it renders the configuration too."""

    def command(ports: Mapping[str, int]) -> list[str]:
        values = {
            "PORT": ports["plain"],
            "TLS_PORT": ports["tls"],
            "BACKEND": f"127.0.0.1:{backend_port}",
            "CERT": certificate.cert,
            "KEY": certificate.key,
            "CERT_PEM": certificate.pem,
        }
        if program == "nginx":
            config = directory / "nginx.conf"
            config.write_text(render((HERE / "nginx.conf").read_text(), values))
            return [path, "-p", f"{directory}/", "-c", str(config), "-e", "stderr",
                    "-g", "daemon off;"]  # fmt: skip
        config = directory / "haproxy.cfg"
        config.write_text(render((HERE / "haproxy.cfg").read_text(), values))
        return [path, "-f", str(config), "-db"]

    return command


@attrs.frozen
class Site:
    """A proxy in front of a trio_wsext server, as one test sees it."""

    proxy: Daemon
    backend: Backend
    client_ssl: ssl.SSLContext

    def url(self, path: str = "/") -> str:
        """A ``ws://`` URL of the proxy's plain port."""
        return f"ws://127.0.0.1:{self.proxy.ports['plain']}{path}"

    def tls_url(self, path: str = "/") -> str:
        """A ``wss://`` URL of the proxy's TLS port."""
        return f"wss://127.0.0.1:{self.proxy.ports['tls']}{path}"

    async def server_side(self, path: str) -> list[Seen]:
        """Wait until a request for ``path`` reached the server; return every one so far."""
        return await self.server_side_prefix(path, 1, exact=True)

    async def server_side_prefix(
        self, prefix: str, count: int, *, exact: bool = False
    ) -> list[Seen]:
        """Wait until ``count`` requests whose path starts with ``prefix`` reached the server."""
        with trio.fail_after(10):
            while True:
                matches = [
                    seen
                    for seen in self.backend.seen
                    if (seen.path == prefix if exact else seen.path.startswith(prefix))
                ]
                if len(matches) >= count:
                    return matches
                await trio.sleep(0.01)


@attrs.frozen
class Deployer:
    """Starts a proxy (one of PROXIES) in front of a new trio_wsext server, in a tmp dir."""

    program: str
    path: str
    directory: Path
    ca: trustme.CA

    @asynccontextmanager
    async def __call__(self, **server_options: Any) -> AsyncIterator[Site]:
        """Run the server (with ``server_options``) and the proxy, for the ``async with``.

        On the way out, however the body ended, the proxy's processes are
        killed and the server is cancelled; the proxy's logs are printed, so
        that pytest shows them for a failed test.
        """
        directory = self.directory / f"{self.program}-{len(list(self.directory.iterdir()))}"
        directory.mkdir()
        certificate = Certificate.write(self.ca, directory)
        client_ssl = ssl.create_default_context()
        self.ca.configure_trust(client_ssl)
        backend = Backend()
        options = {**SERVER_OPTIONS, **server_options}
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                partial(serve_websocket, backend.handler, "127.0.0.1", 0, None, **options)
            )
            command = proxy_command(self.program, self.path, directory, server.port, certificate)
            proxy = Daemon(self.program, directory, command, ["plain", "tls"], allocate=free_port)
            try:
                await proxy.start()
                yield Site(proxy, backend, client_ssl)
            finally:
                proxy.kill()
                print(proxy.logs())
                nursery.cancel_scope.cancel()


@pytest.fixture(autouse=True)
def _no_forward_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep clients off any forward proxy of the environment: they talk to the reverse proxy."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=list(PROXIES))
def deploy(request: pytest.FixtureRequest, tmp_path: Path, tls_ca: trustme.CA) -> Deployer:
    """Start the parameter's proxy before a trio_wsext server: ``async with deploy() as site``."""
    program: str = request.param
    return Deployer(program, require_program(program, PROXIES[program]), tmp_path, tls_ca)


@pytest.fixture
async def site(deploy: Deployer) -> AsyncIterator[Site]:
    """A proxy in front of a trio_wsext server with default options."""
    async with deploy() as running:
        yield running


def deflate_of(extensions: Sequence[object]) -> PerMessageDeflate:
    """Return the one PerMessageDeflate of a connection's extensions; fail if there is none."""
    found = [extension for extension in extensions if isinstance(extension, PerMessageDeflate)]
    assert len(found) == 1, f"permessage-deflate not negotiated: {extensions!r}"
    return found[0]


# ---------------------------------------------------------------------- 1. the upgrade


async def test_upgrade_passes_through(site: Site) -> None:
    """A client reaches the server through the proxy; text and binary messages echo."""
    with trio.fail_after(30):
        async with open_websocket_url(
            site.url("/chat?room=1"), subprotocols=["chat.v2", "chat.v1"]
        ) as ws:
            await ws.send_message("hello through the proxy")
            assert await ws.get_message() == "hello through the proxy"
            await ws.send_message(b"\x00\xff" * 100)
            assert await ws.get_message() == b"\x00\xff" * 100
            assert ws.subprotocol == "chat.v2"
        (seen,) = await site.server_side("/chat?room=1")
        assert seen.connection.subprotocol == "chat.v2"
        assert header(seen.headers, b"upgrade") == [b"websocket"]


# ---------------------------------------------------------------------- 2. permessage-deflate


@pytest.mark.parametrize("size", [1, 1000, 64 * 1024, 512 * 1024])
async def test_permessage_deflate_end_to_end(site: Site, size: int) -> None:
    """Both ends negotiate permessage-deflate through the proxy, and compressed messages echo."""
    text = ("trio_wsext behind a reverse proxy, compressed end to end. " * (size // 58 + 1))[:size]
    data = text.encode()[::-1]
    with trio.fail_after(60):
        async with open_websocket_url(site.url("/deflate")) as ws:
            for _ in range(3):
                await ws.send_message(text)
                assert await ws.get_message() == text
                await ws.send_message(data)
                assert await ws.get_message() == data
            client = ws.statistics()
            client_deflate = deflate_of(ws.extensions)
            (seen,) = await site.server_side("/deflate")
            server = seen.connection.statistics()
            server_deflate = deflate_of(seen.connection.extensions)
    assert seen.offered_extensions == ["permessage-deflate"]
    assert not client_deflate.is_server
    assert server_deflate.is_server
    assert client_deflate.server_max_window_bits == server_deflate.server_max_window_bits
    assert client_deflate.client_max_window_bits == server_deflate.client_max_window_bits
    assert client.messages_sent == client.messages_received == 6
    assert server.messages_sent == server.messages_received == 6
    assert client.bytes_sent == client.bytes_received == 6 * size
    if size >= 1000:  # compressible enough to beat framing
        assert client.wire_bytes_sent < client.bytes_sent
        assert client.wire_bytes_received < client.bytes_received
        assert server.wire_bytes_sent < server.bytes_sent
        assert server.wire_bytes_received < server.bytes_received


# ---------------------------------------------------------------------- 3. TLS at the proxy


async def test_tls_terminated_at_proxy(site: Site) -> None:
    """A wss:// client trusting the CA reaches the plain-ws server; the proxy says https."""
    with trio.fail_after(30):
        async with open_websocket_url(site.tls_url("/secure"), site.client_ssl) as ws:
            await ws.send_message("over TLS " * 500)
            assert await ws.get_message() == "over TLS " * 500
            deflate_of(ws.extensions)
        (seen,) = await site.server_side("/secure")
    assert header(seen.headers, b"x-forwarded-proto") == [b"https"]
    assert seen.client_address == "127.0.0.1"


async def test_tls_port_is_really_tls(site: Site) -> None:
    """A client that does not trust the test CA is refused: the proxy really serves TLS."""
    untrusting = ssl.create_default_context()
    with trio.fail_after(30), pytest.raises(Exception) as caught:  # noqa: PT011
        async with open_websocket_url(site.tls_url("/secure"), untrusting):
            pass
    chain: BaseException | None = caught.value
    while chain is not None and not isinstance(chain, ssl.SSLCertVerificationError):
        chain = chain.__cause__ or chain.__context__
    assert chain is not None, f"not a certificate failure: {caught.value!r}"
    assert site.backend.seen == []


# ---------------------------------------------------------------------- 4. X-Forwarded-For


async def test_x_forwarded_for_reaches_handler(site: Site) -> None:
    """The proxy's X-Forwarded-For reaches request.headers: the client's 127.0.0.1."""
    with trio.fail_after(30):
        async with open_websocket_url(site.url("/who")) as ws:
            await ws.send_message("?")
            await ws.get_message()
        (seen,) = await site.server_side("/who")
    assert forwarded_for(seen.headers) == ["127.0.0.1"]
    assert header(seen.headers, b"x-forwarded-proto") == [b"http"]
    assert seen.client_address == "127.0.0.1"


async def test_forged_x_forwarded_for_stays_first(site: Site) -> None:
    """A client's own X-Forwarded-For is kept before the proxy's entry, which stays last."""
    with trio.fail_after(30):
        async with open_websocket_url(
            site.url("/forged"), extra_headers=[("X-Forwarded-For", "203.0.113.7")]
        ) as ws:
            await ws.send_message("?")
            await ws.get_message()
        (seen,) = await site.server_side("/forged")
    assert forwarded_for(seen.headers) == ["203.0.113.7", "127.0.0.1"]
    assert seen.client_address == "127.0.0.1"


# ---------------------------------------------------------------------- 5. keepalive vs idle


async def test_idle_connection_is_cut_without_pings(deploy: Deployer) -> None:
    """With pings off on both sides, the proxy closes an idle connection at its idle timeout."""
    async with deploy(ping_interval=None) as site:
        with trio.fail_after(30):
            async with open_websocket_url(site.url(SHORT_IDLE), ping_interval=None) as ws:
                await ws.send_message("before")
                assert await ws.get_message() == "before"
                started = trio.current_time()
                with pytest.raises(ConnectionClosed) as closed:
                    with trio.fail_after(IDLE_TIMEOUT * 3):
                        await ws.get_message()
                idle = trio.current_time() - started
    assert closed.value.reason.code == ABNORMAL_CLOSURE
    assert idle >= IDLE_TIMEOUT * 0.75, f"cut after {idle:.2f} s, before the idle timeout"


@attrs.frozen
class Silence:
    """What became of a connection that the application left silent."""

    cut: CloseReason | None
    """Why it closed while silent; None if it survived."""
    wire_bytes: int
    """Bytes the client received while silent: pings or pongs."""
    unexpected: str | bytes | None = None
    """A message that came, although nothing was sent."""


async def keep_silent(deploy: Deployer, pinger: str, ping_timeout: float | None) -> Silence:
    """Leave a connection silent for 3 idle timeouts, with only ``pinger``'s keepalive on.

    A connection that survives then echoes one more message.
    """
    server_ping = PING_INTERVAL if pinger == "server" else None
    client_ping = PING_INTERVAL if pinger == "client" else None
    async with deploy(ping_interval=server_ping, ping_timeout=ping_timeout) as site:
        with trio.fail_after(IDLE_TIMEOUT * 3 + 30):
            async with open_websocket_url(
                site.url(SHORT_IDLE), ping_interval=client_ping, ping_timeout=ping_timeout
            ) as ws:
                await ws.send_message("before")
                assert await ws.get_message() == "before"
                wire_before = ws.statistics().wire_bytes_received
                unexpected: str | bytes | None = None
                try:
                    with trio.move_on_after(IDLE_TIMEOUT * 3):
                        unexpected = await ws.get_message()
                except ConnectionClosed as exc:
                    cut: CloseReason | None = exc.reason
                else:
                    cut = None
                wire_bytes = ws.statistics().wire_bytes_received - wire_before
                if cut is None:
                    await ws.send_message("after")
                    assert await ws.get_message() == "after"
    return Silence(cut, wire_bytes, unexpected)


@pytest.mark.parametrize("pinger", ["client", "server"])
async def test_ping_interval_outlives_idle_timeout(deploy: Deployer, pinger: str) -> None:
    """A ping_interval below the proxy's idle timeout, on either side, keeps an idle connection.

    The pings here have no pong deadline (ping_timeout=None): what is tested is
    that they keep the connection busy enough for the proxy, and a late pong on
    a busy machine must not fail the test with 1011.
    """
    silence = await keep_silent(deploy, pinger, None)
    assert silence.cut is None, f"the proxy cut the connection: {silence.cut}"
    assert silence.unexpected is None
    # Pings (client) or pongs (server) of 6 bytes a frame crossed while silent.
    assert silence.wire_bytes >= 6 * int(IDLE_TIMEOUT * 3 / PING_INTERVAL / 2), silence


async def test_ping_interval_outlives_idle_timeout_with_long_ping_timeout(
    deploy: Deployer,
) -> None:
    """ping_interval below the idle timeout keeps the connection with a longer ping_timeout too."""
    silence = await keep_silent(deploy, "client", IDLE_TIMEOUT * 5)
    assert silence.cut is None, f"the proxy cut the connection: {silence.cut}"
    assert silence.unexpected is None


# ---------------------------------------------------------------------- 6. the proxy stops

#: How a test stops each proxy: a signal to its main process, or None for SIGKILL
#: to every process of it at once (a crash: the kernel closes every socket).
STOPS: Final[Mapping[str, Mapping[str, int | None]]] = {
    # nginx: fast shutdown; HAProxy: hard stop.
    "terminate": {"nginx": signal.SIGTERM, "haproxy": signal.SIGTERM},
    # nginx: graceful shutdown, cut at worker_shutdown_timeout; HAProxy: soft stop,
    # cut at hard-stop-after (both 1 s in the test configurations).
    "graceful": {"nginx": signal.SIGQUIT, "haproxy": signal.SIGUSR1},
    "crash": {"nginx": None, "haproxy": None},
}

#: The configurations' worker_shutdown_timeout / hard-stop-after.
SHUTDOWN_TIMEOUT: Final = 1.0


@pytest.mark.parametrize("stop", list(STOPS))
async def test_proxy_stop_gives_1006_promptly(deploy: Deployer, stop: str) -> None:
    """Stopping the proxy fails a reading and a sending client with 1006, long before any ping.

    Both clients keep the default keepalive (a ping every 20 s, 20 s for its
    pong), so only the proxy's closing of the TCP connections can end them
    within the bound. The proxy then starts again on the same ports and takes
    new connections: a restart.
    """
    signum = STOPS[stop][deploy.program]
    bound = DROP_BOUND + (SHUTDOWN_TIMEOUT if stop == "graceful" else 0)
    ended: dict[str, tuple[float, int]] = {}
    async with deploy() as site:
        with trio.fail_after(bound + 30):
            async with (
                open_websocket_url(site.url("/reader")) as reader,
                open_websocket_url(site.url("/writer/sink")) as writer,
            ):
                await reader.send_message("ready?")
                assert await reader.get_message() == "ready?"
                await writer.send_message(b"ready")
                await site.server_side("/writer/sink")

                async def read() -> None:
                    """Wait in get_message() for the message that never comes."""
                    try:
                        await reader.get_message()
                    except ConnectionClosed as exc:
                        ended["get_message"] = (trio.current_time(), exc.reason.code)

                async def write() -> None:
                    """Send a message every 10 ms until send_message() fails."""
                    try:
                        while True:
                            await writer.send_message(b"x" * 1000)
                            await trio.sleep(0.01)
                    except ConnectionClosed as exc:
                        ended["send_message"] = (trio.current_time(), exc.reason.code)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read)
                    nursery.start_soon(write)
                    await trio.sleep(0.2)  # both wait: one in get_message, one sending
                    stopped_at = trio.current_time()
                    if signum is None:
                        site.proxy.kill()
                    else:
                        await site.proxy.stop(signum)
        assert sorted(ended) == ["get_message", "send_message"]
        for operation, (at, code) in ended.items():
            assert code == ABNORMAL_CLOSURE, f"{operation}: {code}"
            elapsed = at - stopped_at
            assert elapsed < bound, f"{operation} failed {elapsed:.2f} s after the stop"

        await site.proxy.restart()
        with trio.fail_after(30):
            async with open_websocket_url(site.url("/again")) as ws:
                await ws.send_message("after the restart")
                assert await ws.get_message() == "after the restart"


# ---------------------------------------------------------------------- 7. load

#: Clients at once, and messages each sends in lockstep and then again pipelined.
CLIENTS: Final = 64
MESSAGES: Final = 200


def load_message(client: int, number: int) -> str | bytes:
    """Return message ``number`` of ``client``: text or binary, 0 to 3 KiB, each one distinct."""
    body = f"client {client} message {number} " + "x" * (number % 7 * 500)
    return body if number % 2 else body.encode()


async def test_load_through_proxy_loses_nothing(site: Site) -> None:
    """Many clients in lockstep, then pipelined: every message echoes, in order, none lost."""
    finished: list[int] = []

    async def client(number: int) -> None:
        """Send MESSAGES one at a time, then MESSAGES all at once, and check every echo."""
        async with open_websocket_url(site.url(f"/load/{number}")) as ws:
            for index in range(MESSAGES):
                message = load_message(number, index)
                await ws.send_message(message)
                assert await ws.get_message() == message, f"client {number}, message {index}"

            async def send_all() -> None:
                for index in range(MESSAGES, 2 * MESSAGES):
                    await ws.send_message(load_message(number, index))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_all)
                for index in range(MESSAGES, 2 * MESSAGES):
                    message = load_message(number, index)
                    assert await ws.get_message() == message, f"client {number}, message {index}"
            statistics = ws.statistics()
            assert statistics.messages_sent == statistics.messages_received == 2 * MESSAGES
        finished.append(number)

    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            for number in range(CLIENTS):
                nursery.start_soon(client, number)
        seen = await site.server_side_prefix("/load/", CLIENTS)
    assert sorted(finished) == list(range(CLIENTS))
    for request in seen:
        statistics = request.connection.statistics()
        assert statistics.messages_received == statistics.messages_sent == 2 * MESSAGES, (
            request.path
        )
