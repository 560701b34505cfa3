"""What an HTTP/2 connection is allowed, and whether HTTP/2 is available at all.

Strategy: HTTP/2 rests on the optional ``h2`` package (``pip install
trio_wsext[http2]``). Everything in this module is pure and never imports it:
the server asks :func:`h2_available` whether to offer HTTP/2 at all (without
h2 it serves HTTP/1.1 only, as before), and the client calls
:func:`require_h2` when HTTP/2 is asked for, so that a missing package is one
clear error naming the extra rather than an ``ImportError`` from deep inside.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Final, final

import attrs

__all__ = [
    "DEFAULT_MAX_CONCURRENT_STREAMS",
    "DEFAULT_STREAM_WINDOW",
    "Http2Options",
    "StaticResponse",
    "h2_available",
    "require_h2",
]

#: The WebSockets (streams) one HTTP/2 connection may carry at once, as the
#: server's SETTINGS_MAX_CONCURRENT_STREAMS says. RFC 9113 §6.5.2 recommends
#: "no smaller than 100"; nginx's default is 128, hypercorn's 100. Each open
#: stream may hold up to :data:`DEFAULT_STREAM_WINDOW` received bytes.
DEFAULT_MAX_CONCURRENT_STREAMS: Final = 256

#: Bytes a peer may send on one stream before this side has read them: the
#: stream's receive buffer, and so its backpressure bound. RFC 9113 §6.9.2's
#: initial window (65,535), the size of the engine's own reads
#: (``receive_buffer_size``), so a stalled WebSocket holds no more than an
#: HTTP/1.1 one keeps in a socket buffer it does not read.
DEFAULT_STREAM_WINDOW: Final = 65535

#: RFC 9113 §6.9.1: "A sender MUST NOT allow a flow-control window to exceed
#: 2^31-1 octets."
MAX_WINDOW: Final = 2**31 - 1

#: The ``pip`` extra that brings h2.
EXTRA: Final = "trio_wsext[http2]"


def h2_available() -> bool:
    """Return whether the ``h2`` package can be imported (without importing it)."""
    return importlib.util.find_spec("h2") is not None


def require_h2() -> None:
    """Check that HTTP/2 can be used.

    Raises:
        ImportError: ``h2`` is not installed; the message names the extra.
    """
    if not h2_available():
        raise ImportError(f"WebSockets over HTTP/2 need the h2 package: pip install '{EXTRA}'")


def _check_window(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int, not {type(value).__name__}")
    if not 65535 <= value <= MAX_WINDOW:
        raise ValueError(f"{attribute.name} must be from 65535 to 2**31 - 1, not {value}")


def _check_streams(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int, not {type(value).__name__}")
    if not 1 <= value <= 65536:
        raise ValueError(f"{attribute.name} must be from 1 to 65536, not {value}")


def _check_status(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValueError(f"{attribute.name} must be an int from 200 to 599, not {value!r}")


@final
@attrs.frozen
class StaticResponse:
    """A fixed answer to plain ``GET`` and ``HEAD`` requests for one path over HTTP/2.

    A browser uses :rfc:`8441` only on an HTTP/2 connection it already has to
    the origin, whose server enabled extended CONNECT: the page that opens
    the WebSocket must come over that same connection. For a small page (a
    test, a demo, a status page), the WebSocket server can serve it itself;
    anything larger belongs in an HTTP server in front.
    """

    body: bytes = attrs.field(converter=bytes)
    """The response body."""
    content_type: str = "text/html; charset=utf-8"
    """The ``content-type`` header."""
    status: int = attrs.field(default=200, validator=_check_status)
    """The status code."""


def _static_map(value: Mapping[str, StaticResponse] | None) -> dict[str, StaticResponse]:
    result = dict(value or {})
    for path, response in result.items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"static paths must be str starting with '/', not {path!r}")
        if not isinstance(response, StaticResponse):
            raise TypeError(f"static[{path!r}] must be a StaticResponse, not {response!r}")
    return result


@final
@attrs.frozen
class Http2Options:
    """How a server serves WebSockets over HTTP/2 (``serve_websocket(..., http2=...)``).

    ``http2=True`` (the default) means ``Http2Options()``; ``http2=False``
    serves HTTP/1.1 only.
    """

    max_concurrent_streams: int = attrs.field(
        default=DEFAULT_MAX_CONCURRENT_STREAMS, validator=_check_streams
    )
    """WebSockets one connection may carry at once (SETTINGS_MAX_CONCURRENT_STREAMS)."""
    stream_window: int = attrs.field(default=DEFAULT_STREAM_WINDOW, validator=_check_window)
    """Bytes a peer may send on a stream ahead of the reader (SETTINGS_INITIAL_WINDOW_SIZE)."""
    static: Mapping[str, StaticResponse] = attrs.field(factory=dict, converter=_static_map)
    """Paths whose plain ``GET``/``HEAD`` over HTTP/2 get a fixed answer; others get 405."""

    @property
    def connection_window(self) -> int:
        """The connection's receive window: all stream windows at once, so none waits on another.

        RFC 9113 §5.2: flow control works per stream and per connection. A
        WebSocket whose reader stalls keeps its stream window full; were the
        connection window smaller than all the stream windows together, a
        few stalled streams would stop every other. Memory is still bounded
        per stream.
        """
        return min(MAX_WINDOW, self.stream_window * self.max_concurrent_streams)
