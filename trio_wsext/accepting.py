"""Accepting TCP connections in bursts, so that a busy server still answers newcomers.

Strategy: trio's :class:`trio.SocketListener` accepts one connection per
call, and every call is a schedule point. trio runs its tasks in batches
(every runnable task once per batch), so the accept loop takes one
connection per batch. Under load a batch is long (2,000 busy connections
each handle a message or more), and connections queue in the kernel's
backlog for seconds: measured, 1,000 clients connecting at once to a server
already busy with their first messages waited up to 11.7 s for their
handshake, against 1.5 s with asyncio, whose loop accepts up to 100
connections per readiness event.

:class:`BurstListener` does what asyncio does: when the listening socket is
readable, it accepts every pending connection (up to :data:`ACCEPT_BURST`)
at once, and hands them out from :meth:`~BurstListener.accept` without a
schedule point each (a cancellation point still), so that
:func:`trio.serve_listeners` starts up to that many handler tasks per batch.
It works under :class:`trio.SSLListener` as any transport listener does.

:func:`serve_listeners` is :func:`trio.serve_listeners` less one cost per
connection: trio's closes every stream with ``aclose_forcefully`` once its
handler returns, two scheduler rounds even when the handler closed it
already; a connection's whole life under connect/close churn is about ten.
Here a plain TCP stream is closed without a round (closing a socket cannot
block), and others as trio does.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, final

import trio
from trio.lowlevel import checkpoint_if_cancelled

__all__ = ["ACCEPT_BURST", "BurstListener", "serve_listeners"]

logger = logging.getLogger("trio_wsext.server")

#: The most connections accepted per wake-up of the listening socket (as
#: asyncio's ``backlog`` default, which bounds its accepts per event too).
ACCEPT_BURST: Final = 100

# What accept(2) may report about one connection that died in the backlog
# (trio's SocketListener ignores the same): try the next one.
_IGNORED_ACCEPT_ERRNOS: Final = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "EPROTO",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "EPERM",
    )
    if hasattr(errno, name)
)


#: What accept(2) reports when the process or the system is out of a resource
#: (file descriptors, memory): wait a little and try again, as trio does.
_CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

#: Seconds to wait after such an error (trio.serve_listeners' own figure).
CAPACITY_RETRY_SECONDS: Final = 0.1


@final
class BurstListener(trio.abc.Listener[trio.SocketStream]):
    """A TCP listener that accepts every pending connection (up to a burst) per wake-up.

    Wraps a :class:`trio.SocketListener` and takes it over: closing this
    closes that. Streams are :class:`trio.SocketStream` objects, set up as
    ``SocketListener`` sets them up (``TCP_NODELAY`` and all).

    Args:
        listener: the listener to accept from.
        burst: the most connections accepted per wake-up.
    """

    def __init__(self, listener: trio.SocketListener, *, burst: int = ACCEPT_BURST) -> None:
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.transport_listener = listener
        self._burst = burst
        self._ready: deque[socket.socket] = deque()
        # A second handle on the listening socket, for accept(2) calls that
        # need no schedule point each. dup(2) shares the open file (and its
        # O_NONBLOCK flag) with trio's socket, which stays the one waited on.
        sock = listener.socket
        self._raw: socket.socket | None = socket.fromfd(sock.fileno(), sock.family, sock.type)
        self._raw.setblocking(False)

    @property
    def socket(self) -> trio.socket.SocketType:
        """The listening socket (trio's), as :attr:`trio.SocketListener.socket`."""
        return self.transport_listener.socket

    async def accept(self) -> trio.SocketStream:
        """Return the next connection; wait for the socket only when none is pending.

        A connection taken from those already accepted costs a cancellation
        point but no schedule point: the caller may start a burst's handlers
        in one batch.

        Raises:
            trio.ClosedResourceError: the listener was closed.
            OSError: accept(2) failed for want of resources (``EMFILE``,
                ``ENFILE``, ``ENOBUFS``, ``ENOMEM``), as from
                :meth:`trio.SocketListener.accept`; :func:`serve_listeners` (as
                trio's) logs it and retries.

        Cancellation loses nothing: connections already accepted wait for the
        next call (or are closed by :meth:`aclose`).
        """
        if self._ready:
            await checkpoint_if_cancelled()
        else:
            while not self._ready:
                if self._raw is None:
                    await trio.lowlevel.checkpoint()
                    raise trio.ClosedResourceError("the listener was closed")
                await trio.lowlevel.wait_readable(self.socket)
                self._accept_pending()
        return trio.SocketStream(trio.socket.from_stdlib_socket(self._ready.popleft()))

    def _accept_pending(self) -> None:
        # Accept up to a burst without waiting. A resource error with nothing
        # accepted yet is raised; after some, they are served first and the
        # next call meets the error again.
        raw = self._raw
        if raw is None or self.socket.fileno() < 0:
            raise trio.ClosedResourceError("the listener was closed")
        while len(self._ready) < self._burst:
            try:
                sock, _ = raw.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _IGNORED_ACCEPT_ERRNOS:
                    continue
                if self._ready:
                    return
                raise
            self._ready.append(sock)

    async def aclose(self) -> None:
        """Close the listening socket and every connection accepted but not handed out."""
        while self._ready:
            self._ready.popleft().close()
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        await self.transport_listener.aclose()


StreamHandler = Callable[[trio.abc.Stream], Awaitable[object]]
"""``async def handler(stream)``: serves one accepted stream."""


async def close_stream(stream: trio.abc.Stream) -> None:
    """Close ``stream`` at once, even when cancelled: a plain socket without a scheduler round."""
    if type(stream) is trio.SocketStream:
        stream.socket.close()
    else:
        await trio.aclose_forcefully(stream)


async def _run_handler(handler: StreamHandler, stream: trio.abc.Stream) -> None:
    try:
        await handler(stream)
    finally:
        await close_stream(stream)


async def _serve_one_listener(
    listener: trio.abc.Listener[trio.abc.Stream],
    handler: StreamHandler,
    handler_nursery: trio.Nursery,
) -> None:
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _CAPACITY_ERRNOS:
                    raise
                logger.error(
                    "accept failed: %s (%s); retrying in %s seconds",
                    errno.errorcode.get(exc.errno or 0, exc.errno),
                    os.strerror(exc.errno or 0),
                    CAPACITY_RETRY_SECONDS,
                )
                await trio.sleep(CAPACITY_RETRY_SECONDS)
            else:
                handler_nursery.start_soon(_run_handler, handler, stream)


async def serve_listeners(
    handler: StreamHandler,
    listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
    *,
    handler_nursery: trio.Nursery,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept on every listener and run ``handler(stream)`` in ``handler_nursery`` for each.

    As :func:`trio.serve_listeners`: runs until cancelled, closes each
    listener when it ends, and closes each stream when its handler returns
    or raises. ``EMFILE``, ``ENFILE``, ``ENOMEM`` and ``ENOBUFS`` from accept
    are logged (``trio_wsext.server``, ERROR) and retried after 100 ms; any
    other error ends it.
    """
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_serve_one_listener, listener, handler, handler_nursery)
        task_status.started()
