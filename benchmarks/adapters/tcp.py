"""Plain TCP echo on trio and on asyncio: the ceilings, what a round trip costs with no WebSocket.

The "messages" are the same 64-byte texts, sent as raw bytes with no framing;
the client knows how many bytes each echo has because it sent them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import ClassVar, Final
from urllib.parse import urlsplit

import trio

from benchmarks.adapters.base import HOST, Adapter, Connection, ReadyCallback
from benchmarks.runtime import RuntimeName

RECEIVE_SIZE: Final = 65536
"""Bytes asked of each receive: as much as a WebSocket library would read at once."""


def _address(url: str) -> tuple[str, int]:
    """Return (host, port) of a ``ws://host:port/`` URL."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"URL without host or port: {url!r}")
    return parts.hostname, parts.port


class _TrioClient:
    """Client side on a ``trio.SocketStream``."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._pending: deque[int] = deque()

    async def send(self, message: str) -> None:
        data = message.encode()
        self._pending.append(len(data))
        await self._stream.send_all(data)

    async def recv(self) -> str:
        size = self._pending.popleft()
        while len(self._buffer) < size:
            chunk = await self._stream.receive_some(RECEIVE_SIZE)
            if not chunk:
                raise ConnectionError("server closed the TCP connection")
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data.decode()


class TcpTrio(Adapter):
    """trio's ``open_tcp_stream`` / ``serve_tcp``."""

    name = "tcp-trio"
    runtime: ClassVar[RuntimeName] = "trio"
    distribution = "trio"
    compression = False
    websocket = False

    @asynccontextmanager
    async def connect(self, url: str, *, compression: bool) -> AsyncIterator[Connection]:
        """Open a TCP stream to the URL's host and port."""
        stream = await trio.open_tcp_stream(*_address(url))
        async with stream:
            client = _TrioClient(stream)
            yield Connection(send=client.send, recv=client.recv)

    async def serve(self, ready: ReadyCallback, *, compression: bool) -> None:
        """Echo every chunk received."""

        async def echo(stream: trio.SocketStream) -> None:
            try:
                async for chunk in stream:
                    await stream.send_all(chunk)
            except trio.BrokenResourceError:
                pass

        async with trio.open_nursery() as nursery:
            listeners: list[trio.SocketListener] = await nursery.start(
                partial(trio.serve_tcp, echo, 0, host=HOST)
            )
            ready(listeners[0].socket.getsockname()[1])


class _AsyncioClient:
    """Client side on asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._pending: deque[int] = deque()

    async def send(self, message: str) -> None:
        data = message.encode()
        self._pending.append(len(data))
        self._writer.write(data)
        await self._writer.drain()

    async def recv(self) -> str:
        return (await self._reader.readexactly(self._pending.popleft())).decode()


class TcpAsyncio(Adapter):
    """asyncio's ``open_connection`` / ``start_server`` (streams)."""

    name = "tcp-asyncio"
    runtime: ClassVar[RuntimeName] = "asyncio"
    distribution = ""  # the stdlib: the report prints the Python version
    compression = False
    websocket = False

    @asynccontextmanager
    async def connect(self, url: str, *, compression: bool) -> AsyncIterator[Connection]:
        """Open a TCP connection to the URL's host and port."""
        reader, writer = await asyncio.open_connection(*_address(url))
        try:
            client = _AsyncioClient(reader, writer)
            yield Connection(send=client.send, recv=client.recv)
        finally:
            writer.close()
            await writer.wait_closed()

    async def serve(self, ready: ReadyCallback, *, compression: bool) -> None:
        """Echo every chunk received."""

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while chunk := await reader.read(RECEIVE_SIZE):
                    writer.write(chunk)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(echo, HOST, 0)
        async with server:
            ready(server.sockets[0].getsockname()[1])
            await server.serve_forever()


ADAPTERS: Final[dict[str, type[Adapter]]] = {"tcp-trio": TcpTrio, "tcp-asyncio": TcpAsyncio}
