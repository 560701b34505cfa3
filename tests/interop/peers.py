"""The Python peers: ``websockets`` (sync client and server, in threads) and ``trio-websocket``.

Each has an echo server that writes an :class:`~.plan.EchoReport` and a driver that runs the
plan and writes a :class:`~.plan.DriverReport`, exactly like trio_wsext's end (trio_side.py)
and the Node peers, so the same checks apply to every combination.  Nothing here imports
trio_wsext: test_interop_peers.py proves these peers against each other and against Node.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import trio
import trio_websocket
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect
from websockets.sync.server import ServerConnection, serve

from .browser import REPORT_PATH
from .plan import (
    CLOSE_REQUEST,
    PING_TIMEOUT,
    PLAN,
    RUN,
    RUN_LENGTH,
    STEP_TIMEOUT,
    DriverReport,
    EchoReport,
    StepResult,
    compare_echo,
    describe,
    header_value,
    payload,
    run_message,
    run_plan,
)

# Bounds on the peers' blocking calls, below the tests' own fail_after.
PEER_TIMEOUT: Final = 20
# The peers' own message limits stay out of the way: the plan's 1 MiB messages test
# trio_wsext's default max_message_size (2**20), not the peers'.
PEER_MAX_SIZE: Final = 2**23
EXTENSIONS_HEADER: Final = "Sec-WebSocket-Extensions"


def _header(headers: Any) -> str | None:
    values = headers.get_all(EXTENSIONS_HEADER)
    return ", ".join(values) if values else None


class WebsocketsEchoServer:
    """A websockets sync server that echoes and reports, run in a thread."""

    def __init__(self) -> None:
        self.report = EchoReport()
        self.served = threading.Event()
        self.browser_report: dict[str, Any] = {}
        self.browser_reported = threading.Event()

    def handler(self, ws: ServerConnection) -> None:
        """Ping the client once, echo every message, record how the client closed.

        On ``/report`` (browser.REPORT_PATH), take the browser's JSON report instead.
        """
        report = self.report
        assert ws.request is not None
        assert ws.response is not None
        if ws.request.path == REPORT_PATH:
            self.browser_report = json.loads(ws.recv(timeout=PEER_TIMEOUT))
            self.browser_reported.set()
            return
        report.offered = _header(ws.request.headers)
        report.negotiated = _header(ws.response.headers)
        try:
            pong = ws.ping(b"websockets-server-ping")
            for message in ws:
                if message == CLOSE_REQUEST:
                    ws.close(1000, "server done")
                    break
                report.received.append(describe(message))
                ws.send(message)
            report.ping_ok = pong.is_set()
        except ConnectionClosed as exc:
            report.error = repr(exc)
        finally:
            report.close_code, report.close_reason = ws.close_code, ws.close_reason
            self.served.set()


@asynccontextmanager
async def websockets_server(
    options: dict[str, Any],
) -> AsyncIterator[tuple[str, WebsocketsEchoServer]]:
    """Run a websockets echo server on 127.0.0.1 port 0 in a thread; yield its URL."""
    echo = WebsocketsEchoServer()
    server = serve(echo.handler, "127.0.0.1", 0, max_size=PEER_MAX_SIZE, **options)
    thread = threading.Thread(target=server.serve_forever, name="websockets-server")
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/", echo
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(server.shutdown)
            await trio.to_thread.run_sync(thread.join)


def _websockets_plan(ws: ClientConnection, report: DriverReport) -> None:
    report.ping_ok = ws.ping(b"websockets-client-ping").wait(PEER_TIMEOUT)
    for step in PLAN:
        message = payload(step)
        ws.send(message)
        detail = compare_echo(message, ws.recv(timeout=PEER_TIMEOUT))
        report.steps.append(StepResult(step.name, detail is None, detail or ""))
    run = [run_message(i) for i in range(RUN_LENGTH)]
    for message in run:
        ws.send(message)
    failures = [
        f"message {i}: {detail}"
        for i, message in enumerate(run)
        if (detail := compare_echo(message, ws.recv(timeout=PEER_TIMEOUT))) is not None
    ]
    report.steps.append(StepResult(RUN, not failures, "; ".join(failures[:5])))


def websockets_drive(
    url: str, options: dict[str, Any], server_closes: bool = False
) -> DriverReport:
    """Run the plan with a websockets sync client (blocking: call it in a thread).

    The client closes with 1000, or with ``server_closes`` asks the server to.
    """
    report = DriverReport()
    try:
        with connect(
            url, open_timeout=PEER_TIMEOUT, close_timeout=PEER_TIMEOUT, max_size=PEER_MAX_SIZE,
            **options,
        ) as ws:  # fmt: skip
            report.offered = _header(ws.request.headers)
            report.negotiated = _header(ws.response.headers)
            try:
                _websockets_plan(ws, report)
                if server_closes:
                    ws.send(CLOSE_REQUEST)
                    extra = ws.recv(timeout=PEER_TIMEOUT)
                    report.error = f"got {describe(extra)} instead of the server's close"
            except ConnectionClosedOK:
                pass
            except (ConnectionClosed, TimeoutError) as exc:
                report.error = repr(exc)
            ws.close(1000, "done")
            report.close_code, report.close_reason = ws.close_code, ws.close_reason
    except (OSError, ConnectionClosed) as exc:
        report.error = (report.error or "") + repr(exc)
    return report


class TrioWebsocketEchoServer:
    """A trio-websocket echo handler that reports on the first connection it served."""

    def __init__(self) -> None:
        self.report = EchoReport()
        self.served = trio.Event()

    async def handler(self, request: trio_websocket.WebSocketRequest) -> None:
        """Ping the client once, echo every message, record how the client closed."""
        report = self.report
        # The offer stays unknown (None): wsproto keeps Sec-WebSocket-Extensions out of
        # request.headers, and trio-websocket declines every extension anyway.
        ws = await request.accept()
        try:
            with trio.fail_after(PING_TIMEOUT):
                await ws.ping(b"trio-websocket-server-ping")
            report.ping_ok = True
            while True:
                message = await ws.get_message()
                if message == CLOSE_REQUEST:
                    await ws.aclose(1000, "server done")
                    break
                report.received.append(describe(message))
                await ws.send_message(message)
        except trio_websocket.ConnectionClosed as exc:
            if exc.reason is None or exc.reason.code != 1000:
                report.error = repr(exc)
        except trio.TooSlowError as exc:
            report.error = repr(exc)
        finally:
            if ws.closed is not None:
                report.close_code, report.close_reason = ws.closed.code, ws.closed.reason
            self.served.set()


async def trio_websocket_drive(url: str, server_closes: bool = False) -> DriverReport:
    """Run the plan with a trio-websocket client.

    The client closes with 1000, or with ``server_closes`` asks the server to.
    """
    report = DriverReport()
    async with trio_websocket.open_websocket_url(url, max_message_size=PEER_MAX_SIZE) as ws:
        report.negotiated = header_value(ws.handshake_headers, EXTENSIONS_HEADER)
        try:
            with trio.fail_after(PING_TIMEOUT):
                await ws.ping(b"trio-websocket-client-ping")
            report.ping_ok = True
            await run_plan(ws, report)
            if server_closes:
                await ws.send_message(CLOSE_REQUEST)
                with trio.fail_after(STEP_TIMEOUT):
                    extra = await ws.get_message()
                report.error = f"got {describe(extra)} instead of the server's close"
        except trio_websocket.ConnectionClosed as exc:
            if not server_closes or exc.reason is None or exc.reason.code != 1000:
                report.error = repr(exc)
        except trio.TooSlowError as exc:
            report.error = repr(exc)
        with trio.fail_after(STEP_TIMEOUT):
            await ws.aclose(1000, "done")
        if ws.closed is not None:
            report.close_code, report.close_reason = ws.closed.code, ws.closed.reason
        # trio-websocket 0.12's client never closes its TCP stream when the server started
        # the closing handshake (its reader stops at EOF without aclose), which leaks the
        # socket (a ResourceWarning); closing it here is harmless in every other case.
        await ws._stream.aclose()
    return report


@asynccontextmanager
async def trio_websocket_server() -> AsyncIterator[tuple[str, TrioWebsocketEchoServer]]:
    """Serve a trio-websocket echo server on 127.0.0.1 port 0; yield its URL."""
    echo = TrioWebsocketEchoServer()
    async with trio.open_nursery() as nursery:
        serve = functools.partial(
            trio_websocket.serve_websocket, echo.handler, "127.0.0.1", 0, None,
            max_message_size=PEER_MAX_SIZE,
        )  # fmt: skip
        server = await nursery.start(serve)
        yield f"ws://127.0.0.1:{server.port}/", echo
        nursery.cancel_scope.cancel()
