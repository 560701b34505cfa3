"""From what the agents answered to the figures of the table: sums, medians, rates.

Pure functions over the agents' JSON, so that the arithmetic can be tested
without a server, and the JSON of a run can be summarized again.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any, Final

from benchmarks.load import attacks, violations

Figures = dict[str, Any]
"""One run's figures: numbers, None, ``{outcome: count}`` dicts, or outcome strings, by key."""

COUNTED: Final = (
    "connections",
    "opened",
    "completed",
    "sent",
    "echoed",
    "lost",
    "duplicated",
    "reordered",
    "corrupted",
    "stalled",
    "stalled_connections",
)
"""The traffic tally's counts, summed over the processes."""

BY_REASON: Final = ("connect_errors", "handshake_failures", "dropped", "close_codes")
"""The traffic tally's ``{reason: count}`` dicts, merged over the processes."""


def merge_counts(dicts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Return the sum of ``{key: count}`` dicts, keys sorted by count, largest first."""
    total: dict[str, int] = {}
    for counts in dicts:
        for key, count in counts.items():
            total[key] = total.get(key, 0) + count
    return dict(sorted(total.items(), key=lambda item: (-item[1], item[0])))


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the ``fraction`` quantile of ``values`` (nearest rank), or None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def median_or_none(values: Sequence[float]) -> float | None:
    """Return the median of ``values``, or None if there are none."""
    return statistics.median(values) if values else None


def traffic(tallies: Sequence[dict[str, Any]], server_cpu: float, wall: float) -> Figures:
    """Return the good clients' figures from every traffic process's tally.

    Args:
        tallies: The traffic agents' results.
        server_cpu: The server's CPU seconds from go until the last traffic agent answered.
        wall: The seconds from go until then: both CPU shares are over this span.
    """
    figures: Figures = {key: sum(t[key] for t in tallies) for key in COUNTED}
    for key in BY_REASON:
        counts = merge_counts(t[key] for t in tallies)
        figures[key] = counts
        figures[f"{key}_total"] = sum(counts.values())
    firsts = [t["first_open"] for t in tallies if t["first_open"] is not None]
    lasts = [t["last_echo"] for t in tallies if t["last_echo"] is not None]
    span = max(lasts) - min(firsts) if firsts and lasts else 0.0
    figures["seconds"] = span
    figures["msg_per_s"] = figures["echoed"] / span if span > 0 else None
    figures["errors"] = sum(figures[k] for k in ("lost", "duplicated", "reordered", "corrupted"))
    handshakes = [ms for t in tallies for ms in t["handshake_ms"]]
    figures["handshake_p50_ms"] = percentile(handshakes, 0.5)
    figures["handshake_p99_ms"] = percentile(handshakes, 0.99)
    figures["handshake_max_ms"] = max(handshakes) if handshakes else None
    client_cpu = sum(t["cpu_seconds"] for t in tallies)
    figures["client_cpu_percent"] = 100 * client_cpu / wall if wall > 0 else None
    figures["server_cpu_percent"] = 100 * server_cpu / wall if wall > 0 else None
    echoed = figures["echoed"]
    figures["server_us_per_echo"] = 1e6 * server_cpu / echoed if echoed else None
    figures["client_us_per_echo"] = 1e6 * client_cpu / echoed if echoed else None
    return figures


def hostile(outcomes: Sequence[dict[str, Any]], kinds: Iterable[str]) -> Figures:
    """Return per kind: clients, how many got an answer, the median and longest wait, how."""
    figures: Figures = {}
    for kind in kinds:
        mine = [o for o in outcomes if o["kind"] == kind]
        times = [
            o["seconds"] for o in mine if attacks.answered(o["how"]) and o["seconds"] is not None
        ]
        figures[f"{kind}.total"] = len(mine)
        figures[f"{kind}.answered"] = sum(attacks.answered(o["how"]) for o in mine)
        figures[f"{kind}.median_s"] = median_or_none(times)
        figures[f"{kind}.max_s"] = max(times) if times else None
        figures[f"{kind}.how"] = merge_counts({o["how"]: 1} for o in mine)
        sent = [o["sent"] for o in mine if o["sent"]]
        figures[f"{kind}.sent_mib"] = statistics.median(sent) / 2**20 if sent else None
    return figures


def newcomers(probes: Sequence[dict[str, Any]]) -> Figures:
    """Return the newcomers' figures: how many got their echo, their latency, failures."""
    times = [p["ms"] for p in probes if p["ok"]]
    return {
        "newcomer.total": len(probes),
        "newcomer.ok": len(times),
        "newcomer.median_ms": median_or_none(times),
        "newcomer.max_ms": max(times) if times else None,
        "newcomer.how": merge_counts({p["how"]: 1} for p in probes if not p["ok"]),
    }


def churn(results: Sequence[dict[str, Any]], cycles: int) -> Figures:
    """Return the churn figures: cycles per second, and how the cycles ended."""
    outcomes = merge_counts(r["outcomes"] for r in results)
    span = max(r["end"] for r in results) - min(r["start"] for r in results) if results else 0
    done = sum(outcomes.values()) - outcomes.get("skipped (client bound)", 0)
    failed = {k: v for k, v in outcomes.items() if k not in ("ok", "aborted")}
    return {
        "churn.cycles": cycles,
        "churn.done": done,
        "churn.per_s": done / span if span > 0 else None,
        "churn.ok": outcomes.get("ok", 0),
        "churn.aborted": outcomes.get("aborted", 0),
        "churn.failed": sum(failed.values()),
        "churn.how": failed,
        "churn.client_cpu_percent": (
            100 * sum(r["cpu_seconds"] for r in results) / span if span > 0 else None
        ),
    }


def backpressure(result: dict[str, Any]) -> Figures:
    """Return where the backpressure client's bytes were when it stalled, in MiB.

    What the server has read from its socket is what the client sent minus
    what is still in the client's send queue and in the server's receive
    queue; what it has written is what sits in its send queue plus what
    reached the client's receive queue. The difference is what the server
    process holds (the echo is as large as the message: random bytes do not
    compress).
    """
    sent = result.get("sent")
    queues = [
        result.get(k)
        for k in ("client_unsent", "server_receive_queue", "server_send_queue", "client_unread")
    ]
    figures: Figures = {
        "backpressure.how": {result.get("how", "?"): 1},
        "backpressure.sent_mib": sent / 2**20 if sent is not None else None,
        "backpressure.seconds": result.get("seconds"),
        "backpressure.held_mib": None,
    }
    if sent is not None and all(isinstance(q, int) for q in queues):
        unsent, server_rx, server_tx, unread = (int(q) for q in queues if q is not None)
        held = (sent - unsent - server_rx) - (server_tx + unread)
        figures["backpressure.held_mib"] = held / 2**20
        figures["backpressure.kernel_mib"] = (unsent + server_rx + server_tx + unread) / 2**20
    return figures


def violations_answered(answers: Sequence[dict[str, Any]]) -> Figures:
    """Return per violation what the server answered, and how many got the exact code.

    ``violations.<name>.how`` is ``close NNNN``, ``eof``, ``rst`` or ``none``;
    ``.expected`` is the code the RFCs require, ``.reason`` the close frame's
    reason and ``.seconds`` how long the answer took.
    """
    by_name = {answer["name"]: answer for answer in answers}
    figures: Figures = {"violations.total": len(violations.VIOLATIONS), "violations.exact": 0}
    for violation in violations.VIOLATIONS:
        answer = by_name.get(violation.name, {"how": "missing", "reason": None, "seconds": None})
        key = f"violations.{violation.name}"
        figures[f"{key}.how"] = answer["how"]
        figures[f"{key}.expected"] = violation.expected
        figures[f"{key}.reason"] = answer["reason"]
        figures[f"{key}.seconds"] = answer["seconds"]
        figures["violations.exact"] += violations.exact(answer["how"], violation.expected)
    return figures
