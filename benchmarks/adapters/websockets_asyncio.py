"""websockets on asyncio (``websockets.asyncio``): permessage-deflate on by default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar, Final

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from benchmarks.adapters.base import HOST, MAX_SIZE, Adapter, Connection, ReadyCallback
from benchmarks.runtime import RuntimeName


class WebsocketsAsyncio(Adapter):
    """``websockets.asyncio.client.connect`` / ``server.serve`` with their defaults."""

    name = "websockets"
    runtime: ClassVar[RuntimeName] = "asyncio"
    distribution = "websockets"
    default_compression = True

    @asynccontextmanager
    async def connect(self, url: str, *, compression: bool) -> AsyncIterator[Connection]:
        """Connect with ``compression="deflate"`` or ``None``."""
        async with connect(
            url, compression="deflate" if compression else None, max_size=MAX_SIZE
        ) as ws:
            yield Connection(send=ws.send, recv=ws.recv)

    async def serve(self, ready: ReadyCallback, *, compression: bool) -> None:
        """Serve an echo handler."""

        async def echo(ws: ServerConnection) -> None:
            try:
                async for message in ws:
                    await ws.send(message)
            except ConnectionClosed:
                pass

        async with serve(
            echo, HOST, 0, compression="deflate" if compression else None, max_size=MAX_SIZE
        ) as server:
            ready(next(iter(server.sockets)).getsockname()[1])
            await server.serve_forever()


ADAPTERS: Final[dict[str, type[Adapter]]] = {"websockets": WebsocketsAsyncio}
