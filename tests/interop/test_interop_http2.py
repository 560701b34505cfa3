"""WebSockets over HTTP/2 (RFC 8441) with independent peers: headless chromium, and hypercorn.

- chromium loads its page from our server over TLS with ALPN ``h2``, so that it has an
  HTTP/2 connection to the origin whose SETTINGS enable extended CONNECT; it then opens its
  WebSockets (the plan's echo connection and the report) over that connection. The server's
  own record proves it: every request came as ``http_version == "2"``, and every one from the
  same TCP connection (one remote port), the page's GETs included.
- our client talks to hypercorn's RFC 8441 support (its trio worker, TLS, h2) with
  permessage-deflate on: two WebSockets through one :class:`~trio_wsext.http2.Http2Pool`
  share one TCP connection, and hypercorn's own scope says HTTP/2.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import pytest
import trio
import trustme

from trio_wsext import WebSocketRequest, WebSocketServer, open_websocket_url, serve_websocket
from trio_wsext.exceptions import WebSocketError
from trio_wsext.http2 import Http2Options, Http2Pool, StaticResponse

from .browser import CHROMIUM_FLAGS, PAGE, REPORT_PATH
from .plan import DriverReport, driver_problems, echo_problems
from .processes import NODE_DIR, Child, spawn
from .trio_side import EchoServer

pytestmark = pytest.mark.interop

TEST_TIMEOUT: Final = 60
BROWSER_TIMEOUT: Final = 40
HYPERCORN_APP: Final = Path(__file__).parent / "hypercorn_echo.py"
# How long hypercorn may take to start listening.
HYPERCORN_START: Final = 20


@pytest.fixture
def ca() -> trustme.CA:
    """A throwaway certificate authority for this test's server."""
    return trustme.CA()


class RecordingServer(EchoServer):
    """The echo server plus ``/report``, recording each request's HTTP version and peer."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, object]] = []
        self.browser_report: dict[str, object] = {}
        self.reported = trio.Event()

    async def handler(self, request: WebSocketRequest) -> None:
        """Record the request; take the report on ``/report``, echo elsewhere."""
        self.requests.append((request.path, request.http_version, request.remote))
        if request.path != REPORT_PATH:
            await super().handler(request)
            return
        ws = await request.accept()
        try:
            self.browser_report = json.loads(await ws.get_message())
        except WebSocketError:
            return
        self.reported.set()


async def test_chromium_opens_websockets_over_http2(
    chromium: str, ca: trustme.CA, tmp_path: Path
) -> None:
    """chromium runs the plan over RFC 8441: every request HTTP/2, all on one TCP connection."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server_side = RecordingServer()
    peers: list[object] = []

    async def counting_handler(request: WebSocketRequest) -> None:
        peers.append(request.remote)
        await server_side.handler(request)

    static = {
        "/": StaticResponse(PAGE.read_bytes()),
        "/plan.js": StaticResponse(
            (NODE_DIR / "plan.js").read_bytes(), "text/javascript; charset=utf-8"
        ),
    }
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(
                lambda task_status: serve_websocket(
                    counting_handler,
                    "127.0.0.1",
                    0,
                    context,
                    http2=Http2Options(static=static),
                    task_status=task_status,
                )
            )
            origin = f"https://127.0.0.1:{server.port}"
            query = urllib.parse.urlencode(
                {
                    "ws": f"wss://127.0.0.1:{server.port}/echo",
                    "report": f"wss://127.0.0.1:{server.port}{REPORT_PATH}",
                    "close": "client",
                }
            )
            profile = tmp_path / "chromium-profile"
            profile.mkdir()
            argv = [
                chromium,
                *CHROMIUM_FLAGS,
                "--ignore-certificate-errors",
                f"--user-data-dir={profile}",
                f"{origin}/?{query}",
            ]
            async with spawn(
                argv, cwd=tmp_path, stderr_path=tmp_path / "chromium.stderr"
            ) as browser:
                with trio.move_on_after(BROWSER_TIMEOUT):
                    await server_side.reported.wait()
                stderr = browser.stderr_tail()
                assert server_side.reported.is_set(), (
                    f"no report from chromium; requests: {server_side.requests}; {stderr}"
                )
                echo_report, _ = await server_side.report()
            nursery.cancel_scope.cancel()
    versions = {(path, version) for path, version, _ in server_side.requests}
    assert versions == {("/echo", "2"), (REPORT_PATH, "2")}, server_side.requests
    # One TCP connection for the page and both WebSockets: one remote address and port.
    assert len({str(peer) for peer in peers}) == 1, peers
    report = DriverReport.from_json(server_side.browser_report)
    problems = driver_problems(report, can_ping=False) + echo_problems(echo_report)
    assert not problems, "\n".join([*problems, stderr])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def hypercorn_server(ca: trustme.CA, tmp_path: Path) -> AsyncIterator[tuple[int, Child]]:
    """Run hypercorn (trio worker, TLS, h2 and http/1.1) with the echo app; yield its port."""
    pytest.importorskip("hypercorn", reason="hypercorn is in the interop extra")
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    port = _free_port()
    argv = [
        sys.executable, "-m", "hypercorn", "--worker-class", "trio",
        "--certfile", str(cert_path), "--keyfile", str(key_path),
        "--bind", f"127.0.0.1:{port}", f"{HYPERCORN_APP}:app",
    ]  # fmt: skip
    async with spawn(argv, cwd=tmp_path, stderr_path=tmp_path / "hypercorn.stderr") as child:
        with trio.fail_after(HYPERCORN_START):
            while True:
                try:
                    probe = await trio.open_tcp_stream("127.0.0.1", port)
                except OSError:
                    await trio.sleep(0.1)
                    continue
                await probe.aclose()
                break
        yield port, child


async def test_trio_client_talks_to_hypercorn_over_http2(ca: trustme.CA, tmp_path: Path) -> None:
    """Two compressed WebSockets to hypercorn over one HTTP/2 connection, echoes exact."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with trio.fail_after(TEST_TIMEOUT):
        async with hypercorn_server(ca, tmp_path) as (port, child), Http2Pool() as pool:
            url = f"wss://127.0.0.1:{port}/echo"
            async with (
                open_websocket_url(url, context, http2=True, http2_pool=pool) as first,
                open_websocket_url(
                    url, context, http2=True, http2_pool=pool, subprotocols=["chat"]
                ) as second,
            ):
                for ws in (first, second):
                    assert ws.http_version == "2"
                    assert (b"x-http-version", b"2") in ws.response_headers, child.stderr_tail()
                    assert [e.name for e in ws.extensions] == ["permessage-deflate"]
                assert second.subprotocol == "chat"
                text = "héllo wörld " * 5000
                binary = bytes(range(256)) * 1024
                for ws in (first, second):
                    await ws.send_message(text)
                    await ws.send_message(binary)
                    await ws.send_message(b"")
                for ws in (first, second):
                    assert await ws.get_message() == text
                    assert await ws.get_message() == binary
                    assert await ws.get_message() == b""
                    stats = ws.statistics()
                    # Compression really ran: far fewer bytes crossed than were sent.
                    assert stats.wire_bytes_sent < stats.bytes_sent / 4, stats
            assert pool.connections_opened == 1
