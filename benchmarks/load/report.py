"""The load report: a header, one row per figure and one column per library, and the JSON.

A number is the median over the repetitions; ``n/N`` is how many of N (the
medians of both); an outcome list such as ``http 400x40`` counts what the
clients got, summed over the repetitions. The ratio columns divide
trio_wsext's figure by the other library's, per repetition, and show the
median of those ratios, for rates, times and memory only.
"""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Sequence
from typing import Any, Final, Literal

import attrs

from benchmarks import report as bench_report
from benchmarks.load import figures, monitor, violations
from benchmarks.load.scenarios import Run
from benchmarks.load.settings import HOSTILE_KINDS, LIBRARIES, ScenarioName, Settings

SUBJECT: Final = LIBRARIES[0]
"""The library the ratio columns are about."""

Style = Literal["number", "fraction", "counts", "verdict"]
"""How a row's cells read: a median, ``n/N``, ``outcomexcount`` pairs, or a close
code with ``✓`` when it is the expected one (else ``eof``, ``rst``, ``none``)."""


@attrs.frozen
class Row:
    """One figure of one scenario: a row of the table."""

    scenario: ScenarioName
    key: str
    label: str
    unit: str = ""
    digits: int = 0
    style: Style = "number"
    total: str | None = None
    """For ``fraction`` rows, the key of N; for ``verdict`` rows, of the expected code."""
    ratio: bool = False
    """Whether trio_wsext / other is shown (rates, times, memory)."""


def _good_rows(scenario: ScenarioName) -> list[Row]:
    """Return the good clients' rows, shared by the scenarios that run the traffic."""
    return [
        Row(scenario, "opened", "good connections opened", total="connections", style="fraction"),
        Row(scenario, "connect_errors", "  TCP connect failed (client side)", style="counts"),
        Row(scenario, "handshake_failures", "  handshake failed", style="counts"),
        Row(scenario, "dropped", "  dropped by the server before the end", style="counts"),
        Row(scenario, "echoed", "messages echoed intact", total="sent", style="fraction"),
        Row(scenario, "lost", "  lost (connection ended by the server)", "msgs"),
        Row(scenario, "duplicated", "  duplicated", "msgs"),
        Row(scenario, "reordered", "  reordered", "msgs"),
        Row(scenario, "corrupted", "  corrupted", "msgs"),
        Row(scenario, "stalled", "  stalled (no echo by the client's bound)", "msgs"),
        Row(scenario, "msg_per_s", "echo rate", "msg/s", ratio=True),
        Row(scenario, "handshake_p50_ms", "handshake (connect to 101), median", "ms", ratio=True),
        Row(scenario, "handshake_max_ms", "handshake, slowest", "ms", ratio=True),
        Row(scenario, "rss_growth_mib", "server peak RSS growth", "MiB", 1, ratio=True),
    ]


def _hostile_rows() -> list[Row]:
    """Return one group of rows per hostile kind."""
    rows = []
    for kind in HOSTILE_KINDS:
        name = kind.replace("_", " ")
        if kind == "mid_frame_reset":  # it resets: there is nothing to answer
            rows.append(Row("hostile", f"{kind}.how", f"{name}: what it did", style="counts"))
            continue
        rows += [
            Row("hostile", f"{kind}.answered", f"{name}: answered", total=f"{kind}.total",
                style="fraction"),
            Row("hostile", f"{kind}.median_s", f"  {name}: time to answer, median", "s", 2,
                ratio=True),
            Row("hostile", f"{kind}.how", f"  {name}: what it got", style="counts"),
        ]  # fmt: skip
    rows.append(
        Row("hostile", "slow_consumer.sent_mib", "  slow consumer: sent, median", "MiB", 1)
    )
    return rows


def _violation_rows() -> list[Row]:
    """Return the exact-code count, then one row per violation."""
    rows = [
        Row("violations", "violations.exact", "answered with the exact code",
            total="violations.total", style="fraction"),
    ]  # fmt: skip
    for i, violation in enumerate(violations.VIOLATIONS, 1):
        key = f"violations.{violation.name}"
        label = f"  {i:2}. {violation.label} -> {violation.expected}"
        rows.append(Row("violations", f"{key}.how", label, style="verdict",
                        total=f"{key}.expected"))  # fmt: skip
    return rows


ROWS: Final[tuple[Row, ...]] = (
    *_good_rows("load"),
    Row("load", "server_cpu_percent", "server CPU (one core = 100)", "%"),
    Row("load", "client_cpu_percent", "clients' CPU, all processes", "%"),
    Row("load", "server_us_per_echo", "server CPU per echo", "us", ratio=True),
    Row("load", "client_us_per_echo", "clients' CPU per echo (all processes)", "us"),
    Row("load", "backlog", "listen backlog (ss)"),
    Row("load", "listen_overflows", "listen queue overflows (kernel, system-wide)"),
    Row("load", "fds_extra", "server fds over baseline 5 s after"),
    *_good_rows("hostile"),
    *_hostile_rows(),
    Row("hostile", "fds_extra", "server fds over baseline 5 s after"),
    Row("newcomer", "newcomer.ok", "newcomers answered", total="newcomer.total", style="fraction"),
    Row("newcomer", "newcomer.median_ms", "  handshake + one echo, median", "ms", ratio=True),
    Row("newcomer", "newcomer.max_ms", "  handshake + one echo, slowest", "ms", ratio=True),
    Row("newcomer", "newcomer.how", "  failures", style="counts"),
    Row("newcomer", "errors", "good clients' lost+dup+reordered+corrupted", "msgs"),
    Row("newcomer", "msg_per_s", "echo rate meanwhile", "msg/s", ratio=True),
    Row("churn", "churn.done", "cycles done", total="churn.cycles", style="fraction"),
    Row("churn", "churn.per_s", "cycle rate", "cycles/s", ratio=True),
    Row("churn", "churn.failed", "  failed cycles", ""),
    Row("churn", "churn.how", "  how they failed", style="counts"),
    Row("churn", "churn.client_cpu_percent", "clients' CPU, all processes", "%"),
    Row("churn", "fds_extra", "server fds over baseline 5 s after"),
    Row("churn", "fds_settle_s", "  back to baseline after", "s", 2),
    Row("churn", "rss_growth_mib", "server peak RSS growth", "MiB", 1, ratio=True),
    Row("slowloris", "slowloris.answered", "dropped by the server", total="slowloris.total",
        style="fraction"),
    Row("slowloris", "slowloris.median_s", "  time to drop, median", "s", 1, ratio=True),
    Row("slowloris", "slowloris.max_s", "  time to drop, longest", "s", 1, ratio=True),
    Row("slowloris", "slowloris.how", "  how", style="counts"),
    Row("slowloris", "fds_extra", "server fds over baseline 5 s after"),
    Row("backpressure", "backpressure.how", "what stopped the client", style="counts"),
    Row("backpressure", "backpressure.sent_mib", "bytes the client got sent", "MiB", 1,
        ratio=True),
    Row("backpressure", "backpressure.held_mib", "  of which held by the server process",
        "MiB", 2, ratio=True),
    Row("backpressure", "backpressure.kernel_mib", "  of which in the kernel's socket queues",
        "MiB", 1),
    Row("backpressure", "rss_growth_mib", "server peak RSS growth", "MiB", 1, ratio=True),
    *_violation_rows(),
)  # fmt: skip
"""Every row of the table, in order."""

TITLES: Final[dict[ScenarioName, str]] = {
    "load": "1. load: {connections:,} compressed connections x {messages} messages",
    "hostile": "2. load + hostile: the same, plus {hostile_per_kind} hostile clients of each kind",
    "newcomer": "3. newcomer every {newcomer_interval:g} s during the load",
    "churn": "4. churn: {churn:,} connect/close cycles, 20 % reset",
    "slowloris": "5. slowloris alone: {slowloris} sockets, one header byte a second",
    "backpressure": "6. backpressure: one client sends and never reads",
    "violations": "7. violations: one connection per protocol violation, close code within "
    "{violation_bound:g} s",
}
"""The group title above each scenario's rows."""


def _values(runs: Sequence[Run], row: Row, library: str, key: str) -> dict[int, Any]:
    """Return ``key``'s figure of ``library`` in ``row``'s scenario, by repetition."""
    return {
        run.rep: run.figures.get(key)
        for run in runs
        if run.scenario == row.scenario and run.library == library and run.figures is not None
    }


def _number(value: float, digits: int) -> str:
    """Format ``value`` with thousands separators and ``digits`` decimals."""
    return f"{value:,.{digits}f}"


def cell(runs: Sequence[Run], row: Row, library: str) -> str:
    """Return the text of one cell (``error`` or ``-`` when there is no figure)."""
    values = _values(runs, row, library, row.key)
    if not values:
        failed = any(r.error for r in runs if r.scenario == row.scenario and r.library == library)
        return "error" if failed else "-"
    if row.style == "verdict":
        return _verdict(values, _values(runs, row, library, row.total or ""))
    if row.style == "counts":
        merged = figures.merge_counts(v for v in values.values() if isinstance(v, dict))
        return ", ".join(f"{k} x{n}" for k, n in merged.items()) or "0"
    numbers = [float(v) for v in values.values() if isinstance(v, (int, float))]
    if not numbers:
        return "-"
    text = _number(statistics.median(numbers), row.digits)
    if row.style == "fraction" and row.total is not None:
        totals = [
            float(v) for v in _values(runs, row, library, row.total).values() if v is not None
        ]
        text += "/" + (_number(statistics.median(totals), 0) if totals else "?")
    return text


def _verdict(hows: dict[int, Any], expected: dict[int, Any]) -> str:
    """Return each repetition's answer (``1002 ✓``, ``1009``, ``eof``), distinct ones joined."""
    texts: list[str] = []
    for rep, how in sorted(hows.items()):
        text = str(how).removeprefix("close ")
        if violations.exact(str(how), expected.get(rep, -1)):
            text += " ✓"
        if text not in texts:
            texts.append(text)
    return " / ".join(texts)


def ratio(runs: Sequence[Run], row: Row, library: str) -> float | None:
    """Return the median over repetitions of trio_wsext's figure over ``library``'s."""
    if not row.ratio:
        return None
    subject = _values(runs, row, SUBJECT, row.key)
    peer = _values(runs, row, library, row.key)
    pairs = [
        subject[rep] / peer[rep]
        for rep in subject.keys() & peer.keys()
        if isinstance(subject[rep], (int, float)) and isinstance(peer[rep], (int, float))
        and peer[rep] > 0 and subject[rep] > 0
    ]  # fmt: skip
    return statistics.median(pairs) if pairs else None


def table_lines(
    runs: Sequence[Run],
    settings: Settings,
    libraries: Sequence[str],
    scenarios: Sequence[ScenarioName],
) -> list[str]:
    """Return the table: a title per scenario, then its rows."""
    peers = [lib for lib in libraries if lib != SUBJECT] if SUBJECT in libraries else []
    head = ["figure", "unit", *libraries, *(f"{SUBJECT}/{peer}" for peer in peers)]
    rows: list[list[str] | str] = [head]
    for scenario in scenarios:
        rows.append(TITLES[scenario].format(**attrs.asdict(settings)))
        for row in (r for r in ROWS if r.scenario == scenario):
            ratios = [ratio(runs, row, peer) for peer in peers]
            rows.append([
                row.label, row.unit, *(cell(runs, row, lib) for lib in libraries),
                *("" if r is None else f"{r:.2f}x" for r in ratios),
            ])  # fmt: skip
    return _align(rows)


def _align(rows: list[list[str] | str]) -> list[str]:
    """Align the table's columns: text left, figures right; titles span the row."""
    cells = [row for row in rows if isinstance(row, list)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for row in rows:
        if isinstance(row, str):
            lines.append(row)
            continue
        lines.append(
            "  ".join(
                text.ljust(width) if i < 2 else text.rjust(width)
                for i, (text, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    return lines


def meta(settings: Settings, libraries: Sequence[str], quick: bool) -> dict[str, Any]:
    """Return the header as a JSON-ready dict: date, commit, machine, versions, settings."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": bench_report.revision(),
        "machine": bench_report.machine(),
        "versions": bench_report.versions(list(libraries)),
        "somaxconn": monitor.somaxconn(),
        "quick": quick,
        "settings": attrs.asdict(settings),
        "libraries": list(libraries),
    }


def header_lines(info: dict[str, Any]) -> list[str]:
    """Return the lines printed above the table."""
    m, s = info["machine"], info["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return [
        f"trio_wsext load and fault harness, {info['date']}, commit {info['revision']}"
        + (" (--quick)" if info["quick"] else ""),
        f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, {m['platform']}, "
        f"{m['python']}; net.core.somaxconn {info['somaxconn']}",
        f"versions: {versions}",
        "servers: the benchmarks' echo servers (python -m benchmarks.worker server LIB "
        "--compression on), one fresh process per scenario; message limit 64 MiB",
        f"clients: raw-socket asyncio processes; {s['client_processes']} for the good "
        f"connections and the churn, {s['window']} messages in flight per connection, "
        f"connects spread over {s['ramp']:g} s; hostile bound {s['hostile_bound']:g} s",
        f"runs: median of {s['repeat']}, libraries interleaved; "
        f"(N.NNx) = {SUBJECT} / that library, median of the per-repetition ratios",
    ]


def note_lines(runs: Sequence[Run]) -> list[str]:
    """Return a line per failed run, and per run whose server died."""
    notes = [
        f"error: {r.scenario} {r.library}: {r.error.splitlines()[0]}" for r in runs if r.error
    ]
    notes += [
        f"server died: {r.scenario} {r.library}"
        for r in runs
        if r.figures is not None and r.figures.get("server_alive") is False
    ]
    return notes


def document(runs: Sequence[Run], info: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON document: the header, and every run with all its figures."""
    return {"meta": info, "runs": [attrs.asdict(run) for run in runs]}
