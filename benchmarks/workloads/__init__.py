"""Workloads: each one a client-side coroutine that runs under trio or asyncio alike.

Each module has an attrs ``Params`` class (built from the harness's JSON
command) and ``async def run(adapter, runtime, params) -> dict``, whose
result is JSON. :data:`CLIENT_WORKLOADS` maps the command names to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from benchmarks.adapters.base import Adapter
from benchmarks.runtime import Runtime
from benchmarks.workloads import idle, latency, lockstep, pipelined, throughput

P = TypeVar("P")

WorkloadResult = dict[str, Any]
"""What a workload returns: JSON-ready figures."""

Workload = Callable[[Adapter, Runtime, dict[str, Any]], Awaitable[WorkloadResult]]
"""A workload that takes its parameters as the harness's JSON dict."""


def _bind(
    run: Callable[[Adapter, Runtime, P], Awaitable[WorkloadResult]], params: Callable[..., P]
) -> Workload:
    """Return ``run`` taking a JSON dict, which ``params(**dict)`` turns into its Params."""

    async def bound(adapter: Adapter, runtime: Runtime, values: dict[str, Any]) -> WorkloadResult:
        return await run(adapter, runtime, params(**values))

    return bound


CLIENT_WORKLOADS: Final[dict[str, Workload]] = {
    "lockstep": _bind(lockstep.run, lockstep.Params),
    "pipelined": _bind(pipelined.run, pipelined.Params),
    "throughput": _bind(throughput.run, throughput.Params),
    "idle": _bind(idle.run, idle.Params),
    "latency_prepare": _bind(latency.run_prepare, latency.PrepareParams),
    "latency_bulk": _bind(latency.run_bulk, latency.BulkParams),
    "latency_probe": _bind(latency.run_probe, latency.ProbeParams),
}
