"""The HTTP/1.1 half of the opening handshake that both roles share, on h11.

:class:`H11Side` feeds received bytes to an :class:`h11.Connection`,
remembers EOF, measures the head against its limit and ends the exchange at
the first error; :class:`~trio_wsext.handshake.client.ClientHandshake` and
:class:`~trio_wsext.handshake.server.ServerHandshake` add what each role
checks. The limits, the default ``User-Agent``, the headers the handshake
writes itself, and the functions that build a head or a whole response
live here too.
"""

from __future__ import annotations

import http
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Final, Generic, TypeAlias, TypeVar

import h11

from ..exceptions import InvalidHeader, ProtocolError
from ..headers import HeadersLike

__all__ = [
    "ACCEPT_RESERVED_HEADERS",
    "CLIENT_RESERVED_HEADERS",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_HEADER_COUNT",
    "DEFAULT_USER_AGENT",
    "FRAMING_HEADERS",
    "MAX_ERROR_REASON",
    "MAX_HTTP_ERROR_DETAIL",
    "MAX_REJECTION_BODY",
    "REJECT_RESERVED_HEADERS",
    "UPGRADE_HEADERS",
    "ExtraHeaders",
    "H11Side",
    "Headers",
    "build_head",
    "build_response",
    "package_version",
    "shorten",
    "single_value",
    "status_line",
]

#: Headers a caller adds to a request or a response: pairs or a mapping, or ``None``.
ExtraHeaders: TypeAlias = HeadersLike | None
#: Headers as h11 gives and takes them: ``(name, value)`` byte pairs.
Headers: TypeAlias = list[tuple[bytes, bytes]]

#: Bytes of request (or response) line plus headers: h11's default
#: ``max_incomplete_event_size``, and what nginx's large_client_header_buffers
#: allows (4 x 8 KiB) halved; ample for cookies and tokens.
DEFAULT_MAX_HEADER_BYTES: Final = 16384

#: Header lines: a browser sends about 15; Apache's LimitRequestFields is 100.
DEFAULT_MAX_HEADER_COUNT: Final = 128

#: Characters of h11's description of a malformed head kept in an error
#: message: h11 quotes the whole offending line, which may be kilobytes of the
#: peer's garbage; the start says what went wrong, and logs stay readable.
MAX_HTTP_ERROR_DETAIL: Final = 100

#: Characters of the reason in the body of :meth:`ServerHandshake.error_response`:
#: one readable line, never kilobytes of the client's own header echoed back.
MAX_ERROR_REASON: Final = 200

#: Body bytes of a non-101 answer that the client keeps for ConnectionRejected:
#: enough for any error page a person reads, bounded against a hostile server.
MAX_REJECTION_BODY: Final = 65536


def package_version() -> str:
    """This package's version, as installed (``0+unknown`` in a source tree)."""
    try:
        return metadata.version("trio_wsext")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


#: The client's ``User-Agent``: ``trio_wsext/<version> Python/<major.minor>``.
DEFAULT_USER_AGENT: Final = (
    f"trio_wsext/{package_version()} Python/{sys.version_info.major}.{sys.version_info.minor}"
)

#: Headers that frame a body; the handshake writes them itself, so
#: ``extra_headers`` may not set them (nor the other sets below).
FRAMING_HEADERS: Final = frozenset({b"content-length", b"transfer-encoding"})
#: Headers of the protocol switch, on both sides.
UPGRADE_HEADERS: Final = frozenset(
    b"upgrade connection sec-websocket-protocol sec-websocket-extensions".split()
)
#: What a client's request sets itself.
CLIENT_RESERVED_HEADERS: Final = (
    FRAMING_HEADERS | UPGRADE_HEADERS | {b"sec-websocket-key", b"sec-websocket-version"}
)
#: What a server's 101 sets itself.
ACCEPT_RESERVED_HEADERS: Final = FRAMING_HEADERS | UPGRADE_HEADERS | {b"sec-websocket-accept"}
#: What a server's rejection sets itself.
REJECT_RESERVED_HEADERS: Final = FRAMING_HEADERS


def single_value(index: Mapping[str, list[str]], name: str) -> str:
    """Return the one value of a header that may appear once (``index`` from index_headers).

    Raises:
        InvalidHeader: the header is missing or appears more than once.
    """
    values = index.get(name.lower(), [])
    if not values:
        raise InvalidHeader(name)
    if len(values) > 1:
        raise InvalidHeader(name, ", ".join(values), f"more than one line: {values!r}")
    return values[0]


def shorten(text: str, limit: int) -> str:
    """Return ``text`` on one line, cut to ``limit`` characters with ``...`` if longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def build_head(start_line: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """Return an HTTP/1.1 head: the start line, the headers, the blank line."""
    lines = [start_line]
    lines.extend(name + b": " + value for name, value in headers)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def status_line(status_code: int) -> bytes:
    """Return ``HTTP/1.1 <code> <reason phrase>`` (no phrase for a code Python does not know)."""
    try:
        phrase = http.HTTPStatus(status_code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status_code} {phrase}".rstrip().encode("ascii")


def build_response(status_code: int, headers: Headers, body: bytes) -> bytes:
    """Return a whole response with ``body``, framed by ``Content-Length``.

    ``Connection: close`` is added unless ``headers`` has a ``Connection``:
    after a rejection or an error the server closes the connection.
    """
    if not any(name.lower() == b"connection" for name, _ in headers):
        headers = [*headers, (b"Connection", b"close")]
    headers = [*headers, (b"Content-Length", str(len(body)).encode("ascii"))]
    return build_head(status_line(status_code), headers) + body


_Result = TypeVar("_Result")


class H11Side(Generic[_Result]):
    """One role's h11 connection during the opening handshake: bytes in, one result out.

    Subclasses parse h11's events in :meth:`_process_events`, which returns
    ``None`` until the exchange is complete; :meth:`_receive` is their
    ``receive_data``: it refuses bytes once the exchange ended (with a
    result or an error) and ends it at the first error.

    Args:
        role: ``h11.CLIENT`` or ``h11.SERVER``.
        max_head_bytes: the most bytes of start line and headers.
        finished: the message of the :exc:`~trio_wsext.exceptions.ProtocolError`
            raised by a call after the end.
    """

    def __init__(
        self, role: type[h11.CLIENT] | type[h11.SERVER], *, max_head_bytes: int, finished: str
    ) -> None:
        self._connection = h11.Connection(role, max_incomplete_event_size=max_head_bytes)
        self._received = 0
        self._eof = False
        self._done = False
        self._finished = finished

    def _receive(self, data: bytes) -> _Result | None:
        if self._done:
            raise ProtocolError(self._finished)
        if not data:
            self._eof = True
        self._received += len(data)
        self._connection.receive_data(data)
        try:
            return self._process_events()
        except BaseException:
            self._done = True
            raise

    def _process_events(self) -> _Result | None:
        raise NotImplementedError

    def _head_size(self) -> int:
        # h11 bounds a head that arrives in pieces; one that arrives whole is
        # measured here: everything received minus what h11 has not parsed.
        return self._received - len(self._connection.trailing_data[0])

    def _trailing(self) -> bytes:
        # Bytes behind the head: the peer's first frames.
        return self._connection.trailing_data[0]
