"""What every library adapter provides: an echo server and a client connection.

Strategy: an adapter is the thinnest layer that lets a workload drive one
library with that library's own API and defaults. The client side is a
:class:`Connection`: two callables, usually the library's own bound methods
(``ws.send`` / ``ws.recv``), so the harness adds no Python frame per message.
The server side is an echo server that sends each message back as it came.
Only the size limit is raised above each library's default (the 1 MiB and
16 MiB workloads need it); everything else, compression settings included,
is the library's default, except that "compression on" turns permessage-
deflate on where a library has it off by default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import ClassVar, Final

import attrs

from benchmarks.runtime import RuntimeName

MAX_SIZE: Final = 64 * 2**20
"""Message size limit given to every library: above the 16 MiB latency workload."""

HOST: Final = "127.0.0.1"
"""Every server listens here only; nothing leaves the machine."""


@attrs.frozen
class Connection:
    """An open client connection, as the workloads see it."""

    send: Callable[[str], Awaitable[object]]
    """Send one text message (may wait for flow control)."""

    recv: Callable[[], Awaitable[str | bytes]]
    """Receive the next whole message."""


ReadyCallback = Callable[[int], None]
"""Called by :meth:`Adapter.serve` with the listening port once the server accepts."""


class Adapter(ABC):
    """One WebSocket library (or a plain TCP ceiling), client and server."""

    name: ClassVar[str]
    """Column name in the table, e.g. ``"websockets.trio"``."""

    runtime: ClassVar[RuntimeName]
    """Event loop the library runs on."""

    distribution: ClassVar[str]
    """PyPI distribution whose version the report prints ("" for the stdlib)."""

    compression: ClassVar[bool] = True
    """Whether the library can do permessage-deflate at all."""

    default_compression: ClassVar[bool] = False
    """Whether its client and server negotiate permessage-deflate with default settings."""

    note: ClassVar[str] = ""
    """A footnote for the report (how compression is obtained, an API choice)."""

    websocket: ClassVar[bool] = True
    """False for the plain TCP ceilings, which echo bytes, not WebSocket messages."""

    @abstractmethod
    def connect(self, url: str, *, compression: bool) -> AbstractAsyncContextManager[Connection]:
        """Open a client connection to ``url``; closes it on exit.

        Args:
            url: ``ws://127.0.0.1:<port>/``.
            compression: Offer permessage-deflate with the library's default parameters.
        """

    @abstractmethod
    async def serve(self, ready: ReadyCallback, *, compression: bool) -> None:
        """Run an echo server on 127.0.0.1, an OS-chosen port, until cancelled or killed.

        Args:
            ready: Called once with the port when connections are accepted.
            compression: Accept permessage-deflate with the library's default parameters.
        """
