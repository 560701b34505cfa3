"""Worker processes: one WebSocket server in N processes, sharing one port.

Strategy: a parent process binds the port, starts ``workers`` worker processes
and supervises them; it never serves a connection itself. Each worker is a
new interpreter (:mod:`multiprocessing`'s ``spawn`` method) that runs its own
``trio.run`` and a :class:`~trio_wsext.server.WebSocketServer` on listeners
for that port, made in one of two ways (``mode``):

``"shared_socket"`` (the default)
    The parent binds and listens; each worker accepts from that same socket,
    whose file descriptor it inherits. Every worker wakes when a connection
    arrives and one of them takes it, so a busy worker takes fewer. A worker
    that dies leaves the connections waiting in the backlog to the others.
    Works on every POSIX system, and ``port=0`` simply works.
``"reuse_port"``
    Each worker opens its own listening socket with ``SO_REUSEPORT``, and
    Linux spreads new connections over them by a hash of their addresses:
    an even share, however busy each worker is. The parent keeps a socket
    bound (not listening) to the port with ``SO_REUSEPORT`` too, which
    reserves the port while workers come and go (``port=0`` works, and a
    process of another user cannot take the port), and is never handed a
    connection. Connections waiting in the backlog of a worker that dies
    are reset by the kernel.

Why this shape: :class:`WorkerPool` mirrors
:class:`~trio_wsext.server.WebSocketServer` (build it, then ``pool = await
nursery.start(pool.run)``; ``await pool.aclose()`` shuts down gracefully), so
that a trio program which supervises other things too embeds it;
:func:`run_workers` is the blocking call a script ends with, and owns
SIGINT and SIGTERM. :func:`open_reuse_port_listeners` is for processes
started by something else (systemd, containers), each with its own
``WebSocketServer``. The handler crosses into each worker by name, as a
``"module:function"`` string or a picklable top-level function, because a
spawned worker shares no memory with the parent (``fork`` is not used: it
copies trio's state and the parent's threads in a state no one can trust).
An :class:`ssl.SSLContext` cannot be pickled either, so ``ssl_context`` is a
function that builds one (:func:`server_ssl_context` is such a function).

Signals. The parent stops on SIGINT (Ctrl-C) or SIGTERM: it sends SIGTERM to
every worker, whose server closes each connection with 1001 (going away)
within ``disconnect_timeout`` and exits; a worker still running
:data:`EXIT_GRACE` seconds after that is killed. A second signal kills the
workers at once. Workers ignore SIGINT (Ctrl-C in a terminal reaches the
whole process group; the parent stops them in order), and shut down the same
way if the parent dies. SIGTERM sent to one worker drains that worker, which
the parent then replaces.

Restarts. A worker that exits while the pool is not stopping (a crash, a
SIGKILL, an exception in its initializer) is logged on the
``trio_wsext.workers`` logger, with the traceback the worker sent back if it
had one, and started again after :data:`RESTART_DELAY` seconds, twice that
if it had run less than :data:`STABLE_UPTIME` seconds, and so on up to
:data:`MAX_RESTART_DELAY`: a handler module that fails at import does not
spin.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import pickle
import signal
import socket
import ssl
import sys
import threading
import traceback
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, Final, Literal, TypeAlias, TypedDict, Unpack, final, get_args

import attrs
import trio

from .accepting import BurstListener
from .endpoints import Endpoint
from .extensions.base import ServerExtensionFactory
from .http2 import Http2Options
from .options import check_ssl_context
from .server import WebSocketRequest, WebSocketServer

__all__ = [
    "EXIT_GRACE",
    "MAX_RESTART_DELAY",
    "RESTART_DELAY",
    "STABLE_UPTIME",
    "ServerOptions",
    "WorkerMode",
    "WorkerPool",
    "WorkerPoolStatistics",
    "open_reuse_port_listeners",
    "run_workers",
    "server_ssl_context",
]

logger = logging.getLogger("trio_wsext.workers")

#: Set in a worker process: a pool made there is a mistake (see WorkerPool).
_in_worker = False

#: Seconds before a worker that died is started again; doubled for each
#: death that follows the last one within :data:`STABLE_UPTIME`.
RESTART_DELAY: Final = 0.5

#: The longest wait before a restart: a worker that cannot start at all is
#: tried twice a minute, and its error logged each time.
MAX_RESTART_DELAY: Final = 30.0

#: Seconds a worker must have run for its death to count as a new incident
#: (the next restart waits :data:`RESTART_DELAY` again).
STABLE_UPTIME: Final = 10.0

#: Seconds a worker has, beyond ``disconnect_timeout``, to exit after SIGTERM
#: (the interpreter's own teardown) before it is killed.
EXIT_GRACE: Final = 5.0

#: The listen backlog: as :func:`trio.open_tcp_listeners`, the most there is;
#: the kernel clips it to ``net.core.somaxconn``.
BACKLOG: Final = 0xFFFF

#: How the workers share the port (see the module's docstring).
WorkerMode: TypeAlias = Literal["shared_socket", "reuse_port"]

#: A function as a worker process finds it: ``"package.module:function"``, or
#: a picklable callable (a function defined at the top level of a module).
_Importable: TypeAlias = str | Callable[..., Any]


class ServerOptions(TypedDict, total=False):
    """The :class:`~trio_wsext.server.WebSocketServer` keywords each worker's server gets.

    They mean what they mean there. Each value is pickled and sent to every
    worker, so extension factories must be picklable (the built-in ones are).
    """

    extensions: Sequence[ServerExtensionFactory] | None
    compression: str | None
    message_queue_size: int
    max_message_size: int | None
    receive_buffer_size: int | None
    write_limit: int
    connect_timeout: float
    disconnect_timeout: float
    ping_interval: float | None
    ping_timeout: float | None
    origins: Collection[str | None] | None
    max_header_bytes: int
    max_header_count: int
    http2: bool | Http2Options


@attrs.frozen
class WorkerPoolStatistics:
    """What a :class:`WorkerPool` is running, from :meth:`WorkerPool.statistics`."""

    workers: int
    """How many workers the pool keeps running."""
    pids: tuple[int, ...]
    """The process ids of the workers alive now, in worker order (one that
    died and waits for its restart is missing)."""
    ready: int
    """Workers serving now: started, listening, not yet exited."""
    restarts: int
    """Workers started again after an unexpected exit, since the pool started."""


@attrs.frozen
class _WorkerSpec:
    """Everything one worker process needs; pickled by ``multiprocessing`` (sockets as fds)."""

    number: int
    handler: _Importable
    initializer: _Importable | None
    ssl_context: _Importable | None
    options: dict[str, Any]
    mode: WorkerMode
    sockets: tuple[socket.socket, ...]
    """shared_socket: the parent's listening sockets."""
    addresses: tuple[tuple[int, Any], ...]
    """reuse_port: (family, sockaddr) of each listener to open."""
    reports: multiprocessing.connection.Connection
    """Where the worker reports ``("ready", pid)`` or ``("failed", traceback)``."""


@attrs.define
class _Slot:
    """One worker's place in the pool, across its restarts."""

    number: int
    process: multiprocessing.process.BaseProcess | None = None
    ready: bool = False
    was_ready: bool = False


class _NoListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener that is never run: it lets the parent check the options with the server's own
    constructor, so that a bad one raises once, in the parent, and not in every worker."""

    async def accept(self) -> trio.abc.Stream:
        """Never called."""
        raise trio.ClosedResourceError

    async def aclose(self) -> None:
        """Nothing to close."""
        await trio.lowlevel.checkpoint()


def server_ssl_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """Return a server :class:`ssl.SSLContext` with the certificate chain from PEM files.

    An ``SSLContext`` cannot be sent to a worker process; this function can:
    pass ``ssl_context=functools.partial(server_ssl_context, "cert.pem",
    "key.pem")`` and each worker builds its own.

    Raises:
        OSError: a file cannot be read, or is not a certificate or key
            (:class:`ssl.SSLError` is an ``OSError``).
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


async def open_reuse_port_listeners(
    port: int, *, host: str | None = None, backlog: int | None = None
) -> list[trio.SocketListener]:
    """Open TCP listeners with ``SO_REUSEPORT``: :func:`trio.open_tcp_listeners` for sharing.

    For processes that you start yourself (systemd units, a container per
    core): each calls this with the same port and serves on the listeners,
    for example with ``WebSocketServer(handler, listeners)``, and Linux
    spreads new connections over the processes' listeners. Only processes of
    the same user can join. With ``port=0`` each call gets a new port, shared
    by no one: pass the port the first one got to the others.

    Args:
        port: the TCP port.
        host: the address to bind, or ``None`` for every interface (IPv4 and IPv6).
        backlog: the listen backlog (default: the most the kernel allows).

    Returns:
        One listener per address ``host`` resolves to.

    Raises:
        OSError: an address cannot be bound; listeners opened already are closed.
        ValueError: ``SO_REUSEPORT`` does not exist on this system.
    """
    _check_reuse_port()
    addresses = await _resolve(host, port)
    sockets = _bind_all(addresses, reuse_port=True, backlog=backlog or BACKLOG)
    return [trio.SocketListener(trio.socket.from_stdlib_socket(sock)) for sock in sockets]


@final
class WorkerPool:
    """A WebSocket server in ``workers`` processes on one port, kept running until stopped.

    Build one, then ``pool = await nursery.start(pool.run)``, or call
    :func:`run_workers` from a script.

    Args:
        handler: ``async def handler(request: WebSocketRequest)`` as
            ``"package.module:function"``, or the function itself if it is
            picklable (defined at the top level of a module; in the script
            you run, under an ``if __name__ == "__main__":`` guard, as
            :mod:`multiprocessing` requires). Each worker imports it.
        host: the address to bind (``"127.0.0.1"``, ``"::1"``, a name), or
            ``None`` for every interface, IPv4 and IPv6.
        port: the TCP port, 0 for a free one (read it from :attr:`port`).
        ssl_context: serve ``wss://``: a function that returns a server
            :class:`ssl.SSLContext` (or its ``"module:function"`` name),
            called once in the parent to check it and once in each worker;
            see :func:`server_ssl_context`.
        workers: how many worker processes (default: one per CPU).
        mode: ``"shared_socket"`` or ``"reuse_port"`` (see the module's docstring).
        initializer: a function (or its name) each worker calls with no
            arguments before it imports the handler: configure ``logging``
            there, as workers start with Python's defaults.
        **options: the :class:`ServerOptions` of each worker's server.

    Raises:
        ValueError, TypeError: an argument or option is invalid, or cannot
            be sent to a worker (not picklable, or defined in a package's
            ``__main__``, which workers do not import); nothing has started.
        RuntimeError: this is a worker process (a module the handler's
            import runs made a pool: guard it with ``if __name__ == "__main__":``).
    """

    def __init__(
        self,
        handler: _Importable,
        host: str | None,
        port: int,
        ssl_context: _Importable | None = None,
        *,
        workers: int | None = None,
        mode: WorkerMode = "shared_socket",
        initializer: _Importable | None = None,
        **options: Unpack[ServerOptions],
    ) -> None:
        if _in_worker:
            raise RuntimeError(
                "a WorkerPool was made in a worker process, most likely by a module it imports"
                " for its handler: put run_workers() under if __name__ == '__main__':"
            )
        if workers is None:
            workers = os.cpu_count() or 1
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise TypeError(f"workers must be an int, not {type(workers).__name__}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        if mode not in get_args(WorkerMode):
            raise ValueError(f"mode must be 'shared_socket' or 'reuse_port', not {mode!r}")
        if mode == "reuse_port":
            _check_reuse_port()
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int from 0 to 65535, not {port!r}")
        if host is not None and not isinstance(host, str):
            raise TypeError(f"host must be a str or None, not {type(host).__name__}")
        if isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(
                "ssl_context must be a function that returns an SSLContext (an SSLContext"
                " cannot be sent to a worker process): see server_ssl_context()"
            )
        unknown = sorted(set(options) - ServerOptions.__optional_keys__)
        if unknown:
            raise TypeError(f"unexpected server options: {', '.join(unknown)}")
        WebSocketServer(_no_handler, [_NoListener()], **options)
        self._handler = _sendable("handler", handler)
        self._initializer = None if initializer is None else _sendable("initializer", initializer)
        self._ssl_context = None if ssl_context is None else _sendable("ssl_context", ssl_context)
        self._options: dict[str, Any] = dict(options)
        try:
            pickle.dumps(self._options)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(f"the server options cannot be sent to a worker: {exc}") from exc
        self._stop_timeout = options.get("disconnect_timeout", 10) + EXIT_GRACE
        self._host = host
        self._requested_port = port
        self._mode: WorkerMode = mode
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(number) for number in range(1, workers + 1)]
        self._sockets: list[socket.socket] = []
        self._endpoints: list[Endpoint] = []
        self._restarts = 0
        self._running = False
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self._started_or_stopping = trio.Event()
        self._supervised = trio.Event()
        self._supervise_scope = trio.CancelScope(shield=True)

    @property
    def mode(self) -> WorkerMode:
        """How the workers share the port: ``"shared_socket"`` or ``"reuse_port"``."""
        return self._mode

    @property
    def listeners(self) -> list[Endpoint]:
        """The addresses the pool is bound to (empty until :meth:`run` has bound them)."""
        return list(self._endpoints)

    @property
    def port(self) -> int:
        """The port of the one address (the kernel's choice for port 0).

        Raises:
            RuntimeError: not bound yet, or bound to several addresses with
                different ports (``host=None`` and port 0: see :attr:`listeners`).
        """
        ports = {endpoint.port for endpoint in self._endpoints}
        if len(ports) != 1:
            raise RuntimeError(
                f"this pool is bound to {len(self._endpoints)} addresses on ports"
                f" {sorted(ports)}; read them from .listeners"
            )
        return ports.pop()

    def statistics(self) -> WorkerPoolStatistics:
        """Return the workers' pids, how many are serving, and the restarts so far."""
        return WorkerPoolStatistics(
            workers=len(self._slots),
            pids=tuple(
                slot.process.pid
                for slot in self._slots
                if slot.process is not None and slot.process.pid is not None
            ),
            ready=sum(slot.ready for slot in self._slots),
            restarts=self._restarts,
        )

    async def run(
        self, *, task_status: trio.TaskStatus[WorkerPool] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind the port, start the workers and keep them running until stopped.

        ``task_status.started()`` gets this pool once every worker listens
        (a worker that fails before then is restarted, with its back-off, and
        the pool waits for its replacement). :meth:`aclose` or cancellation
        stops the pool: no restarts; SIGTERM to each worker, which closes its
        connections with 1001 within ``disconnect_timeout`` and exits; a
        worker still running :data:`EXIT_GRACE` seconds later is killed. The
        port is closed and every worker process has exited (and is reaped)
        when this returns or raises.

        Raises:
            OSError: the address cannot be bound (nothing was started).
            ImportError: ``handler`` or ``initializer`` names something that
                cannot be imported here.
            TypeError: ``ssl_context`` does not return an ``SSLContext``.
            RuntimeError: this pool has run already.
        """
        if self._running:
            raise RuntimeError("a WorkerPool runs only once")
        self._running = True
        try:
            self._check_in_parent()
            await self._bind()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._supervise_all)
                try:
                    await self._started_or_stopping.wait()
                    if not self._stop.is_set():
                        stats = self.statistics()
                        logger.info(
                            "serving on %s with %d workers (%s), pids %s",
                            ", ".join(endpoint.url for endpoint in self._endpoints),
                            stats.workers,
                            self._mode.replace("_", " "),
                            ", ".join(map(str, stats.pids)),
                        )
                        task_status.started(self)
                        await self._stop.wait()
                finally:
                    with trio.CancelScope(shield=True):
                        await self._shut_down()
        finally:
            for sock in self._sockets:
                sock.close()
            self._stopped.set()

    async def aclose(self) -> None:
        """Stop the pool gracefully (see :meth:`run`) and wait until every worker has exited.

        A pool that is not running, or stopped already, returns at once.
        """
        self._request_stop()
        if self._running:
            await self._stopped.wait()
        else:
            await trio.lowlevel.checkpoint()

    def kill(self) -> None:
        """Stop now: SIGKILL every worker; their clients see their TCP connections drop.

        For a second Ctrl-C, when waiting for the closing handshakes is not
        wanted. :meth:`run` still reaps the workers before it returns.
        """
        self._request_stop()
        for slot in self._slots:
            _send_signal(slot.process, signal.SIGKILL)

    # -- the parent's side ---------------------------------------------------------------------

    def _request_stop(self) -> None:
        self._stop.set()
        self._started_or_stopping.set()

    def _check_in_parent(self) -> None:
        """Import what the workers will import and build the SSL context once, to fail early."""
        for what, value in (("handler", self._handler), ("initializer", self._initializer)):
            if isinstance(value, str):
                _load(what, value)
        if self._ssl_context is not None:
            check_ssl_context("ssl_context()", _load("ssl_context", self._ssl_context)())

    async def _bind(self) -> None:
        """Bind the port: listening sockets to share, or a reservation for reuse_port."""
        addresses = await _resolve(self._host, self._requested_port)
        shared = self._mode == "shared_socket"
        self._sockets = _bind_all(
            addresses, reuse_port=not shared, backlog=BACKLOG if shared else None
        )
        self._endpoints = [
            Endpoint(sock.getsockname()[0], sock.getsockname()[1], self._ssl_context is not None)
            for sock in self._sockets
        ]

    async def _supervise_all(self) -> None:
        # Shielded: an outer cancellation reaches the workers only through
        # _shut_down, as SIGTERM first.
        try:
            with self._supervise_scope:
                async with trio.open_nursery() as nursery:
                    for slot in self._slots:
                        nursery.start_soon(self._supervise, slot)
        finally:
            self._supervised.set()

    async def _supervise(self, slot: _Slot) -> None:
        """Start the slot's worker, and again each time it dies, with the back-off."""
        quick_deaths = 0
        while not self._stop.is_set():
            started = trio.current_time()
            how, failure = await self._run_worker(slot)
            if self._stop.is_set():
                return
            uptime = trio.current_time() - started
            quick_deaths = quick_deaths + 1 if uptime < STABLE_UPTIME else 1
            delay = min(RESTART_DELAY * 2 ** (quick_deaths - 1), MAX_RESTART_DELAY)
            logger.error(
                "worker %d %s; restarting in %g s%s", slot.number, how, delay, _indent(failure)
            )
            with trio.move_on_after(delay):
                await self._stop.wait()
            if not self._stop.is_set():
                self._restarts += 1

    async def _run_worker(self, slot: _Slot) -> tuple[str, str | None]:
        """Run one worker process until it exits.

        Returns:
            How it ended, for the log (``"(pid 12) was killed by SIGKILL"``),
            and the traceback it reported, if it reported one.
        """
        reader, writer = self._context.Pipe(duplex=False)
        spec = _WorkerSpec(
            number=slot.number,
            handler=self._handler,
            initializer=self._initializer,
            ssl_context=self._ssl_context,
            options=self._options,
            mode=self._mode,
            sockets=tuple(self._sockets) if self._mode == "shared_socket" else (),
            addresses=(
                tuple((sock.family, sock.getsockname()) for sock in self._sockets)
                if self._mode == "reuse_port"
                else ()
            ),
            reports=writer,
        )
        process = self._context.Process(
            target=_worker_main, args=(spec,), name=f"trio_wsext worker {slot.number}"
        )
        try:
            with _sigint_ignored_by_children():
                process.start()
        except Exception as exc:  # out of processes or file descriptors: try again later
            reader.close()
            return f"could not be started: {type(exc).__name__}: {exc}", None
        finally:
            writer.close()
        slot.process = process
        logger.debug("worker %d started, pid %d", slot.number, process.pid)
        failures: list[str] = []
        exited = False
        exit_fd = _exit_fd(process)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_reports, slot, reader, failures)
                await trio.lowlevel.wait_readable(exit_fd)
                nursery.cancel_scope.cancel()
            process.join()  # it has exited, or is exiting
            exited = True
            while reader.poll() and self._receive_report(slot, reader, failures):
                pass
        finally:
            slot.ready = False
            reader.close()
            if exit_fd != process.sentinel:
                os.close(exit_fd)
            if exited:
                slot.process = None
        how = _describe_exit(process.pid, process.exitcode)
        clean = process.exitcode == 0
        process.close()
        failure = failures[-1] if failures else None
        if self._stop.is_set():
            if clean:
                logger.info("worker %d %s", slot.number, how)
            else:
                logger.warning("worker %d %s%s", slot.number, how, _indent(failure))
        return how, failure

    async def _read_reports(
        self,
        slot: _Slot,
        reader: multiprocessing.connection.Connection,
        failure: list[str],
    ) -> None:
        while True:
            await trio.lowlevel.wait_readable(reader.fileno())
            if not self._receive_report(slot, reader, failure):
                return

    def _receive_report(
        self,
        slot: _Slot,
        reader: multiprocessing.connection.Connection,
        failure: list[str],
    ) -> bool:
        """Take one report from a worker; False at its end."""
        try:
            kind, value = reader.recv()
        except (EOFError, OSError):
            return False
        if kind == "ready":
            slot.ready = slot.was_ready = True
            logger.info("worker %d ready, pid %d", slot.number, value)
            if all(other.was_ready for other in self._slots):
                self._started_or_stopping.set()
        else:
            failure.append(str(value))
        return True

    async def _shut_down(self) -> None:
        """SIGTERM to every worker; wait for them; SIGKILL the late; reap them all."""
        self._request_stop()
        if self._mode == "shared_socket":
            # The workers' copies keep it open until each closes its own.
            for sock in self._sockets:
                sock.close()
        running = [slot for slot in self._slots if slot.process is not None]
        if running:
            logger.info(
                "stopping %d workers: closing their connections with 1001 (going away)",
                len(running),
            )
        for slot in running:
            _send_signal(slot.process, signal.SIGTERM)
        with trio.move_on_after(self._stop_timeout):
            await self._supervised.wait()
        for slot in self._slots:
            if slot.process is not None and slot.process.exitcode is None:
                logger.warning(
                    "worker %d (pid %d) still running %g s after SIGTERM: killing it",
                    slot.number,
                    slot.process.pid,
                    self._stop_timeout,
                )
                _send_signal(slot.process, signal.SIGKILL)
        with trio.move_on_after(EXIT_GRACE):
            await self._supervised.wait()
        self._supervise_scope.cancel()


def run_workers(
    handler: _Importable,
    host: str | None,
    port: int,
    ssl_context: _Importable | None = None,
    *,
    workers: int | None = None,
    mode: WorkerMode = "shared_socket",
    initializer: _Importable | None = None,
    **options: Unpack[ServerOptions],
) -> None:
    """Serve WebSocket connections in worker processes until SIGINT (Ctrl-C) or SIGTERM.

    The blocking entry point, for the end of a script (under ``if __name__
    == "__main__":``)::

        run_workers("chat.server:handler", "0.0.0.0", 8765, workers=4)

    The arguments are :class:`WorkerPool`'s. The first SIGINT or SIGTERM
    stops the workers gracefully: every connection is closed with 1001
    within ``disconnect_timeout``; a second one kills them. It returns once
    every worker has exited, so the script exits with status 0.

    Raises:
        OSError: the address cannot be bound (no worker was started).
        ValueError, TypeError, ImportError: see :class:`WorkerPool` and
            :meth:`WorkerPool.run`.
    """
    pool = WorkerPool(
        handler,
        host,
        port,
        ssl_context,
        workers=workers,
        mode=mode,
        initializer=initializer,
        **options,
    )
    try:
        trio.run(_run_until_signalled, pool)
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1 and isinstance(leaves[0], Exception):
            raise leaves[0] from None
        raise


async def _run_until_signalled(pool: WorkerPool) -> None:
    """Run ``pool``; the first SIGINT or SIGTERM closes it, a second kills the workers."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                stopping = False
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if stopping:
                        logger.warning("%s again: killing the workers", name)
                        pool.kill()
                    else:
                        logger.info("%s: stopping the workers", name)
                        stopping = True
                        nursery.start_soon(pool.aclose)

            nursery.start_soon(watch)
            await pool.run()
            nursery.cancel_scope.cancel()


# -- in the worker -----------------------------------------------------------------------------


def _worker_main(spec: _WorkerSpec) -> None:
    """The worker process's target: initializer, handler, then serve until told to stop.

    Any exception is sent to the parent (which logs it) and the process
    exits with status 1.
    """
    # Ctrl-C reaches every process of the terminal's group; the parent stops
    # the workers in order (see _sigint_ignored_by_children).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _in_worker
    _in_worker = True
    try:
        if spec.initializer is not None:
            _load("initializer", spec.initializer)()
        handler = _load("handler", spec.handler)
        ssl_context = None
        if spec.ssl_context is not None:
            ssl_context = _load("ssl_context", spec.ssl_context)()
            check_ssl_context("ssl_context()", ssl_context)
        trio.run(_serve_in_worker, spec, handler, ssl_context)
    except Exception:
        _report(spec.reports, ("failed", traceback.format_exc()))
        sys.exit(1)
    finally:
        spec.reports.close()


async def _serve_in_worker(
    spec: _WorkerSpec, handler: Callable[..., Any], ssl_context: ssl.SSLContext | None
) -> None:
    """Serve until SIGTERM or the parent's exit, then shut the server down gracefully."""
    if spec.mode == "reuse_port":
        sockets = _bind_all(list(spec.addresses), reuse_port=True, backlog=BACKLOG)
    else:
        sockets = list(spec.sockets)
    listeners: list[trio.abc.Listener[trio.abc.Stream]] = []
    for sock in sockets:
        tcp = BurstListener(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
        if ssl_context is None:
            listeners.append(tcp)
        else:
            listeners.append(trio.SSLListener(tcp, ssl_context, https_compatible=True))
    server = WebSocketServer(handler, listeners, **spec.options)
    # Once the receiver closes, SIGTERM only sets a flag rather than being
    # fatal: a process manager that signals every process of the group, and
    # then the parent forwarding its own, must not kill a worker in its
    # teardown. The flag also keeps a SIGTERM that arrives before the
    # receiver opens (the pool stopping while this worker starts): ignoring
    # it instead would lose it, and the worker would serve on until killed.
    early_stop = _StopFlag()
    signal.signal(signal.SIGTERM, early_stop.set)
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            _report(spec.reports, ("ready", os.getpid()))
            stop = trio.Event()
            if early_stop.requested:
                stop.set()

            async def on_signal() -> None:
                async for _ in signals:
                    stop.set()

            async def on_parent_exit() -> None:
                parent = multiprocessing.parent_process()
                if parent is None:  # not started by a pool
                    await trio.sleep_forever()
                else:
                    await trio.lowlevel.wait_readable(parent.sentinel)
                stop.set()

            nursery.start_soon(on_signal)
            nursery.start_soon(on_parent_exit)
            await stop.wait()
            await server.aclose()
            nursery.cancel_scope.cancel()


class _StopFlag:
    """A signal handler that only remembers that the signal came."""

    def __init__(self) -> None:
        self.requested = False

    def set(self, signum: int, frame: object) -> None:
        self.requested = True


def _report(reports: multiprocessing.connection.Connection, message: tuple[str, object]) -> None:
    """Send ``message`` to the parent; a parent that is gone is not an error."""
    with contextlib.suppress(OSError):
        reports.send(message)


# -- shared helpers ----------------------------------------------------------------------------


async def _no_handler(request: WebSocketRequest) -> None:
    """The handler of the server that only checks options; never called."""
    await request.reject(500)


def _sendable(what: str, value: object) -> _Importable:
    """Check that ``value`` can reach a worker; return it.

    Raises:
        ValueError: a string that is not ``"module:function"``.
        TypeError: neither a string nor a picklable function.
    """
    if isinstance(value, str):
        module, colon, name = value.partition(":")
        if not (module and colon and name):
            raise ValueError(f"{what} must be 'module:function', not {value!r}")
        return value
    if not callable(value):
        raise TypeError(
            f"{what} must be a 'module:function' string or a function, not {type(value).__name__}"
        )
    # multiprocessing does not import a package's __main__ in the child.
    main_spec = getattr(sys.modules["__main__"], "__spec__", None)
    main_name = getattr(main_spec, "name", "")
    if getattr(value, "__module__", None) == "__main__" and main_name.endswith("__main__"):
        raise TypeError(
            f"{what} is defined in {main_name}, which worker processes do not import:"
            " define it in another module and pass it, or its 'module:function' name"
        )
    try:
        pickle.dumps(value)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(
            f"{what} cannot be sent to a worker process ({exc}): pass a function defined at"
            " the top level of a module, or its 'module:function' name"
        ) from exc
    return value


def _load(what: str, value: _Importable) -> Callable[..., Any]:
    """Import a ``"module:function"`` name (or return a function as it is).

    Raises:
        ImportError: the module or the name in it cannot be found.
        TypeError: it names something that is not callable.
    """
    if not isinstance(value, str):
        return value
    module_name, _, qualname = value.partition(":")
    target: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ImportError(
                f"{what} {value!r}: {module_name} has no {qualname!r}", name=module_name
            ) from None
    if not callable(target):
        raise TypeError(f"{what} {value!r} is a {type(target).__name__}, not a function")
    return target


def _check_reuse_port() -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("SO_REUSEPORT does not exist on this system: use mode='shared_socket'")


async def _resolve(host: str | None, port: int) -> list[tuple[int, Any]]:
    """Return the IPv4 and IPv6 (family, sockaddr) pairs to bind for ``host``, each once."""
    infos = await trio.socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    addresses: list[tuple[int, Any]] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    return addresses


def _bind_all(
    addresses: Sequence[tuple[int, Any]], *, reuse_port: bool, backlog: int | None
) -> list[socket.socket]:
    """Bind (and listen on, if ``backlog``) each address; on failure close those done.

    Raises:
        OSError: with the errno of bind(2) and the address in its message.
    """
    sockets: list[socket.socket] = []
    try:
        for family, address in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            # As trio's listeners: rebinding a port whose connections linger
            # in TIME_WAIT is allowed, and IPv6 sockets are IPv6 only.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                host, port = address[0], address[1]
                where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                raise OSError(exc.errno, f"cannot bind {where}: {exc.strerror}") from exc
            if backlog is not None:
                sock.listen(backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@contextlib.contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """Start processes with SIGINT ignored, so that a Ctrl-C cannot kill a worker as it starts.

    An ignored signal stays ignored across exec(2), and Python then leaves it
    so; a blocked mask would not do, as ``multiprocessing`` clears it in the
    child. Meanwhile SIGINT is blocked here, so that a Ctrl-C for the parent
    waits instead of being ignored (Linux does not discard a blocked signal)
    unless another thread takes it. Only the main thread can do this; from
    another, the workers' first moments take Ctrl-C as Python does.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _exit_fd(process: multiprocessing.process.BaseProcess) -> int:
    """Return a file descriptor that becomes readable when ``process`` exits.

    A pidfd where Linux has them: the process's sentinel pipe (the other
    choice) stays open while a child the worker forked without exec lives,
    and its exit would go unnoticed.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None and process.pid is not None:
        with contextlib.suppress(OSError):
            fd: int = pidfd_open(process.pid)
            return fd
    return process.sentinel


def _send_signal(process: multiprocessing.process.BaseProcess | None, signum: int) -> None:
    """Send ``signum`` to a worker that has not exited (and not been reaped) yet."""
    if process is None or process.pid is None or process.exitcode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signum)


def _describe_exit(pid: int | None, exitcode: int | None) -> str:
    """Say how a worker ended: ``(pid 12) was killed by SIGKILL``, ``(pid 12) exited with 1``."""
    if exitcode is None:
        how = "is still running"
    elif exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with status {exitcode}"
    return f"(pid {pid}) {how}"


def _indent(text: str | None) -> str:
    """Return a worker's traceback as lines to append to a log message (or nothing)."""
    if not text:
        return ""
    return "".join(f"\n    {line}" for line in text.rstrip("\n").split("\n"))


def _leaves(exc: BaseException) -> list[BaseException]:
    """Return ``exc``, or the exceptions a (nested) exception group holds."""
    if not isinstance(exc, BaseExceptionGroup):
        return [exc]
    return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
