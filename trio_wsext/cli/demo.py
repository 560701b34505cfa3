"""What ``python -m trio_wsext demo`` runs: compression, seen from the application and the wire.

Strategy: start an echo server on 127.0.0.1 (port 0) in this process, then
connect to it twice, once offering permessage-deflate and once not. Over
each connection send one JSON-like message of each of the four sizes of
websockets' extension performance test, and
wait for its echo. :meth:`~trio_wsext.connection.WebSocketConnection.statistics`
before and after each message gives the application bytes and the bytes
that crossed the socket (frame headers and the client's mask included). Print
what was negotiated, then one row per size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TextIO

import attrs
import trio

from ..client import open_websocket_url
from ..extensions.permessage_deflate import PerMessageDeflate
from .echo import describe_extensions, serve_echo
from .samples import MESSAGE_SIZES, sample_message

__all__ = ["DemoRow", "describe_deflate", "format_demo_table", "run_demo"]


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


#: The negotiated values that the demo prints, with what each means.
_PARAMETERS: Final = (
    ("server_max_window_bits", "LZ77 window the server compresses with, 2**N bytes"),
    ("client_max_window_bits", "LZ77 window the client compresses with, 2**N bytes"),
    ("server_no_context_takeover", "server forgets its window after each message"),
    ("client_no_context_takeover", "client forgets its window after each message"),
    ("compress_settings", "zlib.compressobj() keywords"),
    ("threshold", "messages shorter than this (bytes) go uncompressed"),
)


def describe_deflate(extension: PerMessageDeflate) -> list[str]:
    """Return one line per negotiated permessage-deflate parameter, with its meaning."""
    return [
        f"  {name:<27} {getattr(extension, name)!s:<16} {meaning}" for name, meaning in _PARAMETERS
    ]


async def _measure(url: str, compression: str | None, out: TextIO) -> list[int]:
    """Send one sample message per size over a new connection; return the wire bytes of each."""
    wire: list[int] = []
    async with open_websocket_url(url, compression=compression, proxy=None) as ws:
        if compression:
            print("Client 1 offers permessage-deflate. The server answers:", file=out)
        else:
            print("Client 2 offers no extension. The server answers:", file=out)
        if ws.extensions:
            print(f"  Sec-WebSocket-Extensions: {describe_extensions(ws)}", file=out)
        else:
            print("  (no Sec-WebSocket-Extensions header: nothing negotiated)", file=out)
        for extension in ws.extensions:
            if isinstance(extension, PerMessageDeflate):
                print("Negotiated, as the client applies it:", file=out)
                print("\n".join(describe_deflate(extension)), file=out)
        print(file=out)
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
        print(f"An echo server on {url} and two clients, in this process.", file=out)
        print("Each client sends one JSON-like message per size and waits for its echo.", file=out)
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
    print(format_demo_table(rows), file=out)
    print(file=out)
    print(
        "App bytes and wire bytes are ws.statistics().bytes_sent and .wire_bytes_sent;", file=out
    )
    print("wire bytes include the frame header and the client's 4-byte mask.", file=out)
    return rows


def format_demo_table(rows: Sequence[DemoRow]) -> str:
    """Format the rows as a text table with a total line."""
    header = (
        f"{'Message':<8} {'App bytes':>10} {'Wire, plain':>12} {'Wire, deflate':>14} {'Saved':>6}"
    )
    lines = ["Bytes per message, client to server:", header, "-" * len(header)]
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
