"""Basic compression: a client and a server that both enable permessage-deflate.

Port of websockets' "Basic Compression Usage" example. The server runs in this process,
on a free port of 127.0.0.1, so the program needs no second terminal.
"""

from __future__ import annotations

from functools import partial

import trio

from trio_wsext import WebSocketRequest, open_websocket_url, serve_websocket
from trio_wsext.extensions.permessage_deflate import (
    enable_client_permessage_deflate,
    enable_server_permessage_deflate,
)


async def handler(request: WebSocketRequest) -> None:
    """Echo every message back, prefixed (the reply is compressed too)."""
    websocket = await request.accept()
    async for message in websocket:
        print(f"Received compressed message: {len(message)} chars")
        await websocket.send_message(f"Echo: {message!s}")


async def compression_client(url: str) -> None:
    """Client with compression enabled."""
    # Enable compression with default settings (trio_wsext's default anyway).
    extensions = enable_client_permessage_deflate(None)

    async with open_websocket_url(url, extensions=extensions) as websocket:
        # Send a large text message (it will be compressed).
        large_message = "Hello, WebSocket! " * 1000  # ~18KB message
        await websocket.send_message(large_message)

        response = await websocket.get_message()
        print(f"Received: {len(response)} characters")

        stats = websocket.statistics()
        print(f"Sent {stats.bytes_sent:,} bytes as {stats.wire_bytes_sent:,} bytes on the wire")


async def main() -> None:
    """Start the server, run the client against it, stop the server."""
    extensions = enable_server_permessage_deflate(None)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve_websocket, handler, "127.0.0.1", 0, None, extensions=extensions)
        )
        print("Compression server started")
        await compression_client(f"ws://127.0.0.1:{server.port}")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
