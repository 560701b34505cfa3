"""The command line: ``python -m trio_wsext {serve,connect,demo,bench}``.

Strategy: this module parses arguments, runs one subcommand under
``trio.run`` and turns its outcome into an exit status; the work is done by
:mod:`trio_wsext.cli.echo`, :mod:`trio_wsext.cli.console`, :mod:`trio_wsext.cli.demo`
and :mod:`trio_wsext.cli.bench`. Exit statuses: 0 success, 1 a connection error
(one line on stderr, no traceback), 2 a usage error (argparse's convention).
``serve`` and ``connect`` stop cleanly on Ctrl-C or SIGTERM; ``demo`` and
``bench`` stop with status 130, as shells report an interrupted command.
``serve --workers N`` runs the echo server in N processes with
:mod:`trio_wsext.workers`; each worker imports this module for its handler
(:func:`echo_in_worker`) and its logging set-up (:func:`set_up_worker_logging`).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import Final

import trio

from .. import __version__
from ..exceptions import WebSocketError
from ..server import WebSocketRequest, WebSocketServer
from ..targets import parse_url
from ..workers import WorkerPool, server_ssl_context
from .bench import format_bench_table, results_as_json, run_bench
from .console import run_console
from .demo import run_demo
from .echo import SHUTDOWN_TIMEOUT, echo_messages, serve_echo

__all__ = ["CommandError", "build_parser", "echo_in_worker", "main", "set_up_worker_logging"]

#: The program's name when it is run as ``python -m trio_wsext``.
PROG: Final = "python -m trio_wsext"


#: The console script's name (``[project.scripts]`` in pyproject.toml).
SCRIPT: Final = "trio-wsext"


def program_name(argv0: str | None = None) -> str:
    """Return the name the program was invoked as, for its help and its messages.

    The console script (``argv[0]`` is its path) calls itself :data:`SCRIPT`;
    ``python -m trio_wsext``, or any program that calls :func:`main`, calls
    itself :data:`PROG`.
    """
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    return SCRIPT if name == SCRIPT else PROG


#: Exit statuses: success, an error (connection, TLS files), and an
#: interrupted command (128 + SIGINT, as shells report it). Usage errors exit
#: with argparse's own status, 2.
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_INTERRUPTED: Final = 130

#: ``serve``'s default port: the one websockets' extension examples use.
DEFAULT_PORT: Final = 8765

#: The examples at the end of ``--help``: arguments, and what they do.
EXAMPLES: Final = (
    ("demo", "what compression saves, per message size"),
    ("serve --port 0", "an echo server on a free port"),
    ("connect ws://127.0.0.1:8765/", ""),
    ("bench --json", "round trips/s and MB/s, as JSON"),
)


def _epilog(prog: str) -> str:
    """The end of ``--help``: :data:`EXAMPLES` as ``prog`` is invoked, aligned."""
    lines = ["examples:"]
    for arguments, purpose in EXAMPLES:
        command = f"{prog} {arguments}"
        lines.append(f"  {command:<46} {purpose}".rstrip())
    lines += ["", f"'{prog} COMMAND --help' describes each command."]
    return "\n".join(lines)


#: The signals that stop ``serve`` and ``connect`` cleanly.
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

#: What each ``serve --workers N`` worker imports: this module, by name.
WORKER_HANDLER: Final = "trio_wsext.cli.main:echo_in_worker"
WORKER_INITIALIZER: Final = "trio_wsext.cli.main:set_up_worker_logging"

#: The logger of ``serve``'s own lines, in the parent and in the workers.
SERVE_LOGGER: Final = "trio_wsext.serve"


class CommandError(Exception):
    """An error to report in one line, with exit status 1."""


def _port(text: str) -> int:
    """Parse a TCP port for argparse: an integer from 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, not {port}")
    return port


def _ws_url(text: str) -> str:
    """Check a WebSocket URL for argparse as the client will (scheme, host, port)."""
    try:
        parse_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """Return the parser of ``python -m trio_wsext`` (named ``prog``) and its four subcommands."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="WebSocket tools built on trio_wsext: an echo server, an interactive\n"
        "client, a compression demo and a benchmark.",
        epilog=_epilog(prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run an echo server",
        description="Run a WebSocket echo server until Ctrl-C. Each connection is logged "
        "on stderr with its negotiated extensions.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=_port, default=DEFAULT_PORT,
        help="TCP port (default: %(default)s; 0 picks a free port and prints it)",
    )  # fmt: skip
    serve.add_argument(
        "--no-compression", action="store_true",
        help="do not accept permessage-deflate (accepted by default)",
    )  # fmt: skip
    serve.add_argument("--certfile", help="PEM certificate chain: serve wss:// (TLS)")
    serve.add_argument("--keyfile", help="PEM private key, if not in --certfile")
    serve.add_argument(
        "--workers", type=_positive_int, default=1, metavar="N",
        help="serve in N worker processes on the one port (default: %(default)s, this process)",
    )  # fmt: skip
    serve.add_argument(
        "--reuse-port", action="store_true",
        help="with --workers: each worker listens on its own SO_REUSEPORT socket (Linux "
        "spreads connections evenly) instead of sharing one socket",
    )  # fmt: skip

    connect = commands.add_parser(
        "connect",
        help="talk to a WebSocket server interactively",
        description="Connect to a WebSocket server. Each line typed (or piped) is sent as a "
        "text message; each message received is printed after '< '. End of input (Ctrl-D) "
        "or Ctrl-C closes the connection.",
    )
    connect.add_argument("url", type=_ws_url, metavar="URL", help="ws:// or wss:// URL")
    connect.add_argument(
        "--no-compression", action="store_true", help="do not offer permessage-deflate"
    )
    connect.add_argument("--cafile", help="PEM file of CA certificates to trust for wss://")

    commands.add_parser(
        "demo",
        help="show what permessage-deflate saves, message by message",
        description="Start an echo server and a client in this process, print the "
        "negotiated permessage-deflate parameters and, per message size, the bytes the "
        "application sent and the bytes that crossed the wire with and without compression.",
    )

    bench = commands.add_parser(
        "bench",
        help="measure round trips/s and MB/s with and without compression",
        description="Measure lockstep round trips (send a message, wait for its echo) with "
        "compression off and on, for four message sizes (100 B, 1.3 kB, 10 kB and 80 kB of "
        "JSON-like text). Progress goes to stderr, the table (or JSON) to stdout.",
    )
    bench.add_argument(
        "--url", type=_ws_url,
        help="an echo server to measure (default: one started in this process)",
    )  # fmt: skip
    bench.add_argument(
        "--iterations", type=_positive_int, metavar="N",
        help="round trips per case (default: as many as fit in --duration)",
    )  # fmt: skip
    bench.add_argument(
        "--duration", type=_positive_float, default=1.0, metavar="SECONDS",
        help="time per case when --iterations is not given (default: %(default)s)",
    )  # fmt: skip
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m trio_wsext`` with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 success, 1 an error (connection, TLS files),
        130 an interrupted ``demo`` or ``bench``. Usage errors exit with
        status 2 (argparse's ``SystemExit``).
    """
    prog = program_name()
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    command: str = args.command
    try:
        if command == "serve":
            return _serve(parser, args)
        if command == "connect":
            return _connect(parser, args)
        if command == "demo":
            trio.run(run_demo, sys.stdout)
            return EXIT_OK
        return _bench(args)
    except BaseException as exc:
        leaves = _leaves(exc)
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            # Ctrl-C in demo or bench, or before serve/connect watch for it.
            print(f"{prog} {command}: interrupted", file=sys.stderr)
            return EXIT_OK if command in ("serve", "connect") else EXIT_INTERRUPTED
        if all(isinstance(leaf, (OSError, WebSocketError, CommandError)) for leaf in leaves):
            print(f"{prog} {command}: error: {_describe(leaves[0])}", file=sys.stderr)
            return EXIT_ERROR
        raise


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run ``serve``: an echo server until SIGINT (Ctrl-C) or SIGTERM."""
    if args.keyfile and not args.certfile:
        parser.error("--keyfile needs --certfile")
    if args.reuse_port and args.workers == 1:
        parser.error("--reuse-port needs --workers 2 or more")
    ssl_context = None
    if args.certfile:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(args.certfile, args.keyfile)
        except OSError as exc:  # ssl.SSLError is one
            files = f"{args.certfile} and {args.keyfile}" if args.keyfile else args.certfile
            raise CommandError(f"cannot load the certificate and key from {files}: {exc}") from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logger = logging.getLogger(SERVE_LOGGER)
    compression = None if args.no_compression else "deflate"
    scheme = "wss" if ssl_context else "ws"
    host = f"[{args.host}]" if ":" in args.host else args.host
    if args.workers > 1:
        return _serve_workers(args, compression=compression, scheme=scheme, host=host)

    shutdown = trio.Event()

    async def run_server(
        done: trio.CancelScope, task_status: trio.TaskStatus[WebSocketServer]
    ) -> None:
        await serve_echo(
            args.host,
            args.port,
            ssl_context,
            compression=compression,
            logger=logger,
            shutdown=shutdown,
            task_status=task_status,
        )
        done.cancel()  # shut down gracefully: stop watching signals

    async def serve() -> None:
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async with trio.open_nursery() as nursery:
                try:
                    server = await nursery.start(run_server, nursery.cancel_scope)
                except BaseException as exc:
                    leaves = _leaves(exc)
                    if all(isinstance(leaf, OSError) for leaf in leaves):
                        where = f"{host}:{args.port}"
                        raise CommandError(f"cannot listen on {where}: {leaves[0]}") from exc
                    raise
                logger.info(
                    "Serving on %s://%s:%d (compression: %s); Ctrl-C stops",
                    scheme,
                    host,
                    server.port,
                    "permessage-deflate" if compression else "off",
                )
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if shutdown.is_set():  # a second Ctrl-C: do not wait for the peers
                        logger.info("%s: stopping now", name)
                        nursery.cancel_scope.cancel()
                    else:
                        logger.info("%s: closing connections and stopping", name)
                        shutdown.set()

    trio.run(serve)
    logger.info("Server stopped.")
    return EXIT_OK


def _serve_workers(
    args: argparse.Namespace, *, compression: str | None, scheme: str, host: str
) -> int:
    """Run ``serve --workers N``: the echo server in N processes until SIGINT or SIGTERM.

    The first signal closes every worker's connections with 1001 and stops
    them (within :data:`~trio_wsext.cli.echo.SHUTDOWN_TIMEOUT`, as one process
    does); a second kills the workers.
    """
    logger = logging.getLogger(SERVE_LOGGER)
    ssl_context = None
    if args.certfile:  # loaded once above, so that a bad file fails before any worker
        ssl_context = functools.partial(server_ssl_context, args.certfile, args.keyfile)
    pool = WorkerPool(
        WORKER_HANDLER,
        args.host,
        args.port,
        ssl_context,
        workers=args.workers,
        mode="reuse_port" if args.reuse_port else "shared_socket",
        initializer=WORKER_INITIALIZER,
        compression=compression,
        disconnect_timeout=SHUTDOWN_TIMEOUT,
    )

    class Announce:
        """The pool's ``task_status``: say where it serves once every worker listens."""

        def started(self, value: WorkerPool | None = None) -> None:
            logger.info(
                "Serving on %s://%s:%d with %d worker processes (compression: %s, %s);"
                " Ctrl-C stops",
                scheme,
                host,
                pool.port,
                args.workers,
                "permessage-deflate" if compression else "off",
                pool.mode.replace("_", " "),
            )

    async def run_pool(done: trio.CancelScope) -> None:
        try:
            await pool.run(task_status=Announce())
        except OSError as exc:  # binding: nothing started
            raise CommandError(f"cannot listen on {host}:{args.port}: {_bind_error(exc)}") from exc
        done.cancel()  # every worker has exited: stop watching signals

    async def serve() -> None:
        # Signals count from the start: a worker that keeps failing to start
        # must not make Ctrl-C wait for it.
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_pool, nursery.cancel_scope)
                stopping = False
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if stopping:  # a second Ctrl-C: do not wait for the peers
                        logger.info("%s: stopping now", name)
                        pool.kill()
                    else:
                        logger.info("%s: closing connections and stopping", name)
                        stopping = True
                        nursery.start_soon(pool.aclose)

    trio.run(serve)
    logger.info("Server stopped.")
    return EXIT_OK


def set_up_worker_logging() -> None:
    """Log as ``serve`` does, each line naming its worker: a ``serve --workers`` initializer."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s [worker %(process)d] %(message)s",
        stream=sys.stderr,
    )


async def echo_in_worker(request: WebSocketRequest) -> None:
    """Echo every message, logging each connection as ``serve`` does: a worker's handler."""
    ws = await request.accept()
    await echo_messages(ws, request.remote, logging.getLogger(SERVE_LOGGER))


def _connect(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run ``connect``: the interactive client."""
    ssl_context = None
    if args.cafile:
        if not args.url.lower().startswith("wss://"):
            parser.error("--cafile needs a wss:// URL")
        try:
            ssl_context = ssl.create_default_context(cafile=args.cafile)
        except OSError as exc:
            raise CommandError(f"cannot load CA certificates from {args.cafile}: {exc}") from exc
    return trio.run(
        functools.partial(
            run_console,
            args.url,
            stdin_fd=sys.stdin.fileno(),
            stdout=sys.stdout,
            ssl_context=ssl_context,
            compression=None if args.no_compression else "deflate",
            stop_signals=STOP_SIGNALS,
        )
    )


def _bench(args: argparse.Namespace) -> int:
    """Run ``bench`` and print its table or JSON."""
    tty = sys.stderr.isatty()

    def progress(done: int, total: int, label: str) -> None:
        if done == total:
            if tty:
                print("\r\033[K", end="", file=sys.stderr, flush=True)
            return
        text = f"bench: [{done + 1}/{total}] {label}"
        if tty:
            print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)

    async def bench() -> None:
        results = await run_bench(
            url=args.url, iterations=args.iterations, duration=args.duration, progress=progress
        )
        if args.json:
            data = results_as_json(
                results,
                server=args.url or "in-process",
                iterations=args.iterations,
                duration=args.duration,
            )
            print(json.dumps(data, indent=2))
        else:
            print(format_bench_table(results))

    trio.run(bench)
    return EXIT_OK


def _bind_error(exc: BaseException) -> str:
    """Say why binding failed as one process says it, ``[Errno 98] Address already in use``.

    :mod:`trio_wsext.workers` puts the address in its message; the caller names it already.
    """
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int):
        return f"[Errno {errno}] {os.strerror(errno)}"
    return _describe(exc)


def _leaves(exc: BaseException) -> list[BaseException]:
    """Return ``exc``, or the exceptions a (nested) exception group holds."""
    if not isinstance(exc, BaseExceptionGroup):
        return [exc]
    return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]


def _describe(exc: BaseException) -> str:
    """One line for an error: its message, else its class name."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
