"""A load client process: ``python -m benchmarks.load.agent``, driven by JSON lines on stdin.

The harness writes one line, the spec (``{"role": ..., ...}``); the agent
gets ready (imports, payloads) and answers ``{"ready": true, "pid": ...}``;
the harness writes ``{"go": true}`` to every agent of a scenario at once;
the agent runs its role and answers one line, its result with the CPU and
wall-clock seconds it took (or ``{"error": ...}``), then exits. A
``{"stop": true}`` line sets the role's stop event (the newcomers end on
it). The agent exits at once when its stdin closes, so it never outlives
the harness.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Final

from benchmarks.load import attacks, churn, messages, traffic

Role = Callable[[dict[str, Any], asyncio.Event], Awaitable[dict[str, Any]]]
"""What an agent runs: ``async def role(spec, stop) -> result``."""

ROLES: Final[dict[str, Role]] = {
    "traffic": traffic.run_traffic,
    "newcomers": traffic.run_newcomers,
    "hostile": attacks.run_hostile,
    "churn": churn.run_churn,
    "backpressure": attacks.run_backpressure,
}
"""The roles, by the name the spec gives."""


def _prepare_traffic() -> None:
    """Compress the message pools for the windows the servers measured ask for (12, 15)."""
    messages.payloads(12)
    messages.payloads(15)


def _prepare_hostile() -> None:
    """Build the bombs and the flood messages, so no client waits for them."""
    attacks.bomb_frame(12)
    attacks.bomb_frame(15)
    attacks.flood_frames()


def _prepare_backpressure() -> None:
    """Build the flood messages."""
    attacks.flood_frames()


PREPARE: Final[dict[str, Callable[[], None]]] = {
    "traffic": _prepare_traffic,
    "newcomers": _prepare_traffic,
    "hostile": _prepare_hostile,
    "backpressure": _prepare_backpressure,
}
"""Work done before the agent says it is ready, so that it is not timed."""


def raise_fd_limit() -> None:
    """Raise the open-files soft limit to the hard limit (500 connections need more than 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _answer(message: dict[str, Any]) -> None:
    """Write one JSON line to stdout."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _read_line() -> dict[str, Any]:
    """Return the next JSON line of stdin; exit if stdin is closed."""
    line = sys.stdin.readline()
    if not line:
        os._exit(3)
    message: dict[str, Any] = json.loads(line)
    return message


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """In a thread: set ``stop`` on a ``stop`` line; exit the process when stdin closes."""

    def watch() -> None:
        for line in sys.stdin:
            if json.loads(line).get("stop"):
                loop.call_soon_threadsafe(stop.set)
        os._exit(3)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


async def _run(role: Role, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``role`` once the harness says go, with a stop event fed from stdin."""
    stop = asyncio.Event()
    _watch_stdin(asyncio.get_running_loop(), stop)
    return await role(spec, stop)


def main() -> None:
    """Read the spec, get ready, wait for go, run the role, answer its result."""
    raise_fd_limit()
    spec = _read_line()
    role = ROLES[spec["role"]]
    PREPARE.get(spec["role"], lambda: None)()
    _answer({"ready": True, "pid": os.getpid()})
    _read_line()  # {"go": true}
    cpu, start = time.process_time(), time.monotonic()
    try:
        result = asyncio.run(_run(role, spec))
    except Exception as exc:
        traceback.print_exc()
        _answer({"error": f"{type(exc).__name__}: {exc}"})
    else:
        _answer(
            result | {"cpu_seconds": time.process_time() - cpu, "wall": time.monotonic() - start}
        )


if __name__ == "__main__":
    main()
