"""``python -m benchmarks.workers``: what more worker processes buy trio_wsext's echo server.

Strategy: one echo server per configuration (1 worker; 2 workers sharing a
socket; 2 workers with ``SO_REUSEPORT`` listeners), each a
:class:`trio_wsext.workers.WorkerPool` in a process of its own
(``python -m benchmarks.workers _server N MODE``), all started first and
idle while another is measured. Each measurement starts fresh client
processes, the load harness's agents (:mod:`benchmarks.load.agent`, with one
role more, ``cycles``), waits until they are ready and lets them all go at
once:

- connections per second: each client process runs clean cycles (TCP
  connect, opening handshake with a deflate offer, closing handshake; the
  load harness's :func:`benchmarks.load.churn.one_cycle`, never its aborted
  kinds), ``CONCURRENCY`` at once, for the duration; the rate is the cycles
  that ended well over the wall-clock time from the first start to the last
  end;
- echo messages per second: each client process holds its share of the
  connections, each with ``WINDOW`` compressed messages in flight, every echo
  checked (:func:`benchmarks.load.traffic.run_traffic`, mixed sizes, mostly
  2 kB); the rate is the good echoes over the time from the first open to
  the last echo.

Configurations take turns within each repetition, so that a drift of the
machine falls on all of them; the table shows medians over the repetitions,
and each 2-worker median over the 1-worker median. Client processes run on
the same machine: on 2 cores they take CPU the workers would use, and the
output says so. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, get_args

import attrs
import trio

from benchmarks import report
from benchmarks.adapters.base import HOST, MAX_SIZE
from benchmarks.load import agent, churn
from benchmarks.load.clients import Agent, go, stop_all, wait_ready
from benchmarks.processes import STARTUP_TIMEOUT, Child, WorkerError
from benchmarks.procfs import cpu_seconds
from trio_wsext import ConnectionClosed, WebSocketRequest
from trio_wsext.workers import WorkerMode, WorkerPool

CONFIGS: Final[tuple[tuple[int, WorkerMode], ...]] = (
    (1, "shared_socket"),
    (2, "shared_socket"),
    (2, "reuse_port"),
)
"""The servers measured: (workers, mode). One worker's mode makes no difference."""

CLIENT_PROCESSES: Final = 2
"""Client processes per measurement, the same for every configuration."""

CONCURRENCY: Final = 16
"""Cycles each client process runs at once (the load harness's churn runs 16)."""

CONNECTIONS: Final = 100
"""Echo connections over all client processes."""

WINDOW: Final = 4
"""Messages in flight per echo connection (the load harness's window)."""

RAMP: Final = 0.2
"""Seconds over which the echo connections open."""

SLACK: Final = 60.0
"""Seconds a client may take beyond its duration before the run counts as failed."""


@attrs.frozen
class Settings:
    """How long and how often."""

    reps: int
    duration: float


FULL: Final = Settings(reps=5, duration=2.0)
QUICK: Final = Settings(reps=1, duration=1.5)


async def echo(request: WebSocketRequest) -> None:
    """Send every message back: the handler of the servers measured (as benchmarks.adapters)."""
    ws = await request.accept()
    try:
        while True:
            await ws.send_message(await ws.get_message())
    except ConnectionClosed:
        pass


# -- the client role added to the load agent -----------------------------------------------------


def clean_cycles() -> Iterator[int]:
    """Return the churn cycle numbers that close cleanly (no abort), in order."""
    return (i for i in itertools.count() if churn.cycle_kind(i) == "close")


async def run_cycles(spec: dict[str, Any], stop: asyncio.Event) -> dict[str, Any]:
    """Run clean connect/handshake/close cycles, ``concurrency`` at once, for ``duration`` s.

    ``spec``: ``port``, ``index`` (this process connects from 127.0.0.(10 +
    index), as churn processes do), ``concurrency``, ``duration``.
    """
    source = f"127.0.0.{churn.SOURCE_BASE + spec['index']}"
    numbers = clean_cycles()
    outcomes: dict[str, int] = {}
    start = time.monotonic()
    deadline = start + spec["duration"]

    async def worker() -> None:
        while time.monotonic() < deadline and not stop.is_set():
            outcome = await churn.one_cycle(next(numbers), spec["port"], source)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    return {"outcomes": outcomes, "start": start, "end": time.monotonic()}


class CycleAgent(Agent):
    """A load agent that knows the ``cycles`` role too: ``python -m benchmarks.workers _agent``."""

    def __init__(self, name: str, spec: dict[str, Any], log_dir: Path) -> None:
        """Start the agent and send it ``spec``; its stderr goes to a file in ``log_dir``."""
        Child.__init__(self, "benchmarks.workers", ["_agent"], name, log_dir)
        self.send(spec)


def agent_main() -> None:
    """Run :func:`benchmarks.load.agent.main` with the ``cycles`` role added."""
    agent.ROLES["cycles"] = run_cycles
    agent.main()


# -- the server ----------------------------------------------------------------------------------


def server_main(workers: int, mode: WorkerMode) -> None:
    """Serve :func:`echo` from ``workers`` processes; answer the port; stop when stdin closes."""

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            pool = WorkerPool(
                "benchmarks.workers:echo",
                HOST,
                0,
                workers=workers,
                mode=mode,
                max_message_size=MAX_SIZE,
            )
            await nursery.start(pool.run)
            answer = {"port": pool.port, "pids": list(pool.statistics().pids)}
            print(json.dumps(answer), flush=True)
            await trio.to_thread.run_sync(sys.stdin.buffer.read)  # until EOF
            await pool.aclose()

    trio.run(main)


class Server(Child):
    """A pool of echo workers in a process of its own."""

    def __init__(self, workers: int, mode: WorkerMode, log_dir: Path) -> None:
        """Start it and wait until every worker listens.

        Raises:
            WorkerError: If it does not start (and the child is stopped).
        """
        super().__init__(
            "benchmarks.workers",
            ["_server", str(workers), mode],
            f"server {workers} {mode}",
            log_dir,
        )
        self.workers = workers
        self.mode = mode
        try:
            answer = self.read(STARTUP_TIMEOUT)
        except WorkerError:
            self.stop()
            raise
        self.port: int = answer["port"]
        self.pids: list[int] = answer["pids"]

    @property
    def label(self) -> str:
        """``1``, ``2 shared socket``, ``2 reuse port``."""
        return "1 worker" if self.workers == 1 else f"2, {self.mode.replace('_', ' ')}"

    def cpu(self) -> float:
        """The CPU seconds its workers have used so far."""
        return sum(cpu_seconds(pid) for pid in self.pids)


# -- measuring -----------------------------------------------------------------------------------


@attrs.frozen
class Sample:
    """One measurement of one server."""

    rate: float
    """Connections or echoed messages per second."""
    failures: int
    """Cycles that did not end well, or echoes missing or wrong."""
    server_cpu: float
    """The workers' CPU seconds per wall-clock second (1.0 is one core busy)."""
    client_cpu: float
    """The client processes' CPU seconds per wall-clock second."""


def _run_agents(
    server: Server, specs: list[dict[str, Any]], timeout: float, log_dir: Path
) -> tuple[list[dict[str, Any]], float]:
    """Start the agents, let them go at once, collect their answers and the server's CPU time."""
    agents = [CycleAgent(f"{spec['role']}{i}", spec, log_dir) for i, spec in enumerate(specs)]
    try:
        wait_ready(agents)
        cpu = server.cpu()
        go(agents)
        answers = [member.read(timeout) for member in agents]
        return answers, server.cpu() - cpu
    finally:
        stop_all(agents)


def measure_cycles(server: Server, settings: Settings, log_dir: Path) -> Sample:
    """Connections per second: clean cycles from every client process for the duration."""
    specs = [
        {
            "role": "cycles",
            "port": server.port,
            "index": i,
            "concurrency": CONCURRENCY,
            "duration": settings.duration,
        }
        for i in range(CLIENT_PROCESSES)
    ]
    answers, server_cpu = _run_agents(server, specs, settings.duration + SLACK, log_dir)
    wall = max(a["end"] for a in answers) - min(a["start"] for a in answers)
    ok = sum(a["outcomes"].get("ok", 0) for a in answers)
    failed = sum(sum(a["outcomes"].values()) for a in answers) - ok
    client_cpu = sum(a["cpu_seconds"] for a in answers)
    return Sample(ok / wall, failed, server_cpu / wall, client_cpu / wall)


def measure_echo(server: Server, settings: Settings, log_dir: Path) -> Sample:
    """Echo messages per second: every connection busy with its window until the bound."""
    specs = [
        {
            "role": "traffic",
            "port": server.port,
            "index": i,
            "processes": CLIENT_PROCESSES,
            "connections": CONNECTIONS,
            "messages": 10**9,  # more than any run sends: the bound ends it
            "window": WINDOW,
            "ramp": RAMP,
            "bound": settings.duration,
        }
        for i in range(CLIENT_PROCESSES)
    ]
    answers, server_cpu = _run_agents(server, specs, settings.duration + SLACK, log_dir)
    opened = [a["first_open"] for a in answers if a["first_open"] is not None]
    echoed_at = [a["last_echo"] for a in answers if a["last_echo"] is not None]
    if not opened or not echoed_at:
        raise WorkerError(f"{server.label}: no echo at all: {answers}")
    wall = max(echoed_at) - min(opened)
    echoed = sum(a["echoed"] for a in answers)
    failed = sum(a["lost"] + a["corrupted"] + a["duplicated"] for a in answers)
    failed += sum(a["connections"] - a["opened"] for a in answers)
    client_cpu = sum(a["cpu_seconds"] for a in answers)
    return Sample(echoed / wall, failed, server_cpu / wall, client_cpu / wall)


# -- the report ----------------------------------------------------------------------------------


def _median(samples: Sequence[Sample], field: str) -> float:
    """The median of one field of ``samples``."""
    values: list[float] = [getattr(sample, field) for sample in samples]
    return statistics.median(values)


def format_table(servers: Sequence[Server], results: dict[tuple[str, str], list[Sample]]) -> str:
    """Return the table, then each run's rates.

    A rate is the median over the repetitions; a ratio is the median of the
    per-repetition ratios to the 1-worker server's rate in that same
    repetition (the configurations run back to back, so a ratio compares
    runs that met the same load on the machine).
    """
    lines = [
        f"{'workers':<18} {'conn/s':>7} {'ratio':>6} {'srv':>5} {'cli':>5}"
        f"  {'echo msg/s':>10} {'ratio':>6} {'srv':>5} {'cli':>5}  {'failed':>6}"
    ]
    first = servers[0].label
    for server in servers:
        cells = []
        for metric in ("conn", "echo"):
            samples = results[server.label, metric]
            ratios = [
                mine.rate / base.rate
                for mine, base in zip(samples, results[first, metric], strict=True)
            ]
            cells.append(
                f" {_median(samples, 'rate'):>{7 if metric == 'conn' else 10},.0f}"
                f" {statistics.median(ratios):>5.2f}x"
                f" {_median(samples, 'server_cpu'):>5.0%} {_median(samples, 'client_cpu'):>5.0%} "
            )
        failed = sum(
            s.failures for metric in ("conn", "echo") for s in results[server.label, metric]
        )
        lines.append(f"{server.label:<18}{cells[0]}{cells[1]} {failed:>6}")
    lines.append("")
    lines.append("each run, in order:")
    for server in servers:
        for metric, unit in (("conn", "conn/s"), ("echo", "echo msg/s")):
            rates = " ".join(f"{sample.rate:,.0f}" for sample in results[server.label, metric])
            lines.append(f"  {server.label:<18} {unit:<11} {rates}")
    return "\n".join(lines)


def header(settings: Settings) -> str:
    """Return the lines above the table: what ran, where, and the caveat about the cores."""
    machine = report.machine()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cpus = machine["cpus"]
    return "\n".join(
        [
            f"trio_wsext echo server in worker processes, {now}, commit {report.revision()}",
            f"{machine['cpu']}, {cpus} CPUs, {machine['python']}, {machine['platform']}",
            f"{CLIENT_PROCESSES} client processes (asyncio, benchmarks.load) on 127.0.0.1;"
            f" medians of {settings.reps} runs of {settings.duration:g} s per figure;",
            f"conn/s: connect + handshake (deflate offered) + close, {CONCURRENCY} at once per"
            f" client; echo: {CONNECTIONS} connections, {WINDOW} compressed messages in flight"
            " each, mostly 2 kB",
            f"NOTE: the client processes run on the same {cpus} CPUs as the workers and take"
            " CPU time they would use: the 2-worker ratios are a lower bound"
            + (" (this machine has 2 cores)." if cpus == 2 else "."),
            "srv, cli: CPU time of the workers, of the clients, over wall time (100% = one core"
            " busy); the load average when the run began (1, 5, 15 min): "
            + ", ".join(f"{load:.1f}" for load in os.getloadavg()),
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.workers",
        description="Connections/s and echo messages/s of trio_wsext's echo server with 1 and"
        " 2 worker processes (both socket modes), and the 2-vs-1 ratio.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one repetition of 1.5 s (well under a minute)"
    )
    parser.add_argument("--reps", type=int, metavar="N", help=f"repetitions (default {FULL.reps})")
    parser.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help=f"seconds per figure (default {FULL.duration:g})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    settings = Settings(args.reps or settings.reps, args.duration or settings.duration)
    agent.raise_fd_limit()
    began = time.monotonic()
    heading = header(settings)  # the load average before the servers start
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        log_dir = Path(tmp)
        servers: list[Server] = []
        try:
            for workers, mode in CONFIGS:
                print(f"starting the server: {workers} workers, {mode}", file=sys.stderr)
                servers.append(Server(workers, mode, log_dir))
            results: dict[tuple[str, str], list[Sample]] = {}
            for rep in range(settings.reps):
                for server in servers:
                    for metric, measure in (("conn", measure_cycles), ("echo", measure_echo)):
                        print(
                            f"[{rep + 1}/{settings.reps}] {server.label}: {metric}",
                            file=sys.stderr,
                        )
                        sample = measure(server, settings, log_dir)
                        results.setdefault((server.label, metric), []).append(sample)
        finally:
            for server in servers:
                server.stop()
    print(heading)
    print()
    print(format_table(servers, results))
    command = " ".join(["python -m benchmarks.workers", *(sys.argv[1:] if argv is None else argv)])
    print(f"\n({time.monotonic() - began:.0f} s in all: {command})")


def _mode(text: str) -> WorkerMode:
    """Check a mode given on the command line of ``_server``."""
    for mode in get_args(WorkerMode):
        if mode == text:
            return mode  # type: ignore[no-any-return]
    raise SystemExit(f"unknown mode {text!r}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["_agent"]:
        agent_main()
    elif sys.argv[1:2] == ["_server"]:
        server_main(int(sys.argv[2]), _mode(sys.argv[3]))
    else:
        main()
