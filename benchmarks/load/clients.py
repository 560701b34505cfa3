"""The harness's handles on its client processes (``python -m benchmarks.load.agent``).

Each agent is started with its spec, says when it is ready, starts on
``go`` and answers one result. A scenario starts all its agents, waits
until all are ready (:func:`wait_ready`), so that their preparation
overlaps and is not timed, and then tells them all to go (:func:`go`).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Final

from benchmarks.processes import ROOT, WorkerError

READY_TIMEOUT: Final = 60.0
"""Seconds an agent has to import and prepare its payloads (cold caches, a busy CPU)."""

STOP_TIMEOUT: Final = 5.0
"""Seconds an agent has to exit after its stdin closes, before it is killed."""

LOG_TAIL: Final = 2000
"""Characters of an agent's stderr quoted in an error."""


class Agent:
    """One agent process running one role."""

    def __init__(self, name: str, spec: dict[str, Any], log_dir: Path) -> None:
        """Start the agent and send it ``spec``; its stderr goes to a file in ``log_dir``."""
        self.name = name
        self.log_path = log_dir / f"{len(list(log_dir.iterdir())):03d}-{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.load.agent"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
        )
        self._buffer = bytearray()
        self.send(spec)

    @property
    def pid(self) -> int:
        """The agent's process id."""
        return self.process.pid

    def log_tail(self) -> str:
        """Return the end of the agent's stderr."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-LOG_TAIL:]

    def send(self, message: dict[str, Any]) -> None:
        """Write one JSON line to the agent.

        Raises:
            WorkerError: If the agent is gone.
        """
        stdin = self.process.stdin
        if stdin is None:
            raise WorkerError(f"{self.name}: no stdin pipe")
        try:
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise WorkerError(f"{self.name}: gone\n{self.log_tail()}") from exc

    def read(self, timeout: float) -> dict[str, Any]:
        """Return the agent's next JSON line.

        Raises:
            WorkerError: If none comes within ``timeout`` seconds, the agent exits,
                or the line is ``{"error": ...}`` or no JSON object.
        """
        stdout = self.process.stdout
        if stdout is None:
            raise WorkerError(f"{self.name}: no stdout pipe")
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerError(f"{self.name}: no answer within {timeout:g} s")
            ready, _, _ = select.select([stdout], [], [], left)
            if ready:
                chunk = os.read(stdout.fileno(), 1 << 20)
                if not chunk:
                    code = self.process.wait()
                    raise WorkerError(f"{self.name}: exited ({code})\n{self.log_tail()}")
                self._buffer += chunk
        line, _, rest = self._buffer.partition(b"\n")
        self._buffer = bytearray(rest)
        try:
            answer = json.loads(line)
        except ValueError as exc:
            raise WorkerError(f"{self.name}: not JSON: {line[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise WorkerError(f"{self.name}: not a JSON object: {line[:200]!r}")
        if "error" in answer:
            raise WorkerError(f"{self.name}: {answer['error']}\n{self.log_tail()}")
        return answer

    def stop(self) -> None:
        """Close the agent's stdin (it exits at EOF), wait a little, then kill it."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


def wait_ready(agents: Sequence[Agent]) -> None:
    """Wait until every agent has prepared its payloads.

    Raises:
        WorkerError: If one does not get ready within :data:`READY_TIMEOUT`.
    """
    for agent in agents:
        agent.read(READY_TIMEOUT)


def go(agents: Sequence[Agent]) -> None:
    """Tell every agent to start, one right after the other.

    Raises:
        WorkerError: If one is gone.
    """
    for agent in agents:
        agent.send({"go": True})


def stop_all(agents: Sequence[Agent]) -> None:
    """Stop every agent (those already done exit at once)."""
    for agent in agents:
        agent.stop()
