"""The exceptions that trio_wsext raises.

The hierarchy::

    WebSocketError
    ├── ConnectionClosed            the connection is closed; ``.reason`` says how
    ├── HandshakeError              the opening handshake failed
    │   ├── ConnectionRejected      the server answered with a status other than 101
    │   │   └── RedirectError       a redirect that was not followed (too many, wss → ws)
    │   ├── ConnectionTimeout       connect + handshake took longer than connect_timeout
    │   ├── ProxyError              the proxy was unreachable, broke, or refused
    │   │   └── ProxyStatusError    an HTTP proxy answered CONNECT with a non-2xx status
    │   ├── InvalidHeader           a header is missing or has a wrong value
    │   │   └── InvalidHeaderFormat a header breaks its grammar (RFC 6455 §9.1)
    │   └── NegotiationError        an extension or subprotocol cannot be agreed
    │       ├── DuplicateParameter
    │       ├── InvalidParameterName
    │       └── InvalidParameterValue
    ├── DisconnectionTimeout        the peer did not finish the closing handshake in time
    └── ProtocolError               the peer (or the caller) broke RFC 6455
        └── PayloadTooBig           a message exceeds max_message_size (close code 1009)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .frames import CloseReason
    from .proxies import Proxy

__all__ = [
    "ConnectionClosed",
    "ConnectionRejected",
    "ConnectionTimeout",
    "DisconnectionTimeout",
    "DuplicateParameter",
    "HandshakeError",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidParameterName",
    "InvalidParameterValue",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "ProxyStatusError",
    "RedirectError",
    "WebSocketError",
]


class WebSocketError(Exception):
    """Base class of every exception trio_wsext raises."""


class ConnectionClosed(WebSocketError):
    """The connection is closed, so the operation cannot go on.

    Attributes:
        reason: the :class:`~trio_wsext.frames.CloseReason` (code, name, reason).
    """

    def __init__(self, reason: CloseReason) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.reason)


class HandshakeError(WebSocketError):
    """The opening handshake failed."""


class ConnectionRejected(HandshakeError):
    """The server answered the opening handshake with a status other than 101.

    Attributes:
        status_code: the HTTP status code.
        headers: the response headers, as ``(name, value)`` byte pairs.
        body: the response body (possibly empty).
    """

    def __init__(
        self,
        status_code: int,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> None:
        super().__init__(status_code, headers, body)
        self.status_code = status_code
        self.headers = list(headers)
        self.body = body

    def __str__(self) -> str:
        text = f"server rejected WebSocket connection: HTTP {self.status_code}"
        summary = body_summary(self.body)
        if summary:
            text += f": {summary}"
        return text


#: The most characters of a rejection's body that its message shows.
BODY_SUMMARY_LENGTH: Final = 120

_TITLE_RE: Final = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def body_summary(body: bytes | None) -> str:
    """One line that says what an HTTP answer's body is about, for an error message.

    An HTML page (a web server's error page, say) gives its ``<title>``; other
    text its first non-blank line. At most :data:`BODY_SUMMARY_LENGTH`
    characters; ``...`` marks what was cut, a further line included.
    """
    if not body:
        return ""
    head = body[:4096]
    title = _TITLE_RE.search(head)
    if title is not None:
        line, more = b" ".join(title.group(1).split()), False
    else:
        lines = [line.strip() for line in head.splitlines() if line.strip()]
        if not lines:
            return ""
        line, more = lines[0], len(lines) > 1 or len(body) > len(head)
    text = line.decode("utf-8", "replace")
    if len(text) > BODY_SUMMARY_LENGTH:
        text, more = text[:BODY_SUMMARY_LENGTH], True
    return text + " ..." if more else text


class RedirectError(ConnectionRejected):
    """The server redirected, and the client did not follow.

    Too many redirects (more than ``max_redirects``), a redirect from ``wss``
    to ``ws``, a ``Location`` that is not a ``ws``/``wss`` URL, or one to
    another origin over a Unix socket. A :class:`ConnectionRejected`
    still: ``status_code``, ``headers`` and ``body`` are the last answer's.

    Attributes:
        location: the redirect's target, resolved against the request's URL.
    """

    def __init__(self, message: str, location: str, rejected: ConnectionRejected) -> None:
        super().__init__(rejected.status_code, rejected.headers, rejected.body)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return self.message


class ConnectionTimeout(HandshakeError):
    """Opening the connection (TCP connect and handshake) took too long."""


class DisconnectionTimeout(WebSocketError):
    """The peer did not complete the closing handshake within the timeout."""


class ProxyError(HandshakeError):
    """Connecting through a proxy failed: it was unreachable, broke, or refused.

    Attributes:
        proxy: the :class:`~trio_wsext.proxies.Proxy` (``str(proxy)`` leaves its credentials out).
    """

    def __init__(self, message: str, proxy: Proxy) -> None:
        super().__init__(message)
        self.proxy = proxy


class ProxyStatusError(ProxyError):
    """An HTTP proxy answered CONNECT with a status other than 2xx.

    Attributes:
        status_code: the HTTP status code (407: the proxy wants credentials).
        reason: the reason phrase the proxy sent.
        headers: the response headers, as ``(name, value)`` byte pairs, names
            in lowercase.
        body: the response body, up to 64 KiB of it.
    """

    def __init__(
        self,
        message: str,
        proxy: Proxy,
        *,
        status_code: int,
        reason: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        super().__init__(message, proxy)
        self.status_code = status_code
        self.reason = reason
        self.headers = list(headers)
        self.body = body


class InvalidHeader(HandshakeError):
    """A handshake header is missing or has an unacceptable value.

    Attributes:
        name: the header's name.
        value: the offending value, or ``None`` when the header is missing.
    """

    def __init__(self, name: str, value: str | None = None, detail: str | None = None) -> None:
        self.name = name
        self.value = value
        self.detail = detail
        super().__init__(self._message())

    def _message(self) -> str:
        if self.value is None:
            return f"missing {self.name} header"
        if self.detail:
            return f"invalid {self.name} header: {self.detail}"
        return f"invalid {self.name} header: {self.value!r}"


class InvalidHeaderFormat(InvalidHeader):
    """A header value does not follow its grammar.

    Attributes:
        pos: the index in ``value`` where parsing failed.
    """

    def __init__(self, name: str, error: str, value: str, pos: int) -> None:
        self.pos = pos
        super().__init__(name, value, f"{error} at {pos} in {value!r}")


class NegotiationError(HandshakeError):
    """An extension or subprotocol cannot be negotiated.

    Raised by a server extension factory, it declines that one offer; the
    server then tries the client's next offer.
    """


class DuplicateParameter(NegotiationError):
    """An extension parameter appears twice."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"duplicate parameter: {name}")


class InvalidParameterName(NegotiationError):
    """An extension parameter has an unknown name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"invalid parameter name: {name}")


class InvalidParameterValue(NegotiationError):
    """An extension parameter has a value it may not have."""

    def __init__(self, name: str, value: str | None) -> None:
        self.name = name
        self.value = value
        super().__init__(f"invalid value for parameter {name}: {value!r}")


class ProtocolError(WebSocketError):
    """RFC 6455 was broken, by the peer (the connection fails) or by the caller.

    Attributes:
        code: the close code that a failure for this reason sends (1002 unless said).
    """

    code: int = 1002

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class PayloadTooBig(ProtocolError):
    """A message is larger than ``max_message_size`` (close code 1009)."""

    code = 1009
