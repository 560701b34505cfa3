"""Which HTTP version a connection speaks: ALPN over TLS, the connection preface in cleartext.

Strategy: a server listens for both versions on one port. Over TLS the
client says which it wants with ALPN (:rfc:`7301`; RFC 9113 §3.2 names
HTTP/2's token ``h2``); in cleartext an HTTP/2 client "with prior
knowledge" starts with the connection preface (RFC 9113 §3.4), which no
HTTP/1.1 request can start with. Pure functions, no h2, no I/O but the
optional reads of :func:`read_preface`.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

__all__ = [
    "ALPN_H2",
    "ALPN_HTTP11",
    "PREFACE",
    "Http2Detected",
    "client_alpn",
    "configure_server_alpn",
    "read_preface",
    "server_alpn",
]

logger = logging.getLogger("trio_wsext.server")

#: RFC 9113 §3.4: "the connection preface starts with the string
#: PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

#: RFC 9113 §3.2: "The string "h2" identifies the protocol where HTTP/2 uses TLS".
ALPN_H2: Final = "h2"
#: RFC 7301 §6: HTTP/1.1's ALPN token.
ALPN_HTTP11: Final = "http/1.1"


class Http2Detected(Exception):
    """The client speaks HTTP/2: the server hands the connection to its HTTP/2 side.

    Attributes:
        initial_data: what was read from the stream already (the preface and
            what followed it, or nothing after ALPN chose ``h2``).
    """

    def __init__(self, initial_data: bytes) -> None:
        super().__init__("the client speaks HTTP/2")
        self.initial_data = initial_data


def _is_prefix(data: bytes) -> bool:
    head = data[: len(PREFACE)]
    return PREFACE[: len(head)] == head


async def read_preface(data: bytes, receive: Callable[[], Awaitable[bytes]]) -> tuple[bool, bytes]:
    """Tell whether a cleartext connection's first bytes are HTTP/2's preface.

    ``data`` is the first read; while it is a strict prefix of the preface
    (a client that sent it in pieces), more is read with ``receive``. A first
    read that already decides it (as every real client's does: the preface
    goes out with SETTINGS in one segment) costs one comparison, and no read.

    Returns:
        ``(True, everything read)`` for HTTP/2, ``(False, everything read)``
        otherwise: those bytes are the start of an HTTP/1.1 request.

    Cancellation loses the bytes read so far, as a cancelled read would.
    """
    while data and _is_prefix(data) and len(data) < len(PREFACE):
        more = await receive()
        if not more:
            break
        data += more
    return len(data) >= len(PREFACE) and _is_prefix(data), data


def server_alpn(context: ssl.SSLContext) -> str | None:
    """Return what a server ``context`` picks for a client offering ``h2`` and ``http/1.1``.

    Python cannot read back a context's ALPN protocols, so this asks it: a
    client context offers both, and the two run the first flight of a
    handshake through memory. ``None`` means the context has no ALPN
    protocols. A context that cannot get that far (no certificate, say)
    counts as configured: it is left alone.
    """
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.set_alpn_protocols([ALPN_H2, ALPN_HTTP11])
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(client_in, client_out, server_hostname="localhost")
    server_side = context.wrap_bio(server_in, server_out, server_side=True)
    try:
        for _ in range(4):
            for side in (client_side, server_side):
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.do_handshake()
            server_in.write(client_out.read())
            client_in.write(server_out.read())
            if server_side.selected_alpn_protocol() is not None:
                break
    except ssl.SSLError as exc:
        logger.debug("ALPN probe of the server's SSL context failed: %s", exc)
        return ALPN_HTTP11
    return server_side.selected_alpn_protocol()


def configure_server_alpn(context: ssl.SSLContext) -> str | None:
    """Offer ``h2`` and ``http/1.1`` on a server ``context`` that has no ALPN protocols.

    A context whose ALPN protocols were set (by its owner) is left as it is:
    the owner chose. Returns what the context now picks for a client
    offering both (see :func:`server_alpn`).
    """
    chosen = server_alpn(context)
    if chosen is None:
        context.set_alpn_protocols([ALPN_H2, ALPN_HTTP11])
        return ALPN_H2
    return chosen


def client_alpn(prefer_h2: bool) -> Sequence[str]:
    """The ALPN protocols a client offers: ``h2`` first when it wants HTTP/2."""
    return [ALPN_H2, ALPN_HTTP11] if prefer_h2 else [ALPN_HTTP11]
