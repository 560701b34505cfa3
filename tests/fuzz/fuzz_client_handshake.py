"""Fuzz the client's opening handshake (:class:`trio_wsext.handshake.ClientHandshake`).

A real request is made (with or without subprotocols and permessage-deflate
offers, as the input's first bytes choose); the rest of the input is the
server's answer, cut where the input says, with or without EOF. Every
``{ACCEPT}`` in it becomes the right ``Sec-WebSocket-Accept`` for this
request's random key, so the fuzzer can reach past that check. The contract
checked, from ``ClientHandshake.receive_data`` and the README:

- it returns ``None`` (incomplete) or a ``ClientHandshakeResult``, or raises
  a ``HandshakeError`` (``ConnectionRejected``, ``InvalidHeader``,
  ``InvalidHeaderFormat``, ``NegotiationError``), and nothing else; after
  either ending, another call raises ``ProtocolError``;
- a ``ConnectionRejected`` has a final status other than 101 and at most
  ``MAX_REJECTION_BODY`` bytes of body;
- a result names an offered subprotocol or none, holds at most one
  extension per factory, each of an offered name, and its ``extra_data`` is
  what followed the head.

Run: ``python tests/fuzz/fuzz_client_handshake.py [-max_total_time=60] [corpus_dir]``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from fuzzing import Reader, pieces, run

from trio_wsext.exceptions import ConnectionRejected, HandshakeError, ProtocolError
from trio_wsext.extensions.base import ClientExtensionFactory
from trio_wsext.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from trio_wsext.handshake import (
    MAX_REJECTION_BODY,
    ClientHandshake,
    ClientHandshakeResult,
    accept_key,
)

#: Replaced in the input by the accept key of the request's Sec-WebSocket-Key.
ACCEPT: Final = b"{ACCEPT}"

SUBPROTOCOLS: Final[list[list[str]]] = [[], ["chat", "superchat"]]

#: The client's extension offers the input chooses among.
OFFERS: Final[list[Callable[[], list[ClientExtensionFactory]]]] = [
    list,
    lambda: [ClientPerMessageDeflateFactory()],
    lambda: [
        ClientPerMessageDeflateFactory(
            server_max_window_bits=10, client_max_window_bits=9, server_no_context_takeover=True
        ),
        ClientPerMessageDeflateFactory(),
    ],
]


def check_result(
    result: ClientHandshakeResult,
    handshake_offers: list[ClientExtensionFactory],
    subprotocols: list[str],
    fed: bytes,
) -> None:
    """Check a successful handshake against what the client offered."""
    assert result.subprotocol is None or result.subprotocol in subprotocols
    assert len(result.extensions) <= len(handshake_offers)
    offered = {factory.name for factory in handshake_offers}
    assert all(extension.name in offered for extension in result.extensions)
    assert fed.endswith(result.extra_data)


def check_rejection(rejection: ConnectionRejected) -> None:
    """Check that a rejection has a final status and a bounded body."""
    assert 200 <= rejection.status_code <= 999, rejection.status_code
    assert len(rejection.body or b"") <= MAX_REJECTION_BODY


def one_input(data: bytes) -> None:
    """Feed ``data`` as the server's answer to a real request; check what comes out."""
    reader = Reader(data)
    subprotocols = SUBPROTOCOLS[reader.choice(len(SUBPROTOCOLS))]
    factories = OFFERS[reader.choice(len(OFFERS))]()
    eof = reader.flag()
    seed = reader.byte()
    handshake = ClientHandshake(
        "server.example.com", 80, "/chat", subprotocols=subprotocols, extensions=factories
    )
    answer = reader.rest().replace(ACCEPT, accept_key(handshake.key).encode("ascii"))
    chunks = [*pieces(answer, seed), *([b""] if eof else [])]
    result: ClientHandshakeResult | None = None
    fed = b""
    try:
        for chunk in chunks:
            fed += chunk
            result = handshake.receive_data(chunk)
            if result is not None:
                break
    except ConnectionRejected as exc:
        check_rejection(exc)
    except HandshakeError:
        pass
    else:
        if result is None:
            return
        check_result(result, factories, subprotocols, fed)
    try:
        handshake.receive_data(b"more")
    except ProtocolError:
        pass
    else:
        raise AssertionError("receive_data after the end did not raise")


def seeds() -> list[bytes]:
    """Return valid 101 answers for each offer, and rejections of each framing."""
    switch = (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + ACCEPT + b"\r\n"
    )
    answers = [
        switch + b"\r\n",
        switch + b"Sec-WebSocket-Protocol: chat\r\n\r\n\x81\x05hello",
        switch + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        switch + b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
        b"server_max_window_bits=10; client_max_window_bits=9\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" + switch + b"\r\n",
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!",
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nuntil EOF",
    ]
    out = []
    for settings in (b"\0\0\0\0", b"\1\1\1\7", b"\1\2\0\3"):
        out += [settings + answer for answer in answers]
    return out


def main() -> None:
    """Fuzz with libFuzzer; arguments as for libFuzzer (``-help=1``)."""
    run(Path(__file__).stem, seeds, sys.argv)


if __name__ == "__main__":
    main()
