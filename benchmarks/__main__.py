"""``python -m benchmarks``: trio_wsext side by side with the other Python WebSocket libraries.

Prints the header and the table on stdout (``--json``: the JSON document
instead, the table then going to stderr), progress on stderr, and writes
the JSON document to ``benchmarks/results/<UTC date and time>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import attrs

from benchmarks import adapters, report
from benchmarks.cases import FULL, QUICK, WORKLOAD_GROUPS, ClientKind, Settings, build_cases
from benchmarks.harness import Harness, Run, log

RESULTS: Final = Path(__file__).resolve().parent / "results"
"""Where each run's JSON goes (git-ignored)."""


def _names(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """Parse a comma-separated list, keeping ``allowed``'s order; reject unknown names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})"
        )
    return tuple(name for name in allowed if name in names)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Benchmark trio_wsext against websockets (asyncio and trio), trio-websocket, "
            "aiohttp and picows on 127.0.0.1: each library's client against its own server, "
            "and one common client against every server. Medians of interleaved runs."
        ),
    )
    parser.add_argument(
        "--quick", action="store_true", help="short runs, one repetition (under 2 minutes)"
    )
    parser.add_argument("--repeat", type=int, metavar="N", help="runs of each case (default 3)")
    parser.add_argument(
        "--libraries",
        type=lambda text: _names(text, adapters.LIBRARIES, "library"),
        default=adapters.LIBRARIES,
        metavar="A,B",
        help=f"libraries to run (default: all: {','.join(adapters.LIBRARIES)})",
    )
    parser.add_argument(
        "--workloads",
        type=lambda text: _names(text, WORKLOAD_GROUPS, "workload"),
        default=WORKLOAD_GROUPS,
        metavar="A,B",
        help=f"workloads to run (default: all: {','.join(WORKLOAD_GROUPS)})",
    )
    parser.add_argument(
        "--clients",
        type=lambda text: _names(text, ("own", "common"), "client"),
        default=("own", "common"),
        metavar="own,common",
        help="own client per library, the common client, or both (default)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the JSON document on stdout (table to stderr)"
    )
    parser.add_argument(
        "--output", type=Path, metavar="PATH", help="JSON file (default: benchmarks/results/)"
    )
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON file")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="let the OS place servers and clients (default: lockstep on one CPU, "
        "pipelined and large messages on one CPU each)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="print the table of a saved run again (benchmarks/results/*.json) and exit",
    )
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def render(harness: Harness, info: dict[str, Any]) -> list[str]:
    """Return the printed report: header, table, ceilings, notes."""
    sections = [
        report.header_lines(info),
        report.table_lines(harness) if harness.cases else [],
        report.ceiling_lines(harness),
        report.note_lines(harness),
    ]
    return [line for section in sections if section for line in [*section, ""]]


def reprint(path: Path) -> int:
    """Print the report of a saved JSON document again, with this version's table code."""
    doc = json.loads(path.read_text())
    info = doc["meta"]
    settings = Settings(**info["settings"])
    keys = [case["key"] for case in doc["cases"]]
    cases = [c for c in build_cases(settings, ("own", "common")) if c.key in keys]
    libraries = tuple(info.get("libraries", adapters.LIBRARIES))
    harness = Harness(settings, cases, libraries, Path(tempfile.gettempdir()), log)
    harness.runs = [Run(**run) for run in doc["runs"]]
    harness.zlib = doc["zlib_runs"]
    print("\n".join(render(harness, info)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; return the exit status (0 even if some library failed)."""
    args = parse_args(argv)
    if args.report is not None:
        return reprint(args.report)
    settings = QUICK if args.quick else FULL
    if args.repeat is not None:
        settings = attrs.evolve(settings, repeat=args.repeat)
    clients: tuple[ClientKind, ...] = args.clients
    cases = [c for c in build_cases(settings, clients) if c.group in args.workloads]
    info = report.meta(settings, args.quick, args.libraries)
    info["pinned"] = not args.no_pin
    log_dir = Path(tempfile.mkdtemp(prefix="trio_wsext-bench-"))
    harness = Harness(
        settings,
        cases,
        args.libraries,
        log_dir,
        log,
        zlib="zlib" in args.workloads,
        pin=not args.no_pin,
    )
    started = time.monotonic()
    try:
        harness.run_all()
    except KeyboardInterrupt:
        log("interrupted: reporting what was measured")
    finally:
        harness.close()
    info["seconds"] = round(time.monotonic() - started, 1)
    lines = render(harness, info)
    doc = report.document(harness, info)
    if not args.no_save:
        path = args.output or RESULTS / (
            datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ") + ".json"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1) + "\n")
        lines.append(f"JSON: {path}")
    table = "\n".join(lines)
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps(doc, indent=1))
    else:
        print(table)
    if not any(run.error for run in harness.runs):
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        log(f"worker logs kept in {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
