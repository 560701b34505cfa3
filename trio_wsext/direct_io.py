"""Reading and writing a plain TCP socket without trio's stream wrappers.

Strategy: a :class:`trio.SocketStream`'s socket is non-blocking, so
``os.read``/``os.write`` on its file descriptor do what trio's
``receive_some``/``send_all`` do, minus their per-call work (a conflict
detector, a failed system call before waiting, a scheduler round after a
send that completed). The connection engine reads and writes this way, and
the server reads the opening handshake and writes its 101 answer this way:
measured, these wrappers were about a tenth of a server's time under
connect/close churn. Any other stream (TLS, in-memory pairs, a Unix socket
wrapped otherwise) gets a file descriptor of -1 and goes through its own
methods.
"""

from __future__ import annotations

import os
from typing import Final

import trio
from trio.lowlevel import checkpoint_if_cancelled

__all__ = ["BLOCKED", "receive_some", "send_all", "socket_fd"]

#: What a non-blocking socket raises when it has nothing to give or no room.
BLOCKED: Final = (BlockingIOError, InterruptedError)


def socket_fd(stream: trio.abc.Stream) -> int:
    """The file descriptor of a plain TCP stream that may be used directly, or -1.

    Only a :class:`trio.SocketStream` on a POSIX system qualifies; any other
    stream goes through its own ``receive_some``/``send_all``.
    """
    if os.name != "posix" or type(stream) is not trio.SocketStream:
        return -1
    try:
        return stream.socket.fileno()
    except OSError:  # pragma: no cover - a stream already closed
        return -1


async def receive_some(
    stream: trio.abc.Stream, fd: int, size: int, *, wait_first: bool = True
) -> bytes:
    """Read at most ``size`` bytes from ``stream`` (``b""`` at EOF), waiting for them.

    With ``wait_first`` a socket is read only once it is readable: for one
    whose data is probably not there yet, no failed read. Without it, a read
    is tried at once, and a wait follows only if it finds nothing: for data
    that probably came already (a request behind a connection that waited in
    the accept queue), no scheduler round. Cancellation reads nothing.

    Raises:
        trio.BrokenResourceError: the read failed (a reset).
        trio.ClosedResourceError: the stream was closed meanwhile.
    """
    if fd < 0:
        return bytes(await stream.receive_some(size))
    if wait_first:
        await trio.lowlevel.wait_readable(fd)
    else:
        await checkpoint_if_cancelled()
    while True:
        try:
            return os.read(fd, size)
        except BLOCKED:
            pass
        except OSError as exc:
            raise trio.BrokenResourceError(f"socket read failed: {exc}") from exc
        await trio.lowlevel.wait_readable(fd)


async def send_all(stream: trio.abc.Stream, fd: int, data: bytes) -> None:
    """Send all of ``data``: straight to the socket, then whatever it did not take.

    Cancellation may leave part of ``data`` sent, as with ``send_all``.

    Raises:
        trio.BrokenResourceError: the write failed (a reset, a closed peer).
        trio.ClosedResourceError: the stream was closed meanwhile.
    """
    if fd >= 0:
        await checkpoint_if_cancelled()
        try:
            written = os.write(fd, data)
        except BLOCKED:
            written = 0
        except OSError as exc:
            raise trio.BrokenResourceError(f"socket write failed: {exc}") from exc
        if written == len(data):
            return
        data = data[written:]
    await stream.send_all(data)
