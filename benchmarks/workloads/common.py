"""Helpers shared by the workloads."""

from __future__ import annotations

import re
import subprocess
from typing import Final
from urllib.parse import urlsplit

from benchmarks.adapters.base import Connection


class EchoMismatchError(Exception):
    """The server sent back something other than the message it was sent."""


def check_echo(sent: str, echoed: str | bytes) -> None:
    """Raise :class:`EchoMismatchError` unless ``echoed`` is ``sent``."""
    if echoed != sent:
        got = f"{type(echoed).__name__} of length {len(echoed)}"
        raise EchoMismatchError(f"sent str of length {len(sent)}, got {got}")


async def echo_once(conn: Connection, message: str) -> None:
    """Send ``message``, wait for its echo and check it."""
    await conn.send(message)
    check_echo(message, await conn.recv())


SS_TIMEOUT: Final = 10.0
"""Seconds ``ss`` may take (it answers in milliseconds)."""


def server_tcp_bytes(url: str) -> tuple[int, int] | None:
    """Return (bytes sent, bytes received) by the server's established TCP connections.

    Reads the kernel's ``tcp_info`` of every established socket whose local port is
    the server's, with iproute2's ``ss``: wire bytes (WebSocket framing included,
    TCP/IP headers not), whatever library owns the socket. Call it before closing
    the connection. Returns None if ``ss`` is missing or fails.
    """
    port = urlsplit(url).port
    try:
        output = subprocess.run(
            ["ss", "-tinH", "state", "established", "sport", "=", f":{port}"],
            capture_output=True, text=True, check=True, timeout=SS_TIMEOUT,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    sent = sum(int(n) for n in re.findall(r"\bbytes_sent:(\d+)", output))
    received = sum(int(n) for n in re.findall(r"\bbytes_received:(\d+)", output))
    return sent, received
