"""Processes for the Redis fan-out tests: a redis-server, and examples/redis_fanout.py.

Both run as child processes on 127.0.0.1, their output in files of a tmp
directory that :meth:`RedisServer.log` and :meth:`FanoutProcess.log` return
for failure messages. Every wait is a polling loop with a deadline, generous
for a busy 2-core machine; ``stop`` always ends the process, with SIGKILL if
it does not exit in time. A port from :func:`~tests.deploy.conftest.free_port`
can be taken before the child binds it: the start is then retried on a fresh
one.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Final, NamedTuple

import redis

from .conftest import free_port

ROOT: Final = Path(__file__).resolve().parents[2]
EXAMPLE: Final = ROOT / "examples" / "redis_fanout.py"

#: Seconds a child has to start listening (cold caches, a busy machine).
START_TIMEOUT: Final = 30.0
#: Seconds a child has to exit after SIGINT/SIGTERM before it is killed.
STOP_TIMEOUT: Final = 15.0
#: Attempts to start a child when its port was taken meanwhile.
START_ATTEMPTS: Final = 3
#: Seconds between two looks at a child while waiting.
POLL: Final = 0.05


class ChildError(RuntimeError):
    """A child process did not start or stopped unexpectedly; the message has its log."""


class Child:
    """A child process whose stdout and stderr go to ``log_path``."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        """Start ``argv`` with its output in ``log_path``."""
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def log(self) -> str:
        """Return everything the child printed so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """Whether the child is still running."""
        return self.process.poll() is None

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> None:
        """Wait until ``text`` appears in the child's output.

        Raises:
            ChildError: it does not within ``timeout`` seconds, or the child exits.
        """
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if not self.alive():
                raise ChildError(f"exited ({self.process.returncode}) without {text!r}:\n"
                                 f"{self.log()}")  # fmt: skip
            if time.monotonic() > deadline:
                raise ChildError(f"no {text!r} within {timeout:g} s:\n{self.log()}")
            time.sleep(POLL)

    def signal_and_wait(self, signum: int, timeout: float = STOP_TIMEOUT) -> int | None:
        """Send ``signum``; return the exit status, or ``None`` if it runs after ``timeout`` s."""
        if self.alive():
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """End the child: SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`."""
        if self.signal_and_wait(signal.SIGTERM) is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def _listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class RedisServer(Child):
    """Debian's redis-server on 127.0.0.1, without persistence, in a directory of its own."""

    def __init__(self, program: str, directory: Path, port: int) -> None:
        """Start ``program`` on ``port``; :meth:`start` also waits until it answers."""
        self.program = program
        self.directory = directory
        self.port = port
        self._launch()

    def _launch(self) -> None:
        super().__init__(
            [
                self.program,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            self.directory / f"redis-{self.port}-{time.monotonic_ns()}.log",
        )  # fmt: skip

    @classmethod
    def start(cls, program: str, directory: Path, port: int | None = None) -> RedisServer:
        """Start a redis-server and wait until it answers PING.

        Args:
            program: the path of redis-server.
            directory: its working directory (nothing is saved there).
            port: the port, or ``None`` for a free one (retried if taken meanwhile).

        Raises:
            ChildError: it does not start.
        """
        for _ in range(START_ATTEMPTS):
            server = cls(program, directory, port or free_port())
            try:
                server.wait_ready()
            except ChildError:
                server.stop()
                if port is not None or "in use" not in server.log():
                    raise
                continue
            return server
        raise ChildError(f"redis-server found no free port in {START_ATTEMPTS} attempts")

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """Return a new blocking client (close it when done)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)

    def wait_ready(self) -> None:
        """Wait until this server answers PING.

        Raises:
            ChildError: it does not within :data:`START_TIMEOUT`, or it exits.
        """
        deadline = time.monotonic() + START_TIMEOUT
        with self.client() as client:
            while True:
                if not self.alive():
                    raise ChildError(f"redis-server exited ({self.process.returncode}):\n"
                                     f"{self.log()}")  # fmt: skip
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise ChildError(f"redis-server did not answer within {START_TIMEOUT:g} s")
                time.sleep(POLL)

    def wait_subscribers(self, channel: str, count: int, timeout: float = START_TIMEOUT) -> None:
        """Wait until ``channel`` has exactly ``count`` subscribers (PUBSUB NUMSUB).

        Raises:
            ChildError: it has not within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                [(_, subscribers)] = client.pubsub_numsub(channel)
                if subscribers == count:
                    return
                if time.monotonic() > deadline:
                    raise ChildError(
                        f"{channel!r} has {subscribers} subscribers, not {count},"
                        f" after {timeout:g} s"
                    )
                time.sleep(POLL)

    def restart(self) -> None:
        """Stop this server and start it again on the same port, empty.

        Raises:
            ChildError: it does not start again.
        """
        self.stop()
        self._launch()
        self.wait_ready()


class FanoutProcess(Child):
    """``examples/redis_fanout.py`` serving on a port of 127.0.0.1."""

    def __init__(self, redis_url: str, channel: str, port: int, log_dir: Path) -> None:
        """Start the example; :meth:`start` also waits until it listens."""
        self.port = port
        super().__init__(
            [
                sys.executable, str(EXAMPLE),
                "--redis-url", redis_url,
                "--host", "127.0.0.1",
                "--port", str(port),
                "--channel", channel,
            ],
            log_dir / f"fanout-{port}.log",
        )  # fmt: skip

    @classmethod
    def start(cls, redis_url: str, channel: str, log_dir: Path) -> FanoutProcess:
        """Start the example on a free port and wait until it listens there.

        Raises:
            ChildError: it does not start.
        """
        for _ in range(START_ATTEMPTS):
            process = cls(redis_url, channel, free_port(), log_dir)
            try:
                process.wait_for(f"listening on ws://127.0.0.1:{process.port}/")
            except ChildError:
                process.stop()
                if "in use" not in process.log():
                    raise
                continue
            if not _listening(process.port):
                process.stop()
                raise ChildError(f"logged that it listens, but does not:\n{process.log()}")
            return process
        raise ChildError(f"the example found no free port in {START_ATTEMPTS} attempts")

    @property
    def url(self) -> str:
        """The ``ws://`` URL clients connect to."""
        return f"ws://127.0.0.1:{self.port}/"


class ServerFrame(NamedTuple):
    """One frame as a server sends it (unmasked)."""

    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes


def handshake_request(port: int) -> bytes:
    """Return an opening handshake for ``ws://127.0.0.1:port/`` without extensions."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    return (
        "GET / HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode("ascii")


def parse_server_frames(buffer: bytearray) -> list[ServerFrame]:
    """Remove every complete frame from the front of ``buffer`` and return them.

    Raises:
        ValueError: a frame is masked, which no server may send (RFC 6455 §5.1).
    """
    frames: list[ServerFrame] = []
    while len(buffer) >= 2:
        first, second = buffer[0], buffer[1]
        if second & 0x80:
            raise ValueError("the server masked a frame")
        length, start = second & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                break
            length, start = int.from_bytes(buffer[2:4], "big"), 4
        elif length == 127:
            if len(buffer) < 10:
                break
            length, start = int.from_bytes(buffer[2:10], "big"), 10
        if len(buffer) < start + length:
            break
        frames.append(
            ServerFrame(
                bool(first & 0x80), bool(first & 0x40), first & 0x0F,
                bytes(buffer[start : start + length]),
            )
        )  # fmt: skip
        del buffer[: start + length]
    return frames
