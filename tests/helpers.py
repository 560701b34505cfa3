"""Shared test helpers: connection pairs, a raw peer, the seed's SimpleEncryption extension."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from trio_wsext.connection import WebSocketConnection
from trio_wsext.exceptions import NegotiationError
from trio_wsext.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from trio_wsext.frames import Frame, FrameParser, Opcode, serialize_frame
from trio_wsext.handshake import ClientHandshake
from trio_wsext.options import ConnectionOptions

# -- the seed's custom extension, ported (imports and nothing else changed) ----------------


class SimpleEncryptionExtension(Extension):
    """Simple XOR encryption extension (for demonstration only)."""

    def __init__(self, key: bytes):
        super().__init__("simple-encrypt")
        self.key = key

    def encode(self, frame: Frame) -> Frame:
        """Encrypt outgoing data frames."""
        if frame.opcode in [Opcode.TEXT, Opcode.BINARY]:
            # Simple XOR encryption (NOT secure!)
            encrypted_data = bytes(
                b ^ self.key[i % len(self.key)] for i, b in enumerate(frame.data)
            )
            return frame._replace(data=encrypted_data)
        return frame

    def decode(self, frame: Frame) -> Frame:  # type: ignore[override]
        """Decrypt incoming data frames."""
        if frame.opcode in [Opcode.TEXT, Opcode.BINARY]:
            # XOR decryption (same as encryption for XOR)
            decrypted_data = bytes(
                b ^ self.key[i % len(self.key)] for i, b in enumerate(frame.data)
            )
            return frame._replace(data=decrypted_data)
        return frame


class SimpleEncryptionClientFactory(ClientExtensionFactory):
    """Client factory for simple encryption extension."""

    def __init__(self, password: str):
        # Generate key from password
        key = hashlib.sha256(password.encode()).digest()[:16]  # 16-byte key
        super().__init__("simple-encrypt", [("key", base64.b64encode(key).decode())])
        self.key = key

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        """Process server response parameters."""
        # In real implementation, would validate server parameters
        return SimpleEncryptionExtension(self.key)


class SimpleEncryptionServerFactory(ServerExtensionFactory):
    """Server factory for simple encryption extension."""

    def __init__(self, password: str):
        super().__init__("simple-encrypt")
        self.key = hashlib.sha256(password.encode()).digest()[:16]

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Process client request parameters."""
        # Validate client key matches our key
        client_key_param = next((p for p in parameters if p[0] == "key"), None)
        if not client_key_param:
            raise NegotiationError("Missing encryption key")

        client_key = base64.b64decode(client_key_param[1] or "")
        if client_key != self.key:
            raise NegotiationError("Invalid encryption key")

        # Return response parameters and extension
        response_params: list[ExtensionParameter] = [("key", base64.b64encode(self.key).decode())]
        extension = SimpleEncryptionExtension(self.key)

        return response_params, extension


# -- connection pairs -------------------------------------------------------------------------


@asynccontextmanager
async def open_connection_pair(
    *,
    lockstep: bool = False,
    client_extensions: Sequence[Extension] = (),
    server_extensions: Sequence[Extension] = (),
    **options: Any,
) -> AsyncIterator[tuple[WebSocketConnection, WebSocketConnection]]:
    """Yield a running (client, server) pair over an in-memory stream pair.

    ``lockstep=True`` uses :func:`trio.testing.lockstep_stream_pair`, whose
    ``send_all`` waits for the peer to read (no buffer: backpressure tests);
    otherwise :func:`trio.testing.memory_stream_pair`. Other keywords go to
    both connections; keepalive is off unless given.
    """
    options.setdefault("ping_interval", None)
    client_stream: trio.abc.Stream
    server_stream: trio.abc.Stream
    if lockstep:
        client_stream, server_stream = trio.testing.lockstep_stream_pair()
    else:
        client_stream, server_stream = trio.testing.memory_stream_pair()
    settings = ConnectionOptions(**options)
    client = WebSocketConnection(
        client_stream, is_client=True, extensions=client_extensions, options=settings
    )
    server = WebSocketConnection(
        server_stream, is_client=False, extensions=server_extensions, options=settings
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await nursery.start(server.run)
        yield client, server
        nursery.cancel_scope.cancel()


class RawPeer:
    """The far end of a connection, driven by hand: read frames, write raw bytes.

    Args:
        stream: the peer's end of the stream.
        is_client: whether this peer plays the client (it then masks its frames).
    """

    def __init__(self, stream: trio.abc.Stream, *, is_client: bool) -> None:
        self.stream = stream
        self.is_client = is_client
        self.parser = FrameParser(require_mask=not is_client)
        self.received = 0

    async def receive_frame(self) -> Frame:
        """Read until one whole frame arrived and return it.

        Raises:
            EOFError: the stream ended first.
        """
        while True:
            frame = self.parser.next_frame()
            if frame is not None:
                return frame
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("stream ended")
            self.received += len(data)
            self.parser.feed(data)

    async def send_frame(self, frame: Frame) -> None:
        """Write one frame, masked when this peer is the client."""
        await self.stream.send_all(serialize_frame(frame, mask=self.is_client))


@asynccontextmanager
async def open_raw_pair(
    *, client: bool = True, lockstep: bool = False, **options: Any
) -> AsyncIterator[tuple[WebSocketConnection, RawPeer]]:
    """Yield a running connection and a :class:`RawPeer` at the other end.

    Args:
        client: whether the connection under test is the client side.
        lockstep: use a lockstep stream pair (no buffering at all).
        options: for the connection; keepalive is off unless given.
    """
    options.setdefault("ping_interval", None)
    ours: trio.abc.Stream
    theirs: trio.abc.Stream
    if lockstep:
        ours, theirs = trio.testing.lockstep_stream_pair()
    else:
        ours, theirs = trio.testing.memory_stream_pair()
    extensions = options.pop("extensions", ())
    connection = WebSocketConnection(
        ours, is_client=client, extensions=extensions, options=ConnectionOptions(**options)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(connection.run)
        yield connection, RawPeer(theirs, is_client=not client)
        nursery.cancel_scope.cancel()


# -- servers without sockets, clients without client.py -----------------------------------------


class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener whose connections are in-memory stream pairs (works with autojump_clock)."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](0)

    async def accept(self) -> trio.abc.Stream:
        """Return the server end of the next :meth:`connect`."""
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise trio.ClosedResourceError("listener closed") from None

    async def aclose(self) -> None:
        """Stop accepting."""
        self._receive.close()
        await trio.lowlevel.checkpoint()

    async def connect(self) -> trio.abc.Stream:
        """Connect: hand the server end to :meth:`accept` and return the client end."""
        client, server = trio.testing.memory_stream_pair()
        await self._send.send(server)
        return client


async def handshake_client(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    resource: str = "/",
    *,
    subprotocols: Sequence[str] | None = None,
    extensions: Sequence[ClientExtensionFactory] = (),
    extra_headers: Sequence[tuple[str | bytes, str | bytes]] | None = None,
    **options: Any,
) -> WebSocketConnection:
    """Run the client handshake over ``stream`` and start a connection in ``nursery``.

    This is the sans-I/O handshake plus :class:`WebSocketConnection`, without
    ``client.py``, so that server tests stand on their own.

    Raises:
        ConnectionRejected, HandshakeError: as :class:`ClientHandshake` does.
    """
    options.setdefault("ping_interval", None)
    handshake = ClientHandshake(
        "example.com",
        80,
        resource,
        subprotocols=subprotocols,
        extensions=extensions,
        extra_headers=extra_headers,
    )
    await stream.send_all(handshake.request_bytes())
    while True:
        data = await stream.receive_some(65536)
        result = handshake.receive_data(bytes(data))
        if result is not None:
            break
    connection = WebSocketConnection(
        stream,
        is_client=True,
        extensions=result.extensions,
        path=resource,
        subprotocol=result.subprotocol,
        request_headers=handshake.request_headers,
        response_headers=result.response_headers,
        extra_data=result.extra_data,
        options=ConnectionOptions(**options),
    )
    await nursery.start(connection.run)
    return connection


async def receive_all(stream: trio.abc.ReceiveStream) -> bytes:
    """Read ``stream`` until EOF and return everything."""
    chunks = []
    while data := await stream.receive_some(65536):
        chunks.append(bytes(data))
    return b"".join(chunks)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


#: Whether this machine can listen on ::1 (the IPv6 tests skip otherwise).
HAS_IPV6 = _has_ipv6_loopback()
