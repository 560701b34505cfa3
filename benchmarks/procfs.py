"""What Linux's /proc says about a process: resident memory and CPU time.

The servers run in their own processes so that these figures are theirs alone.
"""

from __future__ import annotations

import os
from typing import Final

CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
"""Units of utime/stime in /proc/<pid>/stat (proc(5))."""


def status_kib(pid: int, field: str) -> int:
    """Return ``field`` (``VmRSS``, ``VmHWM``) of /proc/<pid>/status, in KiB.

    Raises:
        ProcessLookupError: If the process is gone.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError as exc:
        raise ProcessLookupError(pid) from exc
    raise ProcessLookupError(f"no {field} for pid {pid}")


def rss_bytes(pid: int) -> int:
    """Return the resident set size of ``pid`` (``VmRSS`` in /proc/<pid>/status).

    Raises:
        ProcessLookupError: If the process is gone.
    """
    return status_kib(pid, "VmRSS") * 1024


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of ``pid`` (/proc/<pid>/stat fields 14, 15).

    Raises:
        ProcessLookupError: If the process is gone.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # The command name (field 2) may contain spaces: split after its closing ")".
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError as exc:
        raise ProcessLookupError(pid) from exc
    # fields[0] is field 3 (state), so utime (field 14) is fields[11], stime fields[12].
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
