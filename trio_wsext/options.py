"""The options every connection shares, checked once, before any I/O.

Strategy: the client functions and the server take the same keywords
(trio-websocket's, plus keepalive), with the defaults below. Each builds one
frozen :class:`ConnectionOptions` from them before any I/O, so a bad value
raises a ``TypeError`` or ``ValueError`` naming the option and its range
instead of failing later, half connected; the same object then goes to every
connection, which reads its settings from it.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Final

import attrs

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_DISCONNECT_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MESSAGE_QUEUE_SIZE",
    "DEFAULT_OPTIONS",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "DEFAULT_RECEIVE_BUFFER_SIZE",
    "DEFAULT_WRITE_LIMIT",
    "ConnectionOptions",
    "check_connection_options",
    "check_extension_factories",
    "check_seconds",
    "check_ssl_context",
]


#: Whole incoming messages buffered before the connection stops reading
#: (trio-websocket's ``message_queue_size``; websockets' ``max_queue`` is 16 too).
DEFAULT_MESSAGE_QUEUE_SIZE: Final = 16

#: The largest incoming message, in bytes after decompression: 1 MiB, as in
#: trio-websocket and websockets.
DEFAULT_MAX_MESSAGE_SIZE: Final = 2**20

#: The most the reader asks of the stream at once: the size of a TCP receive
#: window that still fits a cache.
DEFAULT_RECEIVE_BUFFER_SIZE: Final = 64 * 1024

#: Bytes that may wait for the wire before a sender waits (the high-water
#: mark); it waits until a quarter of this is left. websockets' ``write_limit``
#: is 32 KiB; 64 KiB lets one receive window's worth of small messages be
#: pipelined without a pause.
DEFAULT_WRITE_LIMIT: Final = 64 * 1024

#: Seconds for everything before a connection runs (connect, TLS, proxy,
#: opening handshake), as websockets' ``open_timeout``.
DEFAULT_CONNECT_TIMEOUT: Final = 10.0

#: Seconds for the closing handshake, as websockets' ``close_timeout``.
DEFAULT_DISCONNECT_TIMEOUT: Final = 10.0

#: Seconds between keepalive pings (websockets' default).
DEFAULT_PING_INTERVAL: Final = 20.0

#: Seconds a keepalive pong may take before the connection fails with 1011
#: (websockets' default).
DEFAULT_PING_TIMEOUT: Final = 20.0


def _check_all(options: ConnectionOptions) -> None:
    check_connection_options(**attrs.asdict(options))


@attrs.frozen(kw_only=True)
class ConnectionOptions:
    """The settings of one connection, checked when made; one object serves many connections.

    The client functions and the server build one from their keywords, which
    have the same names and document each; :class:`~trio_wsext.connection.WebSocketConnection`
    takes one as ``options``.

    Raises:
        TypeError, ValueError: a setting has the wrong type or is out of
            range; the message names it.
    """

    message_queue_size: int = DEFAULT_MESSAGE_QUEUE_SIZE
    """Whole incoming messages buffered before the connection stops reading."""
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    """The largest incoming message, in bytes after decompression, or ``None``."""
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE
    """The most bytes asked of the stream per read, or ``None`` to let it choose."""
    write_limit: int = DEFAULT_WRITE_LIMIT
    """Bytes waiting for the wire beyond which senders wait."""
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    """Seconds for everything before the connection runs."""
    disconnect_timeout: float = DEFAULT_DISCONNECT_TIMEOUT
    """Seconds for the closing handshake."""
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    """Seconds between keepalive pings, or ``None`` for none."""
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT
    """Seconds a keepalive pong may take (then 1011), or ``None``."""

    def __attrs_post_init__(self) -> None:
        _check_all(self)


def check_seconds(name: str, value: float | None, *, allow_none: bool) -> None:
    """Check that option ``name`` is a positive number of seconds (or ``None`` if allowed).

    Raises:
        TypeError: not a number (a ``bool`` is not one), or ``None`` where not allowed.
        ValueError: zero or negative.
    """
    if value is None:
        if not allow_none:
            raise TypeError(f"{name} must be a number of seconds, not None")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name} must be > 0 seconds, not {value!r}")


def check_connection_options(
    *,
    message_queue_size: int,
    max_message_size: int | None,
    disconnect_timeout: float,
    ping_interval: float | None,
    ping_timeout: float | None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    receive_buffer_size: int | None = DEFAULT_RECEIVE_BUFFER_SIZE,
    write_limit: int = DEFAULT_WRITE_LIMIT,
) -> None:
    """Check the options every entry point shares; raise before any I/O.

    Raises:
        TypeError: an option has the wrong type (the message names it).
        ValueError: an option is out of range (the message names it and the range).
    """
    if isinstance(message_queue_size, bool) or not isinstance(message_queue_size, int):
        raise TypeError(
            f"message_queue_size must be an int, not {type(message_queue_size).__name__}"
        )
    if message_queue_size < 0:
        raise ValueError(f"message_queue_size must be >= 0, not {message_queue_size}")
    if max_message_size is not None:
        if isinstance(max_message_size, bool) or not isinstance(max_message_size, int):
            raise TypeError(
                f"max_message_size must be an int or None, not {type(max_message_size).__name__}"
            )
        if max_message_size <= 0:
            raise ValueError(f"max_message_size must be > 0 or None, not {max_message_size}")
    if receive_buffer_size is not None:
        if isinstance(receive_buffer_size, bool) or not isinstance(receive_buffer_size, int):
            raise TypeError(
                "receive_buffer_size must be an int or None,"
                f" not {type(receive_buffer_size).__name__}"
            )
        if receive_buffer_size <= 0:
            raise ValueError(f"receive_buffer_size must be > 0 or None, not {receive_buffer_size}")
    if isinstance(write_limit, bool) or not isinstance(write_limit, int):
        raise TypeError(f"write_limit must be an int, not {type(write_limit).__name__}")
    if write_limit < 0:
        raise ValueError(f"write_limit must be >= 0, not {write_limit}")
    check_seconds("connect_timeout", connect_timeout, allow_none=False)
    check_seconds("disconnect_timeout", disconnect_timeout, allow_none=False)
    check_seconds("ping_interval", ping_interval, allow_none=True)
    check_seconds("ping_timeout", ping_timeout, allow_none=True)


def check_ssl_context(name: str, value: object) -> None:
    """Check that option ``name`` is ``None`` or an :class:`ssl.SSLContext`.

    Raises:
        TypeError: anything else (a path to a certificate, say), named.
    """
    if value is not None and not isinstance(value, ssl.SSLContext):
        raise TypeError(f"{name} must be an ssl.SSLContext or None, not {type(value).__name__}")


def check_extension_factories(extensions: Sequence[object] | None, *, server: bool) -> None:
    """Check that ``extensions`` holds factories of the right side, before any I/O.

    A server needs objects with ``process_request_params`` (a
    ``ServerExtensionFactory``), a client objects with ``get_request_params``
    and ``process_response_params`` (a ``ClientExtensionFactory``): each
    failure names the position, what was given and what was expected, so a
    client factory handed to a server (or a string such as ``"deflate"``)
    fails at once instead of per connection.

    Raises:
        TypeError: ``extensions`` is not a list of factories of that side.
    """
    if extensions is None:
        return
    if isinstance(extensions, str | bytes) or not isinstance(extensions, Sequence):
        raise TypeError(
            f"extensions must be a list of extension factories, not {type(extensions).__name__}"
        )
    side, other = ("server", "client") if server else ("client", "server")
    needed = (
        ("process_request_params",)
        if server
        else (
            "get_request_params",
            "process_response_params",
        )
    )
    for index, factory in enumerate(extensions):
        if all(callable(getattr(factory, method, None)) for method in needed):
            continue
        looks_other = callable(
            getattr(
                factory, "process_response_params" if server else "process_request_params", None
            )
        )
        hint = f" (a {other} factory)" if looks_other else ""
        raise TypeError(
            f"extensions[{index}] must be a {side.capitalize()}ExtensionFactory,"
            f" not {type(factory).__name__}{hint}"
        )


#: The defaults, for a connection made without options.
DEFAULT_OPTIONS: Final = ConnectionOptions()
