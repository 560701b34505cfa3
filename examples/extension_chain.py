"""An extension chain: logging, compression, logging, first on frames, then on a connection.

Port of websockets' "Extension Chain Implementation" example. Part one runs
its chain by hand on one frame; trio_wsext's own ``ExtensionChain`` replaces
the example's copy of it. Part two negotiates the same three extensions on a real
connection, which takes one small factory pair; the connection then runs
them as one chain: encode in offer order, decode in reverse.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from functools import partial

import trio

from trio_wsext import WebSocketRequest, open_websocket_url, serve_websocket
from trio_wsext.exceptions import NegotiationError, PayloadTooBig
from trio_wsext.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionChain,
    ExtensionParameter,
    ServerExtensionFactory,
)
from trio_wsext.frames import Frame, Opcode


class CompressionExtension(Extension):
    """Simple compression extension."""

    # It sets RSV1, so the handshake never activates it beside another
    # extension that uses RSV1 (permessage-deflate).
    rsv_bits = frozenset({1})

    def __init__(self) -> None:
        super().__init__("simple-compress")
        self.compressor = zlib.compressobj()
        self.decompressor = zlib.decompressobj()

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode == Opcode.TEXT and len(frame.data) > 100:
            compressed = self.compressor.compress(frame.data)
            compressed += self.compressor.flush(zlib.Z_SYNC_FLUSH)
            return frame._replace(data=compressed, rsv1=True)
        return frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.rsv1 and frame.opcode == Opcode.TEXT:
            # max_size is what is left of the connection's message-size budget:
            # never inflate past it (a small frame may inflate to gigabytes).
            limit = 0 if max_size is None else max_size + 1  # 0: no limit
            decompressed = self.decompressor.decompress(frame.data, limit)
            if max_size is not None and len(decompressed) > max_size:
                raise PayloadTooBig(f"message inflates past {max_size} bytes")
            return frame._replace(data=decompressed, rsv1=False)
        return frame


class LoggingExtension(Extension):
    """Logging extension for debugging; ``side`` labels its lines on a connection."""

    def __init__(self, name: str = "logger", side: str = "") -> None:
        super().__init__(name)
        self.message_count = 0
        self.label = f"{side}/{name} " if side else ""

    def encode(self, frame: Frame) -> Frame:
        self.message_count += 1
        print(
            f"[{self.label}OUT #{self.message_count}] {frame.opcode.name}: {len(frame.data)} bytes"
        )
        return frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.message_count += 1
        print(
            f"[{self.label}IN #{self.message_count}] {frame.opcode.name}: {len(frame.data)} bytes"
        )
        return frame


def extension_chain_example() -> None:
    """Demonstrate extension chaining."""
    # Create extension chain
    extensions = [
        LoggingExtension("pre-compress"),
        CompressionExtension(),
        LoggingExtension("post-compress"),
    ]

    chain = ExtensionChain(extensions)

    # Test message
    test_message = "This is a test message that should be compressed! " * 10
    test_frame = Frame(Opcode.TEXT, test_message.encode())

    print("=== Extension Chain Test ===")
    print(f"Original message: {len(test_message)} characters")

    # Encode (outgoing)
    print("\nEncoding (outgoing):")
    encoded_frame = chain.encode(test_frame)
    print(f"Final encoded size: {len(encoded_frame.data)} bytes")

    # Decode (incoming)
    print("\nDecoding (incoming):")
    decoded_frame = chain.decode(encoded_frame)
    decoded_message = decoded_frame.data.decode()
    print(f"Final decoded size: {len(decoded_message)} characters")

    # Verify roundtrip
    print(f"\nRoundtrip successful: {decoded_message == test_message}")


# Part two: factories, so that the same extensions can be negotiated.


class ChainClientFactory(ClientExtensionFactory):
    """Offers one extension without parameters; ``make`` builds it once accepted."""

    def __init__(self, name: str, make: Callable[[], Extension]) -> None:
        super().__init__(name)
        self.make = make

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        if parameters:
            raise NegotiationError(f"unexpected parameters for {self.name}: {parameters}")
        return self.make()


class ChainServerFactory(ServerExtensionFactory):
    """Accepts one extension offered without parameters."""

    def __init__(self, name: str, make: Callable[[], Extension]) -> None:
        super().__init__(name)
        self.make = make

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        if parameters:
            raise NegotiationError(f"unexpected parameters for {self.name}: {parameters}")
        return [], self.make()


async def echo(request: WebSocketRequest) -> None:
    """Send every message back."""
    websocket = await request.accept()
    async for message in websocket:
        await websocket.send_message(message)


async def connection_example() -> None:
    """Negotiate the chain between a client and a server, and echo one message."""
    print("\n=== The same chain, negotiated on a connection ===")
    server_factories = [
        ChainServerFactory("pre-compress", lambda: LoggingExtension("pre-compress", "server")),
        ChainServerFactory("simple-compress", CompressionExtension),
        ChainServerFactory("post-compress", lambda: LoggingExtension("post-compress", "server")),
    ]
    client_factories = [
        ChainClientFactory("pre-compress", lambda: LoggingExtension("pre-compress", "client")),
        ChainClientFactory("simple-compress", CompressionExtension),
        ChainClientFactory("post-compress", lambda: LoggingExtension("post-compress", "client")),
    ]
    # compression=None: no permessage-deflate, whose RSV1 simple-compress uses.
    serve = partial(
        serve_websocket, echo, "127.0.0.1", 0, None, extensions=server_factories, compression=None
    )
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve)
        async with open_websocket_url(
            f"ws://127.0.0.1:{server.port}",
            extensions=client_factories,
            compression=None,
        ) as websocket:
            print(f"Negotiated: {[extension.name for extension in websocket.extensions]}")
            test_message = "This is a test message that should be compressed! " * 10
            await websocket.send_message(test_message)
            echoed = await websocket.get_message()
            print(f"Echo matches: {echoed == test_message}")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    extension_chain_example()
    trio.run(connection_example)
