"""Child processes of the interop tests (Node peers, chromium), always reaped.

Strategy: each child starts in a session of its own, so that killing its process group also
kills whatever it spawned (chromium's renderers and zygotes), and nothing outlives its test.
Its stdout is a pipe read as JSON lines; its stderr goes to a file whose tail the tests show
when something goes wrong.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Final

import trio

# Where the Node peers live; `nox -s interop` installs ws into NODE_DIR/node_modules.
NODE_DIR: Final = Path(__file__).parent / "node"
# How long a killed child may take to be reaped before the test gives up on it.
REAP_TIMEOUT: Final = 10
# How much of a child's stderr a failure message shows.
STDERR_TAIL: Final = 4000


class Child:
    """A running child process whose stdout carries JSON lines."""

    def __init__(self, process: trio.Process, stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self._buffer = bytearray()

    def stderr_tail(self) -> str:
        """Return the end of what the child wrote to stderr so far, without D-Bus noise."""
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines(keepends=True)
        except FileNotFoundError:
            return ""
        # chromium complains about the missing D-Bus on every start; it means nothing here.
        return "".join(line for line in lines if "dbus/" not in line)[-STDERR_TAIL:]

    async def _fill(self) -> bool:
        assert self.process.stdout is not None
        chunk = await self.process.stdout.receive_some(65536)
        self._buffer += chunk
        return bool(chunk)

    async def receive_json(self) -> dict[str, Any]:
        """Return the next JSON line on the child's stdout.

        Raises:
            RuntimeError: if stdout ends first (the message quotes the child's stderr).
        """
        while b"\n" not in self._buffer:
            if not await self._fill():
                raise RuntimeError(
                    f"{self.process.args!r} ended its output without a line;"
                    f" stderr:\n{self.stderr_tail()}"
                )
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer[:] = rest
        value = json.loads(line)
        if not isinstance(value, dict):
            raise RuntimeError(f"expected a JSON object from the child, got {line!r}")
        return value

    async def receive_report(self) -> dict[str, Any]:
        """Return the ``report`` object of the next JSON line carrying one."""
        while True:
            message = await self.receive_json()
            if "report" in message:
                report = message["report"]
                assert isinstance(report, dict)
                return report

    def kill(self) -> None:
        """Kill the child's whole process group (no-op once it is gone)."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@asynccontextmanager
async def spawn(argv: Sequence[str], *, cwd: Path, stderr_path: Path) -> AsyncIterator[Child]:
    """Start ``argv`` in its own process group; kill and reap the group on exit."""
    with stderr_path.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    child = Child(process, stderr_path)
    try:
        yield child
    finally:
        child.kill()
        with trio.CancelScope(shield=True), trio.move_on_after(REAP_TIMEOUT):
            await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()
