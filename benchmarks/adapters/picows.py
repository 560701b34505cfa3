"""picows (asyncio, Cython): its native API, and its websockets-compatible API for deflate.

picows' native API (``ws_connect`` / ``ws_create_server`` with a
``WSListener``) is the fast one and has no permessage-deflate; picows also
ships ``picows.websockets``, a reimplementation of websockets' asyncio API
that does negotiate deflate (on by default). Compression-off rows use the
native API, compression-on rows ``picows.websockets``, each with its defaults.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar, Final

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    ws_connect,
    ws_create_server,
)
from picows.websockets import ConnectionClosed
from picows.websockets.asyncio.client import connect as compat_connect
from picows.websockets.asyncio.server import ServerConnection, serve as compat_serve

from benchmarks.adapters.base import HOST, MAX_SIZE, Adapter, Connection, ReadyCallback
from benchmarks.runtime import RuntimeName

CLOSE_TIMEOUT: Final = 5.0
"""Seconds the client waits for the server's close frame before dropping TCP."""

_DATA: Final = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION)


class _EchoListener(WSListener):
    """Native server side: every data frame goes back as it came (fragments too)."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type in _DATA:
            transport.send(frame.msg_type, frame.get_payload_as_memoryview(), frame.fin)
        elif frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()


class _ClientListener(WSListener):
    """Native client side: whole messages into a deque, one waiter, flow control on send."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._messages: deque[str | bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._fragments: list[bytes] = []
        self._fragmented_text = False
        self._closed = False
        self._writable = asyncio.Event()
        self._writable.set()
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT and frame.fin:
            self._deliver(frame.get_payload_as_utf8_text())
        elif kind is WSMsgType.BINARY and frame.fin:
            self._deliver(frame.get_payload_as_bytes())
        elif kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            self._fragmented_text = kind is WSMsgType.TEXT
            self._fragments = [frame.get_payload_as_bytes()]
        elif kind is WSMsgType.CONTINUATION:
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments = []
                self._deliver(data.decode() if self._fragmented_text else data)
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._closed = True
        self._wake()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def _deliver(self, message: str | bytes) -> None:
        self._messages.append(message)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def send(self, message: str) -> None:
        """Send one text frame, first waiting while the transport's buffer is full."""
        if not self._writable.is_set():
            await self._writable.wait()
        if self._closed or self.transport is None:
            raise ConnectionError("picows connection closed")
        self.transport.send(WSMsgType.TEXT, message)

    async def recv(self) -> str | bytes:
        """Return the next whole message."""
        while not self._messages:
            if self._closed:
                raise ConnectionError("picows connection closed")
            self._waiter = self._loop.create_future()
            await self._waiter
        return self._messages.popleft()


class Picows(Adapter):
    """picows: native API without compression, ``picows.websockets`` with it."""

    name = "picows"
    runtime: ClassVar[RuntimeName] = "asyncio"
    distribution = "picows"
    note = (
        "picows: compression off = its native API (no deflate there); "
        "compression on = picows.websockets, its websockets-compatible API"
    )

    @asynccontextmanager
    async def connect(self, url: str, *, compression: bool) -> AsyncIterator[Connection]:
        """Connect with the native API, or with ``picows.websockets`` when compressing."""
        if compression:
            async with compat_connect(url, compression="deflate", max_size=MAX_SIZE) as ws:
                yield Connection(send=ws.send, recv=ws.recv)
            return
        transport, listener = await ws_connect(_ClientListener, url, max_frame_size=MAX_SIZE)
        if not isinstance(listener, _ClientListener):  # narrows the type for mypy
            raise TypeError(f"ws_connect returned {listener!r}")
        try:
            yield Connection(send=listener.send, recv=listener.recv)
        finally:
            transport.send_close(WSCloseCode.OK)
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await transport.wait_disconnected()
            finally:
                transport.disconnect(graceful=False)

    async def serve(self, ready: ReadyCallback, *, compression: bool) -> None:
        """Serve an echo handler: native, or ``picows.websockets`` when compressing."""
        if compression:

            async def echo(ws: ServerConnection) -> None:
                try:
                    async for message in ws:
                        await ws.send(message)
                except ConnectionClosed:
                    pass

            async with compat_serve(echo, HOST, 0, max_size=MAX_SIZE) as compat_server:
                ready(compat_server.sockets[0].getsockname()[1])
                await compat_server.serve_forever()
            return

        def listener(request: WSUpgradeRequest) -> WSListener:
            return _EchoListener()

        server = await ws_create_server(listener, HOST, 0, max_frame_size=MAX_SIZE)
        async with server:
            ready(server.sockets[0].getsockname()[1])
            await server.serve_forever()


ADAPTERS: Final[dict[str, type[Adapter]]] = {"picows": Picows}
