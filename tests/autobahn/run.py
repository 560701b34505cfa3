"""Run the Autobahn|Testsuite's fuzzing client against trio_wsext's and websockets' echo servers.

For each server named by ``--servers``, one after the other: start its echo server
(``trio_wsext_echo.py`` or ``websockets_echo.py``) on 127.0.0.1 with a free port, write a spec
for that server alone from ``fuzzingclient.json``, run ``wstest -m fuzzingclient -s spec.json``
and time it, stop the server, and read the suite's ``reports/servers/index.json``. Each server
gets a wstest run of its own, so that its wall time is its alone; a run that goes past
``--time-limit`` is stopped (wstest writes its reports only at the end, so then the count of
connections the server saw tells how far it got).

It prints, per server, how many cases ended in each behavior (OK, NON-STRICT, INFORMATIONAL,
UNIMPLEMENTED, FAILED), the wall time of the wstest run and the sum of the case durations per
group (the first number of a case id: 12 and 13 are the permessage-deflate groups), then every
case whose behavior, or whose closing behavior, is not OK or INFORMATIONAL, with the report's
one-line result. ``summary.json`` in the output directory holds the same, per case.

wstest (autobahntestsuite 25.10.1) is Python 2.7 code: ``nox -s autobahn`` installs it into a
Python 2.7 virtualenv of its own and passes ``--wstest``; this script itself runs on the
project's Python, with trio_wsext and websockets installed.

Exit status: 0 when every run finished and no case FAILED, 1 when a case FAILED, 2 when a run
did not finish (time limit, wstest error, no report).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

#: This directory: the spec template and the echo servers live here.
HERE: Final = Path(__file__).resolve().parent

#: The fuzzingclient spec template; each server entry's url has a ``{port}`` to fill in.
TEMPLATE: Final = HERE / "fuzzingclient.json"

#: The echo server program of each agent that the template may name.
SERVER_SCRIPTS: Final = {
    "trio_wsext": HERE / "trio_wsext_echo.py",
    "websockets": HERE / "websockets_echo.py",
}

#: The behaviors that the suite gives a case, in the order the table shows them.
BEHAVIORS: Final = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")

#: Behaviors that need no explanation in the list of cases below the table.
FINE_BEHAVIORS: Final = frozenset({"OK", "INFORMATIONAL"})

#: What wstest's fuzzing client prints as each case starts (counted when a run is stopped).
STARTED_LINE: Final = "Running test case ID "

#: Seconds an echo server may take to print its port.
STARTUP_TIMEOUT: Final = 30.0

#: Seconds a terminated echo server or wstest may take to exit before it is killed.
STOP_TIMEOUT: Final = 10.0

#: The default ``--time-limit``: seconds one wstest run may take before it is stopped.
DEFAULT_TIME_LIMIT: Final = 20 * 60.0


@dataclass
class CaseResult:
    """One case of one server, as the suite's reports give it."""

    case_id: str
    behavior: str
    behavior_close: str
    duration_ms: int
    remote_close_code: int | None
    remote_close_reason: str
    description: str
    result: str
    result_close: str
    received: list[str] = field(default_factory=list)
    expected_ok: list[str] = field(default_factory=list)

    def explain(self) -> str:
        """Say in one line why the case is not OK, from the report's own words.

        A FAILED case's report says why in ``result``; a NON-STRICT one only says that it
        matched an accepted outcome, so this adds what arrived against what the strict
        outcome expects. A closing behavior that is not OK adds ``resultClose``.
        """
        parts: list[str] = []
        if self.behavior == "NON-STRICT":
            received = ", ".join(self.received) or "nothing"
            expected = ", ".join(self.expected_ok) or "nothing"
            parts.append(f"received {received}; strict outcome expects {expected}")
        elif self.behavior not in FINE_BEHAVIORS:
            parts.append(self.result)
        if self.behavior_close not in FINE_BEHAVIORS and self.result_close != self.result:
            parts.append(f"close {self.behavior_close}: {self.result_close}")
        if self.remote_close_code is not None:
            reason = f" {self.remote_close_reason!r}" if self.remote_close_reason else ""
            parts.append(f"server closed with {self.remote_close_code}{reason}")
        return "; ".join(parts)


def describe_events(events: object) -> list[str]:
    """Name the events of a case report (``received`` or one ``expected`` outcome) briefly.

    Events are lists such as ``["message", payload, is_binary]``, ``["pong", payload]`` or
    ``["timeout", "A"]``; payloads are shown by their length only.
    """
    names: list[str] = []
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, list) or not event:
            names.append(repr(event))
        elif event[0] == "timeout":
            names.append(f"timeout {event[1]}" if len(event) > 1 else "timeout")
        elif len(event) > 1 and isinstance(event[1], str):
            names.append(f"{event[0]} ({len(event[1])} B)")
        else:
            names.append(str(event[0]))
    return names


@dataclass
class ServerRun:
    """The outcome of one wstest run against one server."""

    agent: str
    directory: str
    wall_seconds: float
    finished: bool
    problem: str = ""
    cases_started: int = 0
    connections_closed: int = 0
    cases: list[CaseResult] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        """Return how many cases ended in each behavior."""
        return Counter(case.behavior for case in self.cases)

    def group_durations(self) -> dict[str, int]:
        """Return the sum of the case durations (ms) per group, by the case id's first number."""
        sums: Counter[str] = Counter()
        for case in self.cases:
            sums[case.case_id.split(".")[0]] += case.duration_ms
        return dict(sorted(sums.items(), key=lambda item: int(item[0])))


def case_key(case_id: str) -> tuple[int, ...]:
    """Sort key for case ids such as ``"12.1.10"``: by number, not as text."""
    return tuple(int(part) for part in case_id.split("."))


def parse_list(text: str) -> list[str]:
    """Split a comma-separated option value, dropping blanks."""
    return [item.strip() for item in text.split(",") if item.strip()]


def write_spec(agent: str, port: int, cases: Sequence[str], path: Path) -> None:
    """Write a fuzzingclient spec for ``agent`` alone, listening on ``port``, to ``path``.

    Raises:
        SystemExit: the template names no such agent.
    """
    spec: dict[str, Any] = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    servers = [server for server in spec["servers"] if server.get("agent") == agent]
    if not servers:
        raise SystemExit(f"{TEMPLATE} lists no server with agent {agent!r}")
    for server in servers:
        server["url"] = server["url"].format(port=port)
    spec["servers"] = servers
    spec["cases"] = list(cases)
    path.write_text(json.dumps(spec, indent=4) + "\n", encoding="utf-8")


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Return the JSON objects of the complete lines of ``path`` written so far."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    values: list[dict[str, Any]] = []
    for line in text.splitlines(keepends=True):
        if line.endswith("\n") and line.strip():
            value = json.loads(line)
            if isinstance(value, dict):
                values.append(value)
    return values


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process``'s process group, then kill it if it lingers; reap it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def tail(path: Path, size: int = 2000) -> str:
    """Return the last ``size`` characters of the text file ``path`` (empty if missing)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-size:]
    except FileNotFoundError:
        return ""


def start_server(agent: str, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``agent``'s echo server on 127.0.0.1 with a free port; return it and the port.

    Its stdout (JSON lines) goes to ``server.jsonl`` and its stderr to ``server.log`` in
    ``directory``; it runs in a process group of its own, so that stopping it stops all of it.

    Raises:
        SystemExit: the server exited or printed no port within :data:`STARTUP_TIMEOUT`.
    """
    stdout_path, stderr_path = directory / "server.jsonl", directory / "server.log"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPTS[agent]), "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        for line in read_json_lines(stdout_path):
            if "port" in line:
                return process, int(line["port"])
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stop(process)
    raise SystemExit(f"the {agent} echo server did not start; its stderr:\n{tail(stderr_path)}")


def read_reports(outdir: Path, agent: str) -> list[CaseResult]:
    """Read ``agent``'s cases from the suite's ``index.json`` and per-case reports in ``outdir``.

    Raises:
        FileNotFoundError: there is no ``index.json``.
        KeyError: ``index.json`` has no entry for ``agent``.
    """
    index: dict[str, Any] = json.loads((outdir / "index.json").read_text(encoding="utf-8"))
    results: list[CaseResult] = []
    for case_id, entry in sorted(index[agent].items(), key=lambda item: case_key(item[0])):
        detail: dict[str, Any] = {}
        report = outdir / str(entry.get("reportfile", ""))
        if report.is_file():
            detail = json.loads(report.read_text(encoding="utf-8"))
        results.append(
            CaseResult(
                case_id=case_id,
                behavior=str(entry["behavior"]),
                behavior_close=str(entry["behaviorClose"]),
                duration_ms=int(entry["duration"]),
                remote_close_code=entry.get("remoteCloseCode"),
                remote_close_reason=str(detail.get("remoteCloseReason") or ""),
                description=str(detail.get("description", "")),
                result=str(detail.get("result", "")),
                result_close=str(detail.get("resultClose", "")),
                received=describe_events(detail.get("received")),
                expected_ok=describe_events(detail.get("expected", {}).get("OK")),
            )
        )
    return results


def run_server(
    agent: str, cases: Sequence[str], wstest: str, output: Path, time_limit: float
) -> ServerRun:
    """Run the suite's ``cases`` against ``agent``'s echo server; return the outcome.

    Everything goes to ``output/agent``: ``spec.json``, ``wstest.log``, the server's
    ``server.jsonl`` and ``server.log``, and the suite's reports in ``reports/servers``.
    """
    directory = output / agent
    directory.mkdir(parents=True, exist_ok=True)
    server, port = start_server(agent, directory)
    try:
        spec_path = directory / "spec.json"
        write_spec(agent, port, cases, spec_path)
        print(f"{agent}: ws://127.0.0.1:{port}, cases {','.join(cases)} ...", flush=True)
        with (directory / "wstest.log").open("wb") as log:
            started = time.monotonic()
            client = subprocess.Popen(
                [wstest, "-m", "fuzzingclient", "-s", str(spec_path)],
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code: int | None = client.wait(timeout=time_limit)
            except subprocess.TimeoutExpired:
                code = None
                stop(client)
            wall = time.monotonic() - started
        server_code = server.poll()  # not None: the server died during the run
    finally:
        stop(server)
    closed = sum("closed" in line for line in read_json_lines(directory / "server.jsonl"))
    log_text = tail(directory / "wstest.log", size=sys.maxsize)
    started_cases = log_text.count(STARTED_LINE)
    run = ServerRun(agent, str(directory), wall, False, "", started_cases, closed)
    if code is None:
        run.problem = (
            f"stopped at the {time_limit:.0f} s time limit: {started_cases} cases started,"
            f" {closed} connections closed by then"
        )
        return run
    if code != 0:
        run.problem = f"wstest exited with {code}: {tail(directory / 'wstest.log', 500)}"
        return run
    outdir = directory / json.loads(spec_path.read_text(encoding="utf-8"))["outdir"]
    try:
        run.cases = read_reports(outdir, agent)
    except (FileNotFoundError, KeyError) as exc:
        run.problem = f"no report for {agent} in {outdir}: {exc!r}"
        return run
    if server_code is not None:  # the reports hold the cases up to its death
        run.problem = f"the echo server exited with {server_code} during the run (see server.log)"
        return run
    run.finished = True
    return run


def format_table(runs: Sequence[ServerRun]) -> str:
    """Format the behavior counts, wall times and per-group durations of ``runs``."""
    headers = ["server", "cases", *BEHAVIORS, "other", "wall s"]
    rows: list[list[str]] = []
    for run in runs:
        counts = run.counts()
        other = sum(n for behavior, n in counts.items() if behavior not in BEHAVIORS)
        rows.append(
            [
                run.agent,
                str(len(run.cases)) if run.cases else f"({run.cases_started} started)",
                *(str(counts[behavior]) for behavior in BEHAVIORS),
                str(other),
                f"{run.wall_seconds:.1f}",
            ]
        )
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        """Join ``row``: the server's name flush left, the numbers flush right."""
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(cells)

    lines = [line(headers), "  ".join("-" * width for width in widths)]
    lines += [line(row) for row in rows]
    lines.append("")
    lines.append("sum of case durations per group, in seconds:")
    for run in runs:
        groups = run.group_durations()
        text = ", ".join(f"{group}.*: {ms / 1000:.1f}" for group, ms in groups.items())
        lines.append(f"  {run.agent}: {text or '-'}")
    return "\n".join(lines)


def format_notable(runs: Sequence[ServerRun]) -> str:
    """List every case that is neither OK nor INFORMATIONAL, overall or in its closing."""
    lines: list[str] = []
    for run in runs:
        if run.problem:
            lines.append(f"{run.agent}: INCOMPLETE: {run.problem}")
        for case in run.cases:
            if case.behavior in FINE_BEHAVIORS and case.behavior_close in FINE_BEHAVIORS:
                continue
            lines.append(f"{run.agent} {case.case_id}: {case.behavior}: {case.explain()}")
    return "\n".join(lines) or "no case is FAILED, NON-STRICT or otherwise not OK"


def resolve_program(program: str | None) -> str | None:
    """Return ``program`` as an absolute path (wstest runs in another directory), or ``None``.

    A name without a slash is looked up on PATH; a path must name an executable file.
    """
    if not program:
        return None
    if os.sep not in program:
        return shutil.which(program)
    path = os.path.abspath(program)
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        description="Run the Autobahn|Testsuite against trio_wsext and websockets, one at a time."
    )
    parser.add_argument(
        "--cases", default="*", help='comma-separated case patterns, e.g. "12.*,13.*" (default *)'
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVER_SCRIPTS),
        help=f"comma-separated servers to test (default {','.join(SERVER_SCRIPTS)})",
    )
    parser.add_argument(
        "--output", type=Path, help="directory for the reports (default: a new temporary one)"
    )
    parser.add_argument(
        "--wstest",
        default=os.environ.get("AUTOBAHN_WSTEST", "wstest"),
        help="the wstest program (default: $AUTOBAHN_WSTEST, else wstest on PATH)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        help=f"seconds one server's run may take (default {DEFAULT_TIME_LIMIT:.0f})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite against each chosen server, print the results; return the exit status."""
    args = parse_args(argv)
    cases, agents = parse_list(args.cases), parse_list(args.servers)
    unknown = [agent for agent in agents if agent not in SERVER_SCRIPTS]
    if unknown or not agents:
        raise SystemExit(f"unknown servers {unknown}; choose among {', '.join(SERVER_SCRIPTS)}")
    if not cases:
        raise SystemExit("--cases names no case pattern")
    wstest = resolve_program(args.wstest)
    if wstest is None:
        raise SystemExit(f"wstest not found ({args.wstest}): pass --wstest or set AUTOBAHN_WSTEST")
    output: Path = args.output or Path(tempfile.mkdtemp(prefix="autobahn-"))
    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    print(f"reports in {output}", flush=True)
    runs = [run_server(agent, cases, wstest, output, args.time_limit) for agent in agents]
    summary = {"cases": cases, "runs": [asdict(run) for run in runs]}
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print()
    print(format_table(runs))
    print()
    print(format_notable(runs))
    if not all(run.finished for run in runs):
        return 2
    return 1 if any(run.counts()["FAILED"] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
