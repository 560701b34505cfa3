"""What Linux says about a server process and its sockets while the load runs.

Strategy: everything is read from /proc (and ``ss`` for the listen
backlog), from outside the server, so that the same figures come out for
every library and no server needs a hook. Memory is sampled by a thread
every 100 ms; ``VmHWM`` (the kernel's own peak) catches a peak that falls
between two samples.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from typing import Final

import attrs

from benchmarks.procfs import status_kib

MEMORY_EVERY: Final = 0.1
"""Seconds between two memory samples."""

MEMORY_SAMPLES: Final = 36_000
"""Most samples one sampler takes (an hour at 100 ms): it stops by itself."""

FD_EVERY: Final = 0.05
"""Seconds between two open-file counts while waiting for the baseline."""

FD_BOUND: Final = 5.0
"""Seconds the fd count has to come back to its baseline."""

LISTEN_OVERFLOWS: Final = "ListenOverflows"
"""The kernel's count (/proc/net/netstat, TcpExt) of connections dropped because a listen
socket's accept queue was full; system-wide, so read around a scenario as a delta."""

TCP_STATES: Final = {1: "open", 7: "closed", 8: "eof"}
"""tcp_info's state (``TCP_ESTABLISHED``, ``TCP_CLOSE``, ``TCP_CLOSE_WAIT``) as the
clients name it: ``closed`` after a reset, ``eof`` once the peer's FIN arrived."""


def fd_count(pid: int) -> int:
    """Return how many files process ``pid`` has open.

    Raises:
        ProcessLookupError: If the process is gone.
    """
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError as exc:
        raise ProcessLookupError(pid) from exc


@attrs.frozen
class FdSettle:
    """How the server's open files came back after a scenario."""

    extra: int
    """Files open above the baseline at the end of the wait (0 when back)."""
    seconds: float | None
    """Seconds from the end of the clients until the count was back, or None."""


def settle_fds(pid: int, baseline: int, bound: float = FD_BOUND) -> FdSettle:
    """Count ``pid``'s open files every 50 ms until back to ``baseline`` or ``bound`` passes."""
    start = time.monotonic()
    extra = fd_count(pid) - baseline
    for _ in range(int(bound / FD_EVERY) + 1):
        if extra <= 0:
            return FdSettle(0, time.monotonic() - start)
        if time.monotonic() - start >= bound:
            break
        time.sleep(FD_EVERY)
        extra = fd_count(pid) - baseline
    return FdSettle(max(extra, 0), None if extra > 0 else time.monotonic() - start)


class MemorySampler:
    """Samples a process's ``VmRSS`` every 100 ms in a thread, between start and stop."""

    def __init__(self, pid: int) -> None:
        """Prepare to sample ``pid``; the baseline is taken by :meth:`start`."""
        self.pid = pid
        self.baseline_kib = 0
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        """Take the baseline and start sampling."""
        self.baseline_kib = self.peak_kib = status_kib(self.pid, "VmRSS")
        self._thread.start()

    def _run(self) -> None:
        """Sample until stopped, the process exits, or :data:`MEMORY_SAMPLES` are taken."""
        for _ in range(MEMORY_SAMPLES):
            if self._stop.wait(MEMORY_EVERY):
                return
            try:
                rss = status_kib(self.pid, "VmRSS")
            except ProcessLookupError:
                return
            self.samples += 1
            self.peak_kib = max(self.peak_kib, rss)

    def stop(self) -> int:
        """Stop sampling; return the peak growth over the baseline, in KiB.

        The peak is the highest sample or ``VmHWM``, whichever is higher.
        """
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmHWM"))
        return self.peak_kib - self.baseline_kib


def listen_overflows() -> int | None:
    """Return :data:`LISTEN_OVERFLOWS` from /proc/net/netstat, or None if unreadable."""
    try:
        with open("/proc/net/netstat", encoding="ascii") as netstat:
            lines = netstat.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table[LISTEN_OVERFLOWS]) if LISTEN_OVERFLOWS in table else None
    return None


def somaxconn() -> int | None:
    """Return ``net.core.somaxconn``, the cap of every listen backlog, or None."""
    try:
        with open("/proc/sys/net/core/somaxconn", encoding="ascii") as value:
            return int(value.read())
    except (OSError, ValueError):
        return None


def listen_backlog(port: int) -> int | None:
    """Return the backlog of the socket listening on ``port`` (``ss``'s Send-Q), or None."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    try:
        out = subprocess.run(
            [ss, "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2].isdigit():
            return int(fields[2])
    return None


def socket_queues(local_port: int, remote_port: int) -> tuple[int, int] | None:
    """Return (send queue, receive queue) in bytes of the IPv4 TCP socket of those ports.

    Read from /proc/net/tcp (``tx_queue:rx_queue``); None if no such socket.
    """
    want = (f"{local_port:04X}", f"{remote_port:04X}")
    try:
        with open("/proc/net/tcp", encoding="ascii") as table:
            next(table, None)
            for line in table:
                fields = line.split()
                local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
                if (local, remote) == want:
                    tx, rx = fields[4].split(":")
                    return int(tx, 16), int(rx, 16)
    except OSError:
        return None
    return None
