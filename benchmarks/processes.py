"""The harness's child processes: echo servers and workload clients, JSON lines over pipes.

Strategy: every server runs alone in its own process (so that its event
loop, its GIL and its /proc figures are its own) and so does every client.
Each child reads commands on stdin and answers one JSON line on stdout; its
stderr goes to a log file that the harness shows when something fails. A
child exits as soon as its stdin closes, so closing the pipes is enough to
end them all; :meth:`Worker.stop` then waits briefly and kills what is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
"""The directory holding the ``benchmarks`` package: the children's working directory."""

STARTUP_TIMEOUT: Final = 60.0
"""Seconds a child has to import its library and answer its first line (cold caches)."""

STOP_TIMEOUT: Final = 5.0
"""Seconds a child has to exit after its stdin closes, before it is killed."""

LOG_TAIL: Final = 2000
"""Characters of a child's stderr quoted in an error."""


class WorkerError(Exception):
    """A child failed: it died, timed out, sent garbage, or reported an error."""


class Child:
    """One child process running ``python -m MODULE ARGS``, answering JSON lines on stdout."""

    def __init__(self, module: str, args: list[str], name: str, log_dir: Path) -> None:
        """Start the child; its stderr goes to a file in ``log_dir``.

        Args:
            module: The module the child runs (``python -m module``).
            args: Its arguments.
            name: How errors and the log file name it.
            log_dir: Directory for the child's stderr log.
        """
        self.name = name
        self.log_path = (
            log_dir / f"{len(list(log_dir.iterdir())):03d}-{name.replace(' ', '-')}.log"
        )
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
        )
        self._buffer = bytearray()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def log_tail(self) -> str:
        """Return the end of the child's stderr."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return text[-LOG_TAIL:]

    def read(self, timeout: float) -> dict[str, Any]:
        """Return the child's next JSON line.

        Raises:
            WorkerError: If none arrives within ``timeout`` seconds, or the child exits,
                or the line is not a JSON object, or it is ``{"error": ...}``.
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

    def send(self, message: dict[str, Any]) -> None:
        """Write one JSON line to the child's stdin.

        Raises:
            WorkerError: If the child is gone.
        """
        stdin = self.process.stdin
        if stdin is None:
            raise WorkerError(f"{self.name}: no stdin pipe")
        try:
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise WorkerError(f"{self.name}: gone\n{self.log_tail()}") from exc

    def alive(self) -> bool:
        """Whether the child is still running."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Close the child's stdin (it exits at EOF), wait a little, then kill it."""
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


class Worker(Child):
    """One child process running ``python -m benchmarks.worker ARGS``."""

    def __init__(self, args: list[str], log_dir: Path) -> None:
        """Start the child; its stderr goes to a file in ``log_dir``.

        Args:
            args: Arguments after ``python -m benchmarks.worker``.
            log_dir: Directory for the child's stderr log.
        """
        super().__init__("benchmarks.worker", args, " ".join(args), log_dir)


class Server(Worker):
    """An echo server child: ``port`` is known once it has started."""

    def __init__(self, library: str, compression: bool, log_dir: Path) -> None:
        """Start ``library``'s echo server and wait for its port.

        Raises:
            WorkerError: If it does not start (and the child is stopped).
        """
        super().__init__(
            ["server", library, "--compression", "on" if compression else "off"], log_dir
        )
        try:
            self.port: int = self.read(STARTUP_TIMEOUT)["port"]
        except WorkerError:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """The server's ``ws://`` URL."""
        return f"ws://127.0.0.1:{self.port}/"


class Client(Worker):
    """A workload client child."""

    def __init__(self, library: str, log_dir: Path) -> None:
        """Start ``library``'s client worker and wait until it is ready.

        Raises:
            WorkerError: If it does not start (and the child is stopped).
        """
        super().__init__(["client", library], log_dir)
        try:
            self.read(STARTUP_TIMEOUT)
        except WorkerError:
            self.stop()
            raise

    def start(self, workload: str, params: dict[str, Any]) -> None:
        """Send a workload command without waiting for its answer."""
        self.send({"workload": workload, "params": params})

    def run(self, workload: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Run a workload and return its result.

        Raises:
            WorkerError: On any failure, the workload's own included.
        """
        self.start(workload, params)
        return self.read(timeout)
