"""BurstListener: every pending connection accepted per wake-up, without a schedule point each."""

from __future__ import annotations

import errno
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial

import pytest
import trio

from trio_wsext.accepting import ACCEPT_BURST, BurstListener, serve_listeners
from trio_wsext.endpoints import Endpoint, listener_endpoint
from trio_wsext.server import WebSocketRequest, WebSocketServer

PENDING = 50


async def _tcp_listener() -> trio.SocketListener:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    return listener


def _port(listener: trio.abc.Listener[trio.abc.Stream]) -> int:
    endpoint = listener_endpoint(listener)
    assert isinstance(endpoint, Endpoint)
    return endpoint.port


@contextmanager
def _pending_clients(port: int, count: int) -> Iterator[list[socket.socket]]:
    """Connect ``count`` blocking sockets; the kernel completes them into the backlog."""
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


@asynccontextmanager
async def _ticking() -> AsyncIterator[Callable[[], int]]:
    """Run a task that counts scheduler batches (one tick per batch); yield its counter."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await trio.lowlevel.checkpoint()
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        await trio.lowlevel.checkpoint()  # the ticker is running
        yield lambda: ticks
        nursery.cancel_scope.cancel()


async def _batches_to_accept(listener: trio.abc.Listener[trio.SocketStream], count: int) -> int:
    streams = []
    async with _ticking() as ticks:
        start = ticks()
        for _ in range(count):
            streams.append(await listener.accept())
        used = ticks() - start
    for stream in streams:
        await stream.aclose()
    return used


async def test_pending_connections_are_accepted_in_one_batch() -> None:
    listener = BurstListener(await _tcp_listener())
    with _pending_clients(_port(listener), PENDING):
        used = await _batches_to_accept(listener, PENDING)
    await listener.aclose()
    assert used <= 2


async def test_trio_socket_listener_takes_a_batch_per_connection() -> None:
    # The control: what BurstListener exists to avoid, measured the same way.
    listener = await _tcp_listener()
    with _pending_clients(_port(listener), PENDING):
        used = await _batches_to_accept(listener, PENDING)
    await listener.aclose()
    assert used >= PENDING - 1


async def test_a_burst_is_bounded() -> None:
    listener = BurstListener(await _tcp_listener(), burst=10)
    with _pending_clients(_port(listener), 25):
        used = await _batches_to_accept(listener, 25)
    await listener.aclose()
    assert 2 <= used <= 6  # three bursts: 10, 10, 5


def test_the_default_burst_is_asyncios_backlog() -> None:
    assert ACCEPT_BURST == 100


async def test_a_burst_must_be_positive() -> None:
    tcp = await _tcp_listener()
    with pytest.raises(ValueError, match="burst must be at least 1, not 0"):
        BurstListener(tcp, burst=0)
    await tcp.aclose()


async def test_accepted_streams_are_set_up_as_trios() -> None:
    listener = BurstListener(await _tcp_listener())
    with _pending_clients(_port(listener), 1) as (client,):
        stream = await listener.accept()
        assert isinstance(stream, trio.SocketStream)
        assert stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        client.sendall(b"ping")
        assert await stream.receive_some(10) == b"ping"
        await stream.send_all(b"pong")
        assert client.recv(10) == b"pong"
        await stream.aclose()
    await listener.aclose()


async def test_accept_waits_for_a_connection() -> None:
    listener = BurstListener(await _tcp_listener())
    accepted: list[trio.SocketStream] = []
    done = trio.Event()

    async def accept() -> None:
        accepted.append(await listener.accept())
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        await trio.testing.wait_all_tasks_blocked()
        assert accepted == []
        with _pending_clients(_port(listener), 1), trio.fail_after(5):
            await done.wait()
    await accepted[0].aclose()
    await listener.aclose()


async def test_aclose_closes_the_port_and_what_was_not_handed_out() -> None:
    listener = BurstListener(await _tcp_listener())
    port = _port(listener)
    with _pending_clients(port, 3) as clients:
        stream = await listener.accept()  # takes all three; hands out one
        await listener.aclose()
        # The two accepted but not handed out are closed: their clients read EOF.
        assert clients[1].recv(1) == b""
        assert clients[2].recv(1) == b""
        await stream.aclose()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(trio.ClosedResourceError):
        await listener.accept()


async def test_aclose_wakes_a_waiting_accept() -> None:
    listener = BurstListener(await _tcp_listener())
    errors: list[BaseException] = []

    async def accept() -> None:
        try:
            await listener.accept()
        except trio.ClosedResourceError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        await trio.testing.wait_all_tasks_blocked()
        await listener.aclose()
    assert len(errors) == 1


class _FakeRaw:
    """Stands in for the duplicated listening socket: accept(2) answers from a script."""

    def __init__(self, script: list[socket.socket | OSError]) -> None:
        self.script = script

    def accept(self) -> tuple[socket.socket, object]:
        if not self.script:
            raise BlockingIOError(errno.EAGAIN, "no more")
        step = self.script.pop(0)
        if isinstance(step, OSError):
            raise step
        return step, None

    def close(self) -> None:
        pass


def _replace_raw(listener: BurstListener) -> None:
    assert listener._raw is not None
    listener._raw.close()


async def test_connections_that_died_in_the_backlog_are_skipped() -> None:
    listener = BurstListener(await _tcp_listener())
    left, right = socket.socketpair()
    _replace_raw(listener)
    listener._raw = _FakeRaw(  # type: ignore[assignment]
        [OSError(errno.ECONNABORTED, "aborted"), left, OSError(errno.EPROTO, "proto")]
    )
    listener._accept_pending()
    assert list(listener._ready) == [left]
    await listener.aclose()
    right.close()


async def test_a_resource_error_comes_after_what_was_accepted() -> None:
    listener = BurstListener(await _tcp_listener())
    left, right = socket.socketpair()
    emfile = OSError(errno.EMFILE, "Too many open files")
    _replace_raw(listener)
    listener._raw = _FakeRaw([left, emfile, emfile])  # type: ignore[assignment]
    listener._accept_pending()  # the error waits: one connection to serve first
    assert list(listener._ready) == [left]
    listener._ready.clear()
    with pytest.raises(OSError, match="Too many open files"):
        listener._accept_pending()
    left.close()
    right.close()
    await listener.aclose()


async def test_websocket_server_accepts_plain_tcp_listeners_in_bursts() -> None:
    tcp = await _tcp_listener()
    started = 0

    async def handler(request: WebSocketRequest) -> None:
        nonlocal started
        started += 1
        await trio.sleep_forever()

    server = WebSocketServer(handler, [tcp], connect_timeout=5)
    assert server.listeners == [listener_endpoint(tcp)]
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        with _pending_clients(server.port, PENDING):
            # Every connection's handler task starts within a few batches.
            async with _ticking() as ticks:
                with trio.fail_after(5):
                    while (
                        len(server._nursery.child_tasks if server._nursery else ()) < PENDING + 1
                    ):
                        await trio.lowlevel.checkpoint()
                used = ticks()
            assert used <= 4
            await server.aclose()
    assert started == 0  # none of them sent a handshake


# -- serve_listeners -------------------------------------------------------------------------


class _ScriptedListener(trio.abc.Listener[trio.abc.Stream]):
    """Accepts from a script: streams to hand out, or OSErrors to raise; then waits forever."""

    def __init__(self, script: list[trio.abc.Stream | OSError]) -> None:
        self.script = script
        self.closed = False

    async def accept(self) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        if not self.script:
            await trio.sleep_forever()
        step = self.script.pop(0)
        if isinstance(step, OSError):
            raise step
        return step

    async def aclose(self) -> None:
        self.closed = True
        await trio.lowlevel.checkpoint()


async def test_serve_listeners_runs_a_handler_per_stream_and_closes_each(
    autojump_clock: trio.abc.Clock,
) -> None:
    tcp_client, tcp_server = await _tcp_stream_pair()
    memory_client, memory_server = trio.testing.memory_stream_pair()
    listener = _ScriptedListener([tcp_server, memory_server])
    handled: list[trio.abc.Stream] = []

    async def handler(stream: trio.abc.Stream) -> None:
        handled.append(stream)
        await stream.send_all(b"hi")

    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_listeners, handler, [listener], handler_nursery=nursery))
        await trio.sleep(1)
        assert handled == [tcp_server, memory_server]
        # Each stream was closed after its handler: the clients read "hi", then EOF.
        assert await _read_to_eof(tcp_client) == b"hi"
        assert await _read_to_eof(memory_client) == b"hi"
        nursery.cancel_scope.cancel()
    assert listener.closed  # closed when serving ends
    await tcp_client.aclose()


async def test_serve_listeners_closes_the_stream_of_a_handler_that_raises() -> None:
    client, server = trio.testing.memory_stream_pair()
    listener = _ScriptedListener([server])

    async def handler(stream: trio.abc.Stream) -> None:
        raise RuntimeError("handler bug")

    with pytest.raises(BaseExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(serve_listeners, handler, [listener], handler_nursery=nursery)
            )
    assert caught.group_contains(RuntimeError, match="handler bug", depth=1)
    assert await _read_to_eof(client) == b""


async def test_serve_listeners_retries_after_running_out_of_descriptors(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    client, server = trio.testing.memory_stream_pair()
    emfile = OSError(errno.EMFILE, "Too many open files")
    listener = _ScriptedListener([emfile, emfile, server])
    handled = trio.Event()

    async def handler(stream: trio.abc.Stream) -> None:
        handled.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_listeners, handler, [listener], handler_nursery=nursery))
        start = trio.current_time()
        await handled.wait()
        assert trio.current_time() - start == pytest.approx(0.2, abs=0.05)
        nursery.cancel_scope.cancel()
    errors = [r.getMessage() for r in caplog.records if r.name == "trio_wsext.server"]
    assert errors == ["accept failed: EMFILE (Too many open files); retrying in 0.1 seconds"] * 2
    await client.aclose()


async def test_serve_listeners_ends_on_another_accept_error() -> None:
    listener = _ScriptedListener([OSError(errno.EBADF, "Bad file descriptor")])

    async def handler(stream: trio.abc.Stream) -> None:
        raise AssertionError("never called")

    with pytest.raises(BaseExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(serve_listeners, handler, [listener], handler_nursery=nursery)
            )
    assert caught.group_contains(OSError, match="Bad file descriptor")
    assert listener.closed


async def _tcp_stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    tcp = await _tcp_listener()
    client = await trio.open_tcp_stream("127.0.0.1", _port(tcp))
    server = await tcp.accept()
    await tcp.aclose()
    return client, server


async def _read_to_eof(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(100):
            data += chunk
    return data
