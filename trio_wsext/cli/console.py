"""An interactive client: what ``python -m trio_wsext connect URL`` runs.

Strategy: two tasks share the connection. One reads standard input in a
worker thread (``os.read`` on the file descriptor, abandoned on cancellation:
a terminal cannot be read without blocking, and a thread blocked in
``os.read`` holds no Python lock that would trouble the interpreter's exit)
and sends each line as a text message. The other prints each message as it
arrives, after ``"< "``. End of input closes the connection normally (1000);
a close from the server ends the session whatever input is pending.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final, TextIO

import trio

from ..client import open_websocket_url
from ..connection import WebSocketConnection
from ..exceptions import ConnectionClosed
from .echo import describe_extensions

__all__ = ["read_lines", "run_console"]

#: Bytes asked of standard input per read: one terminal line is far less, and a
#: pipe hands over at most 64 KiB at a time on Linux (its default capacity).
READ_SIZE: Final = 65536

#: Close codes after which the session counts as a success (RFC 6455 §7.4.1:
#: 1000 normal closure, 1001 going away; 1005, a close frame without a code,
#: is what browsers send for ``ws.close()``), as for ``async for`` on a connection.
NORMAL_CLOSE_CODES: Final = frozenset({1000, 1001, 1005})


async def read_lines(
    fd: int, *, read: Callable[[int, int], bytes] = os.read
) -> AsyncIterator[str]:
    """Yield the lines read from the file descriptor ``fd``, without line endings.

    Bytes are decoded as UTF-8 (undecodable bytes become U+FFFD); a last line
    without a newline is yielded too. The iteration ends at end of file.
    Cancellation abandons the worker thread blocked in ``read``: the bytes it
    reads after that are lost.

    Args:
        fd: the file descriptor.
        read: called as ``read(fd, size)`` in a worker thread, returns ``b""``
            at end of file (``os.read``; tests pass their own).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while True:
        data = await trio.to_thread.run_sync(read, fd, READ_SIZE, abandon_on_cancel=True)
        pending += decoder.decode(data, final=not data)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line.removesuffix("\r")
        if not data:
            if pending:
                yield pending.removesuffix("\r")
            return


async def run_console(
    url: str,
    *,
    stdin_fd: int,
    stdout: TextIO,
    ssl_context: ssl.SSLContext | None = None,
    compression: str | None = "deflate",
    stop_signals: Sequence[int] = (),
) -> int:
    """Connect to ``url``; send the lines read from ``stdin_fd``, print what arrives.

    Prints ``Connected to URL.``, the negotiated extensions, every received
    message (text as it is, binary as ``(binary)`` and hex) after ``< ``,
    and ``Connection closed: CODE (NAME) REASON.`` at the end.

    Args:
        url: a ``ws://`` or ``wss://`` URL.
        stdin_fd: the file descriptor to read lines from.
        stdout: where to print.
        ssl_context: for ``wss://``; ``None`` uses the system's trusted CAs.
        compression: ``"deflate"`` to offer permessage-deflate, ``None`` not to.
        stop_signals: signals (``signal.SIGINT``...) that close the connection
            normally, as end of input does, once it is open. Only the main
            thread may watch signals.

    Returns:
        0 when the connection closed normally (1000, 1001 or 1005), else 1.

    Raises:
        OSError: the TCP (or TLS) connection failed.
        HandshakeError: the server refused or broke the opening handshake.
    """
    async with open_websocket_url(url, ssl_context, compression=compression) as ws:
        with contextlib.ExitStack() as stack:
            # Watch before printing anything, so that Ctrl-C after the first
            # line always closes the connection normally.
            signals = (
                stack.enter_context(trio.open_signal_receiver(*stop_signals))
                if stop_signals
                else None
            )
            async with trio.open_nursery() as nursery:
                if signals is not None:
                    nursery.start_soon(_close_on_signal, ws, signals)
                print(f"Connected to {url}.", file=stdout, flush=True)
                print(f"Extensions: {describe_extensions(ws)}", file=stdout, flush=True)
                nursery.start_soon(_send_lines, ws, stdin_fd)
                await _print_messages(ws, stdout)
                nursery.cancel_scope.cancel()  # the connection closed: stop reading input
    print(f"Connection closed: {ws.closed}.", file=stdout, flush=True)
    return 0 if ws.closed is not None and ws.closed.code in NORMAL_CLOSE_CODES else 1


async def _send_lines(ws: WebSocketConnection, stdin_fd: int) -> None:
    """Send each line of input as a text message; close normally at end of input."""
    try:
        async for line in read_lines(stdin_fd):
            await ws.send_message(line)
        await ws.aclose()
    except ConnectionClosed:
        pass  # _print_messages sees it too and ends the session


async def _close_on_signal(ws: WebSocketConnection, signals: AsyncIterator[int]) -> None:
    """Close the connection normally when a signal arrives."""
    async for _ in signals:
        with contextlib.suppress(ConnectionClosed):
            await ws.aclose()
        return


async def _print_messages(ws: WebSocketConnection, stdout: TextIO) -> None:
    """Print every message received until the connection closes."""
    try:
        async for message in ws:
            if isinstance(message, str):
                print(f"< {message}", file=stdout, flush=True)
            else:
                print(f"< (binary) {message.hex()}", file=stdout, flush=True)
    except ConnectionClosed:
        pass  # an abnormal close: run_console reports ws.closed
