"""Graceful shutdown: cancelling serve_websocket, or server.aclose(), closes with 1001."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
from functools import partial

import pytest
import trio
import trio.testing

from trio_wsext import (
    ConnectionClosed,
    WebSocketRequest,
    WebSocketServer,
    open_websocket,
    serve_websocket,
)
from trio_wsext.connection import WebSocketConnection
from trio_wsext.extensions.base import Extension
from trio_wsext.frames import Frame, Opcode
from trio_wsext.options import ConnectionOptions


class _Handlers:
    """Handlers that record how their connection ended."""

    def __init__(self, expected: int = 1) -> None:
        self.closed_with: list[int] = []
        self.accepted = 0
        self.expected = expected
        self.all_accepted = trio.Event()

    def _count(self) -> None:
        self.accepted += 1
        if self.accepted == self.expected:
            self.all_accepted.set()

    async def wait_for_close(self, request: WebSocketRequest) -> None:
        ws = await request.accept()
        self._count()
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed as exc:
            self.closed_with.append(exc.reason.code)

    async def ignore_the_close(self, request: WebSocketRequest) -> None:
        await request.accept()
        self._count()
        await trio.sleep_forever()


async def _client_close_code(port: int, ready: trio.Event, codes: list[int]) -> None:
    async with open_websocket("127.0.0.1", port, ping_interval=None) as ws:
        ready.set()
        with pytest.raises(ConnectionClosed) as caught:
            await ws.get_message()
        codes.append(caught.value.reason.code)


@pytest.mark.parametrize("how", ["cancel", "aclose"])
async def test_shutdown_closes_every_connection_with_1001_and_waits_for_handlers(how: str) -> None:
    """Clients get 1001, handlers see ConnectionClosed(1001) and return, then the server ends."""
    handlers = _Handlers(expected=3)
    client_codes: list[int] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            serve_scope = trio.CancelScope()

            async def serve(*, task_status: trio.TaskStatus[WebSocketServer]) -> None:
                with serve_scope:
                    await serve_websocket(
                        handlers.wait_for_close, "127.0.0.1", 0, None, task_status=task_status
                    )

            server: WebSocketServer = await nursery.start(serve)
            async with trio.open_nursery() as clients:
                for _ in range(3):
                    ready = trio.Event()
                    clients.start_soon(_client_close_code, server.port, ready, client_codes)
                    await ready.wait()
                await handlers.all_accepted.wait()
                if how == "cancel":
                    serve_scope.cancel()
                else:
                    await server.aclose()
                    assert handlers.closed_with == [1001] * 3  # aclose waited for them
    assert client_codes == [1001] * 3
    assert handlers.closed_with == [1001] * 3


async def test_handler_that_ignores_the_close_is_cancelled_after_disconnect_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A handler still running at disconnect_timeout is cancelled; shutdown still ends."""
    handlers = _Handlers()
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(
                serve_websocket,
                handlers.ignore_the_close,
                "127.0.0.1",
                0,
                None,
                disconnect_timeout=3,
                ping_interval=None,
            )
        )
        async with open_websocket("127.0.0.1", server.port, ping_interval=None) as ws:
            await handlers.all_accepted.wait()
            start = trio.current_time()
            await server.aclose()
            assert trio.current_time() - start == pytest.approx(3, abs=0.5)
            assert ws.closed is not None
            assert ws.closed.code == 1001


async def test_no_new_connection_after_shutdown() -> None:
    """Once shut down, the port no longer accepts."""
    handlers = _Handlers()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(
                serve_websocket, handlers.wait_for_close, "127.0.0.1", 0, None
            )
            port = server.port
            await server.aclose()
            with pytest.raises(OSError, match=r"[Cc]onnect|refused"):
                await trio.open_tcp_stream("127.0.0.1", port)
            await server.aclose()  # a second call returns at once


async def test_shutdown_drops_a_handshake_in_progress_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A client still sending its request is dropped, not waited for until connect_timeout."""
    handlers = _Handlers()
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(
                serve_websocket,
                handlers.wait_for_close,
                "127.0.0.1",
                0,
                None,
                connect_timeout=30,
                disconnect_timeout=30,
            )
        )
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half a request
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await server.aclose()
        assert trio.current_time() - start < 1
        with trio.fail_after(1):
            assert await stream.receive_some(100) == b""
        await stream.aclose()
    assert handlers.accepted == 0


# -- bounded answers and logging -----------------------------------------------------------


async def _handshake_then_never_read(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    return stream


async def test_reject_to_a_client_that_never_reads_is_bounded_by_disconnect_timeout() -> None:
    """reject() with a 32 MiB body to a client that reads nothing returns within the timeout."""
    returned = trio.Event()

    async def reject_big(request: WebSocketRequest) -> None:
        await request.reject(403, body=bytes(32 * 2**20))
        returned.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(
                partial(serve_websocket, reject_big, "127.0.0.1", 0, None, disconnect_timeout=1)
            )
            stream = await _handshake_then_never_read(server.port)
            start = trio.current_time()
            await returned.wait()
            assert trio.current_time() - start < 3
            await stream.aclose()
            nursery.cancel_scope.cancel()


async def test_connection_closed_inside_an_exception_group_is_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler whose nursery raises ExceptionGroup[ConnectionClosed] is not logged as failed."""
    done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.get_message)
                nursery.start_soon(ws.get_message)
        finally:
            done.set()

    with trio.fail_after(10), caplog.at_level(logging.DEBUG, logger="trio_wsext.server"):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(
                partial(serve_websocket, handler, "127.0.0.1", 0, None)
            )
            async with open_websocket("127.0.0.1", server.port, ping_interval=None):
                pass  # closes with 1000: both get_message calls raise ConnectionClosed
            await done.wait()
            nursery.cancel_scope.cancel()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


class _BrokenDecoder(Extension):
    def __init__(self) -> None:
        super().__init__("x-broken")

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode is Opcode.TEXT:
            raise KeyError("decoder bug")
        return frame


async def test_extension_that_raises_in_decode_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The peer gets 1011; the server's log shows the extension's error, once, at ERROR."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = WebSocketConnection(
        client_stream, is_client=True, options=ConnectionOptions(ping_interval=None)
    )
    server = WebSocketConnection(
        server_stream,
        is_client=False,
        extensions=[_BrokenDecoder()],
        options=ConnectionOptions(ping_interval=None),
    )
    with caplog.at_level(logging.ERROR, logger="trio_wsext.connection"):
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            await nursery.start(server.run)
            await client.send_message("boom")
            with pytest.raises(ConnectionClosed, match=r"^1011"):
                await client.get_message()
            nursery.cancel_scope.cancel()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], KeyError)
    # Named as its connection: the memory stream has no address, so "conn N" alone.
    assert errors[0].getMessage().startswith(f"{server._engine.log_name}: ")
    assert server._engine.log_name.startswith("conn ")


CTRL_C_SERVER = """
import sys
import trio
from trio_wsext import WebSocketRequest, serve_websocket

async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)

try:
    trio.run(serve_websocket, echo, "127.0.0.1", int(sys.argv[1]), None)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


async def test_ctrl_c_closes_with_1001_and_comes_out_as_a_plain_keyboard_interrupt() -> None:
    """Ctrl-C: clients see 1001; ``except KeyboardInterrupt`` catches it (no exception group)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", CTRL_C_SERVER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        with trio.fail_after(30):
            while True:  # until it listens
                try:
                    probe = await trio.open_tcp_stream("127.0.0.1", port)
                except OSError:
                    await trio.sleep(0.05)
                else:
                    await probe.aclose()
                    break
            async with open_websocket("127.0.0.1", port, "/", use_ssl=False) as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"
                process.send_signal(signal.SIGINT)
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
                assert caught.value.reason.code == 1001
            assert await process.wait() == 0
            rest = b""
            while chunk := await process.stdout.receive_some(100):
                rest += chunk
            errors = b""
            while chunk := await process.stderr.receive_some(4096):
                errors += chunk
        assert rest == b"interrupted\n"
        assert errors == b""
    finally:
        process.kill()
