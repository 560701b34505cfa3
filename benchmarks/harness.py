"""Run every case for every library, interleaved, and collect the results.

Strategy: the machine drifts (thermal state, other tenants, caches), so
no library gets its runs in one block. Each repetition runs every case,
and within a case every library in turn, the order rotated by one library
per repetition; the table shows medians. Servers live for the whole run,
one process per (library, compression), except for the idle-connection
case, which starts a fresh server per run so that its RSS is not that of a
heap grown by earlier cases. Before and after each run the harness reads the
server's CPU time from /proc (in the JSON). Nothing here asserts a time.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from benchmarks import adapters, ceilings
from benchmarks.adapters.base import Adapter
from benchmarks.cases import Case, Metric, Settings
from benchmarks.processes import Client, Server, WorkerError
from benchmarks.procfs import cpu_seconds

Progress = Callable[[str], None]
"""Where the harness reports what it is doing (stderr, one line per run)."""


@attrs.define
class Run:
    """One run of one case for one library."""

    case: str
    library: str
    rep: int
    result: dict[str, Any] | None = None
    error: str | None = None
    skipped: str | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """Return the run as a JSON-ready dict."""
        return attrs.asdict(self)


@attrs.frozen
class Cell:
    """The median of one metric of one case for one library."""

    median: float | None
    values: list[float]
    note: str | None = None
    """Why there is no figure (n/a, error, same as own) when ``median`` is None."""


def rotated(items: tuple[str, ...], by: int) -> list[str]:
    """Return ``items`` rotated left by ``by`` (so each repetition starts elsewhere)."""
    if not items:
        return []
    k = by % len(items)
    return list(items[k:] + items[:k])


class Harness:
    """Owns the child processes and runs the cases."""

    def __init__(
        self,
        settings: Settings,
        cases: list[Case],
        libraries: tuple[str, ...],
        log_dir: Path,
        progress: Progress,
        *,
        zlib: bool = True,
        pin: bool = True,
    ) -> None:
        """Load the adapters (a library that fails to import is reported missing).

        Args:
            settings: Sizes and durations.
            cases: What to run, in order.
            libraries: Which libraries, in column order.
            log_dir: Where the children's stderr logs go.
            progress: Called with one line per run.
            zlib: Also measure the zlib ceilings.
            pin: Pin servers and clients to CPUs as each case says (:data:`PINNING`).
        """
        self.settings = settings
        self.zlib_wanted = zlib
        self.pin = pin
        self.cases = cases
        self.log_dir = log_dir
        self.progress = progress
        self.runs: list[Run] = []
        self.zlib: list[dict[str, Any]] = []
        self.adapters: dict[str, Adapter] = {}
        self.unavailable: dict[str, str] = {}
        wanted = list(libraries)
        if any(c.ceilings for c in cases):
            wanted += adapters.CEILINGS
        if any(c.client == "common" for c in cases) and adapters.COMMON_CLIENT not in wanted:
            wanted.append(adapters.COMMON_CLIENT)
        for name in wanted:
            try:
                self.adapters[name] = adapters.load(name)
            except Exception as exc:
                self.unavailable[name] = f"{type(exc).__name__}: {exc}"
        self.libraries = tuple(name for name in libraries if name in self.adapters)
        self._servers: dict[tuple[str, bool], Server] = {}
        self._clients: dict[tuple[str, int], Client] = {}

    # -- processes -------------------------------------------------------------------------

    def _server(self, library: str, compression: bool) -> Server:
        """Return the long-lived server of ``library`` (started on first use)."""
        key = (library, compression)
        server = self._servers.get(key)
        if server is None or not server.alive():
            server = Server(library, compression, self.log_dir)
            self._servers[key] = server
        return server

    def _client(self, library: str, slot: int = 0) -> Client:
        """Return the long-lived client worker ``slot`` of ``library`` (started on first use)."""
        key = (library, slot)
        client = self._clients.get(key)
        if client is None or not client.alive():
            client = Client(library, self.log_dir)
            self._clients[key] = client
        return client

    def _discard(self, *workers: Server | Client) -> None:
        """Stop workers that failed, so the next run starts fresh ones."""
        for worker in workers:
            worker.stop()
        self._servers = {k: v for k, v in self._servers.items() if v not in workers}
        self._clients = {k: v for k, v in self._clients.items() if v not in workers}

    def close(self) -> None:
        """Stop every child process."""
        for worker in [*self._servers.values(), *self._clients.values()]:
            worker.stop()
        self._servers.clear()
        self._clients.clear()

    # -- running -----------------------------------------------------------------------------

    def compression_for(self, case: Case, library: str) -> bool:
        """Return whether ``library`` compresses in ``case``."""
        if case.compression == "default":
            return self.adapters[library].default_compression
        return case.compression == "on"

    def libraries_for(self, case: Case) -> tuple[str, ...]:
        """Return the libraries ``case`` runs, ceilings included where it has them."""
        if case.ceilings:
            return self.libraries + tuple(c for c in adapters.CEILINGS if c in self.adapters)
        return self.libraries

    def skip_reason(self, case: Case, library: str) -> str | None:
        """Return why ``library`` does not run ``case``, or None if it does."""
        adapter = self.adapters[library]
        if self.compression_for(case, library) and not adapter.compression:
            return "n/a"
        if case.client == "common":
            common = self.adapters.get(adapters.COMMON_CLIENT)
            if common is None:
                return f"{adapters.COMMON_CLIENT} missing"
            if library == adapters.COMMON_CLIENT:
                return "= own"
            if self.compression_for(case, library) and not common.compression:
                return "n/a"
        return None

    def run_all(self) -> None:
        """Run every case ``repeat`` times, interleaving the libraries."""
        for rep in range(self.settings.repeat):
            if self.zlib_wanted:
                self.progress(f"[{rep + 1}/{self.settings.repeat}] zlib ceilings")
                for entry in ceilings.measure_all(self.settings.zlib_duration):
                    self.zlib.append(entry | {"rep": rep})
            for case in self.cases:
                if rep >= (case.runs or self.settings.repeat):
                    continue
                for library in rotated(self.libraries_for(case), rep):
                    self.runs.append(self.run_one(case, library, rep))

    def run_one(self, case: Case, library: str, rep: int) -> Run:
        """Run ``case`` once for ``library`` and return the :class:`Run`."""
        run = Run(case=case.key, library=library, rep=rep)
        run.skipped = self.skip_reason(case, library)
        if run.skipped is not None:
            return run
        start = time.monotonic()
        try:
            if case.workload == "latency_probe":
                run.result = self._run_latency(case, library)
            else:
                run.result = self._run_simple(case, library)
        except WorkerError as exc:
            run.error = str(exc)
        run.seconds = time.monotonic() - start
        self.progress(_describe(case, run))
        return run

    def _run_simple(self, case: Case, library: str) -> dict[str, Any]:
        """Run a one-client case: server, client, /proc figures around the command."""
        compression = self.compression_for(case, library)
        client_library = library if case.client == "own" else adapters.COMMON_CLIENT
        if case.fresh_server:
            server = Server(library, compression, self.log_dir)
        else:
            server = self._server(library, compression)
        client = self._client(client_library)
        params = case.params | {"url": server.url, "compression": compression}
        if case.fresh_server:
            params["server_pid"] = server.pid
        try:
            self._place(case, server, client)
            with self._server_usage(server) as result:
                result.update(client.run(case.workload, params, case.timeout))
        except WorkerError:
            self._discard(server, client)
            raise
        finally:
            if case.fresh_server:
                server.stop()
        return result

    def _run_latency(self, case: Case, library: str) -> dict[str, Any]:
        """Run the latency case: a bulk client and a probe client, both ``library``'s own."""
        server = self._server(library, True)
        bulk = self._client(library, slot=1)
        probe = self._client(library)
        try:
            self._place(case, server, bulk, probe)
            bulk.run("latency_prepare", {}, case.timeout)
            with self._server_usage(server) as result:
                bulk.start(
                    "latency_bulk", {"url": server.url, "duration": self.settings.bulk_duration}
                )
                result.update(
                    probe.run(case.workload, case.params | {"url": server.url}, case.timeout)
                )
                result["bulk"] = bulk.read(case.timeout)
        except WorkerError:
            self._discard(server, bulk, probe)
            raise
        return result

    def _place(self, case: Case, server: Server, *clients: Client) -> None:
        """Pin ``server`` and ``clients`` to CPUs as ``case.pin`` says, or free them.

        Raises:
            WorkerError: If a process is gone.
        """
        cpus = sorted(os.sched_getaffinity(0))
        server_cpus = client_cpus = set(cpus)
        if self.pin and len(cpus) >= 2 and case.pin == "same":
            server_cpus = client_cpus = {cpus[-1]}
        elif self.pin and len(cpus) >= 2 and case.pin == "split":
            server_cpus, client_cpus = {cpus[-2]}, {cpus[-1]}
        try:
            set_affinity(server.pid, server_cpus)
            for client in clients:
                set_affinity(client.pid, client_cpus)
        except ProcessLookupError as exc:
            raise WorkerError(f"a worker exited before the run: {exc}") from exc

    @contextlib.contextmanager
    def _server_usage(self, server: Server) -> Iterator[dict[str, Any]]:
        """Yield a dict for the result; add the server's CPU seconds to it."""
        result: dict[str, Any] = {}
        try:
            before = cpu_seconds(server.pid)
            yield result
            result["server_cpu_seconds"] = cpu_seconds(server.pid) - before
        except ProcessLookupError as exc:
            raise WorkerError(f"{server.name}: exited\n{server.log_tail()}") from exc

    # -- summary -----------------------------------------------------------------------------

    def cell(self, case: Case, metric: Metric, library: str) -> Cell:
        """Return the median of ``metric`` over ``library``'s runs of ``case``."""
        runs = [r for r in self.runs if r.case == case.key and r.library == library]
        values = [
            float(r.result[metric.key]) * metric.scale
            for r in runs
            if r.result is not None and metric.key in r.result
        ]
        if values:
            return Cell(statistics.median(values), values)
        if library in self.unavailable:
            return Cell(None, [], "missing")
        for run in runs:
            if run.skipped:
                return Cell(None, [], run.skipped)
        if any(r.error for r in runs):
            return Cell(None, [], "error")
        return Cell(None, [], "-")

    def _by_rep(self, case: Case, metric: Metric, library: str) -> dict[int, float]:
        """Return ``library``'s figures for ``metric`` in ``case``, by repetition."""
        return {
            r.rep: float(r.result[metric.key]) * metric.scale
            for r in self.runs
            if r.case == case.key
            and r.library == library
            and r.result is not None
            and metric.key in r.result
        }

    def ratio(self, case: Case, metric: Metric, library: str) -> float | None:
        """Return the subject's figure over ``library``'s, paired by repetition.

        Each repetition gives one ratio of two runs made minutes apart at most; the
        median of those ratios cancels the machine's drift better than the ratio of
        the two medians, which may come from different repetitions. None if no
        repetition has both figures.
        """
        subject = self._by_rep(case, metric, adapters.SUBJECT)
        peer = self._by_rep(case, metric, library)
        ratios = [subject[rep] / peer[rep] for rep in subject.keys() & peer.keys() if peer[rep]]
        return statistics.median(ratios) if ratios else None

    def summary(self) -> list[dict[str, Any]]:
        """Return one JSON-ready entry per (case, metric, library) with medians and ratios."""
        entries = []
        for case in self.cases:
            for metric in case.metrics:
                for library in self.libraries_for(case):
                    cell = self.cell(case, metric, library)
                    ratio = None
                    if library != adapters.SUBJECT:
                        ratio = self.ratio(case, metric, library)
                    entries.append({
                        "case": case.key, "metric": metric.key, "label": metric.label,
                        "unit": metric.unit, "better": metric.better, "library": library,
                        "compression": self.compression_for(case, library),
                        "median": cell.median, "values": cell.values, "note": cell.note,
                        "subject_ratio": ratio,
                    })  # fmt: skip
        return entries

    def zlib_summary(self) -> list[dict[str, Any]]:
        """Return the median zlib figures per (backend, size)."""
        keys = sorted({(e["backend"], e["size"], e["label"]) for e in self.zlib})
        summary = []
        for backend, size, label in keys:
            entries = [e for e in self.zlib if e["backend"] == backend and e["size"] == size]
            summary.append({
                "backend": backend, "size": size, "label": label,
                **{k: statistics.median(e[k] for e in entries)
                   for k in ("compress", "decompress", "ratio")},
            })  # fmt: skip
        return summary


def set_affinity(pid: int, cpus: set[int]) -> None:
    """Restrict every thread of process ``pid`` (and threads they start) to ``cpus``.

    Raises:
        ProcessLookupError: If the process is gone.
    """
    try:
        threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError as exc:
        raise ProcessLookupError(pid) from exc
    for tid in threads:
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cpus)


def _describe(case: Case, run: Run) -> str:
    """Return one progress line for ``run``."""
    head = f"[{run.rep + 1}] {case.key:<28} {run.library:<16}"
    if run.error is not None or run.result is None:
        return f"{head} ERROR {(run.error or 'no result').splitlines()[0]}"
    figures = ", ".join(
        f"{metric.label} {run.result[metric.key] * metric.scale:,.{metric.digits}f} {metric.unit}"
        for metric in case.metrics
        if metric.key in run.result
    )
    return f"{head} {figures}  ({run.seconds:.1f} s)"


def log(message: str) -> None:
    """Write a progress line to stderr."""
    print(message, file=sys.stderr, flush=True)
