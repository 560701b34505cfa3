"""``python -m benchmarks.broadcast``: one message to a thousand compressed connections.

What it measures: the server's cost of broadcasting a ~16 KiB JSON message
(a batch of price ticks, a new one every round:
:func:`benchmarks.broadcast_server.tick_messages`) to every connection, with
``trio_wsext.broadcast()``, websockets' asyncio ``broadcast()`` and
``websockets.trio``'s ``broadcast()``, in two permessage-deflate
configurations: ``no_context_takeover`` (each library's
``ServerPerMessageDeflateFactory(server_no_context_takeover=True)``, where
trio_wsext compresses each message once for all connections) and
``context_takeover`` (each library's default, where every connection's
compressor has its own history and every library compresses per
connection).

Strategy: every run starts a fresh server process (:mod:`benchmarks.broadcast_server`)
and one or more client processes (:mod:`benchmarks.broadcast_clients`),
which open the connections over raw sockets with their own handshake and
then only count what arrives, so the clients cost the same, and little, for
every server. Once all connections are up, the server broadcasts the
messages back to back, yielding to its event loop between two, waits for
its outgoing buffers to empty, and reports the wall-clock and CPU seconds
of that phase (its own clock, so nothing of the setup is counted) and what
it delivered; the clients then report the bytes and messages that arrived,
which must match. Each repetition runs every configuration and, within it,
every library in turn, the order rotated per repetition
(:func:`benchmarks.harness.rotated`); the machine is shared and drifts, so
each repetition gives one ratio trio_wsext / other library and the tables
show the median of those ratios. Nothing here asserts a time; the checks
(:func:`problems`) are about the counts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from benchmarks import report as bench_report
from benchmarks.broadcast_server import (
    CONFIGURATIONS,
    LIBRARIES,
    Configuration,
    Library,
    tick_messages,
)
from benchmarks.harness import rotated, set_affinity
from benchmarks.load.agent import raise_fd_limit
from benchmarks.processes import STARTUP_TIMEOUT, Child, WorkerError
from benchmarks.procfs import rss_bytes

SUBJECT: Final[Library] = "trio_wsext"
"""The library whose ratios the report gives."""

PEERS: Final[tuple[Library, ...]] = ("websockets", "websockets.trio")
"""The libraries trio_wsext is compared with."""

TARGETS: Final[dict[Configuration, float]] = {
    "no_context_takeover": 5.0,
    "context_takeover": 1.0,
}
"""The ratio trio_wsext aims at against each websockets flavour, per configuration."""

READY_TIMEOUT: Final = 120.0
"""Seconds the clients have to open all their connections (sequential handshakes, a busy CPU)."""

REPORT_BOUND: Final = 60.0
"""Seconds a client waits for the last messages to arrive before it reports anyway."""

PHASE_SLACK: Final = 120.0
"""Seconds the driver waits for the server's phase beyond :func:`phase_timeout`'s estimate."""


@attrs.frozen
class Settings:
    """The sizes of a run."""

    connections: int = 1_000
    """Client connections per server."""
    messages: int = 25
    """Messages broadcast per run (each to every connection)."""
    repeat: int = 3
    """Repetitions: each runs every configuration and library once."""
    client_processes: int = 1
    """Processes the connections are split between."""
    pin: bool = False
    """Pin the server to the last CPU and the clients to the others."""


FULL: Final = Settings()
"""The default run: 3 x 2 configurations x 3 libraries, about 4 minutes on 2 cores.

The websockets servers compress every message once per connection, at
~0.5 ms each here: 25 messages to 1,000 connections take them ~13 s a run.
"""

QUICK: Final = Settings(messages=10, repeat=1)
"""``--quick``: one repetition of 10 messages, under a minute."""


def phase_timeout(settings: Settings) -> float:
    """Return how long the driver waits for a server's broadcast phase.

    A websockets server compresses every message for every connection: about
    0.2 ms each on an idle core; allow 1 ms, plus :data:`PHASE_SLACK`.
    """
    return settings.connections * settings.messages * 1e-3 + PHASE_SLACK


@attrs.define
class Run:
    """One run of one library in one configuration: the server's and clients' answers."""

    configuration: Configuration
    library: Library
    rep: int
    server: dict[str, Any] | None = None
    """The server's answer to go: ``wall``, ``cpu``, ``delivered``, ``skipped``, ..."""
    clients: list[dict[str, Any]] = attrs.Factory(list)
    """Each client process's report: ``bytes``, ``messages``, ``compressed``, ..."""
    error: str | None = None
    seconds: float = 0.0
    """The whole run, process start to stop."""

    def client_total(self, key: str) -> int:
        """Return ``key`` summed over the client processes' reports."""
        return sum(int(client[key]) for client in self.clients)

    @property
    def delivered(self) -> int:
        """Messages the server handed to its connections (messages x connections minus skips)."""
        return int(self.server["delivered"]) if self.server else 0

    def figures(self) -> dict[str, float] | None:
        """Return the run's figures, or None if it failed.

        ``messages_per_second``: delivered messages over the phase's wall time;
        ``cpu_us_per_message``: the server's CPU time over delivered messages;
        ``wire_bytes_per_message``: bytes the clients received per message received.
        """
        if self.server is None or self.error is not None or not self.delivered:
            return None
        received = self.client_total("messages")
        return {
            "messages_per_second": self.delivered / self.server["wall"],
            "cpu_us_per_message": self.server["cpu"] * 1e6 / self.delivered,
            "wire_bytes_per_message": self.client_total("bytes") / received if received else 0.0,
            "skipped": float(self.server["skipped"]),
            "backlogged": float(self.server["backlogged"]),
            "wall": float(self.server["wall"]),
            "client_cpu": sum(float(client["cpu"]) for client in self.clients),
        }

    def as_json(self) -> dict[str, Any]:
        """Return the run as a JSON-ready dict, its figures and problems included."""
        return attrs.asdict(self) | {"figures": self.figures(), "problems": problems(self)}


def problems(run: Run) -> list[str]:
    """Return what is wrong with ``run``'s counts: anything means its figures cannot be trusted.

    The server must have reached every connection, drained its buffers and
    delivered every message it did not skip; the clients must have received
    exactly the messages the server delivered, every one compressed; for
    trio_wsext, the bytes they received must be the bytes its connections
    counted as written.
    """
    if run.error is not None:
        return [run.error.splitlines()[0]]
    server = run.server
    if server is None:
        return ["no answer from the server"]
    found = []
    expected = server["connections"] * run_messages(run)
    if server["delivered"] + server["skipped"] + server["not_open"] != expected:
        found.append(f"server counts {server['delivered']} + skips do not add up to {expected}")
    if server["not_open"]:
        found.append(f"{server['not_open']} sends to connections that were not open")
    if not server["drained"]:
        found.append("the server's outgoing buffers did not empty")
    received = run.client_total("messages")
    if received != run.delivered:
        found.append(f"clients received {received} messages, the server delivered {run.delivered}")
    if run.client_total("compressed") != received:
        found.append(f"{received - run.client_total('compressed')} messages not compressed")
    if run.client_total("closed"):
        found.append(f"{run.client_total('closed')} connections closed by the server")
    if "wire_bytes" in server and server["wire_bytes"] != run.client_total("bytes"):
        found.append(
            f"clients received {run.client_total('bytes')} bytes, "
            f"the server wrote {server['wire_bytes']}"
        )
    return found


def run_messages(run: Run) -> int:
    """Return how many messages ``run``'s server broadcast (from its counts)."""
    server = run.server or {}
    connections = int(server.get("connections", 0))
    total = sum(int(server.get(key, 0)) for key in ("delivered", "skipped", "not_open"))
    return total // connections if connections else 0


# -- running ------------------------------------------------------------------------------


@contextlib.contextmanager
def processes(
    library: Library, configuration: Configuration, settings: Settings, log_dir: Path
) -> Iterator[tuple[Child, list[Child]]]:
    """Start the server and the client processes, connected and ready; stop them all on exit.

    Raises:
        WorkerError: If one does not start, or a client cannot connect.
    """
    children: list[Child] = []
    try:
        server = Child(
            "benchmarks.broadcast_server",
            [library, configuration, str(settings.connections), str(settings.messages)],
            f"server {library} {configuration}",
            log_dir,
        )
        children.append(server)
        port = server.read(STARTUP_TIMEOUT)["port"]
        clients = []
        shares = split(settings.connections, settings.client_processes)
        for index, share in enumerate(shares):
            client = Child("benchmarks.broadcast_clients", [], f"clients{index}", log_dir)
            children.append(client)
            clients.append(client)
            client.send({"port": port, "connections": share, "configuration": configuration})
        for client in clients:
            client.read(READY_TIMEOUT)
        if settings.pin:
            place(server, clients)
        yield server, clients
    finally:
        for child in children:
            child.stop()


def split(total: int, parts: int) -> list[int]:
    """Return ``total`` split into ``parts`` near-equal positive shares (fewer if it is small)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def place(server: Child, clients: Sequence[Child]) -> None:
    """Pin the server to the last CPU and the clients to the others (if there are two or more).

    Raises:
        WorkerError: If a process is gone.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return
    try:
        set_affinity(server.pid, {cpus[-1]})
        for client in clients:
            set_affinity(client.pid, set(cpus[:-1]))
    except ProcessLookupError as exc:
        raise WorkerError(f"a process exited before the run: {exc}") from exc


def run_one(
    library: Library, configuration: Configuration, rep: int, settings: Settings, log_dir: Path
) -> Run:
    """Run one library's server in one configuration once; never raises for a failed run."""
    run = Run(configuration, library, rep)
    started = time.monotonic()
    try:
        with processes(library, configuration, settings, log_dir) as (server, clients):
            server.send({"go": True})
            run.server = server.read(phase_timeout(settings))
            with contextlib.suppress(ProcessLookupError):
                run.server["rss_mib"] = rss_bytes(server.pid) / 2**20
            for client in clients:
                client.send({"report": settings.messages, "bound": REPORT_BOUND})
            run.clients = [client.read(REPORT_BOUND + 30) for client in clients]
    except WorkerError as exc:
        run.error = str(exc)
    run.seconds = time.monotonic() - started
    return run


def run_all(
    settings: Settings,
    libraries: Sequence[Library],
    configurations: Sequence[Configuration],
    log_dir: Path,
    progress: Callable[[str], None],
) -> list[Run]:
    """Run every configuration for every library, ``repeat`` times, the libraries interleaved."""
    runs = []
    for rep in range(settings.repeat):
        for configuration in configurations:
            for name in rotated(tuple(libraries), rep):
                library = LIBRARIES[LIBRARIES.index(name)]
                run = run_one(library, configuration, rep, settings, log_dir)
                runs.append(run)
                progress(describe(run, settings))
    return runs


def describe(run: Run, settings: Settings) -> str:
    """Return one progress line for ``run``."""
    head = f"[{run.rep + 1}/{settings.repeat}] {run.configuration:<20} {run.library:<16}"
    figures = run.figures()
    if figures is None:
        return f"{head} ERROR {(run.error or 'no figures').splitlines()[0]}  ({run.seconds:.1f} s)"
    trouble = problems(run)
    return (
        f"{head} {figures['messages_per_second']:>9,.0f} msg/s "
        f"{figures['cpu_us_per_message']:>7.1f} us/msg  skipped {figures['skipped']:,.0f}  "
        f"{figures['wire_bytes_per_message']:,.0f} B/msg  ({run.seconds:.1f} s)"
        + (f"  PROBLEM: {'; '.join(trouble)}" if trouble else "")
    )


# -- summary ------------------------------------------------------------------------------


def values(
    runs: Sequence[Run], configuration: Configuration, library: Library, key: str
) -> dict[int, float]:
    """Return ``key`` of ``library``'s figures in ``configuration``, by repetition."""
    found = {}
    for run in runs:
        figures = run.figures()
        if run.configuration == configuration and run.library == library and figures:
            found[run.rep] = figures[key]
    return found


def median(found: dict[int, float]) -> float | None:
    """Return the median of the values, or None if there are none."""
    return statistics.median(found.values()) if found else None


@attrs.frozen
class Ratio:
    """trio_wsext against one peer in one configuration, per repetition and the median."""

    configuration: Configuration
    peer: Library
    rate: dict[int, float]
    """trio_wsext's messages/s over the peer's."""
    cpu: dict[int, float]
    """The peer's CPU per message over trio_wsext's: how many times less CPU trio_wsext used."""

    @property
    def rate_median(self) -> float | None:
        """The median over repetitions of the messages/s ratio."""
        return median(self.rate)

    @property
    def cpu_median(self) -> float | None:
        """The median over repetitions of the CPU-per-message ratio."""
        return median(self.cpu)


def ratios(runs: Sequence[Run], configuration: Configuration, peer: Library) -> Ratio:
    """Return trio_wsext's ratios against ``peer``, each from two runs of the same repetition."""
    rate_subject = values(runs, configuration, SUBJECT, "messages_per_second")
    rate_peer = values(runs, configuration, peer, "messages_per_second")
    cpu_subject = values(runs, configuration, SUBJECT, "cpu_us_per_message")
    cpu_peer = values(runs, configuration, peer, "cpu_us_per_message")
    return Ratio(
        configuration,
        peer,
        {rep: rate_subject[rep] / rate_peer[rep] for rep in rate_subject.keys() & rate_peer},
        {rep: cpu_peer[rep] / cpu_subject[rep] for rep in cpu_subject.keys() & cpu_peer},
    )


def _number(value: float | None, digits: int = 0) -> str:
    """Return ``value`` with thousands separators, or a dash."""
    return "-" if value is None else f"{value:,.{digits}f}"


def _per_rep(found: dict[int, float], digits: int) -> str:
    """Return the per-repetition values, in repetition order."""
    return " / ".join(f"{found[rep]:.{digits}f}" for rep in sorted(found)) or "-"


def table_lines(
    runs: Sequence[Run],
    libraries: Sequence[Library],
    configurations: Sequence[Configuration],
) -> list[str]:
    """Return the two Markdown tables: figures per library, then trio_wsext's ratios."""
    lines = [
        "| configuration | library | messages/s | CPU µs/message | skipped (sum) | "
        "wire B/message | client CPU s | runs |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for configuration in configurations:
        for library in libraries:
            medians = {
                key: median(values(runs, configuration, library, key))
                for key in ("messages_per_second", "cpu_us_per_message", "wire_bytes_per_message",
                            "client_cpu")
            }  # fmt: skip
            count = len(values(runs, configuration, library, "wall"))
            attempted = sum(
                1 for r in runs if r.configuration == configuration and r.library == library
            )
            skipped = sum(values(runs, configuration, library, "skipped").values())
            lines.append(
                f"| {configuration} | {library} | {_number(medians['messages_per_second'])} | "
                f"{_number(medians['cpu_us_per_message'], 1)} | {skipped:,.0f} | "
                f"{_number(medians['wire_bytes_per_message'])} | "
                f"{_number(medians['client_cpu'], 2)} | "
                f"{count}/{attempted} |"
            )
    lines += [
        "",
        "| configuration | trio_wsext vs | messages/s ratio per rep | median | "
        "CPU/message ratio per rep | median | target | met |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for configuration in configurations:
        for peer in (p for p in PEERS if p in libraries):
            if SUBJECT not in libraries:
                continue
            ratio = ratios(runs, configuration, peer)
            target = TARGETS[configuration]
            met = [
                name
                for name, value in (("rate", ratio.rate_median), ("CPU", ratio.cpu_median))
                if value is not None and value >= target
            ]
            verdict = {2: "yes (both)", 1: f"{met[0] if met else ''} only", 0: "no"}[len(met)]
            lines.append(
                f"| {configuration} | {peer} | {_per_rep(ratio.rate, 2)} | "
                f"{_number(ratio.rate_median, 2)}x | {_per_rep(ratio.cpu, 2)} | "
                f"{_number(ratio.cpu_median, 2)}x | >= {target:g}x | {verdict} |"
            )
    return lines


def meta(settings: Settings, libraries: Sequence[Library], command: str) -> dict[str, Any]:
    """Return the header as a JSON-ready dict: command, date, commit, machine, versions."""
    sample = tick_messages(3)
    return {
        "command": command,
        "revision": bench_report.revision(),
        "machine": bench_report.machine(),
        "versions": bench_report.versions(list(libraries)),
        "settings": attrs.asdict(settings),
        "message_bytes": round(statistics.mean(len(m.encode()) for m in sample)),
        "targets": dict(TARGETS),
    }


def header_lines(info: dict[str, Any]) -> list[str]:
    """Return the lines printed above the tables."""
    m, s = info["machine"], info["settings"]
    return [
        f"broadcast benchmark, commit {info['revision']}: `{info['command']}`",
        f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['platform']}, {m['python']}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        f"each run: {s['messages']} JSON messages of ~{info['message_bytes']:,} bytes (a new "
        f"one each time) broadcast to {s['connections']:,} permessage-deflate connections "
        f"({s['client_processes']} raw-socket client process(es)); {s['repeat']} "
        "repetition(s), libraries interleaved; figures are medians over repetitions",
        "messages/s = delivered messages / wall time of the broadcast phase (buffers drained); "
        "CPU µs/message = server process CPU time / delivered messages; wire B/message = "
        "bytes the clients received / messages received",
        "ratios: messages/s = trio_wsext / other; CPU/message = other / trio_wsext "
        "(higher is better for trio_wsext in both); median of the per-repetition ratios",
    ]


def note_lines(runs: Sequence[Run]) -> list[str]:
    """Return one line per run whose counts do not add up."""
    notes = []
    for run in runs:
        for problem in problems(run):
            notes.append(f"- rep {run.rep + 1} {run.configuration} {run.library}: {problem}")
    if any(r.server and r.server.get("backlogged") for r in runs):
        notes.append(
            "- websockets' asyncio broadcast() writes to connections over their write limit "
            "(no skipping); backlogged counts such sends: "
            + ", ".join(
                f"rep {r.rep + 1} {r.configuration} {r.server['backlogged']:,}"
                for r in runs
                if r.server and r.server.get("backlogged")
            )
        )
    return notes


def document(runs: Sequence[Run], info: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON document: the header, every run, and the ratios."""
    configurations = sorted({run.configuration for run in runs}, key=CONFIGURATIONS.index)
    return {
        **info,
        "runs": [run.as_json() for run in runs],
        "ratios": [
            attrs.asdict(ratio)
            | {"rate_median": ratio.rate_median, "cpu_median": ratio.cpu_median}
            for configuration in configurations
            for peer in PEERS
            for ratio in [ratios(runs, configuration, peer)]
        ],
    }


# -- command line -------------------------------------------------------------------------


def _positive(text: str) -> int:
    """Parse a positive int."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _choices(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    """Return a parser of a comma-separated subset of ``allowed``, kept in ``allowed``'s order."""

    def parse(text: str) -> list[str]:
        names = {name.strip() for name in text.split(",") if name.strip()}
        unknown = sorted(names - set(allowed))
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
        return [name for name in allowed if name in names]

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.broadcast",
        description="Broadcast ~16 KiB JSON messages to 1,000 compressed connections: "
        "trio_wsext, websockets (asyncio) and websockets.trio, side by side.",
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition, 10 messages")
    parser.add_argument("--connections", type=_positive, metavar="N")
    parser.add_argument("--messages", type=_positive, metavar="K")
    parser.add_argument("--repeat", type=_positive, metavar="R")
    parser.add_argument("--client-processes", type=_positive, metavar="P")
    parser.add_argument(
        "--pin", action="store_true", help="server on the last CPU, clients on the others"
    )
    parser.add_argument(
        "--libraries", type=_choices(LIBRARIES), default=list(LIBRARIES), metavar="A,B"
    )
    parser.add_argument(
        "--configurations",
        type=_choices(CONFIGURATIONS),
        default=list(CONFIGURATIONS),
        metavar="A,B",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """Return ``--quick``'s or the full run's settings, with the options given applied."""
    settings = QUICK if args.quick else FULL
    changes = {
        name: getattr(args, name)
        for name in ("connections", "messages", "repeat", "client_processes")
        if getattr(args, name) is not None
    }
    return attrs.evolve(settings, pin=args.pin, **changes)


def _log(line: str) -> None:
    """Write a progress line to stderr."""
    print(line, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the tables on stdout (progress on stderr), write the JSON if asked."""
    args = parse_args(argv)
    settings = settings_from(args)
    raise_fd_limit()
    command = shlex.join(
        ["python", "-m", "benchmarks.broadcast", *(sys.argv[1:] if argv is None else argv)]
    )
    info = meta(settings, args.libraries, command)
    log_dir = Path(tempfile.mkdtemp(prefix="trio_wsext-broadcast-"))
    started = time.monotonic()
    runs = run_all(settings, args.libraries, args.configurations, log_dir, _log)
    info["seconds"] = round(time.monotonic() - started, 1)
    lines = [
        *header_lines(info),
        f"total: {info['seconds']} s",
        "",
        *table_lines(runs, args.libraries, args.configurations),
    ]
    notes = note_lines(runs)
    if notes:
        lines += ["", *notes]
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document(runs, info), indent=1) + "\n")
        lines.append(f"\nJSON: {args.json}")
    print("\n".join(lines))
    if any(problems(run) for run in runs):
        _log(f"logs kept in {log_dir}")
        return 1
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
