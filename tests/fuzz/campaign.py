"""Run every harness of tests/fuzz one after the other for a bounded time, and report.

Strategy: each harness runs as its own libFuzzer process (one core, never two
at once), with a fresh corpus seeded by its ``seeds()``, for
``-max_total_time`` seconds. Its output goes to a log; from the log come the
runs executed and the coverage of libFuzzer's last status line (``cov`` is
the edges covered, ``ft`` the features), and from the artifact directory any
crash, timeout or out-of-memory input. CPU time is measured from the child's
resource usage. The exit status is 1 if any harness found something.

Usage (``nox -s fuzz`` runs it with atheris installed)::

    python tests/fuzz/campaign.py [--seconds 60] [--out DIR] [--only fuzz_frames ...]
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import attrs

HERE: Final = Path(__file__).resolve().parent

#: The harnesses, one per parser, in the order they run.
HARNESSES: Final = [
    "fuzz_frames",
    "fuzz_headers",
    "fuzz_server_handshake",
    "fuzz_client_handshake",
    "fuzz_protocol",
    "fuzz_deflate",
]

#: A single input that runs longer than this is a finding: "it never hangs".
INPUT_TIMEOUT: Final = 30

#: The largest input libFuzzer makes: room for several frames and a 16 KiB head.
MAX_LEN: Final = 20000

#: libFuzzer's status lines: ``#1234  NEW    cov: 181 ft: 683 corp: ...``.
_STATUS_RE: Final = re.compile(r"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+)", re.MULTILINE)
_RUNS_RE: Final = re.compile(r"^stat::number_of_executed_units: (\d+)", re.MULTILINE)
_ARTIFACTS: Final = ("crash-*", "timeout-*", "oom-*", "leak-*", "slow-unit-*")


@attrs.frozen
class Report:
    """What one harness's run gave."""

    name: str
    """The harness module."""
    cpu_seconds: float
    """User plus system CPU time of its process."""
    runs: int
    """Inputs executed."""
    cov: int
    """Edges covered, from libFuzzer's last status line."""
    ft: int
    """Features covered, from the same line."""
    returncode: int
    """The process's exit status (0: nothing found)."""
    findings: list[Path]
    """Crash, timeout and out-of-memory inputs libFuzzer wrote."""

    @property
    def failed(self) -> bool:
        """Whether the harness found something (or could not run)."""
        return self.returncode != 0 or bool(self.findings)


def parse_log(text: str) -> tuple[int, int, int]:
    """Return (runs, cov, ft) from a libFuzzer log; zeros where a value is missing."""
    statuses = _STATUS_RE.findall(text)
    runs_match = _RUNS_RE.findall(text)
    runs = int(runs_match[-1]) if runs_match else (int(statuses[-1][0]) if statuses else 0)
    cov, ft = (int(statuses[-1][1]), int(statuses[-1][2])) if statuses else (0, 0)
    return runs, cov, ft


def children_cpu() -> float:
    """Return the CPU seconds used so far by waited-for child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_harness(name: str, seconds: int, out: Path) -> Report:
    """Run one harness for ``seconds`` with a fresh corpus under ``out``; report on it."""
    directory = out / name
    corpus = directory / "corpus"
    corpus.mkdir(parents=True)
    log = directory / "fuzz.log"
    command = [
        sys.executable,
        str(HERE / f"{name}.py"),
        f"-max_total_time={seconds}",
        f"-timeout={INPUT_TIMEOUT}",
        f"-max_len={MAX_LEN}",
        "-print_final_stats=1",
        f"-artifact_prefix={directory}/",
        str(corpus),
    ]
    before = children_cpu()
    with log.open("w") as stream:
        completed = subprocess.run(
            command, stdout=stream, stderr=subprocess.STDOUT, check=False, cwd=HERE.parent.parent
        )
    cpu = children_cpu() - before
    runs, cov, ft = parse_log(log.read_text(errors="replace"))
    findings = sorted(path for pattern in _ARTIFACTS for path in directory.glob(pattern))
    return Report(name, cpu, runs, cov, ft, completed.returncode, findings)


def format_row(report: Report) -> str:
    """Return one line of the report table."""
    found = ", ".join(str(path) for path in report.findings) or "none"
    if report.returncode and not report.findings:
        found = f"exit status {report.returncode} (see the log)"
    return (
        f"{report.name:<24} {report.cpu_seconds:>9.0f} {report.runs:>11} "
        f"{report.cov:>6} {report.ft:>7}  {found}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harnesses; print one line per harness; return 1 if any found something."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="time per harness (60)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "trio_wsext-fuzz",
        help="where runs go (a new directory per run)",
    )
    parser.add_argument("--only", nargs="+", choices=HARNESSES, help="run only these")
    args = parser.parse_args(argv)
    out: Path = args.out / time.strftime("%Y%m%d-%H%M%S")
    print(f"fuzzing {args.seconds} s per harness; corpora, logs and findings in {out}")
    print(f"{'harness':<24} {'CPU s':>9} {'runs':>11} {'cov':>6} {'ft':>7}  findings")
    reports = []
    for name in args.only or HARNESSES:
        report = run_harness(name, args.seconds, out)
        print(format_row(report), flush=True)
        reports.append(report)
    total = sum(report.cpu_seconds for report in reports)
    print(f"total CPU time: {total:.0f} s")
    return 1 if any(report.failed for report in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
