"""Worker processes: one server in several processes, restarts, signals, both socket modes.

The pool runs real worker processes, either from the test's own trio loop
(:meth:`WorkerPool.run`) or under a parent started as a subprocess
(:func:`run_workers`), so that signals reach it as they reach a deployed
server. The workers import their handler from this module by name, which
is also what proves the handler crosses into a spawned process. Waits are
bounded by generous ``fail_after`` deadlines (Python starts slowly on a busy
machine) and nothing is asserted about how long anything took.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import logging
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Final

import pytest
import trio
import trustme

from trio_wsext import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
    connect_websocket,
)
from trio_wsext.workers import (
    MAX_RESTART_DELAY,
    RESTART_DELAY,
    ServerOptions,
    WorkerMode,
    WorkerPool,
    open_reuse_port_listeners,
    server_ssl_context,
)

ROOT: Final = Path(__file__).resolve().parent.parent
TESTS: Final = Path(__file__).resolve().parent
#: The parent subprocess imports the package from this checkout and this module by name.
ENV: Final = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]),
    "PYTHONUNBUFFERED": "1",
}
#: Seconds any one wait may take: worker processes start in a second or two
#: on an idle machine, much later on a busy one.
TIMEOUT: Final = 60
#: The most connections opened while waiting for a particular worker to take one.
MAX_TRIES: Final = 200
MODES: Final[tuple[WorkerMode, ...]] = ("shared_socket", "reuse_port")

#: A parent process as a user writes one: ``run_workers`` at the end of a script.
PARENT_SCRIPT: Final = """
import logging, sys
from trio_wsext.workers import run_workers
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s", stream=sys.stderr)
if __name__ == "__main__":
    run_workers(
        "test_workers:pid_echo", "127.0.0.1", 0, workers=2, mode=sys.argv[1],
        disconnect_timeout=float(sys.argv[2]),
    )
"""
SERVING: Final = r"^trio_wsext\.workers serving on ws://127\.0\.0\.1:(\d+) with 2 workers"


# -- what the workers import -------------------------------------------------------------------


async def pid_echo(request: WebSocketRequest) -> None:
    """Send the worker's pid, then echo every message."""
    ws = await request.accept()
    await ws.send_message(str(os.getpid()))
    async for message in ws:
        await ws.send_message(message)


def fail_to_start() -> None:
    """An initializer that fails, as a handler module that cannot start does."""
    raise RuntimeError("failing at start on purpose")


def make_a_pool() -> None:
    """An initializer that makes a pool, as an unguarded ``run_workers`` call at import does."""
    WorkerPool("test_workers:pid_echo", "127.0.0.1", 0, workers=1)


#: Where :func:`slow_to_start_listening_for_sigterm` notes that its window opened.
WINDOW_FILE: Final = "TRIO_WSEXT_TEST_WINDOW"


def slow_to_start_listening_for_sigterm() -> None:
    """An initializer that holds the worker for 2 s just before it listens for SIGTERM.

    It widens the moment between the worker setting its own SIGTERM handler
    and trio's receiver taking over, where a stop asked for by the pool must
    not be lost.
    """
    real_signal = signal.signal

    def slow_signal(signum: int, handler: Any) -> Any:
        previous = real_signal(signum, handler)
        if signum == signal.SIGTERM and callable(handler) and previous is signal.SIG_DFL:
            Path(os.environ[WINDOW_FILE]).write_text("open")
            time.sleep(2)
        return previous

    signal.signal = slow_signal  # type: ignore[assignment]


#: Where :func:`fork_a_long_lived_child` notes the pids of the children it forks.
CHILDREN_FILE: Final = "TRIO_WSEXT_TEST_CHILDREN"


def fork_a_long_lived_child() -> None:
    """An initializer that forks a child without exec, living on (120 s) after the worker.

    The child holds every file descriptor the worker had, as the processes of
    a fork-based ``multiprocessing.Pool`` in a handler would.
    """
    child = os.fork()
    if child == 0:
        time.sleep(120)
        os._exit(0)
    with open(os.environ[CHILDREN_FILE], "a") as children:
        children.write(f"{child}\n")


# -- helpers -----------------------------------------------------------------------------------


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie has: it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def connect_to_worker(
    nursery: trio.Nursery,
    port: int,
    wanted: set[int],
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[int, WebSocketConnection]:
    """Open connections until a worker in ``wanted`` takes one; close the others.

    Returns:
        The pid of that worker and the open connection.
    """
    for _ in range(MAX_TRIES):
        ws = await connect_websocket(
            nursery, "127.0.0.1", port, "/", use_ssl=ssl_context or False, ping_interval=None
        )
        pid = int(await ws.get_message())
        if pid in wanted:
            return pid, ws
        await ws.aclose()
    raise AssertionError(f"none of {MAX_TRIES} connections reached a worker in {wanted}")


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate()`` every 50 ms until it is true (the caller bounds the wait).

    What the tests wait for (another process's exit or start, a log record)
    sets no trio.Event, hence the polling.
    """
    while not predicate():  # noqa: ASYNC110
        await trio.sleep(0.05)


@contextlib.asynccontextmanager
async def parent_process(mode: WorkerMode, disconnect_timeout: float) -> AsyncIterator[Parent]:
    """Run :data:`PARENT_SCRIPT` as a subprocess; kill it (and its group) if still running."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", PARENT_SCRIPT, mode, str(disconnect_timeout)],
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        yield Parent(process)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await process.wait()
            assert process.stderr is not None
            await process.stderr.aclose()


class Parent:
    """A running parent subprocess and what it has written on stderr."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stderr is not None
        self.process = process
        self._stderr = process.stderr
        self._buffer = b""
        self.lines: list[str] = []

    async def wait_for(self, pattern: str) -> re.Match[str]:
        """Read stderr lines until one matches ``pattern``."""
        while True:
            while b"\n" not in self._buffer:
                data = await self._stderr.receive_some()
                if not data:
                    raise AssertionError(f"end of stderr before {pattern!r}:\n" + self.text())
                self._buffer += data
            line, self._buffer = self._buffer.split(b"\n", 1)
            self.lines.append(line.decode())
            if match := re.search(pattern, self.lines[-1]):
                return match

    async def finish(self) -> tuple[int, str]:
        """Wait for the exit; return its status and all of stderr."""
        while data := await self._stderr.receive_some():
            self._buffer += data
        self.lines.extend(self._buffer.decode().splitlines())
        self._buffer = b""
        return await self.process.wait(), self.text()

    def text(self) -> str:
        """Everything read from stderr so far."""
        return "\n".join(self.lines)


# -- serving -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_pool_serves_connections_from_every_worker(mode: WorkerMode) -> None:
    """Two workers on one port both take connections, and each is a process of the pool."""
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            pool: WorkerPool = await nursery.start(
                WorkerPool("test_workers:pid_echo", "127.0.0.1", 0, workers=2, mode=mode).run
            )
            pids = set(pool.statistics().pids)
            assert len(pids) == 2
            assert os.getpid() not in pids
            assert pool.mode == mode
            assert [str(endpoint.address) for endpoint in pool.listeners] == ["127.0.0.1"]
            seen: set[int] = set()
            while seen != pids:
                pid, ws = await connect_to_worker(nursery, pool.port, pids - seen)
                await ws.send_message("hello")
                assert await ws.get_message() == "hello"
                await ws.aclose()
                seen.add(pid)
            await pool.aclose()
    assert all(process_gone(pid) for pid in pids)
    assert pool.statistics().pids == ()


async def test_pool_serves_wss_with_an_ssl_context_function(tmp_path: Path) -> None:
    """``ssl_context=partial(server_ssl_context, ...)``: each worker builds it and serves wss."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server_context = functools.partial(
        server_ssl_context, str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            pool: WorkerPool = await nursery.start(
                WorkerPool("test_workers:pid_echo", "127.0.0.1", 0, server_context, workers=1).run
            )
            assert [endpoint.is_ssl for endpoint in pool.listeners] == [True]
            pid, ws = await connect_to_worker(
                nursery, pool.port, set(pool.statistics().pids), ssl_context=client_context
            )
            await ws.send_message("secret")
            assert await ws.get_message() == "secret"
            await ws.aclose()
            nursery.cancel_scope.cancel()  # cancelling stops the pool as aclose() does
    assert process_gone(pid)


async def test_reuse_port_listeners_share_a_port_and_both_accept() -> None:
    """Two sets of ``open_reuse_port_listeners`` on one port split the connections."""
    first = await open_reuse_port_listeners(0, host="127.0.0.1")
    port = first[0].socket.getsockname()[1]
    second = await open_reuse_port_listeners(port, host="127.0.0.1")
    accepted = [0, 0]
    total = 40
    try:
        with socket.socket() as plain, pytest.raises(OSError, match="in use") as caught:
            plain.bind(("127.0.0.1", port))  # only SO_REUSEPORT sockets of this user may join
        assert caught.value.errno == errno.EADDRINUSE
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:

                async def accept(index: int, listener: trio.SocketListener) -> None:
                    while True:
                        stream = await listener.accept()
                        accepted[index] += 1
                        await stream.aclose()

                nursery.start_soon(accept, 0, first[0])
                nursery.start_soon(accept, 1, second[0])
                streams = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(total)]
                await wait_until(lambda: sum(accepted) == total)
                for stream in streams:
                    await stream.aclose()
                nursery.cancel_scope.cancel()
    finally:
        for listener in [*first, *second]:
            await listener.aclose()
    # Linux hashes each connection's addresses; 40 all on one side is a 1 in 2**39 chance.
    assert min(accepted) > 0


# -- restarts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_sigkilled_worker_is_restarted_and_serves_again(
    mode: WorkerMode, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker killed with SIGKILL is logged, started again after the back-off, and serves."""
    caplog.set_level(logging.INFO, logger="trio_wsext.workers")
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            pool: WorkerPool = await nursery.start(
                WorkerPool("test_workers:pid_echo", "127.0.0.1", 0, workers=2, mode=mode).run
            )
            victim, survivor = pool.statistics().pids
            os.kill(victim, signal.SIGKILL)

            def replaced() -> bool:
                stats = pool.statistics()
                return victim not in stats.pids and len(stats.pids) == 2 and stats.ready == 2

            await wait_until(replaced)
            assert pool.statistics().restarts == 1
            (newcomer,) = set(pool.statistics().pids) - {survivor}
            _, ws = await connect_to_worker(nursery, pool.port, {newcomer})
            await ws.send_message("again")
            assert await ws.get_message() == "again"
            await ws.aclose()
            await pool.aclose()
    messages = [record.getMessage() for record in caplog.records]
    assert f"worker 1 (pid {victim}) was killed by SIGKILL; restarting in 0.5 s" in messages
    assert process_gone(victim)
    assert process_gone(newcomer)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs os.pidfd_open (Linux)")
async def test_worker_death_is_noticed_while_a_child_it_forked_lives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed worker whose forked child lives on is still seen to die, and restarted."""
    children = tmp_path / "children"
    children.touch()
    monkeypatch.setenv(CHILDREN_FILE, str(children))  # the workers inherit the environment
    try:
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                pool: WorkerPool = await nursery.start(
                    WorkerPool(
                        "test_workers:pid_echo",
                        "127.0.0.1",
                        0,
                        workers=1,
                        initializer="test_workers:fork_a_long_lived_child",
                    ).run
                )
                (victim,) = pool.statistics().pids
                os.kill(victim, signal.SIGKILL)

                def replaced() -> bool:
                    stats = pool.statistics()
                    return stats.ready == 1 and victim not in stats.pids

                await wait_until(replaced)
                await pool.aclose()
    finally:
        for pid in children.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    assert len(children.read_text().split()) == 2  # the first worker's child, the second's


async def test_worker_failing_at_start_is_retried_with_growing_delays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker that fails as it starts is logged with its traceback, and retried ever later."""
    caplog.set_level(logging.INFO, logger="trio_wsext.workers")
    pool = WorkerPool(
        "test_workers:pid_echo",
        "127.0.0.1",
        0,
        workers=1,
        initializer="test_workers:fail_to_start",
    )

    def failures() -> list[str]:
        return [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.run)
            await wait_until(lambda: len(failures()) >= 3)
            assert pool.statistics().ready == 0
            await pool.aclose()
    delays = [float(re.findall(r"restarting in ([\d.]+) s", text)[0]) for text in failures()]
    assert delays[:3] == [RESTART_DELAY, RESTART_DELAY * 2, RESTART_DELAY * 4]
    assert all(delay <= MAX_RESTART_DELAY for delay in delays)
    first = failures()[0]
    assert first.startswith("worker 1 (pid ")
    assert ") exited with status 1; restarting in 0.5 s\n" in first
    assert "RuntimeError: failing at start on purpose" in first
    assert "serving on" not in caplog.text


@pytest.mark.parametrize(("mode", "queued"), [("shared_socket", True), ("reuse_port", False)])
async def test_without_a_worker_only_a_shared_socket_takes_connections(
    mode: WorkerMode, queued: bool
) -> None:
    """No worker serving: the parent's shared socket queues a connection; reuse_port refuses it.

    This is the difference between the modes: the shared socket listens in
    the parent, the reuse_port reservation is only bound.
    """
    pool = WorkerPool(
        "test_workers:pid_echo",
        "127.0.0.1",
        0,
        workers=1,
        mode=mode,
        initializer="test_workers:fail_to_start",
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.run)
            await wait_until(lambda: bool(pool.listeners))
            with trio.socket.socket() as sock:
                if queued:
                    await sock.connect(("127.0.0.1", pool.port))
                else:
                    with pytest.raises(ConnectionRefusedError):
                        await sock.connect(("127.0.0.1", pool.port))
            assert pool.statistics().ready == 0
            await pool.aclose()


async def test_pool_made_in_a_worker_fails_that_worker(caplog: pytest.LogCaptureFixture) -> None:
    """A worker whose imports make a pool fails with a RuntimeError that says what to guard."""
    caplog.set_level(logging.INFO, logger="trio_wsext.workers")
    pool = WorkerPool(
        "test_workers:pid_echo", "127.0.0.1", 0, workers=1, initializer="test_workers:make_a_pool"
    )

    def failures() -> list[str]:
        return [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.run)
            await wait_until(lambda: len(failures()) >= 1)
            await pool.aclose()
    assert "RuntimeError: a WorkerPool was made in a worker process" in failures()[0]
    assert "if __name__ == '__main__':" in failures()[0]


# -- errors before anything starts -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_port_in_use_raises_oserror_and_starts_no_worker(
    mode: WorkerMode, caplog: pytest.LogCaptureFixture
) -> None:
    """A port another socket listens on: OSError naming the address; no worker was started."""
    caplog.set_level(logging.DEBUG, logger="trio_wsext.workers")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pool = WorkerPool("test_workers:pid_echo", "127.0.0.1", port, workers=2, mode=mode)
        with pytest.raises(OSError, match=rf"^\[Errno \d+\] cannot bind 127\.0\.0\.1:{port}: "):
            await pool.run()
    assert pool.statistics().restarts == 0
    assert "started" not in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"handler": "test_workers.pid_echo"}, ValueError, "handler must be 'module:function'"),
        ({"handler": lambda request: None}, TypeError, "handler cannot be sent to a worker"),
        ({"handler": 42}, TypeError, "handler must be a 'module:function' string or a"),
        ({"workers": 0}, ValueError, "workers must be at least 1, not 0"),
        ({"mode": "fork"}, ValueError, "mode must be 'shared_socket' or 'reuse_port'"),
        ({"port": 70000}, ValueError, "port must be an int from 0 to 65535"),
        ({"ssl_context": ssl.create_default_context()}, TypeError, "an SSLContext cannot be"),
        ({"message_queue_size": -1}, ValueError, "message_queue_size must be >= 0"),
        ({"handler_nursery": None}, TypeError, "unexpected server options: handler_nursery"),
        ({"disconnect_timeout": 0}, ValueError, "disconnect_timeout must be > 0"),
    ],
    ids=[
        "handler-no-colon",
        "handler-lambda",
        "handler-not-callable",
        "no-workers",
        "unknown-mode",
        "bad-port",
        "ssl-context-object",
        "bad-server-option",
        "unknown-option",
        "zero-disconnect-timeout",
    ],
)
def test_pool_refuses_bad_arguments_before_starting(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    """A bad argument or option raises at once, naming it."""
    arguments: dict[str, object] = {
        "handler": "test_workers:pid_echo",
        "host": "127.0.0.1",
        "port": 0,
        **kwargs,
    }
    with pytest.raises(error, match=re.escape(message)):
        WorkerPool(**arguments)  # type: ignore[arg-type]


async def test_handler_that_cannot_be_imported_raises_import_error() -> None:
    """``"module:missing"`` fails in the parent, before binding or starting anything."""
    pool = WorkerPool("test_workers:no_such_handler", "127.0.0.1", 0, workers=1)
    with pytest.raises(ImportError, match="test_workers has no 'no_such_handler'"):
        await pool.run()
    assert pool.listeners == []


# -- signals, under a parent process -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_sigterm_closes_every_workers_clients_with_1001_and_exits_0(
    mode: WorkerMode,
) -> None:
    """SIGTERM to the parent: clients of both workers see 1001, every process exits, status 0."""
    with trio.fail_after(TIMEOUT):
        async with parent_process(mode, 10) as parent, trio.open_nursery() as nursery:
            port = int((await parent.wait_for(SERVING))[1])
            pids = {int(pid) for pid in re.findall(r"worker \d ready, pid (\d+)", parent.text())}
            assert len(pids) == 2
            clients = [await connect_to_worker(nursery, port, {pid}) for pid in sorted(pids)]
            parent.process.send_signal(signal.SIGTERM)
            for _, ws in clients:
                with pytest.raises(ConnectionClosed):
                    await ws.get_message()
                assert ws.closed is not None
                assert ws.closed.code == 1001
            status, stderr = await parent.finish()
    assert status == 0
    assert "Traceback" not in stderr
    assert "SIGTERM: stopping the workers" in stderr
    for pid in pids:
        assert f"(pid {pid}) exited with status 0" in stderr
        assert process_gone(pid)


async def test_second_sigterm_kills_workers_still_closing() -> None:
    """A client that never answers the close holds its worker; a second SIGTERM kills it."""
    with trio.fail_after(TIMEOUT):
        async with parent_process("shared_socket", 3600) as parent:
            port = int((await parent.wait_for(SERVING))[1])
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive_some()
            assert head.startswith(b"HTTP/1.1 101 ")
            parent.process.send_signal(signal.SIGTERM)
            await parent.wait_for(r"exited with status 0$")  # the other worker
            parent.process.send_signal(signal.SIGTERM)
            status, stderr = await parent.finish()
            await stream.aclose()
    assert status == 0
    assert "SIGTERM again: killing the workers" in stderr
    assert re.search(r"worker \d \(pid \d+\) was killed by SIGKILL", stderr)
    assert "Traceback" not in stderr


async def test_workers_close_with_1001_when_the_parent_dies() -> None:
    """A parent killed with SIGKILL cannot stop its workers: each notices and stops itself."""
    with trio.fail_after(TIMEOUT):
        async with parent_process("reuse_port", 10) as parent, trio.open_nursery() as nursery:
            port = int((await parent.wait_for(SERVING))[1])
            pids = {int(pid) for pid in re.findall(r"worker \d ready, pid (\d+)", parent.text())}
            _, ws = await connect_to_worker(nursery, port, pids)
            parent.process.kill()
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
            assert ws.closed is not None
            assert ws.closed.code == 1001
            await wait_until(lambda: all(process_gone(pid) for pid in pids))


def test_server_options_are_the_servers_keywords() -> None:
    """Every WebSocketServer keyword can be given to the workers' servers, and only those."""
    parameters = inspect.signature(WebSocketServer).parameters
    keywords = set(parameters) - {"handler", "listeners", "handler_nursery"}
    assert ServerOptions.__optional_keys__ == keywords


async def test_a_stop_asked_for_while_a_worker_starts_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM before the worker listens for it still stops it at once, not when killed."""
    caplog.set_level(logging.INFO, logger="trio_wsext.workers")
    window = tmp_path / "window"
    monkeypatch.setenv(WINDOW_FILE, str(window))
    pool = WorkerPool(
        "test_workers:pid_echo",
        "127.0.0.1",
        0,
        workers=1,
        initializer="test_workers:slow_to_start_listening_for_sigterm",
        disconnect_timeout=60,
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.run)
            await wait_until(window.exists)
            # The pool stops while the worker is in its window: a lost SIGTERM
            # would keep it serving until killed, disconnect_timeout + 5 s later.
            with trio.fail_after(30):
                await pool.aclose()
    assert "killing it" not in caplog.text
    assert "exited with status 0" in caplog.text
