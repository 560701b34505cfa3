"""Each scenario against one library's server: start it fresh, load it, watch it, stop it.

Strategy: a scenario owns one fresh echo server (``python -m
benchmarks.worker server LIB --compression on``, the benchmarks' own) and
its agents. It waits until every agent is ready, takes the server's
baselines (open files, resident memory, CPU time, the kernel's listen-queue
overflow counter), says go to all agents at once, and samples the server's memory
until the last agent answers. Then it waits up to 5 s for the server's
open files to come back to the baseline, and stops everything.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from benchmarks.load import figures, monitor, violations
from benchmarks.load.clients import Agent, go, stop_all, wait_ready
from benchmarks.load.settings import HOSTILE_KINDS, ScenarioName, Settings
from benchmarks.processes import Server, WorkerError
from benchmarks.procfs import cpu_seconds

SLACK: Final = 60.0
"""Seconds the harness waits for an agent beyond the agent's own bound."""

SLOWLORIS_RAMP: Final = 1.0
"""Seconds over which the slowloris scenario's sockets connect."""


@attrs.frozen
class Context:
    """What every scenario needs: the settings and where logs go."""

    settings: Settings
    log_dir: Path


@contextlib.contextmanager
def fresh_server(library: str, log_dir: Path) -> Iterator[Server]:
    """Start ``library``'s echo server with compression on; stop it on exit."""
    server = Server(library, True, log_dir)
    try:
        yield server
    finally:
        server.stop()


@attrs.define
class Watch:
    """The server's baselines and memory sampler around the agents' run."""

    pid: int
    fds: int = 0
    cpu: float = 0.0
    overflows: int | None = None
    sampler: monitor.MemorySampler | None = None

    def start(self) -> None:
        """Take the baselines and start sampling memory."""
        self.fds = monitor.fd_count(self.pid)
        self.cpu = cpu_seconds(self.pid)
        self.overflows = monitor.listen_overflows()
        self.sampler = monitor.MemorySampler(self.pid)
        self.sampler.start()

    def finish(self) -> figures.Figures:
        """Return the server's CPU seconds, RSS growth, listen-queue overflows and fd settling."""
        growth = self.sampler.stop() if self.sampler is not None else 0
        used = cpu_seconds(self.pid) - self.cpu
        overflows = monitor.listen_overflows()
        settle = monitor.settle_fds(self.pid, self.fds)
        return {
            "server_cpu_seconds": used,
            "rss_growth_mib": growth / 1024,
            "rss_baseline_mib": (self.sampler.baseline_kib if self.sampler else 0) / 1024,
            "listen_overflows": (
                overflows - self.overflows
                if overflows is not None and self.overflows is not None
                else None
            ),
            "fds_baseline": self.fds,
            "fds_extra": settle.extra,
            "fds_settle_s": settle.seconds,
        }


def _go(agents: Sequence[Agent], watch: Watch) -> float:
    """Wait until the agents are ready, take the baselines, start them all; return when."""
    wait_ready(agents)
    watch.start()
    go(agents)
    return time.monotonic()


def traffic_specs(settings: Settings, port: int) -> list[dict[str, Any]]:
    """Return the specs of the good clients' processes."""
    return [
        {
            "role": "traffic",
            "port": port,
            "index": i,
            "processes": settings.client_processes,
            "connections": settings.connections,
            "messages": settings.messages,
            "window": settings.window,
            "ramp": settings.ramp,
            "bound": settings.traffic_bound,
        }
        for i in range(settings.client_processes)
    ]


def run_traffic(
    library: str, ctx: Context, *, hostile: bool = False, newcomers: bool = False
) -> figures.Figures:
    """Run the good clients, with hostile clients or newcomers alongside if asked."""
    s = ctx.settings
    with fresh_server(library, ctx.log_dir) as server:
        loaders = [
            Agent(f"traffic{i}", spec, ctx.log_dir)
            for i, spec in enumerate(traffic_specs(s, server.port))
        ]
        extra: list[Agent] = []
        if hostile:
            spec = {
                "role": "hostile",
                "port": server.port,
                "kinds": list(HOSTILE_KINDS),
                "per_kind": s.hostile_per_kind,
                "bound": s.hostile_bound,
                "ramp": s.ramp,
            }
            extra.append(Agent("hostile", spec, ctx.log_dir))
        if newcomers:
            spec = {
                "role": "newcomers",
                "port": server.port,
                "delay": s.ramp,
                "interval": s.newcomer_interval,
                "bound": s.traffic_bound,
            }
            extra.append(Agent("newcomers", spec, ctx.log_dir))
        watch = Watch(server.pid)
        try:
            started = _go([*loaders, *extra], watch)
            tallies = [agent.read(s.traffic_bound + SLACK) for agent in loaders]
            traffic_cpu = cpu_seconds(server.pid) - watch.cpu
            traffic_wall = time.monotonic() - started
            result: figures.Figures = {"backlog": monitor.listen_backlog(server.port)}
            for agent in extra:
                if agent.name == "newcomers":
                    agent.send({"stop": True})
                    probes = agent.read(SLACK)["probes"]
                    result |= figures.newcomers(probes)
                else:
                    outcomes = agent.read(s.hostile_bound + s.ramp + SLACK)["outcomes"]
                    result |= figures.hostile(outcomes, HOSTILE_KINDS)
            stop_all([*loaders, *extra])
            result |= watch.finish()
        finally:
            stop_all([*loaders, *extra])
        result |= figures.traffic(tallies, traffic_cpu, traffic_wall)
        result["server_alive"] = server.alive()
        return result


def run_churn(library: str, ctx: Context) -> figures.Figures:
    """Run the connect/close cycles from every client process; then watch the fds settle."""
    s = ctx.settings
    with fresh_server(library, ctx.log_dir) as server:
        agents = [
            Agent(
                f"churn{i}",
                {
                    "role": "churn",
                    "port": server.port,
                    "index": i,
                    "processes": s.client_processes,
                    "cycles": s.churn,
                    "concurrency": s.churn_concurrency,
                    "bound": s.traffic_bound,
                },
                ctx.log_dir,
            )
            for i in range(s.client_processes)
        ]
        watch = Watch(server.pid)
        try:
            _go(agents, watch)
            results = [agent.read(s.traffic_bound + SLACK) for agent in agents]
            stop_all(agents)
            result = watch.finish()
        finally:
            stop_all(agents)
        result |= figures.churn(results, s.churn)
        result["server_alive"] = server.alive()
        return result


def run_slowloris(library: str, ctx: Context) -> figures.Figures:
    """Run the slowloris sockets alone; record when and how each was dropped."""
    s = ctx.settings
    with fresh_server(library, ctx.log_dir) as server:
        spec = {
            "role": "hostile",
            "port": server.port,
            "kinds": ["slowloris"],
            "per_kind": s.slowloris,
            "bound": s.slowloris_bound,
            "ramp": SLOWLORIS_RAMP,
        }
        agent = Agent("slowloris", spec, ctx.log_dir)
        watch = Watch(server.pid)
        try:
            _go([agent], watch)
            outcomes = agent.read(s.slowloris_bound + SLOWLORIS_RAMP + SLACK)["outcomes"]
            agent.stop()
            result = watch.finish()
        finally:
            agent.stop()
        result |= figures.hostile(outcomes, ["slowloris"])
        result["server_alive"] = server.alive()
        return result


def run_backpressure(library: str, ctx: Context) -> figures.Figures:
    """Flood one connection that never reads; record where the bytes are when it stalls."""
    s = ctx.settings
    with fresh_server(library, ctx.log_dir) as server:
        spec = {"role": "backpressure", "port": server.port, "bound": s.backpressure_bound}
        agent = Agent("backpressure", spec, ctx.log_dir)
        watch = Watch(server.pid)
        try:
            _go([agent], watch)
            answer = agent.read(s.backpressure_bound + SLACK)
            agent.stop()
            result = watch.finish()
        finally:
            agent.stop()
        result |= figures.backpressure(answer)
        result["server_alive"] = server.alive()
        return result


def run_violations(library: str, ctx: Context) -> figures.Figures:
    """Commit each protocol violation on a connection of its own; record each close code."""
    with fresh_server(library, ctx.log_dir) as server:
        answers = violations.run(server.port, ctx.settings.violation_bound)
        result = figures.violations_answered(answers)
        result["server_alive"] = server.alive()
        return result


RUNNERS: Final[dict[ScenarioName, Callable[[str, Context], figures.Figures]]] = {
    "load": run_traffic,
    "hostile": lambda library, ctx: run_traffic(library, ctx, hostile=True),
    "newcomer": lambda library, ctx: run_traffic(library, ctx, newcomers=True),
    "churn": run_churn,
    "slowloris": run_slowloris,
    "backpressure": run_backpressure,
    "violations": run_violations,
}
"""Each scenario's runner: ``RUNNERS[name](library, ctx) -> figures``."""


@attrs.define
class Run:
    """One scenario run against one library."""

    scenario: str
    library: str
    rep: int
    figures: figures.Figures | None = None
    error: str | None = None
    seconds: float = 0.0


def run_one(scenario: ScenarioName, library: str, rep: int, ctx: Context) -> Run:
    """Run ``scenario`` against ``library`` once; a failed agent or server becomes ``error``."""
    run = Run(scenario, library, rep)
    start = time.monotonic()
    try:
        run.figures = RUNNERS[scenario](library, ctx)
    except (WorkerError, ProcessLookupError) as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    run.seconds = time.monotonic() - start
    return run
