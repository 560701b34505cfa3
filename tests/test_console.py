"""Tests of trio_wsext.cli.console: the interactive client of ``connect``."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from trio_wsext import WebSocketRequest, serve_websocket
from trio_wsext.cli.console import read_lines, run_console
from trio_wsext.cli.echo import serve_echo


class Pipe:
    """An OS pipe standing in for standard input."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()
        self._write_open = True

    def write(self, data: bytes) -> None:
        os.write(self._write_fd, data)

    def close_write(self) -> None:
        """Close the write end: the reader sees end of file."""
        if self._write_open:
            self._write_open = False
            os.close(self._write_fd)


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    """A pipe whose write end is closed afterwards.

    The read end is left to the garbage of the test process on purpose: a
    worker thread abandoned in ``os.read`` on it may still be running, and
    closing the descriptor would let it read whatever file reuses the number.
    Closing the write end lets that thread finish.
    """
    pipe = Pipe()
    yield pipe
    pipe.close_write()


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    """An echo server on 127.0.0.1."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_echo, "127.0.0.1", 0)
        yield f"ws://127.0.0.1:{server.port}/"
        nursery.cancel_scope.cancel()


async def collect_lines(fd: int) -> list[str]:
    return [line async for line in read_lines(fd)]


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", []),
        (b"one\n", ["one"]),
        (b"one\ntwo", ["one", "two"]),
        (b"crlf\r\n\n", ["crlf", ""]),
        ("caf\u00e9\n".encode(), ["caf\u00e9"]),
        (b"bad \xff byte\n", ["bad \ufffd byte"]),
    ],
    ids=["empty", "one-line", "no-final-newline", "crlf-and-empty-line", "utf-8", "invalid-utf-8"],
)
async def test_read_lines_splits_and_decodes(pipe: Pipe, data: bytes, lines: list[str]) -> None:
    """Lines lose their endings, a last partial line counts, bad UTF-8 becomes U+FFFD."""
    pipe.write(data)
    pipe.close_write()
    with trio.fail_after(5):
        assert await collect_lines(pipe.read_fd) == lines


async def test_read_lines_joins_characters_and_lines_split_across_reads() -> None:
    """A UTF-8 character or a line split between two reads comes out whole."""
    chunks = [b"caf\xc3", b"\xa9 au ", b"lait\nnext", b"\n", b""]

    def read(fd: int, size: int) -> bytes:
        assert (fd, size) == (7, 65536)
        return chunks.pop(0)

    with trio.fail_after(5):
        lines = [line async for line in read_lines(7, read=read)]
    assert lines == ["caf\u00e9 au lait", "next"]


async def test_run_console_sends_lines_and_prints_echoes(pipe: Pipe, echo_url: str) -> None:
    """Each input line is sent; each echo is printed; end of input closes with 1000."""
    pipe.write(b"hello\nworld\n")
    pipe.close_write()
    out = io.StringIO()
    with trio.fail_after(10):
        status = await run_console(echo_url, stdin_fd=pipe.read_fd, stdout=out)
    assert status == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Connected to {echo_url}."
    assert lines[1].startswith("Extensions: permessage-deflate")
    # The echoes that arrived before the close handshake ended are printed.
    assert lines[-1] == "Connection closed: 1000 (NORMAL_CLOSURE)."
    assert set(lines[2:-1]) <= {"< hello", "< world"}


async def test_run_console_reports_an_abnormal_close_with_status_1(pipe: Pipe) -> None:
    """A server closing with 1011 ends the session with status 1 and says so."""

    async def fail(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(b"\x01\x02")
        await ws.aclose(1011, "oops")

    # The input stays open: the server's close ends the session.
    out = io.StringIO()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, fail, "127.0.0.1", 0, None)
            url = f"ws://127.0.0.1:{server.port}/"
            status = await run_console(url, stdin_fd=pipe.read_fd, stdout=out, compression=None)
            nursery.cancel_scope.cancel()
    assert status == 1
    assert out.getvalue().splitlines() == [
        f"Connected to {url}.",
        "Extensions: none",
        "< (binary) 0102",
        "Connection closed: 1011 (INTERNAL_ERROR) oops.",
    ]
