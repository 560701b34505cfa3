"""What one load run does: the scenarios, their sizes and their bounds.

Every number that decides how long something may take lives here, so that
the full run, ``--quick`` and the test's small version differ only in a
:class:`Settings` value.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

ScenarioName = Literal[
    "load", "hostile", "newcomer", "churn", "slowloris", "backpressure", "violations"
]
"""One scenario; each runs against a fresh server of each library."""

SCENARIOS: Final[tuple[ScenarioName, ...]] = (
    "load",
    "hostile",
    "newcomer",
    "churn",
    "slowloris",
    "backpressure",
    "violations",
)
"""Every scenario, in the order they run and appear in the table."""

HostileKind = Literal["slow_consumer", "garbage", "mid_frame_reset", "slowloris", "bomb"]
"""One kind of hostile client of the ``hostile`` scenario."""

HOSTILE_KINDS: Final[tuple[HostileKind, ...]] = (
    "slow_consumer",
    "garbage",
    "mid_frame_reset",
    "slowloris",
    "bomb",
)
"""The hostile kinds, in table order."""

LIBRARIES: Final = ("trio_wsext", "websockets", "websockets.trio")
"""The servers measured, in column order; the first is the one the ratios are about."""

HOSTILE_SHARE: Final = 0.10
"""Hostile clients per good connection in the ``hostile`` scenario, all kinds together."""

ABORT_SHARE: Final = 0.20
"""Churn cycles that end in a reset instead of a close: half of them right after the
handshake, half in the middle of the request."""


@attrs.frozen
class Settings:
    """Sizes and bounds of one run (the full run's defaults are :data:`FULL`)."""

    connections: int
    """Good connections of the load, hostile and newcomer scenarios."""
    messages: int
    """Messages each good connection sends and checks."""
    window: int
    """Messages a good connection sends ahead of their echoes (so reordering can show)."""
    client_processes: int
    """Processes the good connections and the churn cycles are spread over."""
    ramp: float
    """Seconds over which the good connections are opened (the listen backlog is finite)."""
    hostile_per_kind: int
    """Hostile clients of each kind in the ``hostile`` scenario."""
    hostile_bound: float
    """Seconds a hostile client waits for an answer before it records "none"."""
    newcomer_interval: float
    """Seconds between two newcomers in the ``newcomer`` scenario."""
    churn: int
    """Connect/close cycles of the ``churn`` scenario, over all client processes."""
    churn_concurrency: int
    """Cycles each churn process runs at once."""
    slowloris: int
    """Sockets of the ``slowloris`` scenario."""
    slowloris_bound: float
    """Seconds a slowloris socket of that scenario keeps going before it records "none"."""
    backpressure_bound: float
    """Seconds the backpressure client may send before it stops (it stops earlier on a stall)."""
    violation_bound: float
    """Seconds a client of the ``violations`` scenario waits for the server's close frame."""
    traffic_bound: float
    """Seconds the good connections have to finish before the rest counts as stalled."""
    repeat: int
    """Repetitions; the table shows medians, libraries interleaved per repetition."""

    def hostile_total(self) -> int:
        """Return the number of hostile clients of the ``hostile`` scenario."""
        return self.hostile_per_kind * len(HOSTILE_KINDS)


def hostile_per_kind_for(connections: int) -> int:
    """Return the hostile clients per kind that make :data:`HOSTILE_SHARE` of ``connections``."""
    return max(1, round(connections * HOSTILE_SHARE / len(HOSTILE_KINDS)))


FULL: Final = Settings(
    connections=2_000,
    messages=100,
    window=4,
    client_processes=4,
    ramp=2.0,
    hostile_per_kind=hostile_per_kind_for(2_000),
    hostile_bound=30.0,
    newcomer_interval=2.0,
    churn=20_000,
    churn_concurrency=16,
    slowloris=40,
    slowloris_bound=90.0,
    backpressure_bound=30.0,
    violation_bound=5.0,
    traffic_bound=300.0,
    repeat=1,
)
"""The full run: ``python -m benchmarks.load`` and ``nox -s load``."""

QUICK: Final = attrs.evolve(
    FULL,
    connections=200,
    messages=20,
    client_processes=2,
    ramp=0.5,
    hostile_per_kind=4,
    hostile_bound=15.0,
    churn=1_000,
    slowloris=10,
    slowloris_bound=20.0,
    backpressure_bound=10.0,
    traffic_bound=60.0,
)
"""``--quick``: every scenario, small, in about two minutes for three libraries."""

SMALL: Final = attrs.evolve(
    QUICK,
    connections=100,
    messages=10,
    hostile_per_kind=10,
    hostile_bound=14.0,
    churn=200,
    churn_concurrency=8,
    slowloris=5,
    slowloris_bound=14.0,
    backpressure_bound=8.0,
)
"""The version tests/test_load.py runs: a bound of 14 s still sees the 10 s
handshake timeout of every server measured."""
