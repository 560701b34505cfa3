"""Shared test helpers: connection pairs, a raw peer, the seed's SimpleEncryption extension."""

from __future__ import annotations

import base64
import hashlib
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
            encrypted_data = bytes(b ^ self.key[i % len(self.key)] for i, b in enumerate(frame.data))
            return frame._replace(data=encrypted_data)
        return frame

    def decode(self, frame: Frame) -> Frame:  # type: ignore[override]
        """Decrypt incoming data frames."""
        if frame.opcode in [Opcode.TEXT, Opcode.BINARY]:
            # XOR decryption (same as encryption for XOR)
            decrypted_data = bytes(b ^ self.key[i % len(self.key)] for i, b in enumerate(frame.data))
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
        response_params: list[ExtensionParameter] = [
            ("key", base64.b64encode(self.key).decode())
        ]
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
    if lockstep:
        client_stream, server_stream = trio.testing.lockstep_stream_pair()
    else:
        client_stream, server_stream = trio.testing.memory_stream_pair()
    client = WebSocketConnection(
        client_stream, is_client=True, extensions=client_extensions, **options
    )
    server = WebSocketConnection(
        server_stream, is_client=False, extensions=server_extensions, **options
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(client._run)
        await nursery.start(server._run)
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
    if lockstep:
        ours, theirs = trio.testing.lockstep_stream_pair()
    else:
        ours, theirs = trio.testing.memory_stream_pair()
    connection = WebSocketConnection(ours, is_client=client, **options)
    async with trio.open_nursery() as nursery:
        await nursery.start(connection._run)
        yield connection, RawPeer(theirs, is_client=not client)
        nursery.cancel_scope.cancel()
