"""Run a server program (nginx, HAProxy, ...) from a configuration template, in a tmp dir.

The deployment tests start real servers as foreground processes, each with a
configuration rendered from a template of tests/deploy into a directory of its
own, where it also keeps its pid and log files. A :class:`Daemon`:

- starts the program in a new session, so that it and every process it forks
  (nginx's workers) form one process group that :meth:`Daemon.kill` can end
  even when the test fails half way;
- waits until the program itself listens on each of its ports, read from
  ``/proc`` rather than by connecting, so that another program that took a
  port between :func:`~tests.deploy.conftest.free_port` and the start is never
  mistaken for it (the start is then retried on fresh ports);
- keeps its output and log files, which :meth:`Daemon.logs` returns for a
  failure message and the fixtures print, so pytest shows them for a failed test.

Templates mark what is filled in at test time as ``@NAME@``, a form that
neither nginx (``$var``, ``{ }``) nor HAProxy (``%[ ]``, ``${VAR}``) uses.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Final

import trio

__all__ = [
    "Daemon",
    "DaemonError",
    "listening_ports",
    "render",
]

#: A placeholder in a configuration template.
_PLACEHOLDER: Final = re.compile(r"@([A-Z][A-Z0-9_]*)@")

#: /proc/net/tcp's state for a listening socket.
_TCP_LISTEN: Final = "0A"

#: How long a program has to listen on its ports, and to exit when told to.
START_SECONDS: Final = 30.0
STOP_SECONDS: Final = 15.0

#: What a program prints when one of its ports was taken meanwhile.
_ADDRESS_IN_USE: Final = re.compile(r"address already in use|cannot bind socket", re.IGNORECASE)


class DaemonError(RuntimeError):
    """A daemon did not start, or stopped when it should not have; the message has its logs."""


def render(template: str, values: Mapping[str, object]) -> str:
    """Fill each ``@NAME@`` of ``template`` with ``values[NAME]``.

    Raises:
        KeyError: a placeholder has no value, so that a template and its test
            never drift apart silently.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for the placeholder @{name}@")
        return str(values[name])

    return _PLACEHOLDER.sub(fill, template)


def _socket_inodes(pid: int) -> set[str]:
    """Return the inodes of the sockets that process ``pid`` has open (empty once it is gone)."""
    inodes: set[str] = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for descriptor in descriptors:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def listening_ports(pid: int) -> set[int]:
    """Return the TCP ports on which process ``pid`` itself has a listening socket (Linux)."""
    inodes = _socket_inodes(pid)
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if len(fields) > 9 and fields[3] == _TCP_LISTEN and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class Daemon:
    """One run of a server program in ``directory``, as one process group.

    ``command(ports)`` gives the program's arguments for a set of ports (it
    also writes the configuration file they name); ``ports`` are the names of
    the ports to allocate, which the command receives as ``{name: port}``.
    """

    def __init__(
        self,
        name: str,
        directory: Path,
        command: Callable[[Mapping[str, int]], Sequence[str]],
        ports: Sequence[str],
        *,
        allocate: Callable[[], int],
    ) -> None:
        self.name = name
        self.directory = directory
        self._command = command
        self._port_names = tuple(ports)
        self._allocate = allocate
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._output_path = directory / f"{name}.out"

    # ------------------------------------------------------------------ lifetime

    async def start(self, *, attempts: int = 3) -> None:
        """Start the program on fresh ports and wait until it listens on all of them.

        A program that exits because a port was taken meanwhile is started
        again on other ports, up to ``attempts`` times; :attr:`ports` then
        holds the ports it listens on.

        Raises:
            DaemonError: it exited, or did not listen within START_SECONDS;
                the message holds its logs. Nothing of it is left running.
        """
        for attempt in range(1, attempts + 1):
            self.ports = {name: self._allocate() for name in self._port_names}
            try:
                await self.restart()
            except DaemonError as exc:
                if attempt < attempts and _ADDRESS_IN_USE.search(str(exc)):
                    continue
                raise
            return

    async def restart(self) -> None:
        """Start the program again on the same :attr:`ports` (after :meth:`stop`).

        Raises:
            DaemonError: as :meth:`start`; nothing of it is left running.
        """
        if self.running:
            raise DaemonError(f"{self.name} is already running")
        self._spawn()
        try:
            await self._wait_listening()
        except BaseException:
            self.kill()
            raise

    def _spawn(self) -> None:
        """Start the program's process, its output going to ``<name>.out``.

        Synchronous: ``Popen`` returns once the program has been executed, a
        matter of milliseconds; waiting for it to be ready is the async part.
        """
        argv = list(self._command(self.ports))
        self._output = self._output_path.open("ab")
        self._output.write(f"==== {' '.join(argv)}\n".encode())
        self._output.flush()
        self._process = subprocess.Popen(
            argv,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() ends its children too
        )

    async def _wait_listening(self) -> None:
        """Wait until the program's own process listens on every port of :attr:`ports`."""
        process = self._process
        assert process is not None
        wanted = set(self.ports.values())
        with trio.move_on_after(START_SECONDS):
            while True:
                if self._exited():
                    status = self.kill()
                    raise DaemonError(
                        f"{self.name} exited at start with status {status}\n{self.logs()}"
                    )
                if wanted <= listening_ports(process.pid):
                    return
                await trio.sleep(0.05)
        raise DaemonError(
            f"{self.name} did not listen on {sorted(wanted)} within {START_SECONDS} s\n"
            + self.logs()
        )

    @property
    def running(self) -> bool:
        """Whether the program's main process runs (an exited one not yet reaped counts as not)."""
        return self._process is not None and not self._exited()

    @property
    def pid(self) -> int:
        """The main process's id (nginx's master)."""
        assert self._process is not None, f"{self.name} was never started"
        return self._process.pid

    def _exited(self) -> bool:
        """Whether the main process has exited, without reaping it.

        Left unreaped, its pid (which is also its process group's id) cannot be
        reused, so that :meth:`kill` can still signal the group safely.
        """
        process = self._process
        if process is None or process.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the main process (nginx's master, HAProxy)."""
        if self.running:
            os.kill(self.pid, signum)

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and wait for the main process to exit, then end what is left.

        Returns:
            The main process's exit status (negative: the signal that ended it).

        Raises:
            DaemonError: it did not exit within STOP_SECONDS (it is killed
                then, so nothing is left running).
        """
        if not self.running:
            return self.kill()
        # A pidfd turns readable when the process exits, and does not reap it.
        pidfd = os.pidfd_open(self.pid)
        try:
            self.send_signal(signum)
            with trio.move_on_after(STOP_SECONDS):
                await trio.lowlevel.wait_readable(pidfd)
        finally:
            os.close(pidfd)
        if not self._exited():
            self.kill()
            raise DaemonError(
                f"{self.name} did not exit within {STOP_SECONDS} s of signal {signum}\n"
                + self.logs()
            )
        return self.kill()

    def kill(self) -> int:
        """End the whole process group with SIGKILL, reap the main process, close the log.

        Safe to call at any time, more than once, and for a program never started.

        Returns:
            The main process's exit status, or 0 if it never started.
        """
        process = self._process
        status = 0
        if process is not None:
            if process.returncode is None:
                # The main process is not reaped yet, so its pid is still the
                # group's: the group is this daemon's processes and no other.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            status = process.returncode
        if self._output is not None:
            self._output.close()
            self._output = None
        return status

    # ------------------------------------------------------------------ logs

    def logs(self) -> str:
        """Return the program's output and every ``*.log`` file of its directory."""
        parts: list[str] = []
        for path in [self._output_path, *sorted(self.directory.glob("*.log"))]:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            parts.append(f"---- {self.name}: {path.name}\n{text.rstrip()}")
        return "\n".join(parts)
