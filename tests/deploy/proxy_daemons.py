"""The forward proxies of the client's proxy tests: tinyproxy, Dante, a TLS front for tinyproxy.

tinyproxy (HTTP CONNECT) and Dante's danted (SOCKS 4 and 5) run as foreground
:class:`~tests.deploy.daemons.Daemon` processes from tests/deploy/tinyproxy.conf
and tests/deploy/danted.conf, each in a directory of its own, listening on
127.0.0.1 only. tinyproxy cannot serve TLS itself, so an ``https://`` proxy is
:func:`serve_tls_front`: TLS on 127.0.0.1, relayed in the clear to tinyproxy,
as stunnel or a load balancer would put it in front.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Final

import trio

from .conftest import free_port, require_program
from .daemons import Daemon, render

__all__ = ["danted_daemon", "serve_tls_front", "tinyproxy_daemon"]

HERE: Final = Path(__file__).parent

#: Bytes read per relay step of the TLS front.
RELAY_SIZE: Final = 65536


def tinyproxy_daemon(
    directory: Path, connect_ports: Sequence[int], auth: tuple[str, str] | None = None
) -> Daemon:
    """Make the tinyproxy daemon for ``directory``; CONNECT may reach ``connect_ports`` only.

    Args:
        directory: where its configuration and output go (created).
        connect_ports: the ports CONNECT is allowed to (tinyproxy answers 403 for others).
        auth: ``(user, password)`` to demand with Basic authentication, or ``None``.

    Returns:
        The daemon, not started: ``await daemon.start()``, then
        ``daemon.ports["proxy"]`` is its port. Kill it when done.
    """
    program = require_program("tinyproxy", "tinyproxy")
    directory.mkdir(parents=True, exist_ok=True)
    template = (HERE / "tinyproxy.conf").read_text()

    def command(ports: Mapping[str, int]) -> list[str]:
        config = directory / "tinyproxy.conf"
        config.write_text(
            render(
                template,
                {
                    "PORT": ports["proxy"],
                    "CONNECT_PORTS": "\n".join(f"ConnectPort {port}" for port in connect_ports),
                    "AUTH": "" if auth is None else f"BasicAuth {auth[0]} {auth[1]}",
                },
            )
        )
        return [program, "-d", "-c", str(config)]

    return Daemon("tinyproxy", directory, command, ["proxy"], allocate=free_port)


def danted_daemon(directory: Path, method: str = "none") -> Daemon:
    """Make the daemon of Dante's SOCKS server for ``directory``, ``socksmethod: method``.

    Args:
        directory: where its configuration, pid file and output go (created).
        method: ``"none"`` or ``"username"``.

    Returns:
        The daemon, not started: ``await daemon.start()``, then
        ``daemon.ports["proxy"]`` is its port. Kill it when done.
    """
    program = require_program("danted", "dante-server")
    directory.mkdir(parents=True, exist_ok=True)
    template = (HERE / "danted.conf").read_text()

    def command(ports: Mapping[str, int]) -> list[str]:
        config = directory / "danted.conf"
        config.write_text(render(template, {"PORT": ports["proxy"], "METHOD": method}))
        # -N 1: one server process; -p: a pid file of its own, not /var/run's.
        return [program, "-f", str(config), "-N", "1", "-p", str(directory / "danted.pid")]

    return Daemon("danted", directory, command, ["proxy"], allocate=free_port)


async def _relay(source: trio.abc.Stream, sink: trio.abc.Stream, done: trio.CancelScope) -> None:
    """Copy ``source`` to ``sink`` until EOF or an error, then end the other direction too."""
    try:
        while data := await source.receive_some(RELAY_SIZE):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.cancel()


async def serve_tls_front(
    backend_port: int,
    ssl_context: ssl.SSLContext,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept TLS on 127.0.0.1 and relay each connection to 127.0.0.1:``backend_port``.

    ``task_status.started()`` gets the port. Runs until cancelled; each
    connection ends when either side closes.
    """

    async def handle(stream: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            backend = await trio.open_tcp_stream("127.0.0.1", backend_port)
            async with backend, trio.open_nursery() as nursery:
                nursery.start_soon(_relay, stream, backend, nursery.cancel_scope)
                nursery.start_soon(_relay, backend, stream, nursery.cancel_scope)
        except (trio.BrokenResourceError, OSError):
            pass  # a client that failed the TLS handshake (the untrusted-CA test)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_ssl_over_tcp, handle, 0, ssl_context, host="127.0.0.1")
        )
        task_status.started(listeners[0].transport_listener.socket.getsockname()[1])
