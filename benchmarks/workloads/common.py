"""Helpers shared by the workloads."""

from __future__ import annotations

import itertools
import re
import statistics
import subprocess
from typing import Any, Final
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


SLICES: Final = 10
"""Slices each timed loop is cut into; a run's figure is the median of its slices' rates,
so that a burst of load from elsewhere on the machine spoils one slice, not the run."""


def slice_rates(marks: list[tuple[float, float]]) -> list[float]:
    """Return the rate of each slice between consecutive ``(time, amount done)`` marks."""
    return [
        (done - done_before) / (now - before)
        for (before, done_before), (now, done) in itertools.pairwise(marks)
        if now > before
    ]


def rate_figures(marks: list[tuple[float, float]]) -> dict[str, Any]:
    """Return ``rate`` (median slice rate), ``mean_rate`` (all work / all time), ``slices``.

    Args:
        marks: ``(time, amount done)`` from the start ``(t0, 0)`` to the end, ascending.
    """
    rates = slice_rates(marks)
    (start, _), (end, total) = marks[0], marks[-1]
    return {
        "rate": statistics.median(rates) if rates else total / (end - start),
        "mean_rate": total / (end - start),
        "slices": rates,
    }
