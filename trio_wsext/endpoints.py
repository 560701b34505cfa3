"""Where a connection runs: the addresses of streams and listeners, as trio-websocket gives them.

Strategy: TCP and TLS streams and listeners have socket addresses, which become
an :class:`Endpoint`. A Unix socket is named as nginx names it in its logs:
``"unix:/run/app.sock"`` for its path, and ``"unix:"`` for the unnamed end
(the client's, as a rule). Anything else (an in-memory stream in a test) is
described by its ``repr``, so a caller always gets something to log.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final

import attrs
import trio

from .accepting import BurstListener

__all__ = [
    "Endpoint",
    "listener_endpoint",
    "stream_endpoint",
    "stream_endpoints",
    "unix_endpoint",
]

#: RFC 6455 §3: "the default for "ws" is port 80, while the default for "wss" is port 443".
_DEFAULT_PORTS: Final = {False: 80, True: 443}

#: The Unix socket family, or -1 where there is none (Windows before 10).
_AF_UNIX: Final[int] = getattr(socket, "AF_UNIX", -1)


@attrs.frozen
class Endpoint:
    """One end of a TCP connection, as ``ws.local``/``ws.remote`` and ``server.listeners`` give it.

    Args:
        address: the IP address (a string is converted).
        port: the TCP port.
        is_ssl: whether TLS runs over this connection.
    """

    address: ipaddress.IPv4Address | ipaddress.IPv6Address = attrs.field(
        converter=ipaddress.ip_address
    )
    port: int
    is_ssl: bool

    def __repr__(self) -> str:
        """Read as trio-websocket's ``Endpoint`` does, so log lines stay the same."""
        return f'Endpoint(address="{self.address}", port={self.port}, is_ssl={self.is_ssl})'

    @property
    def url(self) -> str:
        """The endpoint as a ``ws://`` or ``wss://`` URL, default ports left out."""
        scheme = "wss" if self.is_ssl else "ws"
        host = str(self.address) if self.address.version == 4 else f"[{self.address}]"
        if self.port == _DEFAULT_PORTS[self.is_ssl]:
            return f"{scheme}://{host}"
        return f"{scheme}://{host}:{self.port}"


def unix_endpoint(address: str | bytes) -> str:
    """Name a Unix socket address: ``"unix:"`` and its path (``@name`` in Linux's abstract space).

    An unnamed socket (a client's, unless it bound one) gives ``"unix:"``.
    """
    if isinstance(address, bytes):  # Linux's abstract namespace: a leading NUL byte
        address = "@" + address[1:].decode("utf-8", "backslashreplace")
    elif address.startswith("\0"):
        address = "@" + address[1:]
    return f"unix:{address}"


def stream_endpoint(stream: trio.abc.Stream, *, local: bool) -> Endpoint | str:
    """Return the local or remote :class:`Endpoint` of a TCP/TLS stream, else its ``repr``.

    A Unix socket stream gives a ``"unix:..."`` string (see :func:`unix_endpoint`).
    """
    is_ssl = False
    inner: object = stream
    while isinstance(inner, trio.SSLStream):  # TLS in TLS: wss through an https:// proxy
        inner = inner.transport_stream
        is_ssl = True
    if isinstance(inner, trio.SocketStream):
        try:
            name = inner.socket.getsockname() if local else inner.socket.getpeername()
            if inner.socket.family == _AF_UNIX:
                return unix_endpoint(name)
            return Endpoint(name[0], name[1], is_ssl)
        except (OSError, ValueError, IndexError, TypeError):
            pass  # closed already, or not an IP socket
    return repr(stream)


def stream_endpoints(stream: trio.abc.Stream) -> tuple[Endpoint | str, Endpoint | str]:
    """Return a stream's ``(local, remote)`` endpoints (see :func:`stream_endpoint`)."""
    return stream_endpoint(stream, local=True), stream_endpoint(stream, local=False)


def listener_endpoint(listener: trio.abc.Listener[trio.abc.Stream]) -> Endpoint | str:
    """Return the :class:`Endpoint` a TCP/TLS listener is bound to, else its ``repr``.

    A Unix socket listener gives ``"unix:"`` and its path.
    """
    is_ssl = False
    inner: object = listener
    if isinstance(listener, trio.SSLListener):
        inner = listener.transport_listener
        is_ssl = True
    if isinstance(inner, BurstListener):
        inner = inner.transport_listener
    if isinstance(inner, trio.SocketListener):
        try:
            if inner.socket.family == _AF_UNIX:
                return unix_endpoint(inner.socket.getsockname())
            address, port, *_ = inner.socket.getsockname()
            return Endpoint(address, port, is_ssl)
        except (OSError, ValueError, TypeError):
            pass  # closed already, or not an IP socket
    return repr(listener)
