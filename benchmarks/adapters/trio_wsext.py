"""trio_wsext, the library under test: trio, permessage-deflate on by default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import ClassVar, Final

import trio

import trio_wsext
from benchmarks.adapters.base import HOST, MAX_SIZE, Adapter, Connection, ReadyCallback
from benchmarks.runtime import RuntimeName


class TrioWsext(Adapter):
    """``open_websocket_url`` / ``serve_websocket`` with their defaults."""

    name = "trio_wsext"
    runtime: ClassVar[RuntimeName] = "trio"
    distribution = "trio_wsext"
    default_compression = True

    @asynccontextmanager
    async def connect(self, url: str, *, compression: bool) -> AsyncIterator[Connection]:
        """Open ``url`` with ``compression="deflate"`` or ``None``."""
        async with trio_wsext.open_websocket_url(
            url, compression="deflate" if compression else None, max_message_size=MAX_SIZE
        ) as ws:
            yield Connection(send=ws.send_message, recv=ws.get_message)

    async def serve(self, ready: ReadyCallback, *, compression: bool) -> None:
        """Serve an echo handler."""

        async def echo(request: trio_wsext.WebSocketRequest) -> None:
            ws = await request.accept()
            try:
                while True:
                    await ws.send_message(await ws.get_message())
            except trio_wsext.ConnectionClosed:
                pass

        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                partial(
                    trio_wsext.serve_websocket,
                    echo,
                    HOST,
                    0,
                    None,
                    compression="deflate" if compression else None,
                    max_message_size=MAX_SIZE,
                )
            )
            ready(server.port)


ADAPTERS: Final[dict[str, type[Adapter]]] = {"trio_wsext": TrioWsext}
