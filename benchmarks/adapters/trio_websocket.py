"""trio-websocket: trio, no permessage-deflate at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, ClassVar, Final

import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)

from benchmarks.adapters.base import HOST, MAX_SIZE, Adapter, Connection, ReadyCallback
from benchmarks.runtime import RuntimeName


class TrioWebsocket(Adapter):
    """``open_websocket_url`` / ``serve_websocket`` with their defaults."""

    name = "trio-websocket"
    runtime: ClassVar[RuntimeName] = "trio"
    distribution = "trio-websocket"
    compression = False
    note = "trio-websocket has no permessage-deflate: compression-on rows are n/a"

    @asynccontextmanager
    async def connect(self, url: str, *, compression: bool) -> AsyncIterator[Connection]:
        """Connect; ``compression`` must be False."""
        if compression:
            raise ValueError("trio-websocket has no permessage-deflate")
        async with open_websocket_url(url, max_message_size=MAX_SIZE) as ws:
            yield Connection(send=ws.send_message, recv=ws.get_message)

    async def serve(self, ready: ReadyCallback, *, compression: bool) -> None:
        """Serve an echo handler (``compression`` is ignored: it cannot negotiate deflate)."""

        async def echo(request: WebSocketRequest) -> None:
            ws: Any = await request.accept()
            try:
                while True:
                    await ws.send_message(await ws.get_message())
            except ConnectionClosed:
                pass

        async with trio.open_nursery() as nursery:
            server: Any = await nursery.start(
                partial(serve_websocket, echo, HOST, 0, None, max_message_size=MAX_SIZE)
            )
            ready(server.port)


ADAPTERS: Final[dict[str, type[Adapter]]] = {"trio-websocket": TrioWebsocket}
