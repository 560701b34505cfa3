"""The client entry points: open_websocket[_url], connect_websocket[_url], wrap_client_stream.

Strategy: :func:`connect_websocket` opens the TCP (and TLS) stream, runs the
sans-I/O :class:`~trio_wsext.handshake.ClientHandshake` over it, all inside
one ``connect_timeout``, then starts a
:class:`~trio_wsext.connection.WebSocketConnection` in the caller's nursery.
:func:`wrap_client_stream` does the same over a stream the caller opened.
Every failure before the connection runs raises a
:class:`~trio_wsext.exceptions.HandshakeError` (or a subclass) with the
stream closed. :func:`open_websocket` wraps that in its own nursery; since the
connection's tasks never raise, the only exception that can leave it is the
caller's own, which it re-raises unwrapped (no ``ExceptionGroup``).
"""

from __future__ import annotations

import base64
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Final, TypeAlias

import trio

from .connection import RECEIVE_SIZE, WebSocketConnection
from .exceptions import ConnectionTimeout, DisconnectionTimeout, HandshakeError
from .extensions.base import ClientExtensionFactory
from .extensions.permessage_deflate import enable_client_permessage_deflate
from .frames import CloseCode
from .handshake import ClientHandshake, ClientHandshakeResult
from .options import check_connection_options, check_extension_factories, check_ssl_context

__all__ = [
    "connect_websocket",
    "connect_websocket_url",
    "open_websocket",
    "open_websocket_url",
    "wrap_client_stream",
]

ExtraHeaders: TypeAlias = (
    Sequence[tuple[str | bytes, str | bytes]]
    | Mapping[str, str | bytes]
    | Mapping[bytes, str | bytes]
    | None
)

#: RFC 6455 §3: "The port component is OPTIONAL; the default for "ws" is port
#: 80, while the default for "wss" is port 443."
DEFAULT_PORTS: Final = {"ws": 80, "wss": 443}

#: Bytes asked of the stream per read during the handshake; a 101 response is
#: a few hundred bytes, and what follows it goes to the connection.
HANDSHAKE_RECEIVE_SIZE: Final = 65536


def _client_extensions(
    extensions: Sequence[ClientExtensionFactory] | None, compression: str | None
) -> list[ClientExtensionFactory]:
    check_extension_factories(extensions, server=False)
    if compression == "deflate":
        return list(enable_client_permessage_deflate(extensions))
    if compression is None:
        return list(extensions or [])
    raise ValueError(f"compression must be 'deflate' or None, not {compression!r}")


def _ssl_context(use_ssl: bool | ssl.SSLContext) -> ssl.SSLContext | None:
    if isinstance(use_ssl, ssl.SSLContext):
        return use_ssl
    if use_ssl is True:
        return ssl.create_default_context()
    if use_ssl is False:
        return None
    raise TypeError(f"use_ssl must be True, False or an ssl.SSLContext, not {use_ssl!r}")


def parse_url(
    url: str, ssl_context: ssl.SSLContext | None = None
) -> tuple[str, int, str, bool | ssl.SSLContext, str | None]:
    """Split a ``ws://`` or ``wss://`` URL (:rfc:`6455#section-3`) into what a connection needs.

    Args:
        url: the URL, for example ``"wss://[::1]:8443/chat?room=1"``.
        ssl_context: the TLS context for a ``wss`` URL; ``None`` means the
            default context. Not allowed with ``ws``.

    Returns:
        ``(host, port, resource, use_ssl, authorization)``: the host without
        brackets, the port (80/443 by default), the path and query ("/" when
        empty), ``ssl_context`` or a bool, and a ``Basic`` ``Authorization``
        header value when the URL carries ``user:password@``, else ``None``.

    Raises:
        ValueError: another scheme, no host, a bad port, a fragment, or an
            ``ssl_context`` with a ``ws`` URL.
    """
    parts = urllib.parse.urlsplit(str(url))
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"WebSocket URL scheme must be 'ws' or 'wss', not {parts.scheme!r}")
    check_ssl_context("ssl_context", ssl_context)
    if scheme == "ws" and ssl_context is not None:
        raise ValueError("ssl_context must be None for a ws:// URL")
    # RFC 6455 §3: "Fragment identifiers are meaningless in the context of
    # WebSocket URIs and MUST NOT be used on these URIs."
    if parts.fragment or url.endswith("#"):
        raise ValueError(f"WebSocket URL must not have a fragment: {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"WebSocket URL has no host: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"WebSocket URL has an invalid port: {url!r}") from None
    if port is None:
        port = DEFAULT_PORTS[scheme]
    elif port == 0:
        raise ValueError(f"WebSocket URL has an invalid port: {url!r}")
    # RFC 7230 §5.3.1: "If the target URI's path component is empty, the
    # client MUST send "/" as the path within the origin-form of request-target."
    resource = parts.path or "/"
    if parts.query or "?" in url:
        resource += "?" + parts.query
    use_ssl: bool | ssl.SSLContext = ssl_context if ssl_context is not None else scheme == "wss"
    authorization = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        authorization = f"Basic {credentials}"
    return host, port, resource, use_ssl, authorization


def _with_authorization(extra_headers: ExtraHeaders, authorization: str | None) -> ExtraHeaders:
    if authorization is None:
        return extra_headers
    if extra_headers is None:
        pairs: list[tuple[str | bytes, str | bytes]] = []
    elif isinstance(extra_headers, Mapping):
        pairs = list(extra_headers.items())
    else:
        pairs = list(extra_headers)
    names = {(n.decode("latin-1") if isinstance(n, bytes) else n).lower() for n, _ in pairs}
    if "authorization" not in names:  # an explicit header wins over the URL's credentials
        pairs.append(("Authorization", authorization))
    return pairs


async def _handshake(stream: trio.abc.Stream, handshake: ClientHandshake) -> ClientHandshakeResult:
    await stream.send_all(handshake.request_bytes())
    while True:
        data = await stream.receive_some(HANDSHAKE_RECEIVE_SIZE)
        result = handshake.receive_data(bytes(data))
        if result is not None:
            return result
        if not data:  # pragma: no cover - receive_data(b"") raises first; never loop on EOF
            raise HandshakeError("connection closed before the handshake response was complete")


def _split_host(host: str) -> tuple[str, int | None]:
    """Split a ``Host`` value, ``name``, ``name:port``, ``[v6]:port`` or a bare IPv6 address."""
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket:
            raise ValueError(f"host has an unclosed '[': {host!r}")
    elif host.count(":") == 1:
        name, colon, rest = host.partition(":")
        rest = colon + rest
    else:
        name, rest = host, ""  # a name, or an IPv6 address without brackets
    if not rest:
        return name, None
    digits = rest[1:]
    if not rest.startswith(":") or not digits.isascii() or not digits.isdigit():
        raise ValueError(
            f"host must be a host name or address with an optional :port, not {host!r}"
        )
    port = int(digits)
    if not 1 <= port <= 65535:
        raise ValueError(f"host has a port out of range 1-65535: {host!r}")
    return name, port


async def _start_client(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    handshake: ClientHandshake,
    resource: str,
    *,
    where: str,
    deadline: float,
    connect_timeout: float,
    message_queue_size: int,
    max_message_size: int | None,
    receive_buffer_size: int | None,
    disconnect_timeout: float,
    ping_interval: float | None,
    ping_timeout: float | None,
) -> WebSocketConnection:
    """Run the opening handshake over ``stream`` by ``deadline``; start the connection.

    On any failure or cancellation the stream is closed before the exception
    leaves.
    """
    try:
        with trio.move_on_at(deadline) as scope:
            try:
                result = await _handshake(stream, handshake)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                detail = exc.__cause__ or exc
                raise HandshakeError(
                    f"connection to {where} broke during the opening handshake: {detail}"
                ) from exc
        if scope.cancelled_caught:
            raise ConnectionTimeout(
                f"opening a WebSocket connection to {where} took more than"
                f" {connect_timeout} seconds"
            )
        connection = WebSocketConnection(
            stream,
            is_client=True,
            extensions=result.extensions,
            path=resource,
            subprotocol=result.subprotocol,
            request_headers=handshake.request_headers,
            response_headers=result.response_headers,
            extra_data=result.extra_data,
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )
        await nursery.start(connection.run)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return connection


async def wrap_client_stream(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    host: str,
    resource: str,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: ExtraHeaders = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = 16,
    max_message_size: int | None = 2**20,
    receive_buffer_size: int | None = RECEIVE_SIZE,
    connect_timeout: float = 10,
    disconnect_timeout: float = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
) -> WebSocketConnection:
    """Run the client's opening handshake over a stream you opened; return the connection.

    trio-websocket's low-level function, for streams :func:`connect_websocket`
    cannot open: a TLS stream set up your way, a proxy tunnel, a Unix socket,
    :func:`trio.testing.memory_stream_pair`. The connection takes the stream
    over: it closes it when the connection ends, and also when the handshake
    fails, times out or is cancelled.

    Args:
        nursery: where the connection's tasks run.
        stream: any :class:`trio.abc.Stream`, connected, nothing read from it yet.
        host: the ``Host`` header's value: ``"example.com"``,
            ``"example.com:8080"``, ``"[::1]:8080"`` (a port of 80 is left out).
        resource: the request target, path and query (``"/chat?room=1"``).
        subprotocols: see :func:`connect_websocket`, as are the others.
        extra_headers: see :func:`connect_websocket`.
        extensions: see :func:`connect_websocket`.
        compression: see :func:`connect_websocket`.
        message_queue_size: see :func:`connect_websocket`.
        max_message_size: see :func:`connect_websocket`.
        receive_buffer_size: see :func:`connect_websocket`.
        connect_timeout: seconds for the opening handshake.
        disconnect_timeout: see :func:`connect_websocket`.
        ping_interval: see :func:`connect_websocket`.
        ping_timeout: see :func:`connect_websocket`.

    Returns:
        The open connection.

    Raises:
        ConnectionTimeout: the handshake took longer than ``connect_timeout``.
        ConnectionRejected: the server answered with another status than 101.
        NegotiationError: the server chose an extension or subprotocol that
            was not offered, or a factory refused its answer.
        HandshakeError: the stream broke or the response was not a valid
            opening handshake.
        ValueError, TypeError: an argument is invalid; raised before any I/O,
            and the stream is left open.
    """
    factories = _client_extensions(extensions, compression)
    check_connection_options(
        message_queue_size=message_queue_size,
        max_message_size=max_message_size,
        receive_buffer_size=receive_buffer_size,
        disconnect_timeout=disconnect_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        connect_timeout=connect_timeout,
    )
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    name, port = _split_host(host)
    handshake = ClientHandshake(
        name,
        80 if port is None else port,  # 80 with secure=False: no port in Host
        resource,
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        extensions=factories,
    )
    return await _start_client(
        nursery,
        stream,
        handshake,
        resource,
        where=host,
        deadline=trio.current_time() + connect_timeout,
        connect_timeout=connect_timeout,
        message_queue_size=message_queue_size,
        max_message_size=max_message_size,
        receive_buffer_size=receive_buffer_size,
        disconnect_timeout=disconnect_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )


async def connect_websocket(
    nursery: trio.Nursery,
    host: str,
    port: int,
    resource: str = "/",
    *,
    use_ssl: bool | ssl.SSLContext = False,
    subprotocols: Sequence[str] | None = None,
    extra_headers: ExtraHeaders = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = 16,
    max_message_size: int | None = 2**20,
    receive_buffer_size: int | None = RECEIVE_SIZE,
    connect_timeout: float = 10,
    disconnect_timeout: float = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
) -> WebSocketConnection:
    """Connect to a WebSocket server and return the open connection.

    The connection's background tasks run in ``nursery``; close it with
    :meth:`~WebSocketConnection.aclose` (or leave the nursery, which cancels
    them and closes the stream). :func:`open_websocket` does both for you.

    Args:
        nursery: where the connection's tasks run.
        host: the server's host name or IP address (IPv6 without brackets).
        port: the server's port.
        resource: the request target, path and query.
        use_ssl: ``True`` for TLS with the default context, or an
            :class:`ssl.SSLContext`.
        subprotocols: subprotocols to offer, in order of preference.
        extra_headers: more request headers (pairs or a mapping).
        extensions: :class:`~trio_wsext.extensions.ClientExtensionFactory`
            objects, offered in this order.
        compression: ``"deflate"`` adds the default permessage-deflate
            factory unless ``extensions`` has one; ``None`` adds nothing.
        message_queue_size: whole incoming messages buffered before the
            connection stops reading (TCP then pushes back on the server).
        max_message_size: the largest incoming message, in bytes after
            decompression (1009 beyond), or ``None``.
        receive_buffer_size: the most bytes asked of the stream per read
            (trio-websocket's option; 64 KiB by default), or ``None`` to let
            the stream choose.
        connect_timeout: seconds for the TCP connect, TLS and the opening
            handshake together.
        disconnect_timeout: seconds for the closing handshake.
        ping_interval: seconds between keepalive pings, ``None`` for none.
        ping_timeout: seconds a keepalive pong may take (then 1011), or ``None``.

    Returns:
        The open connection; ``extensions`` and ``subprotocol`` say what was
        negotiated.

    Raises:
        ConnectionTimeout: connecting took longer than ``connect_timeout``.
        ConnectionRejected: the server answered with another status than 101.
        NegotiationError: the server chose an extension or subprotocol that
            was not offered, or a factory refused its answer.
        HandshakeError: the connection failed or broke, TLS failed, or the
            response was not a valid opening handshake.
        ValueError, TypeError: an argument is invalid (before any I/O).

    Cancellation, a timeout or a failure closes the stream; nothing is left
    running.
    """
    factories = _client_extensions(extensions, compression)
    context = _ssl_context(use_ssl)
    check_connection_options(
        message_queue_size=message_queue_size,
        max_message_size=max_message_size,
        receive_buffer_size=receive_buffer_size,
        disconnect_timeout=disconnect_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        connect_timeout=connect_timeout,
    )
    handshake = ClientHandshake(
        host,
        port,
        resource,
        secure=context is not None,
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        extensions=factories,
    )
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    deadline = trio.current_time() + connect_timeout
    stream: trio.abc.Stream | None = None
    with trio.move_on_at(deadline):
        try:
            if context is None:
                stream = await trio.open_tcp_stream(host, port)
            else:
                stream = await trio.open_ssl_over_tcp_stream(
                    host, port, ssl_context=context, https_compatible=True
                )
        except OSError as exc:
            raise HandshakeError(f"cannot connect to {where}: {exc}") from exc
    if stream is None:
        raise ConnectionTimeout(
            f"opening a WebSocket connection to {where} took more than {connect_timeout} seconds"
        )
    return await _start_client(
        nursery,
        stream,
        handshake,
        resource,
        where=where,
        deadline=deadline,
        connect_timeout=connect_timeout,
        message_queue_size=message_queue_size,
        max_message_size=max_message_size,
        receive_buffer_size=receive_buffer_size,
        disconnect_timeout=disconnect_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )


async def connect_websocket_url(
    nursery: trio.Nursery,
    url: str,
    ssl_context: ssl.SSLContext | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: ExtraHeaders = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = 16,
    max_message_size: int | None = 2**20,
    receive_buffer_size: int | None = RECEIVE_SIZE,
    connect_timeout: float = 10,
    disconnect_timeout: float = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
) -> WebSocketConnection:
    """Connect to a ``ws://`` or ``wss://`` URL; like :func:`connect_websocket`.

    Args:
        nursery: where the connection's tasks run.
        url: the URL; ``user:password@`` becomes a Basic ``Authorization``
            header unless ``extra_headers`` has one.
        ssl_context: the TLS context for ``wss`` (``None``: the default one).
        subprotocols: see :func:`connect_websocket`, as are the others.
        extra_headers: see :func:`connect_websocket`.
        extensions: see :func:`connect_websocket`.
        compression: see :func:`connect_websocket`.
        message_queue_size: see :func:`connect_websocket`.
        max_message_size: see :func:`connect_websocket`.
        receive_buffer_size: see :func:`connect_websocket`.
        connect_timeout: see :func:`connect_websocket`.
        disconnect_timeout: see :func:`connect_websocket`.
        ping_interval: see :func:`connect_websocket`.
        ping_timeout: see :func:`connect_websocket`.

    Raises:
        ValueError: the URL is not a valid WebSocket URL (see :func:`parse_url`).
        HandshakeError: and its subclasses, as :func:`connect_websocket`.
    """
    host, port, resource, use_ssl, authorization = parse_url(url, ssl_context)
    return await connect_websocket(
        nursery,
        host,
        port,
        resource,
        use_ssl=use_ssl,
        subprotocols=subprotocols,
        extra_headers=_with_authorization(extra_headers, authorization),
        extensions=extensions,
        compression=compression,
        message_queue_size=message_queue_size,
        max_message_size=max_message_size,
        receive_buffer_size=receive_buffer_size,
        connect_timeout=connect_timeout,
        disconnect_timeout=disconnect_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )


@asynccontextmanager
async def open_websocket(
    host: str,
    port: int,
    resource: str = "/",
    *,
    use_ssl: bool | ssl.SSLContext = False,
    subprotocols: Sequence[str] | None = None,
    extra_headers: ExtraHeaders = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = 16,
    max_message_size: int | None = 2**20,
    receive_buffer_size: int | None = RECEIVE_SIZE,
    connect_timeout: float = 10,
    disconnect_timeout: float = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
) -> AsyncIterator[WebSocketConnection]:
    """Connect as :func:`connect_websocket` does; close on leaving the block.

    Leaving the block normally closes with 1000; leaving it with an exception
    closes with 1011 (as websockets does) and re-raises that exception as it
    is, never wrapped in an ``ExceptionGroup``. Cancellation closes the stream
    at once, without the closing handshake.

    Args:
        host: see :func:`connect_websocket`, as are all the others.
        port: see :func:`connect_websocket`.
        resource: see :func:`connect_websocket`.
        use_ssl: see :func:`connect_websocket`.
        subprotocols: see :func:`connect_websocket`.
        extra_headers: see :func:`connect_websocket`.
        extensions: see :func:`connect_websocket`.
        compression: see :func:`connect_websocket`.
        message_queue_size: see :func:`connect_websocket`.
        max_message_size: see :func:`connect_websocket`.
        receive_buffer_size: see :func:`connect_websocket`.
        connect_timeout: see :func:`connect_websocket`.
        disconnect_timeout: see :func:`connect_websocket`.
        ping_interval: see :func:`connect_websocket`.
        ping_timeout: see :func:`connect_websocket`.

    Raises:
        HandshakeError: and its subclasses, as :func:`connect_websocket`.
        DisconnectionTimeout: the server did not answer the close frame
            within ``disconnect_timeout`` (the connection is closed anyway;
            not raised when the block itself raised).
    """
    error: BaseException | None = None
    connection: WebSocketConnection | None = None
    # Shielded once the block raised, so that its exception leaves unchanged:
    # an enclosing deadline that expires during the close (or at the
    # nursery's exit, a checkpoint too) would otherwise replace it with a
    # Cancelled that the deadline's own scope then swallows.
    guard = trio.CancelScope()
    with guard:
        async with trio.open_nursery() as nursery:
            try:
                connection = await connect_websocket(
                    nursery,
                    host,
                    port,
                    resource,
                    use_ssl=use_ssl,
                    subprotocols=subprotocols,
                    extra_headers=extra_headers,
                    extensions=extensions,
                    compression=compression,
                    message_queue_size=message_queue_size,
                    max_message_size=max_message_size,
                    receive_buffer_size=receive_buffer_size,
                    connect_timeout=connect_timeout,
                    disconnect_timeout=disconnect_timeout,
                    ping_interval=ping_interval,
                    ping_timeout=ping_timeout,
                )
            except BaseException as exc:
                # Raised outside the nursery below, so that it is not wrapped.
                error = exc
            if connection is not None:
                try:
                    yield connection
                except BaseException as exc:
                    error = exc
                if error is None:
                    await connection.aclose(CloseCode.NORMAL_CLOSURE)
                else:
                    guard.shield = True
                    with trio.move_on_after(disconnect_timeout):  # bounded all the same
                        await connection.aclose(CloseCode.INTERNAL_ERROR)
                    nursery.cancel_scope.cancel()
    if error is not None:
        raise error
    if connection is not None and connection.closing_timed_out:
        raise DisconnectionTimeout(
            f"the server did not finish the closing handshake within {disconnect_timeout} seconds"
        )


@asynccontextmanager
async def open_websocket_url(
    url: str,
    ssl_context: ssl.SSLContext | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: ExtraHeaders = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = 16,
    max_message_size: int | None = 2**20,
    receive_buffer_size: int | None = RECEIVE_SIZE,
    connect_timeout: float = 10,
    disconnect_timeout: float = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
) -> AsyncIterator[WebSocketConnection]:
    """Connect to a ``ws://`` or ``wss://`` URL; like :func:`open_websocket`.

    Args:
        url: see :func:`connect_websocket_url`.
        ssl_context: see :func:`connect_websocket_url`.
        subprotocols: see :func:`connect_websocket`, as are the others.
        extra_headers: see :func:`connect_websocket`.
        extensions: see :func:`connect_websocket`.
        compression: see :func:`connect_websocket`.
        message_queue_size: see :func:`connect_websocket`.
        max_message_size: see :func:`connect_websocket`.
        receive_buffer_size: see :func:`connect_websocket`.
        connect_timeout: see :func:`connect_websocket`.
        disconnect_timeout: see :func:`connect_websocket`.
        ping_interval: see :func:`connect_websocket`.
        ping_timeout: see :func:`connect_websocket`.

    Raises:
        ValueError: the URL is not a valid WebSocket URL.
        HandshakeError, DisconnectionTimeout: as :func:`open_websocket`.
    """
    host, port, resource, use_ssl, authorization = parse_url(url, ssl_context)
    async with open_websocket(
        host,
        port,
        resource,
        use_ssl=use_ssl,
        subprotocols=subprotocols,
        extra_headers=_with_authorization(extra_headers, authorization),
        extensions=extensions,
        compression=compression,
        message_queue_size=message_queue_size,
        max_message_size=max_message_size,
        receive_buffer_size=receive_buffer_size,
        connect_timeout=connect_timeout,
        disconnect_timeout=disconnect_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    ) as connection:
        yield connection
