"""The report: a header (date, commit, machine, versions), the table, and the JSON document."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import zlib
from collections.abc import Sequence
from importlib import metadata
from typing import Any, Final

import attrs

from benchmarks import adapters, ceilings
from benchmarks.cases import Case, Metric, Settings
from benchmarks.harness import Harness
from benchmarks.processes import ROOT

COMPRESSED_MARK: Final = "z"
"""Appended to a figure of a "default" row when that library compressed (its default)."""


def _read_first(path: str, prefix: str) -> str | None:
    """Return the value of the first ``prefix: value`` line of ``path``, if any."""
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine() -> dict[str, Any]:
    """Return what the figures depend on: CPU, cores, memory, OS, Python."""
    memory = _read_first("/proc/meminfo", "MemTotal")
    return {
        "cpu": _read_first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cpus": os.cpu_count(),
        "memory_gib": round(int(memory.split()[0]) / 2**20, 1) if memory else None,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def versions(names: Sequence[str]) -> dict[str, str]:
    """Return the installed version of each library's distribution, trio and zlib."""
    found: dict[str, str] = {}
    for name in names:
        try:
            adapter = adapters.load(name)
        except Exception:
            found[name] = "missing"
            continue
        if adapter.distribution:
            try:
                found[adapter.distribution] = metadata.version(adapter.distribution)
            except metadata.PackageNotFoundError:
                found[adapter.distribution] = "missing"
    found["trio"] = metadata.version("trio")
    found["zlib"] = zlib.ZLIB_RUNTIME_VERSION
    if "zlib-ng" in ceilings.backends():
        found["zlib-ng"] = metadata.version("zlib-ng")
    return found


def revision() -> str:
    """Return the git commit of the tree measured, marked when trio_wsext has local changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "trio_wsext"],
            cwd=ROOT, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + (" + uncommitted changes to trio_wsext" if dirty else "")


def meta(settings: Settings, quick: bool, libraries: Sequence[str]) -> dict[str, Any]:
    """Return the header of the report as a JSON-ready dict."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": revision(),
        "machine": machine(),
        "versions": versions([*libraries, adapters.COMMON_CLIENT, *adapters.CEILINGS]),
        "quick": quick,
        "settings": attrs.asdict(settings),
        "libraries": list(libraries),
        "subject": adapters.SUBJECT,
        "common_client": adapters.COMMON_CLIENT,
    }


def header_lines(info: dict[str, Any]) -> list[str]:
    """Return the header printed above the table."""
    m = info["machine"]
    s = info["settings"]
    versions_text = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return [
        f"trio_wsext benchmarks, {info['date']}, commit {info['revision']}"
        + (" (--quick)" if info["quick"] else ""),
        f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, {m['platform']}, "
        f"{m['python']}",
        f"versions: {versions_text}",
        f"runs: median of {s['repeat']}, libraries interleaved; lockstep "
        f"{s['lockstep_duration']} s, pipelined {s['pipelined_count']:,} messages, "
        f"large messages {s['throughput_duration']} s, idle {s['idle_connections']:,} "
        f"connections, latency probe {s['probe_duration']} s",
        f"client: own = each library's client against its own server; common = "
        f"{info['common_client']}'s client against every server",
        "placement: "
        + (
            "lockstep: server and client on one CPU; pipelined, large messages: one CPU "
            "each; idle, latency: the OS's choice"
            if info.get("pinned", True)
            else "the OS's choice (--no-pin)"
        ),
        f"(N.NNx) = {info['subject']} / that library, median of the per-repetition ratios; "
        f"higher is better for rates, lower for ms, KiB and ratios; {COMPRESSED_MARK} = "
        "compressed (that library's default)",
    ]


def _figure(value: float, digits: int) -> str:
    """Format ``value`` with thousands separators and ``digits`` decimals."""
    return f"{value:,.{digits}f}"


def table_lines(harness: Harness) -> list[str]:
    """Return the main table: one row per (case, metric), one column per library."""
    libraries = list(harness.libraries)
    rows: list[list[str]] = [["workload", "client", "deflate", "unit", *libraries]]
    for case in harness.cases:
        for metric in case.metrics:
            title = case.title if metric is case.metrics[0] else f"  {metric.label}"
            row = [title, case.client, case.compression, metric.unit]
            for library in libraries:
                row.append(_cell_text(harness, case, metric, library))
            rows.append(row)
    return _align(rows, left=4)


def _cell_text(harness: Harness, case: Case, metric: Metric, library: str) -> str:
    """Return one cell: the median, the compressed mark, and the subject's ratio to it."""
    cell = harness.cell(case, metric, library)
    if cell.median is None:
        return cell.note or "-"
    text = _figure(cell.median, metric.digits)
    if case.compression == "default" and harness.compression_for(case, library):
        text += COMPRESSED_MARK
    ratio = harness.ratio(case, metric, library) if library != adapters.SUBJECT else None
    if ratio is not None:
        text += f" ({ratio:.2f}x)"
    return text


def ceiling_lines(harness: Harness) -> list[str]:
    """Return the ceilings table: plain TCP echoes and zlib alone."""
    rows: list[list[str]] = [["ceiling", "figure", "unit", f"{adapters.SUBJECT} / ceiling"]]
    lockstep = next((c for c in harness.cases if c.ceilings), None)
    if lockstep is not None:
        metric = lockstep.metrics[0]
        for name in adapters.CEILINGS:
            cell = harness.cell(lockstep, metric, name)
            if cell.median is None:
                rows.append([f"plain TCP echo, {name}", cell.note or "-", "rt/s", ""])
                continue
            paired = harness.ratio(lockstep, metric, name)
            ratio = f"{paired:.2f}x" if paired is not None else "-"
            rows.append([f"{name} echo, lockstep 64 B", _figure(cell.median, 0), "rt/s", ratio])
    for entry in harness.zlib_summary():
        name = f"{entry['backend']} {entry['label']}"
        rows.append([f"{name} compress", _figure(entry["compress"], 1), "MB/s", ""])
        rows.append([f"{name} decompress", _figure(entry["decompress"], 1), "MB/s", ""])
        rows.append([f"{name} compressed/raw", f"{entry['ratio']:.3f}", "ratio", ""])
    return _align(rows, left=1) if len(rows) > 1 else []


def note_lines(harness: Harness) -> list[str]:
    """Return footnotes: adapters' notes, missing libraries, errors (first line each)."""
    notes = [f"note: {a.note}" for a in harness.adapters.values() if a.note]
    notes += [f"missing: {name}: {why}" for name, why in harness.unavailable.items()]
    seen: set[tuple[str, str]] = set()
    for run in harness.runs:
        if run.error and (run.case, run.library) not in seen:
            seen.add((run.case, run.library))
            notes.append(f"error: {run.case} {run.library}: {run.error.splitlines()[0]}")
    return notes


def _align(rows: list[list[str]], left: int) -> list[str]:
    """Left-align the first ``left`` columns and right-align the others, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            text.ljust(width) if i < left else text.rjust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def document(harness: Harness, info: dict[str, Any]) -> dict[str, Any]:
    """Return the whole JSON document: header, summary, every run, zlib figures."""
    return {
        "meta": info,
        "cases": [attrs.asdict(case) for case in harness.cases],
        "summary": harness.summary(),
        "zlib": harness.zlib_summary(),
        "unavailable": harness.unavailable,
        "runs": [run.as_json() for run in harness.runs],
        "zlib_runs": harness.zlib,
    }
