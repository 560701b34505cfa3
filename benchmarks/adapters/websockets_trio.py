"""websockets' trio API (``websockets.trio``, websockets >= 17): deflate on by default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import ClassVar, Final

import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import connect
from websockets.trio.server import Server, ServerConnection, serve

from benchmarks.adapters.base import HOST, MAX_SIZE, Adapter, Connection, ReadyCallback
from benchmarks.runtime import RuntimeName


class WebsocketsTrio(Adapter):
    """``websockets.trio.client.connect`` / ``server.serve`` with their defaults."""

    name = "websockets.trio"
    runtime: ClassVar[RuntimeName] = "trio"
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

        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                partial(
                    serve,
                    echo,
                    0,
                    host=HOST,
                    compression="deflate" if compression else None,
                    max_size=MAX_SIZE,
                )
            )
            ready(server.listeners[0].socket.getsockname()[1])


ADAPTERS: Final[dict[str, type[Adapter]]] = {"websockets.trio": WebsocketsTrio}
