"""The harness's handles on its client processes (``python -m benchmarks.load.agent``).

Each agent is started with its spec, says when it is ready, starts on
``go`` and answers one result. A scenario starts all its agents, waits
until all are ready (:func:`wait_ready`), so that their preparation
overlaps and is not timed, and then tells them all to go (:func:`go`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from benchmarks.processes import Child

READY_TIMEOUT: Final = 60.0
"""Seconds an agent has to import and prepare its payloads (cold caches, a busy CPU)."""


class Agent(Child):
    """One agent process running one role."""

    def __init__(self, name: str, spec: dict[str, Any], log_dir: Path) -> None:
        """Start the agent and send it ``spec``; its stderr goes to a file in ``log_dir``."""
        super().__init__("benchmarks.load.agent", [], name, log_dir)
        self.send(spec)


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
