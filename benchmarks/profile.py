"""``python -m benchmarks.profile``: where trio_wsext spends its time, server and client.

Starts a trio_wsext echo server and a trio_wsext client worker (the same
processes as the benchmark), attaches ``py-spy record`` to both, runs one
workload for a few seconds, and prints each process's hottest functions by
own time and by total time, from py-spy's collapsed stacks. The raw stacks
(``*.txt``, for ``flamegraph.pl`` or speedscope) are kept in ``--output``.

py-spy is not a dependency of the package: ``pip install py-spy``. It reads
the other processes' memory, so it needs ptrace rights (root, or
``kernel.yama.ptrace_scope = 0``).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from benchmarks.processes import Client, Server, WorkerError

LIBRARY: Final = "trio_wsext"

SAMPLE_RATE: Final = 250
"""Samples per second: py-spy's default is 100; 250 gives ~1,000 samples in 4 s."""

SPY_START: Final = 1.0
"""Seconds to let py-spy attach before the workload starts."""

WARMUP: Final = 0.3
"""Seconds of the same workload run before py-spy attaches: builds the payloads, warms
caches, so the profile shows the steady state."""

WORKLOADS: Final[dict[str, tuple[str, bool, dict[str, Any]]]] = {
    "lockstep": ("lockstep", False, {}),
    "lockstep-deflate": ("lockstep", True, {}),
    "pipelined": ("pipelined", False, {}),
    "pipelined-deflate": ("pipelined", True, {}),
    "1mib": ("throughput", False, {"size": 2**20}),
    "1mib-deflate": ("throughput", True, {"size": 2**20}),
    "64kib-deflate": ("throughput", True, {"size": 64 * 1024}),
}
"""Profile name: (client workload, compression, extra parameters)."""

IDLE_FRAMES: Final = frozenset(
    {
        "EpollIOManager.get_events (trio/_core/_io_epoll.py)",
        "_exit_when_stdin_closes.<locals>.watch (benchmarks/worker.py)",
        "WorkerThread._work (trio/_core/_thread_cache.py)",
    }
)
"""Innermost frames of a thread that waits: trio's epoll wait, the worker's stdin watch,
an idle thread of trio's thread cache (its lock wait is C code, so py-spy shows this)."""

WRAPPER_FILES: Final = (
    "<frozen runpy>",
    "benchmarks/",
    "trio/_core/_run.py)",
    "threading.py)",
    "trio/_core/_thread_cache.py)",
    "outcome/_impl.py)",
)
"""Frames that wrap everything (runpy, the worker, trio.run and its scheduler loop): left
out of the total-time list, which they would fill. py-spy does not always stitch a
coroutine's frames under them, so their share says little anyway."""

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _params(workload: str, extra: dict[str, Any], duration: float) -> dict[str, Any]:
    """Return the workload parameters for about ``duration`` seconds of work."""
    if workload == "pipelined":
        return extra | {"count": max(10_000, int(duration * 25_000))}
    return extra | {"duration": duration}


def _location(frame: str) -> str:
    """Return ``function (file)`` of a py-spy frame, without the line number."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = path.rsplit("/main/", 1)[-1]
    return f"{match['function']} ({path})"


def summarize(stacks_path: Path, top: int) -> list[str]:
    """Return the hottest functions of a py-spy raw (collapsed) stack file.

    Own time counts a function when it is the innermost frame of a sample; total
    time counts it once per sample in which it appears anywhere.
    """
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = idle = 0
    for line in stacks_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_location(f) for f in stack.split(";")]
        if frames[-1] in IDLE_FRAMES:
            idle += count
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    if samples == 0:
        return [f"  (no busy samples; {idle} idle)"]
    busy = samples / (samples + idle)
    lines = [f"  {samples} busy samples ({100 * busy:.0f}% of the run); % of busy, own time:"]
    lines += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("  total time (the function and what it calls):")
    inner = [
        (name, n)
        for name, n in total.most_common()
        if not any(marker in name for marker in WRAPPER_FILES)
    ]
    lines += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in inner[:top]]
    return lines


def py_spy() -> str | None:
    """Return the py-spy executable: beside this Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _spy(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` on ``pid`` for ``seconds``, collapsed stacks to ``output``."""
    return subprocess.Popen(
        [
            py_spy() or "py-spy", "record", "--pid", str(pid), "--duration", str(round(seconds)),
            "--rate", str(SAMPLE_RATE), "--format", "raw", "--output", str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def profile(name: str, duration: float, output: Path, top: int) -> list[str]:
    """Profile one workload; return the report lines."""
    workload, compression, extra = WORKLOADS[name]
    log_dir = Path(tempfile.mkdtemp(prefix="trio_wsext-profile-"))
    server = Server(LIBRARY, compression, log_dir)
    client = Client(LIBRARY, log_dir)
    spies: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    base = {"url": server.url, "compression": compression}
    try:
        client.run(workload, _params(workload, extra, WARMUP) | base, timeout=120)
        for side, pid in (("server", server.pid), ("client", client.pid)):
            path = output / f"{name}-{side}.txt"
            spies[side] = (_spy(pid, duration + 2 * SPY_START + 1, path), path)
        time.sleep(SPY_START)
        params = _params(workload, extra, duration) | base
        result = client.run(workload, params, timeout=120 + 10 * duration)
    finally:
        client.stop()
        server.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    lines = [f"== {name}: {workload}, compression {'on' if compression else 'off'}: "]
    lines[0] += f"{result['rate']:,.1f} {'MB/s' if workload == 'throughput' else 'per s'}"
    for side, (spy, path) in spies.items():
        _, errors = spy.communicate(timeout=60)
        lines.append(f"-- {side} ({path})")
        if not path.exists():
            lines.append(f"  py-spy failed: {errors.decode(errors='replace').strip()}")
            continue
        lines += summarize(path, top)
    return lines


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and profile the chosen workloads."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument(
        "workloads", nargs="*", default=["lockstep", "pipelined", "1mib-deflate"],
        help=f"any of {', '.join(WORKLOADS)} (default: lockstep pipelined 1mib-deflate)",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per workload")
    parser.add_argument("--top", type=int, default=15, help="functions listed per table")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).resolve().parent / "results" / "profiles"
    )
    args = parser.parse_args(argv)
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload: {', '.join(unknown)}")
    if py_spy() is None:
        parser.error("py-spy is not on PATH: pip install py-spy")
    args.output.mkdir(parents=True, exist_ok=True)
    for name in args.workloads:
        try:
            print("\n".join(profile(name, args.duration, args.output, args.top)), flush=True)
        except WorkerError as exc:
            print(f"== {name}: failed: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
