"""What the harness measures: the cases (workload, client, compression) and their settings.

Each :class:`Case` is one row group of the table: a client command, whose
client (the library's own, or the common one) talks to which server, with
what compression, and which figures of its result become rows.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import attrs

from benchmarks.payloads import SMALL_SIZE

ClientKind = Literal["own", "common"]
"""``own``: each library's client against its own server; ``common``: one client for all."""

CompressionMode = Literal["default", "on", "off"]
"""``default``: what each library does with its defaults; ``on``/``off``: deflate forced."""

Pinning = Literal["same", "split", "none"]
"""Where the server and client processes run: both on one CPU, one CPU each, or wherever
the OS puts them."""

PINNING: Final[dict[str, Pinning]] = {
    "lockstep": "same",
    "pipelined": "split",
    "throughput": "split",
}
"""Pinning per workload group (measured on this 2-core VM): a lockstep round trip has no
parallelism to gain, and when client and server sit on different CPUs each wake-up
crosses cores, which cost picows 52k -> 11k round trips/s and flipped from run to run
as other jobs came and went; on one CPU the figure is the CPU cost of a round trip.
Pipelined and large messages keep client and server busy at once: one CPU each."""

WORKLOAD_GROUPS: Final = ("lockstep", "pipelined", "throughput", "idle", "latency", "zlib")
"""Names accepted by ``--workloads``."""


@attrs.frozen
class Settings:
    """Sizes and durations of one invocation."""

    repeat: int
    """Runs of every case; the table shows medians."""
    lockstep_duration: float
    """Seconds each lockstep run measures."""
    pipelined_count: int
    """Messages sent without waiting (issue 6: 100k)."""
    throughput_duration: float
    """Seconds each large-message run measures."""
    idle_connections: int
    """Connections held open for the RSS figure (issue 6: 1,000)."""
    idle_repeat: int
    """Runs of the idle case (RSS varies little; each run starts a fresh server)."""
    bulk_duration: float
    """Seconds the 16 MiB sender runs in the latency case."""
    probe_delay: float
    """Seconds the latency probe waits before it starts, so the bulk transfer is under way."""
    probe_duration: float
    """Seconds the latency probe runs."""
    probe_interval: float
    """Seconds between two probes."""
    zlib_duration: float
    """Seconds each zlib ceiling measures."""


FULL: Final = Settings(
    repeat=3,
    lockstep_duration=1.0,
    pipelined_count=100_000,
    throughput_duration=1.0,
    idle_connections=1_000,
    idle_repeat=1,
    bulk_duration=4.0,
    probe_delay=0.5,
    probe_duration=3.0,
    probe_interval=0.005,
    zlib_duration=0.5,
)

QUICK: Final = Settings(
    repeat=1,
    lockstep_duration=0.3,
    pipelined_count=10_000,
    throughput_duration=0.3,
    idle_connections=200,
    idle_repeat=1,
    bulk_duration=2.0,
    probe_delay=0.3,
    probe_duration=1.5,
    probe_interval=0.005,
    zlib_duration=0.2,
)


@attrs.frozen
class Metric:
    """One figure of a workload's result, shown as one row."""

    key: str
    """Key in the workload's result dict."""
    label: str
    """What the row says it is."""
    unit: str
    better: Literal["higher", "lower"]
    scale: float = 1.0
    """Multiplier from the result's unit to the shown one (seconds to ms: 1000)."""
    digits: int = 0
    """Decimals shown."""


RATE: Final = Metric("rate", "round trips/s", "rt/s", "higher")
MESSAGES: Final = Metric("rate", "messages/s", "msg/s", "higher")
MBPS: Final = Metric("rate", "throughput", "MB/s", "higher", digits=1)
WIRE: Final = Metric("wire_ratio", "server wire bytes / payload", "ratio", "lower", digits=3)
P50: Final = Metric("p50", "p50 latency", "ms", "lower", scale=1e3, digits=2)
P99: Final = Metric("p99", "p99 latency", "ms", "lower", scale=1e3, digits=2)
RSS_OPEN: Final = Metric("per_conn_open", "RSS/conn, idle", "KiB", "lower", 1 / 1024, 1)
RSS_USED: Final = Metric("per_conn_used", "RSS/conn, after 1 msg", "KiB", "lower", 1 / 1024, 1)
RSS_IDLE: Final = Metric(
    "per_conn_idle", "RSS/conn, 12 s after 1 msg", "KiB", "lower", 1 / 1024, 1
)


@attrs.frozen
class Case:
    """One measurement, run for every library in turn."""

    key: str
    """Unique name, e.g. ``lockstep/own/off``."""
    group: str
    """One of :data:`WORKLOAD_GROUPS`."""
    workload: str
    """Client command (``benchmarks.workloads.CLIENT_WORKLOADS``)."""
    title: str
    client: ClientKind
    compression: CompressionMode
    params: dict[str, Any]
    """Workload parameters besides the URL and the compression flag."""
    metrics: tuple[Metric, ...]
    timeout: float
    """Seconds the client has to answer before it (and the server) are killed."""
    ceilings: bool = False
    """Also run the plain TCP echoes (tcp-trio, tcp-asyncio) in this case."""
    fresh_server: bool = False
    """Start a new server for each run (and give the client its pid), for RSS figures."""
    pin: Pinning = "none"
    """Where the server and the client run (:data:`PINNING`)."""
    runs: int = 0
    """Runs of this case; 0 means ``Settings.repeat``."""


def _mode(on: bool) -> CompressionMode:
    """Return ``"on"`` or ``"off"``."""
    return "on" if on else "off"


def build_cases(settings: Settings, clients: tuple[ClientKind, ...]) -> list[Case]:
    """Return every case, in the order the harness runs (and prints) them."""
    small = f"{SMALL_SIZE} B text"
    lock = {"duration": settings.lockstep_duration}
    pipe = {"count": settings.pipelined_count}
    lock_timeout = 60 + 10 * settings.lockstep_duration
    pipe_timeout = 60 + settings.pipelined_count / 500
    cases: list[Case] = []

    def add(**fields: Any) -> None:
        if fields["client"] in clients:
            cases.append(Case(**fields, pin=PINNING.get(fields["group"], "none")))

    for mode in ("default", "off"):
        add(
            key=f"lockstep/own/{mode}", group="lockstep", workload="lockstep",
            title=f"lockstep echo, {small}", client="own", compression=mode, params=lock,
            metrics=(RATE,), timeout=lock_timeout, ceilings=mode == "off",
        )  # fmt: skip
    add(
        key="lockstep/common/off", group="lockstep", workload="lockstep",
        title=f"lockstep echo, {small}", client="common", compression="off", params=lock,
        metrics=(RATE,), timeout=lock_timeout,
    )  # fmt: skip
    for mode in ("default", "off"):
        add(
            key=f"pipelined/own/{mode}", group="pipelined", workload="pipelined",
            title=f"pipelined {pipe['count']:,}, {small}", client="own", compression=mode,
            params=pipe, metrics=(MESSAGES,), timeout=pipe_timeout,
        )  # fmt: skip
    add(
        key="pipelined/common/off", group="pipelined", workload="pipelined",
        title=f"pipelined {pipe['count']:,}, {small}", client="common", compression="off",
        params=pipe, metrics=(MESSAGES,), timeout=pipe_timeout,
    )  # fmt: skip
    for client in ("own", "common"):
        for size, name in ((64 * 1024, "64 KiB"), (2**20, "1 MiB")):
            for on in (False, True):
                add(
                    key=f"throughput-{name.replace(' ', '')}/{client}/{_mode(on)}",
                    group="throughput", workload="throughput",
                    title=f"echo {name} JSON-like text", client=client, compression=_mode(on),
                    params={"size": size, "duration": settings.throughput_duration},
                    metrics=(MBPS, WIRE) if on else (MBPS,),
                    timeout=120 + 10 * settings.throughput_duration,
                )  # fmt: skip
    for on in (False, True):
        add(
            key=f"idle/common/{_mode(on)}", group="idle", workload="idle",
            title=f"{settings.idle_connections:,} idle connections", client="common",
            compression=_mode(on), params={"count": settings.idle_connections},
            metrics=(RSS_OPEN, RSS_USED, RSS_IDLE),
            timeout=140 + settings.idle_connections / 10,
            fresh_server=True, runs=settings.idle_repeat,
        )  # fmt: skip
    add(
        key="latency/own/on", group="latency", workload="latency_probe",
        title="64 B beside 16 MiB compressed", client="own", compression="on",
        params={
            "delay": settings.probe_delay,
            "duration": settings.probe_duration,
            "interval": settings.probe_interval,
        },
        metrics=(P50, P99), timeout=180 + settings.bulk_duration,
    )  # fmt: skip
    return cases
