"""What ``python -m trio_wsext demo`` runs: compression, seen from the application and the wire.

Strategy: start an echo server on 127.0.0.1 (port 0) in this process, then
connect to it twice, once offering permessage-deflate and once not. Over
each connection send one JSON-like message of each of the seed's sizes and
wait for its echo. :meth:`~trio_wsext.connection.WebSocketConnection.statistics`
before and after each message gives the application bytes and the bytes
that crossed the socket (frame headers and the client's mask included). Print
what was negotiated, then one row per size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

import attrs
import trio

from .client import open_websocket_url
from .echo import describe_extensions, serve_echo
from .samples import MESSAGE_SIZES, sample_message

__all__ = ["DemoRow", "format_demo_table", "run_demo"]


@attrs.frozen
class DemoRow:
    """The bytes one message cost, client to server, with and without compression."""

    name: str
    """The size's name (``Small``, ``Medium``, ...)."""
    app_bytes: int
    """Payload bytes as the application sent them."""
    wire_plain: int
    """Bytes on the wire without compression (frame header and mask included)."""
    wire_deflate: int
    """Bytes on the wire with permessage-deflate."""

    @property
    def saved(self) -> float:
        """The share of the uncompressed wire bytes that compression saved (0 to 1)."""
        return 1 - self.wire_deflate / self.wire_plain if self.wire_plain else 0.0


async def _measure(url: str, compression: str | None, out: TextIO) -> list[int]:
    """Send one sample message per size over a new connection; return the wire bytes of each."""
    wire: list[int] = []
    async with open_websocket_url(url, compression=compression) as ws:
        label = "with permessage-deflate" if compression else "without compression"
        print(f"Client {label}: Sec-WebSocket-Extensions: {describe_extensions(ws)}", file=out)
        for extension in ws.extensions:
            print(f"  {extension!r}", file=out)
        for _, size in MESSAGE_SIZES:
            message = sample_message(size)
            before = ws.statistics().wire_bytes_sent
            await ws.send_message(message)
            if await ws.get_message() != message:
                raise RuntimeError("the echo server sent back a different message")
            wire.append(ws.statistics().wire_bytes_sent - before)
    return wire


async def run_demo(out: TextIO) -> list[DemoRow]:
    """Run the demo and print it to ``out``; return the table's rows.

    Raises:
        OSError: no port could be listened on or connected to on 127.0.0.1.
    """
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_echo, "127.0.0.1", 0)
        url = f"ws://127.0.0.1:{server.port}/demo"
        print(f"Echo server on {url}; one JSON-like message of each size, and its echo.", file=out)
        print(file=out)
        deflate = await _measure(url, "deflate", out)
        plain = await _measure(url, None, out)
        nursery.cancel_scope.cancel()
    rows = [
        DemoRow(name, size, wire_plain, wire_deflate)
        for (name, size), wire_plain, wire_deflate in zip(
            MESSAGE_SIZES, plain, deflate, strict=True
        )
    ]
    print(file=out)
    print(format_demo_table(rows), file=out)
    return rows


def format_demo_table(rows: Sequence[DemoRow]) -> str:
    """Format the rows as a text table with a total line."""
    header = (
        f"{'Message':<8} {'App bytes':>10} {'Wire, plain':>12} {'Wire, deflate':>14} {'Saved':>6}"
    )
    lines = ["Client -> server, bytes per message:", header, "-" * len(header)]
    total = DemoRow(
        "Total",
        sum(row.app_bytes for row in rows),
        sum(row.wire_plain for row in rows),
        sum(row.wire_deflate for row in rows),
    )
    for row in [*rows, total]:
        lines.append(
            f"{row.name:<8} {row.app_bytes:>10,} {row.wire_plain:>12,} "
            f"{row.wire_deflate:>14,} {row.saved:>6.0%}"
        )
    return "\n".join(lines)
