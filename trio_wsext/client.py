"""The client: open_websocket[_url|_unix], connect_websocket[_url|_unix], wrap_client_stream.

Strategy: every entry point but :func:`wrap_client_stream` ends in
:func:`_connect`, which, all inside one ``connect_timeout``, opens a stream
(TCP, a tunnel through a proxy from :mod:`trio_wsext.proxies`, or a Unix
socket), wraps TLS around it for ``wss`` (the target's name for SNI and the
certificate check, inside the tunnel when there is one), runs the sans-I/O
:class:`~trio_wsext.handshake.ClientHandshake` over it, and starts a
:class:`~trio_wsext.connection.WebSocketConnection` in the caller's nursery.
A 301, 302, 303, 307 or 308 answer with a ``ws``/``wss`` ``Location`` sends
it round again, up to ``max_redirects`` times, as websockets does: never from
``wss`` to ``ws``, and without credentials or cookies once the origin
changed. :func:`wrap_client_stream` runs the handshake over a stream the
caller opened. Every failure before the connection runs raises a
:class:`~trio_wsext.exceptions.HandshakeError` (or a subclass) with the
stream closed. With ``http2``, :func:`~trio_wsext.http2.client.connect_http2` first tries
the WebSocket over HTTP/2 (:rfc:`8441`), alone or through an
:class:`~trio_wsext.http2.Http2Pool`, and says when to fall back to the
HTTP/1.1 handshake. The ``open_*`` context managers wrap that in their own
nursery; since the connection's tasks never raise, the only exception that
can leave them is the caller's own, which they re-raise unwrapped (no
``ExceptionGroup``).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Final, Literal, TypeAlias, final

import attrs
import trio

from .connection import WebSocketConnection
from .exceptions import (
    ConnectionRejected,
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    RedirectError,
)
from .extensions.base import ClientExtensionFactory
from .extensions.permessage_deflate import enable_client_permessage_deflate
from .frames import CloseCode
from .handshake import ClientHandshake, ClientHandshakeResult
from .http2.selection import ALPN_HTTP11
from .http2.settings import require_h2
from .options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DISCONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MESSAGE_QUEUE_SIZE,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    DEFAULT_RECEIVE_BUFFER_SIZE,
    DEFAULT_WRITE_LIMIT,
    ConnectionOptions,
    check_extension_factories,
)
from .proxies import Proxy, check_socks_support, get_proxy, open_tunnel, parse_proxy
from .targets import (
    ExtraHeaders,
    Target,
    cross_origin_headers,
    follow_redirect,
    parse_url as parse_url,
    split_host,
    unix_target,
    url_target,
    with_authorization,
)

if TYPE_CHECKING:
    from .http2.client import Http2Fallback, Http2Pool

__all__ = [
    "RedirectError",
    "connect_websocket",
    "connect_websocket_unix",
    "connect_websocket_url",
    "open_websocket",
    "open_websocket_unix",
    "open_websocket_url",
    "wrap_client_stream",
]


#: What ``proxy`` takes: ``True`` (from the environment), a proxy URL, or
#: ``None`` (``False`` too) for none.
ProxyOption: TypeAlias = str | bool | None

#: What ``http2`` takes: ``False`` (HTTP/1.1), ``True`` (HTTP/2 over TLS when
#: the server offers it), or ``"prior-knowledge"`` (HTTP/2 in cleartext too).
Http2Option: TypeAlias = bool | Literal["prior-knowledge"]

#: The ``http2`` value for HTTP/2 without ALPN (RFC 9113 §3.3).
PRIOR_KNOWLEDGE: Final = "prior-knowledge"

#: Bytes asked of the stream per read during the handshake; a 101 response is
#: a few hundred bytes, and what follows it goes to the connection.
HANDSHAKE_RECEIVE_SIZE: Final = 65536


def connect_failure(exc: OSError) -> str:
    """Say why a connect failed, in the words of the system call that failed.

    trio's ``open_tcp_stream`` tries every address of a host and raises "all
    attempts to connect ... failed", with the errors of the attempts as its
    cause; this names them ("connection refused" when every attempt was
    refused, the usual case of a server that is not running).
    """
    leaves = _os_errors(exc.__cause__) if exc.__cause__ is not None else [exc]
    if not leaves:
        return str(exc)
    if all(isinstance(leaf, ConnectionRefusedError) for leaf in leaves):
        return "connection refused"
    reasons = dict.fromkeys(leaf.strerror or str(leaf) for leaf in leaves)
    return "; ".join(reason.lower() if reason else "failed" for reason in reasons)


def _os_errors(exc: BaseException) -> list[OSError]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _os_errors(inner)]
    return [exc] if isinstance(exc, OSError) else []


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


def _check_proxy(proxy: ProxyOption) -> Proxy | bool:
    """Read the ``proxy`` option: a :class:`Proxy`, ``True`` (the environment), ``False`` (none).

    Raises:
        ValueError, TypeError: not a valid proxy URL, ``True`` or ``None``.
        ImportError: a SOCKS proxy without python-socks.
    """
    if proxy is None or isinstance(proxy, bool):
        return bool(proxy)
    parsed = parse_proxy(proxy)
    check_socks_support(parsed)
    return parsed


def _check_max_redirects(max_redirects: int) -> int:
    if isinstance(max_redirects, bool) or not isinstance(max_redirects, int):
        raise TypeError(f"max_redirects must be an int, not {type(max_redirects).__name__}")
    if max_redirects < 0:
        raise ValueError(f"max_redirects must be >= 0, not {max_redirects}")
    return max_redirects


def _check_http2(http2: object, pool: object) -> None:
    """Check the ``http2`` and ``http2_pool`` options.

    Raises:
        ValueError, TypeError: a value out of range; the message names it.
        ImportError: HTTP/2 asked for without h2 (the message names the extra).
    """
    if http2 not in (False, True, PRIOR_KNOWLEDGE) or not isinstance(http2, bool | str):
        raise ValueError(f"http2 must be True, False or 'prior-knowledge', not {http2!r}")
    if pool is not None:
        from .http2.client import Http2Pool

        if not isinstance(pool, Http2Pool):
            raise TypeError(f"http2_pool must be an Http2Pool, not {type(pool).__name__}")
        if not http2:
            raise ValueError("http2_pool needs http2=True or http2='prior-knowledge'")
    if http2:
        require_h2()


@final
@attrs.frozen
class _Options:
    """A client's options, checked once before any I/O; every redirect reuses them."""

    extensions: list[ClientExtensionFactory]
    subprotocols: Sequence[str] | None
    extra_headers: ExtraHeaders
    connection: ConnectionOptions
    proxy: Proxy | bool = False
    """A proxy, ``True`` for the environment's, ``False`` for none."""
    max_redirects: int = 0
    http2: Http2Option = False
    """HTTP/2: ``False``, ``True`` (over TLS), or ``"prior-knowledge"``."""
    http2_pool: Http2Pool | None = None
    """The pool whose HTTP/2 connections are shared, or ``None``."""

    @property
    def connect_timeout(self) -> float:
        return self.connection.connect_timeout

    @classmethod
    def build(
        cls,
        *,
        subprotocols: Sequence[str] | None,
        extra_headers: ExtraHeaders,
        extensions: Sequence[ClientExtensionFactory] | None,
        compression: str | None,
        connection: ConnectionOptions,
        proxy: ProxyOption = None,
        max_redirects: int = 0,
        http2: Http2Option = False,
        http2_pool: Http2Pool | None = None,
    ) -> _Options:
        """Check the options and settle the extension factories and the proxy.

        The connection's own settings were checked when ``connection`` was made.

        Raises:
            ValueError, TypeError: an option is invalid; the message names it.
            ImportError: a SOCKS proxy without python-socks, or ``http2``
                without h2.
        """
        _check_http2(http2, http2_pool)
        return cls(
            extensions=_client_extensions(extensions, compression),
            subprotocols=subprotocols,
            extra_headers=extra_headers,
            connection=connection,
            proxy=_check_proxy(proxy),
            max_redirects=_check_max_redirects(max_redirects),
            http2=http2,
            http2_pool=http2_pool,
        )


async def _handshake(stream: trio.abc.Stream, handshake: ClientHandshake) -> ClientHandshakeResult:
    await stream.send_all(handshake.request_bytes())
    while True:
        data = await stream.receive_some(HANDSHAKE_RECEIVE_SIZE)
        result = handshake.receive_data(bytes(data))
        if result is not None:
            return result
        if not data:  # pragma: no cover - receive_data(b"") raises first; never loop on EOF
            raise HandshakeError("connection closed before the handshake response was complete")


async def _start_client(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    handshake: ClientHandshake,
    resource: str,
    options: _Options,
    *,
    where: str,
    deadline: float,
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
                f" {options.connect_timeout} seconds"
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
            options=options.connection,
        )
        await nursery.start(connection.run)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return connection


def _proxy_for(target: Target, options: _Options) -> Proxy | None:
    """The proxy to reach ``target`` through: the one given, the environment's, or none.

    Raises:
        ValueError: the environment names an invalid proxy.
        ImportError: it names a SOCKS proxy, and python-socks is missing.
    """
    if target.unix_path is not None or options.proxy is False:
        return None
    if options.proxy is not True:
        return options.proxy
    url = get_proxy(target.host, target.port, secure=target.secure)
    if url is None:
        return None
    try:
        proxy = parse_proxy(url)
    except ValueError as exc:
        raise ValueError(f"the environment's proxy for {target.url} is invalid: {exc}") from None
    check_socks_support(proxy)
    return proxy


async def _open_stream(
    target: Target,
    context: ssl.SSLContext | None,
    options: _Options,
    deadline: float,
    alpn: Sequence[str] | None = None,
) -> tuple[trio.abc.Stream, str]:
    """Connect to ``target`` (directly, through a proxy, or over a Unix socket), TLS on top.

    With ``alpn``, TLS offers those protocols (set on ``context`` just
    before this connection copies it: Python has no per-connection ALPN).
    Returns the stream and how to name where it goes in messages.
    """
    proxy = _proxy_for(target, options)
    where = target.where if proxy is None else f"{target.where} through proxy {proxy}"
    stream: trio.abc.Stream | None = None
    with trio.move_on_at(deadline):
        if proxy is not None:
            stream = await open_tunnel(proxy, target.host, target.port)
        else:
            try:
                if target.unix_path is not None:
                    stream = await trio.open_unix_socket(target.unix_path)
                else:
                    stream = await trio.open_tcp_stream(target.host, target.port)
            except OSError as exc:
                raise HandshakeError(f"cannot connect to {where}: {connect_failure(exc)}") from exc
    if stream is None:
        raise ConnectionTimeout(
            f"opening a WebSocket connection to {where} took more than"
            f" {options.connect_timeout} seconds"
        )
    if context is not None:
        if alpn is not None:
            context.set_alpn_protocols(list(alpn))
        # TLS with the target, inside the tunnel when there is one: SNI and
        # the certificate check are for the target's name, never the proxy's.
        stream = trio.SSLStream(
            stream, context, server_hostname=target.host, https_compatible=True
        )
    return stream, where


async def _connect_http2(
    nursery: trio.Nursery,
    target: Target,
    context: ssl.SSLContext | None,
    pool_context: ssl.SSLContext | None,
    options: _Options,
    extra_headers: ExtraHeaders,
    deadline: float,
) -> WebSocketConnection | Http2Fallback:
    """Try the WebSocket over HTTP/2 (:rfc:`8441`); see :mod:`trio_wsext.http2.client`."""
    from .http2.client import connect_http2
    from .http2.handshake import Http2ClientHandshake

    handshake = Http2ClientHandshake(  # ValueError for a bad argument, before any I/O
        target.host,
        target.port,
        target.resource,
        secure=target.secure,
        subprotocols=options.subprotocols,
        extra_headers=with_authorization(extra_headers, target.authorization),
        extensions=options.extensions,
    )

    async def open_stream(alpn: Sequence[str] | None) -> tuple[trio.abc.Stream, str]:
        return await _open_stream(
            target, context if target.secure else None, options, deadline, alpn
        )

    def make_connection(
        stream: trio.abc.Stream,
        result: ClientHandshakeResult,
        request_headers: list[tuple[bytes, bytes]],
    ) -> WebSocketConnection:
        return WebSocketConnection(
            stream,
            is_client=True,
            extensions=result.extensions,
            path=target.resource,
            subprotocol=result.subprotocol,
            request_headers=request_headers,
            response_headers=result.response_headers,
            options=options.connection,
            http_version="2",
        )

    # Connections are shared per origin, TLS context (the caller's) and proxy setting.
    key = (*target.origin, target.unix_path, id(pool_context), repr(options.proxy))
    return await connect_http2(
        nursery,
        handshake,
        open_stream=open_stream,
        make_connection=make_connection,
        secure=target.secure,
        deadline=deadline,
        where=target.where,
        pool=options.http2_pool,
        pool_key=key,
    )


async def _connect(
    nursery: trio.Nursery, target: Target, context: ssl.SSLContext | None, options: _Options
) -> WebSocketConnection:
    """Connect to ``target``, following redirects, all within ``connect_timeout``.

    ``context`` is the TLS context for every ``wss`` hop; ``None`` means the
    default one (a ``ws`` URL redirected to ``wss``).
    """
    deadline = trio.current_time() + options.connect_timeout
    extra_headers = options.extra_headers
    pool_context = context  # the caller's: pooled connections are shared per context
    redirects = 0
    while True:
        handshake = ClientHandshake(  # ValueError for a bad argument, before any I/O
            target.host,
            target.port,
            target.resource,
            secure=target.secure,
            subprotocols=options.subprotocols,
            extra_headers=with_authorization(extra_headers, target.authorization),
            extensions=options.extensions,
        )
        if target.secure and context is None:
            context = ssl.create_default_context()
        try:
            stream: trio.abc.Stream | None = None
            # HTTP/1.1 says so in ALPN: a context an HTTP/2 attempt set (or a
            # pool shares) must not offer h2 to a handshake that cannot speak it.
            alpn = [ALPN_HTTP11] if target.secure else None
            if options.http2 and (target.secure or options.http2 == PRIOR_KNOWLEDGE):
                outcome = await _connect_http2(
                    nursery, target, context, pool_context, options, extra_headers, deadline
                )
                if isinstance(outcome, WebSocketConnection):
                    return outcome
                stream, where = outcome.stream, outcome.where
            if stream is None:
                stream, where = await _open_stream(
                    target, context if target.secure else None, options, deadline, alpn
                )
            return await _start_client(
                nursery,
                stream,
                handshake,
                target.resource,
                options,
                where=where,
                deadline=deadline,
            )
        except ConnectionRejected as exc:
            new = follow_redirect(target, exc)
            if new is None:
                raise
            if redirects >= options.max_redirects:
                raise RedirectError(
                    f"more than {options.max_redirects} redirects (max_redirects); the last:"
                    f" HTTP {exc.status_code} to {new.url}",
                    new.url,
                    exc,
                ) from exc
            if new.origin != target.origin:
                extra_headers = cross_origin_headers(extra_headers)
            target = new
            redirects += 1


@asynccontextmanager
async def _open(
    connect: Callable[[trio.Nursery], Awaitable[WebSocketConnection]], disconnect_timeout: float
) -> AsyncIterator[WebSocketConnection]:
    """Run ``connect`` in a nursery of its own; close the connection on leaving the block."""
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
                connection = await connect(nursery)
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
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
) -> WebSocketConnection:
    """Run the client's opening handshake over a stream you opened; return the connection.

    trio-websocket's low-level function, for streams :func:`connect_websocket`
    cannot open: a TLS stream set up your way, a tunnel from
    :func:`~trio_wsext.proxies.open_tunnel` with options of your own,
    :func:`trio.testing.memory_stream_pair`. The connection takes the stream
    over: it closes it when the connection ends, and also when the handshake
    fails, times out or is cancelled. There is one stream, so a redirect is
    not followed: it raises :class:`~trio_wsext.exceptions.ConnectionRejected`.

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
        write_limit: see :func:`connect_websocket`.
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
    options = _Options.build(
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        extensions=extensions,
        compression=compression,
        connection=ConnectionOptions(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
    )
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    name, port = split_host(host)
    handshake = ClientHandshake(
        name,
        80 if port is None else port,  # 80 with secure=False: no port in Host
        resource,
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        extensions=options.extensions,
    )
    deadline = trio.current_time() + connect_timeout
    return await _start_client(
        nursery, stream, handshake, resource, options, where=host, deadline=deadline
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
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
    proxy: ProxyOption = True,
    max_redirects: int = 10,
    http2: Http2Option = False,
    http2_pool: Http2Pool | None = None,
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
            :class:`ssl.SSLContext` (used for every ``wss`` redirect too).
        subprotocols: subprotocols to offer, in order of preference.
        extra_headers: more request headers (pairs or a mapping); a redirect
            to another origin drops ``Authorization``, ``Cookie``,
            ``Proxy-Authorization`` and ``Host``.
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
        write_limit: bytes that may wait for the wire before a send waits
            (until a quarter is left), as websockets' ``write_limit``; 64 KiB
            by default. :func:`~trio_wsext.broadcast` skips (or closes) a
            connection over it.
        connect_timeout: seconds for everything before the connection runs:
            the TCP connect, the proxy's tunnel, TLS, the opening handshake
            and every redirect, together.
        disconnect_timeout: seconds for the closing handshake.
        ping_interval: seconds between keepalive pings, ``None`` for none.
        ping_timeout: seconds a keepalive pong may take (then 1011), or ``None``.
        proxy: ``True`` takes the proxy from the environment as websockets
            does (``wss_proxy``/``ws_proxy``, ``https_proxy``, ``http_proxy``
            for ``ws``, ``all_proxy``; ``no_proxy``: see
            :func:`~trio_wsext.proxies.get_proxy`); a URL sets one
            (``http://``, ``https://``, ``socks5h://``, ``socks5://``,
            ``socks4a://``, ``socks4://``, credentials as ``user:password@``);
            ``None`` connects directly. SOCKS needs ``trio_wsext[socks]``.
        max_redirects: how many 301, 302, 303, 307 or 308 answers with a
            ``ws``/``wss`` ``Location`` to follow (never from ``wss`` to
            ``ws``); 0 follows none.
        http2: ``True`` opens the WebSocket over HTTP/2 (:rfc:`8441`) when a
            ``wss`` server offers it (ALPN ``h2`` and, in its SETTINGS,
            extended CONNECT), and over HTTP/1.1 otherwise (on the same TLS
            connection when ALPN chose ``http/1.1``, else a new one);
            ``"prior-knowledge"`` speaks HTTP/2 to a ``ws`` server too,
            without ALPN (RFC 9113 §3.3: one known to speak it; an HTTP/1.1
            answer is an error); ``False`` (the default): HTTP/1.1 only.
            ``ws.http_version`` says which was used. Needs h2
            (``trio_wsext[http2]``). Over TLS, the context's ALPN protocols
            are set for each connection, with or without ``http2``:
            ``http/1.1``, or ``h2`` and ``http/1.1`` for an HTTP/2 attempt.
        http2_pool: an :class:`~trio_wsext.http2.Http2Pool`: WebSockets to
            the same origin share its HTTP/2 connections instead of a TCP
            connection each. Needs ``http2``.

    Returns:
        The open connection; ``extensions`` and ``subprotocol`` say what was
        negotiated.

    Raises:
        ConnectionTimeout: connecting took longer than ``connect_timeout``.
        RedirectError: a redirect that was not followed (too many, ``wss`` to
            ``ws``, not to a WebSocket URL).
        ConnectionRejected: the server answered with another status than 101.
        ProxyError: the proxy could not be reached, or refused (its HTTP
            status, as :class:`~trio_wsext.proxies.ProxyStatusError`, or its
            SOCKS reply code); from :mod:`trio_wsext.proxies`.
        NegotiationError: the server chose an extension or subprotocol that
            was not offered, or a factory refused its answer.
        HandshakeError: the connection failed or broke, TLS failed, or the
            response was not a valid opening handshake.
        ValueError, TypeError: an argument is invalid (before any I/O).
        ImportError: a SOCKS proxy without python-socks (before any I/O).

    Cancellation, a timeout or a failure closes the stream; nothing is left
    running.
    """
    options = _Options.build(
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        extensions=extensions,
        compression=compression,
        connection=ConnectionOptions(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
        proxy=proxy,
        max_redirects=max_redirects,
        http2=http2,
        http2_pool=http2_pool,
    )
    context = _ssl_context(use_ssl)
    target = Target(context is not None, host, port, resource)
    return await _connect(nursery, target, context, options)


async def connect_websocket_url(
    nursery: trio.Nursery,
    url: str,
    ssl_context: ssl.SSLContext | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: ExtraHeaders = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
    proxy: ProxyOption = True,
    max_redirects: int = 10,
    http2: Http2Option = False,
    http2_pool: Http2Pool | None = None,
) -> WebSocketConnection:
    """Connect to a ``ws://`` or ``wss://`` URL; like :func:`connect_websocket`.

    Args:
        nursery: where the connection's tasks run.
        url: the URL; ``user:password@`` becomes a Basic ``Authorization``
            header unless ``extra_headers`` has one (kept across redirects
            within the origin only).
        ssl_context: the TLS context for ``wss`` (``None``: the default one).
        subprotocols: see :func:`connect_websocket`, as are the others.
        extra_headers: see :func:`connect_websocket`.
        extensions: see :func:`connect_websocket`.
        compression: see :func:`connect_websocket`.
        message_queue_size: see :func:`connect_websocket`.
        max_message_size: see :func:`connect_websocket`.
        receive_buffer_size: see :func:`connect_websocket`.
        write_limit: see :func:`connect_websocket`.
        connect_timeout: see :func:`connect_websocket`.
        disconnect_timeout: see :func:`connect_websocket`.
        ping_interval: see :func:`connect_websocket`.
        ping_timeout: see :func:`connect_websocket`.
        proxy: see :func:`connect_websocket`.
        max_redirects: see :func:`connect_websocket`.
        http2: see :func:`connect_websocket`.
        http2_pool: see :func:`connect_websocket`.

    Raises:
        ValueError: the URL is not a valid WebSocket URL
            (see :func:`~trio_wsext.targets.parse_url`).
        HandshakeError: and its subclasses, as :func:`connect_websocket`.
    """
    options = _Options.build(
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        extensions=extensions,
        compression=compression,
        connection=ConnectionOptions(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
        proxy=proxy,
        max_redirects=max_redirects,
        http2=http2,
        http2_pool=http2_pool,
    )
    return await _connect(nursery, url_target(url, ssl_context), ssl_context, options)


async def connect_websocket_unix(
    nursery: trio.Nursery,
    path: str | os.PathLike[str],
    resource: str = "/",
    *,
    use_ssl: bool | ssl.SSLContext = False,
    subprotocols: Sequence[str] | None = None,
    extra_headers: ExtraHeaders = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
    max_redirects: int = 10,
) -> WebSocketConnection:
    """Connect to a WebSocket server on a Unix socket; like :func:`connect_websocket`.

    The request is the one for ``ws://localhost/`` + ``resource`` (``Host:
    localhost``, as websockets sends it); with ``use_ssl`` the certificate
    is checked for ``localhost``. No proxy is used. Redirects are followed
    over the same socket while they stay on that origin; one elsewhere
    raises :class:`RedirectError`.

    Args:
        nursery: where the connection's tasks run.
        path: the socket file's path.
        resource: the request target, path and query.
        use_ssl: see :func:`connect_websocket`, as are the others.
        subprotocols: see :func:`connect_websocket`.
        extra_headers: see :func:`connect_websocket`; a ``Host`` here
            replaces ``localhost``.
        extensions: see :func:`connect_websocket`.
        compression: see :func:`connect_websocket`.
        message_queue_size: see :func:`connect_websocket`.
        max_message_size: see :func:`connect_websocket`.
        receive_buffer_size: see :func:`connect_websocket`.
        write_limit: see :func:`connect_websocket`.
        connect_timeout: see :func:`connect_websocket`.
        disconnect_timeout: see :func:`connect_websocket`.
        ping_interval: see :func:`connect_websocket`.
        ping_timeout: see :func:`connect_websocket`.
        max_redirects: see :func:`connect_websocket`.

    Raises:
        HandshakeError: and its subclasses, as :func:`connect_websocket`
            (``cannot connect to unix:PATH`` when nobody listens there).
    """
    options = _Options.build(
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        extensions=extensions,
        compression=compression,
        connection=ConnectionOptions(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
        max_redirects=max_redirects,
    )
    context = _ssl_context(use_ssl)
    target = unix_target(path, resource, secure=context is not None)
    return await _connect(nursery, target, context, options)


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
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
    proxy: ProxyOption = True,
    max_redirects: int = 10,
    http2: Http2Option = False,
    http2_pool: Http2Pool | None = None,
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
        write_limit: see :func:`connect_websocket`.
        connect_timeout: see :func:`connect_websocket`.
        disconnect_timeout: see :func:`connect_websocket`.
        ping_interval: see :func:`connect_websocket`.
        ping_timeout: see :func:`connect_websocket`.
        proxy: see :func:`connect_websocket`.
        max_redirects: see :func:`connect_websocket`.
        http2: see :func:`connect_websocket`.
        http2_pool: see :func:`connect_websocket`.

    Raises:
        HandshakeError: and its subclasses, as :func:`connect_websocket`.
        DisconnectionTimeout: the server did not answer the close frame
            within ``disconnect_timeout`` (the connection is closed anyway;
            not raised when the block itself raised).
    """
    options = _Options.build(
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        extensions=extensions,
        compression=compression,
        connection=ConnectionOptions(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
        proxy=proxy,
        max_redirects=max_redirects,
        http2=http2,
        http2_pool=http2_pool,
    )
    context = _ssl_context(use_ssl)
    target = Target(context is not None, host, port, resource)
    connect = partial(_connect, target=target, context=context, options=options)
    async with _open(connect, disconnect_timeout) as connection:
        yield connection


@asynccontextmanager
async def open_websocket_url(
    url: str,
    ssl_context: ssl.SSLContext | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: ExtraHeaders = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
    proxy: ProxyOption = True,
    max_redirects: int = 10,
    http2: Http2Option = False,
    http2_pool: Http2Pool | None = None,
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
        write_limit: see :func:`connect_websocket`.
        connect_timeout: see :func:`connect_websocket`.
        disconnect_timeout: see :func:`connect_websocket`.
        ping_interval: see :func:`connect_websocket`.
        ping_timeout: see :func:`connect_websocket`.
        proxy: see :func:`connect_websocket`.
        max_redirects: see :func:`connect_websocket`.
        http2: see :func:`connect_websocket`.
        http2_pool: see :func:`connect_websocket`.

    Raises:
        ValueError: the URL is not a valid WebSocket URL.
        HandshakeError, DisconnectionTimeout: as :func:`open_websocket`.
    """
    options = _Options.build(
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        extensions=extensions,
        compression=compression,
        connection=ConnectionOptions(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
        proxy=proxy,
        max_redirects=max_redirects,
        http2=http2,
        http2_pool=http2_pool,
    )
    target = url_target(url, ssl_context)
    connect = partial(_connect, target=target, context=ssl_context, options=options)
    async with _open(connect, disconnect_timeout) as connection:
        yield connection


@asynccontextmanager
async def open_websocket_unix(
    path: str | os.PathLike[str],
    resource: str = "/",
    *,
    use_ssl: bool | ssl.SSLContext = False,
    subprotocols: Sequence[str] | None = None,
    extra_headers: ExtraHeaders = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    compression: str | None = "deflate",
    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT,
    max_redirects: int = 10,
) -> AsyncIterator[WebSocketConnection]:
    """Connect to a WebSocket server on a Unix socket; like :func:`open_websocket`.

    See :func:`connect_websocket_unix` for the request it sends.

    Args:
        path: see :func:`connect_websocket_unix`.
        resource: see :func:`connect_websocket`, as are the others.
        use_ssl: see :func:`connect_websocket`.
        subprotocols: see :func:`connect_websocket`.
        extra_headers: see :func:`connect_websocket`.
        extensions: see :func:`connect_websocket`.
        compression: see :func:`connect_websocket`.
        message_queue_size: see :func:`connect_websocket`.
        max_message_size: see :func:`connect_websocket`.
        receive_buffer_size: see :func:`connect_websocket`.
        write_limit: see :func:`connect_websocket`.
        connect_timeout: see :func:`connect_websocket`.
        disconnect_timeout: see :func:`connect_websocket`.
        ping_interval: see :func:`connect_websocket`.
        ping_timeout: see :func:`connect_websocket`.
        max_redirects: see :func:`connect_websocket`.

    Raises:
        HandshakeError, DisconnectionTimeout: as :func:`open_websocket`.
    """
    options = _Options.build(
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        extensions=extensions,
        compression=compression,
        connection=ConnectionOptions(
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
            write_limit=write_limit,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
        max_redirects=max_redirects,
    )
    context = _ssl_context(use_ssl)
    target = unix_target(path, resource, secure=context is not None)
    connect = partial(_connect, target=target, context=context, options=options)
    async with _open(connect, disconnect_timeout) as connection:
        yield connection
