"""Extension performance: round trips with and without compression, per message size.

Port of websockets' "Extension Performance Testing" example, with an echo
server of its own. As in the original, each measurement includes opening the
connection. Note one fix: the original's "No Compression" passed ``extensions=None``, which
left the default compression on; here it is ``compression=None``.
``python -m trio_wsext bench`` measures the same thing more carefully.
"""

from __future__ import annotations

import time
from functools import partial

import trio

from trio_wsext import WebSocketRequest, open_websocket_url, serve_websocket


async def echo(request: WebSocketRequest) -> None:
    """Send every message back."""
    websocket = await request.accept()
    async for message in websocket:
        await websocket.send_message(message)


async def extension_performance_test(url: str) -> None:
    """Test extension performance with different configurations."""
    # Test configurations: the client's compression setting.
    configs = [
        ("No Compression", None),
        ("Default Compression", "deflate"),
    ]

    # Test messages of different sizes
    test_messages = [
        ("Small", "Hello" * 20),  # ~100 bytes
        ("Medium", "Test message " * 100),  # ~1.2KB
        ("Large", "Data " * 2000),  # ~10KB
        ("Huge", "Content " * 10000),  # ~80KB
    ]

    print("=== Extension Performance Test ===")
    print(f"{'Config':<20} {'Size':<8} {'Time (ms)':<10} {'Throughput (MB/s)':<15}")
    print("-" * 65)

    for config_name, compression in configs:
        for msg_name, message in test_messages:
            try:
                start_time = time.perf_counter()

                with trio.fail_after(5):
                    async with open_websocket_url(url, compression=compression) as websocket:
                        # Send message multiple times for better measurement
                        iterations = 10

                        for _ in range(iterations):
                            await websocket.send_message(message)
                            await websocket.get_message()

                end_time = time.perf_counter()

                # Calculate metrics
                total_time = (end_time - start_time) * 1000  # ms
                data_size = len(message) * iterations * 2  # send + receive
                throughput = (data_size / (1024 * 1024)) / (total_time / 1000)  # MB/s

                print(
                    f"{config_name:<20} {msg_name:<8} "
                    f"{total_time / iterations:>8.1f} {throughput:>13.2f}"
                )

            except Exception as e:
                print(f"{config_name:<20} {msg_name:<8} ERROR: {e}")


async def main() -> None:
    """Start an echo server, run the test against it, stop the server."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(serve_websocket, echo, "127.0.0.1", 0, None))
        await extension_performance_test(f"ws://127.0.0.1:{server.port}")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
