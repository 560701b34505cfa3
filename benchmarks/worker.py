"""The processes the harness starts: one echo server, or one client that runs workloads.

``python -m benchmarks.worker server LIB --compression on|off`` starts LIB's
echo server on 127.0.0.1 and an OS-chosen port, prints one JSON line
``{"port": ..., "pid": ...}``, and serves until its stdin closes (so it never
outlives the harness, even one killed with SIGKILL).

``python -m benchmarks.worker client LIB`` reads one JSON command per line on
stdin, ``{"workload": NAME, "params": {...}}``, runs it in a fresh event loop
of LIB's kind, and answers one JSON line: the result, or ``{"error": ...}``.
It exits when its stdin closes.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import resource
import sys
import threading
import traceback
from typing import Any

from benchmarks import adapters
from benchmarks.runtime import get_runtime
from benchmarks.workloads import CLIENT_WORKLOADS


def _raise_fd_limit() -> None:
    """Raise the open-files soft limit to the hard limit: 1,000 connections need it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _exit_when_stdin_closes() -> None:
    """Exit the process at once when stdin reaches EOF (the harness is done or gone)."""

    def watch() -> None:
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def _answer(message: dict[str, Any]) -> None:
    """Write one JSON line to stdout."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _load(library: str) -> adapters.Adapter | None:
    """Return the adapter, or answer ``{"error": ...}`` and return None if it fails to load."""
    try:
        return adapters.load(library)
    except Exception as exc:
        _answer({"error": f"cannot load {library}: {type(exc).__name__}: {exc}"})
        return None


def serve(library: str, compression: bool) -> None:
    """Run ``library``'s echo server until stdin closes."""
    adapter = _load(library)
    if adapter is None:
        return
    _exit_when_stdin_closes()

    def ready(port: int) -> None:
        _answer({"port": port, "pid": os.getpid()})

    async def main() -> None:
        await adapter.serve(ready, compression=compression)

    get_runtime(adapter.runtime).run(main)


def client(library: str) -> None:
    """Run workloads for ``library``'s client, one per stdin line, until stdin closes."""
    adapter = _load(library)
    if adapter is None:
        return
    runtime = get_runtime(adapter.runtime)
    _answer({"ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        command = json.loads(line)
        workload = CLIENT_WORKLOADS[command["workload"]]
        params: dict[str, Any] = command["params"]
        try:
            result = runtime.run(functools.partial(workload, adapter, runtime, params))
        except Exception as exc:
            traceback.print_exc()
            _answer({"error": f"{type(exc).__name__}: {exc}"})
        else:
            _answer(result)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run a server or a client."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    sub = parser.add_subparsers(dest="role", required=True)
    server_parser = sub.add_parser("server", help="run an echo server")
    server_parser.add_argument("library")
    server_parser.add_argument("--compression", choices=("on", "off"), required=True)
    client_parser = sub.add_parser("client", help="run workloads from stdin")
    client_parser.add_argument("library")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    _raise_fd_limit()
    if args.role == "server":
        serve(args.library, args.compression == "on")
    else:
        client(args.library)


if __name__ == "__main__":
    main()
