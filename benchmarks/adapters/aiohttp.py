"""aiohttp's WebSocket client and server (asyncio).

aiohttp's server accepts permessage-deflate by default (``compress=True``) but
its client does not offer it (``ws_connect(compress=0)``), so with both
defaults nothing is compressed; "compression on" passes ``compress=15``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar, Final

import aiohttp
from aiohttp import web

from benchmarks.adapters.base import HOST, MAX_SIZE, Adapter, Connection, ReadyCallback
from benchmarks.runtime import RuntimeName

CLIENT_DEFLATE_WBITS: Final = 15
"""``ws_connect(compress=...)`` takes the client's window bits; 15 is zlib's largest (RFC 7692)."""


class Aiohttp(Adapter):
    """``ClientSession.ws_connect`` / ``web.WebSocketResponse`` with their defaults."""

    name = "aiohttp"
    runtime: ClassVar[RuntimeName] = "asyncio"
    distribution = "aiohttp"
    note = "aiohttp: its client offers no deflate by default; compression on = compress=15"

    @asynccontextmanager
    async def connect(self, url: str, *, compression: bool) -> AsyncIterator[Connection]:
        """Connect with ``compress=15`` or ``0``."""
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                url,
                compress=CLIENT_DEFLATE_WBITS if compression else 0,
                max_msg_size=MAX_SIZE,
            ) as ws,
        ):
            yield Connection(send=ws.send_str, recv=ws.receive_str)

    async def serve(self, ready: ReadyCallback, *, compression: bool) -> None:
        """Serve an echo handler."""

        async def echo(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(compress=compression, max_msg_size=MAX_SIZE)
            await ws.prepare(request)
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    await ws.send_str(message.data)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    await ws.send_bytes(message.data)
            return ws

        app = web.Application()
        app.router.add_get("/", echo)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            site = web.TCPSite(runner, HOST, 0)
            await site.start()
            ready(runner.addresses[0][1])
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


ADAPTERS: Final[dict[str, type[Adapter]]] = {"aiohttp": Aiohttp}
