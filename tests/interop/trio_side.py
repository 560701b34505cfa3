"""trio_wsext's end of every interop combination: the plan's driver and its echo server.

Both keep going after a failure (a mismatched echo, a closed connection) and write what they
saw into a report, so that one test shows every problem of a combination at once.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import trio

from trio_wsext import (
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
    open_websocket_url,
    serve_websocket,
)
from trio_wsext.exceptions import ConnectionClosed, WebSocketError

from .plan import (
    CLOSE_REQUEST,
    PING_TIMEOUT,
    STEP_TIMEOUT,
    DriverReport,
    EchoReport,
    TrioSide,
    describe,
    header_value,
    run_plan,
)

REPORT_TIMEOUT: Final = 30
EXTENSIONS_HEADER: Final = "Sec-WebSocket-Extensions"


def trio_side(ws: WebSocketConnection, *, is_server: bool) -> TrioSide:
    """Return what ``ws`` reports about its handshake."""
    return TrioSide(
        offered=header_value(ws.request_headers, EXTENSIONS_HEADER),
        negotiated=header_value(ws.response_headers, EXTENSIONS_HEADER),
        extensions=list(ws.extensions),
        is_server=is_server,
    )


async def _ping(ws: WebSocketConnection, payload: bytes) -> bool:
    """Return whether ``ws.ping(payload)`` got its pong in time."""
    with trio.move_on_after(PING_TIMEOUT):
        try:
            await ws.ping(payload)
        except WebSocketError:
            return False
        return True
    return False


async def _await_server_close(
    ws: WebSocketConnection, report: DriverReport, side: TrioSide
) -> None:
    side.close_requested = True
    await ws.send_message(CLOSE_REQUEST)
    with trio.fail_after(STEP_TIMEOUT):
        try:
            extra = await ws.get_message()
        except ConnectionClosed:
            return
    report.error = f"got {describe(extra)} instead of the server's close"


async def drive(
    url: str, *, server_closes: bool = False, **options: Any
) -> tuple[DriverReport, TrioSide | None]:
    """Run the plan as a trio_wsext client of ``url``; ``options`` go to open_websocket_url.

    The client closes with 1000, or with ``server_closes`` asks the server to.
    """
    report = DriverReport()
    side = None
    try:
        async with open_websocket_url(url, **options) as ws:
            side = trio_side(ws, is_server=False)
            report.offered, report.negotiated = side.offered, side.negotiated
            try:
                report.ping_ok = await _ping(ws, b"trio-client-ping")
                await run_plan(ws, report)
                if server_closes:
                    await _await_server_close(ws, report, side)
            except (WebSocketError, trio.TooSlowError) as exc:
                report.error = repr(exc)
            with trio.fail_after(STEP_TIMEOUT):
                await ws.aclose(1000, "done")
            side.statistics = ws.statistics()
            if ws.closed is not None:
                report.close_code, report.close_reason = ws.closed.code, ws.closed.reason
    except (WebSocketError, trio.TooSlowError) as exc:
        report.error = (report.error or "") + repr(exc)
    return report, side


class EchoServer:
    """A trio_wsext echo handler that reports on every connection it served."""

    def __init__(self) -> None:
        self.reports: list[tuple[EchoReport, TrioSide]] = []
        self._served = trio.Event()

    async def handler(self, request: WebSocketRequest) -> None:
        """Accept, ping the client once, echo every message, record how the client closed.

        On CLOSE_REQUEST, start the closing handshake with 1000 instead.
        """
        ws = await request.accept()
        side = trio_side(ws, is_server=True)
        report = EchoReport(offered=side.offered, negotiated=side.negotiated)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ping, ws, report)
                try:
                    async for message in ws:
                        if message == CLOSE_REQUEST:
                            side.close_requested = True
                            await ws.aclose(1000, "server done")
                            break
                        report.received.append(describe(message))
                        await ws.send_message(message)
                except WebSocketError as exc:
                    report.error = repr(exc)
        finally:
            side.statistics = ws.statistics()
            if ws.closed is not None:
                report.close_code, report.close_reason = ws.closed.code, ws.closed.reason
            self.reports.append((report, side))
            self._served.set()

    @staticmethod
    async def _ping(ws: WebSocketConnection, report: EchoReport) -> None:
        report.ping_ok = await _ping(ws, b"trio-server-ping")

    async def report(self) -> tuple[EchoReport, TrioSide]:
        """Wait for the first connection to end and return its report."""
        with trio.fail_after(REPORT_TIMEOUT):
            await self._served.wait()
        return self.reports[0]


@asynccontextmanager
async def serving(
    handler: Callable[[WebSocketRequest], Awaitable[None]], **options: Any
) -> AsyncIterator[str]:
    """Serve ``handler`` with trio_wsext on 127.0.0.1 port 0; yield its ``ws://`` URL."""
    async with trio.open_nursery() as nursery:
        serve = functools.partial(serve_websocket, handler, "127.0.0.1", 0, None, **options)
        server: WebSocketServer = await nursery.start(serve)
        yield f"ws://127.0.0.1:{server.port}/"
        nursery.cancel_scope.cancel()
