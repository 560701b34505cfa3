"""A debugging extension that prints every frame and keeps statistics.

Port of websockets' "Extension Debugging Tools" example. Part one runs its
simulation: frames through ``encode`` and ``decode`` by hand. Part two
installs the extension on a real connection, after permessage-deflate in the
chain, so it sees frames as they cross the wire: compressed, with RSV1 set.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import trio

from trio_wsext import WebSocketRequest, open_websocket_url, serve_websocket
from trio_wsext.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from trio_wsext.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from trio_wsext.frames import Frame, Opcode


class DebugExtension(Extension):
    """Extension for debugging frame processing."""

    def __init__(self, name: str = "debug") -> None:
        super().__init__(name)
        self.stats: dict[str, Any] = {
            "frames_encoded": 0,
            "frames_decoded": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "start_time": time.time(),
        }

    def encode(self, frame: Frame) -> Frame:
        self.stats["frames_encoded"] += 1
        self.stats["bytes_out"] += len(frame.data)

        print("[DEBUG] Encoding frame:")
        print(f" Opcode: {frame.opcode.name}")
        print(f" Size: {len(frame.data)} bytes")
        print(f" FIN: {frame.fin}")
        print(f" RSV: {frame.rsv1}{frame.rsv2}{frame.rsv3}")

        return frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.stats["frames_decoded"] += 1
        self.stats["bytes_in"] += len(frame.data)

        print("[DEBUG] Decoding frame:")
        print(f" Opcode: {frame.opcode.name}")
        print(f" Size: {len(frame.data)} bytes")
        print(f" FIN: {frame.fin}")
        print(f" RSV: {frame.rsv1}{frame.rsv2}{frame.rsv3}")

        return frame

    def get_stats(self) -> dict[str, Any]:
        """Get extension statistics."""
        runtime = max(time.time() - self.stats["start_time"], 1e-9)

        return {
            **self.stats,
            "runtime_seconds": runtime,
            "frames_per_second": (self.stats["frames_encoded"] + self.stats["frames_decoded"])
            / runtime,
            "bytes_per_second": (self.stats["bytes_in"] + self.stats["bytes_out"]) / runtime,
        }

    def print_stats(self) -> None:
        """Print formatted statistics."""
        stats = self.get_stats()

        print(f"\n=== {self.name} Extension Statistics ===")
        print(f"Runtime: {stats['runtime_seconds']:.2f} seconds")
        print(f"Frames encoded: {stats['frames_encoded']}")
        print(f"Frames decoded: {stats['frames_decoded']}")
        print(f"Bytes in: {stats['bytes_in']:,}")
        print(f"Bytes out: {stats['bytes_out']:,}")
        print(f"Frames/sec: {stats['frames_per_second']:.2f}")
        print(f"Bytes/sec: {stats['bytes_per_second']:,.0f}")


def debug_extension_example() -> None:
    """Demonstrate debug extension."""
    debug_ext = DebugExtension("test-debug")

    # Simulate frame processing
    test_frames = [
        Frame(Opcode.TEXT, b"Hello, World!"),
        Frame(Opcode.BINARY, b"\x00\x01\x02\x03"),
        Frame(Opcode.PING, b"ping"),
        Frame(Opcode.PONG, b"pong"),
    ]

    print("=== Debug Extension Example ===")

    # Process frames through extension
    for frame in test_frames:
        # Simulate outgoing frame
        encoded = debug_ext.encode(frame)

        # Simulate incoming frame
        debug_ext.decode(encoded)

    # Print statistics
    debug_ext.print_stats()


# Part two: on a real connection. Negotiating "debug" takes a factory pair.


class DebugClientFactory(ClientExtensionFactory):
    """Offers the "debug" extension; the client gets a DebugExtension."""

    def __init__(self) -> None:
        super().__init__("debug")

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        return DebugExtension("debug")


class DebugServerFactory(ServerExtensionFactory):
    """Accepts "debug"; the server side only agrees, it passes frames through."""

    def __init__(self) -> None:
        super().__init__("debug")

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        return [], Extension("debug")


async def echo(request: WebSocketRequest) -> None:
    """Send every message back."""
    websocket = await request.accept()
    async for message in websocket:
        await websocket.send_message(message)


async def connection_example() -> None:
    """Install DebugExtension on a client connection; echo a text and a binary message."""
    print("\n=== Debug Extension on a connection ===")
    serve = partial(serve_websocket, echo, "127.0.0.1", 0, None, extensions=[DebugServerFactory()])
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve)
        # The chain runs in offer order: permessage-deflate first, then debug,
        # which therefore sees compressed frames going out and coming in.
        extensions = [ClientPerMessageDeflateFactory(), DebugClientFactory()]
        url = f"ws://127.0.0.1:{server.port}"
        async with open_websocket_url(url, extensions=extensions) as websocket:
            debug_ext = next(e for e in websocket.extensions if isinstance(e, DebugExtension))
            messages: list[str | bytes] = ["Hello, World! " * 20, b"\x00\x01\x02\x03"]
            for message in messages:
                await websocket.send_message(message)
                await websocket.get_message()
        debug_ext.print_stats()
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    debug_extension_example()
    trio.run(connection_example)
