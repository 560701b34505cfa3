"""``python -m benchmarks.load``: each library's echo server under load and attack, side by side.

Prints the header and the table on stdout, progress on stderr, and writes
the JSON document to ``benchmarks/results/load-<UTC date and time>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TypeVar

import attrs

from benchmarks.harness import rotated
from benchmarks.load import report
from benchmarks.load.agent import raise_fd_limit
from benchmarks.load.scenarios import Context, Run, run_one
from benchmarks.load.settings import (
    FULL,
    LIBRARIES,
    QUICK,
    SCENARIOS,
    ScenarioName,
    Settings,
    hostile_per_kind_for,
)

RESULTS: Final = Path(__file__).resolve().parent.parent / "results"
"""Where each run's JSON goes (git-ignored)."""

T = TypeVar("T", bound=str)


def _names(text: str, allowed: tuple[T, ...], what: str) -> tuple[T, ...]:
    """Parse a comma-separated list, keeping ``allowed``'s order; reject unknown names."""
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(names - set(allowed))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})"
        )
    return tuple(name for name in allowed if name in names)


def _positive(text: str) -> int:
    """Parse a positive int."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load",
        description=(
            "Load and attack the echo servers of trio_wsext, websockets and websockets.trio "
            "(compression on, 127.0.0.1), one fresh server per scenario, side by side."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="a small version (1-2 minutes)")
    parser.add_argument(
        "--connections",
        type=_positive,
        metavar="N",
        help=f"good connections (default {FULL.connections:,})",
    )
    parser.add_argument(
        "--messages",
        type=_positive,
        metavar="M",
        help=f"messages per connection (default {FULL.messages})",
    )
    parser.add_argument(
        "--churn",
        type=_positive,
        metavar="C",
        help=f"connect/close cycles (default {FULL.churn:,})",
    )
    parser.add_argument("--repeat", type=_positive, metavar="R", help="repetitions (default 1)")
    parser.add_argument(
        "--libraries",
        type=lambda text: _names(text, LIBRARIES, "library"),
        default=LIBRARIES,
        metavar="A,B",
        help=f"servers to measure (default: {','.join(LIBRARIES)})",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda text: _names(text, SCENARIOS, "scenario"),
        default=SCENARIOS,
        metavar="A,B",
        help=f"scenarios to run (default: {','.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="JSON file (default: benchmarks/results/load-*.json)",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON file")
    return parser.parse_args(argv)  # fmt: skip


def settings_from(args: argparse.Namespace) -> Settings:
    """Return the settings: ``--quick`` or the full run's, with the options given applied."""
    settings = QUICK if args.quick else FULL
    changes: dict[str, int] = {}
    for name in ("connections", "messages", "churn", "repeat"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if "connections" in changes:
        changes["hostile_per_kind"] = hostile_per_kind_for(changes["connections"])
    return attrs.evolve(settings, **changes)


def run_all(
    ctx: Context,
    libraries: Sequence[str],
    scenarios: Sequence[ScenarioName],
    progress: Callable[[str], None],
) -> list[Run]:
    """Run every scenario against every library, ``repeat`` times, the order rotated per rep."""
    runs: list[Run] = []
    for rep in range(ctx.settings.repeat):
        for scenario in scenarios:
            for library in rotated(tuple(libraries), rep):
                run = run_one(scenario, library, rep, ctx)
                runs.append(run)
                status = run.error.splitlines()[0] if run.error else "ok"
                progress(
                    f"[{rep + 1}/{ctx.settings.repeat}] {scenario:<12} {library:<16} "
                    f"{run.seconds:6.1f} s  {status}"
                )
    return runs


def _log(line: str) -> None:
    """Write a progress line to stderr."""
    print(line, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios, print the table, save the JSON; return 0 (failures are in the table)."""
    args = parse_args(argv)
    settings = settings_from(args)
    raise_fd_limit()
    info = report.meta(settings, args.libraries, args.quick)
    log_dir = Path(tempfile.mkdtemp(prefix="trio_wsext-load-"))
    started = time.monotonic()
    runs: list[Run] = []
    try:
        runs = run_all(Context(settings, log_dir), args.libraries, args.scenarios, _log)
    except KeyboardInterrupt:
        _log("interrupted")
    info["seconds"] = round(time.monotonic() - started, 1)
    lines = [
        *report.header_lines(info),
        "",
        *report.table_lines(runs, settings, args.libraries, args.scenarios),
        "",
        *report.note_lines(runs),
    ]
    if not args.no_save:
        path = args.output or RESULTS / (
            "load-" + datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ") + ".json"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.document(runs, info), indent=1) + "\n")
        lines.append(f"JSON: {path}")
    print("\n".join(lines))
    if any(run.error for run in runs):
        _log(f"logs kept in {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
