"""Advanced compression: the default permessage-deflate settings against custom ones.

Port of websockets' "Advanced Compression Configuration" example, with an echo server
of its own and, for each message, the bytes that crossed the wire each way,
read from ``statistics()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import trio

from trio_wsext import WebSocketRequest, open_websocket_url, serve_websocket
from trio_wsext.extensions import ClientExtensionFactory, enable_client_permessage_deflate
from trio_wsext.extensions.permessage_deflate import ClientPerMessageDeflateFactory


async def echo(request: WebSocketRequest) -> None:
    """Send every message back as it came (compression is on by default)."""
    websocket = await request.accept()
    async for message in websocket:
        await websocket.send_message(message)


async def advanced_compression_example(url: str) -> None:
    """Demonstrate advanced compression configurations."""
    # Standard compression configuration
    standard_extensions = enable_client_permessage_deflate(None)

    # Custom compression configuration with specific settings
    custom_factory = ClientPerMessageDeflateFactory(
        server_max_window_bits=12,  # Medium server window
        client_max_window_bits=12,  # Medium client window
        compress_settings={"memLevel": 6},
    )
    custom_extensions = [custom_factory]

    # Test configurations
    configurations: list[tuple[str, Sequence[ClientExtensionFactory]]] = [
        ("Standard Compression", standard_extensions),
        ("Custom Compression", custom_extensions),
    ]

    for name, extensions in configurations:
        print(f"\n=== {name} Configuration ===")

        try:
            with trio.fail_after(5):
                async with open_websocket_url(url, extensions=extensions) as websocket:
                    print(f"Negotiated: {websocket.extensions[0]!r}")
                    # Test with different message sizes
                    test_messages = [
                        "Small message",
                        "Medium message " * 50,  # ~750 bytes
                        "Large message " * 500,  # ~7KB
                        "Huge message " * 5000,  # ~65KB
                    ]

                    for i, message in enumerate(test_messages):
                        before = websocket.statistics()
                        await websocket.send_message(message)
                        response = await websocket.get_message()
                        after = websocket.statistics()

                        sent = after.wire_bytes_sent - before.wire_bytes_sent
                        received = after.wire_bytes_received - before.wire_bytes_received
                        print(
                            f"Message {i + 1}: {len(message)} -> {len(response)} chars, "
                            f"wire bytes {sent} out, {received} in"
                        )

        except Exception as e:
            print(f"Configuration failed: {e}")


async def main() -> None:
    """Start an echo server, run the example against it, stop the server."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(serve_websocket, echo, "127.0.0.1", 0, None))
        await advanced_compression_example(f"ws://127.0.0.1:{server.port}")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
