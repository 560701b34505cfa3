"""Fuzz the server's opening handshake (:class:`trio_wsext.handshake.ServerHandshake`).

The input's first bytes choose the server's settings (the head limits, an
``origins=`` list or none), whether EOF follows, and where the rest is cut;
the rest is what the client sends. The contract checked, from the README's
"The opening handshake: limits and error answers" and "Bad input":

- ``receive_data`` returns ``None`` (incomplete), a ``HandshakeRequest``, or
  raises ``HandshakeError``, and nothing else; after either ending, another
  call raises ``ProtocolError``;
- ``error_response`` is one HTTP/1.1 answer that h11 reads back: a status of
  the README's table (400, 403, 405, 426, 431, 505), ``Connection: close``,
  ``Allow: GET`` on a 405, ``Upgrade: websocket`` on a 426, and a one-line
  ``text/plain`` body of at most the documented length;
- a request that passed has a path starting with ``/``, a key that is the
  base64 of 16 bytes, its ``extra_data`` is what followed the head, and
  ``accept`` (with permessage-deflate and the first subprotocol) answers it
  with a 101 that h11 reads back.

Run: ``python tests/fuzz/fuzz_server_handshake.py [-max_total_time=60] [corpus_dir]``.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Final

import h11
from fuzzing import Reader, pieces, run

from trio_wsext.exceptions import HandshakeError, ProtocolError
from trio_wsext.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from trio_wsext.handshake import (
    MAX_ERROR_REASON,
    HandshakeRequest,
    ServerHandshake,
    accept_key,
)

#: The statuses of the README's table of error answers.
ERROR_STATUSES: Final = frozenset({400, 403, 405, 426, 431, 505})

#: What error_response starts its one-line body with.
BODY_PREFIX: Final = b"Failed to open a WebSocket connection: "

#: Head limits the input chooses among: the defaults, and small ones it can reach.
LIMITS: Final = [(16384, 128), (300, 8)]

#: The origins list a server may be given (None: any origin).
ORIGINS: Final[list[list[str | None] | None]] = [None, ["https://app.example", None]]

#: A valid request head: every header the server checks.
REQUEST: Final = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: https://app.example\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-other\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def read_answer(data: bytes) -> tuple[h11.Response | h11.InformationalResponse, bytes]:
    """Parse ``data`` as the answer to a GET with h11; return its head and body."""
    client = h11.Connection(h11.CLIENT)
    upgrade = [("Host", "x"), ("Connection", "Upgrade"), ("Upgrade", "websocket")]
    client.send(h11.Request(method="GET", target="/", headers=upgrade))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    client.receive_data(b"")
    head = client.next_event()
    assert isinstance(head, h11.Response | h11.InformationalResponse), head
    body = b""
    if isinstance(head, h11.Response):
        while isinstance(event := client.next_event(), h11.Data):
            body += event.data
        assert isinstance(event, h11.EndOfMessage), event
    return head, body


def check_error(handshake: ServerHandshake, exc: HandshakeError) -> None:
    """Check that the answer to ``exc`` is one of the documented error answers."""
    head, body = read_answer(handshake.error_response(exc))
    assert head.status_code in ERROR_STATUSES, (head.status_code, exc)
    headers = {name.lower(): value for name, value in head.headers}
    assert headers[b"connection"].lower().endswith(b"close")
    assert headers[b"content-type"].startswith(b"text/plain")
    if head.status_code == 405:
        assert headers[b"allow"] == b"GET"
    if head.status_code == 426:
        assert headers[b"upgrade"] == b"websocket"
    assert body.startswith(BODY_PREFIX)
    assert body.endswith(b"\n")
    assert body.count(b"\n") == 1
    assert len(body) <= len(BODY_PREFIX) + 4 * MAX_ERROR_REASON + 2


def check_request(handshake: ServerHandshake, request: HandshakeRequest, sent: bytes) -> None:
    """Check a request that passed, and that ``accept`` answers it with a valid 101."""
    assert request.method == "GET"
    assert request.path.startswith("/")
    assert len(base64.b64decode(request.key, validate=True)) == 16
    assert sent.endswith(request.extra_data)
    subprotocol = request.subprotocols[0] if request.subprotocols else None
    response, extensions, _ = handshake.accept(
        request, subprotocol=subprotocol, extensions=[ServerPerMessageDeflateFactory()]
    )
    assert len(extensions) <= 1
    head, _ = read_answer(response)
    assert head.status_code == 101
    headers = {name.lower(): value for name, value in head.headers}
    assert headers[b"sec-websocket-accept"] == accept_key(request.key).encode("ascii")


def one_input(data: bytes) -> None:
    """Feed ``data`` to a server handshake; check whatever comes out."""
    reader = Reader(data)
    max_bytes, max_count = LIMITS[reader.choice(len(LIMITS))]
    origins = ORIGINS[reader.choice(len(ORIGINS))]
    eof = reader.flag()
    seed = reader.byte()
    sent = reader.rest()
    handshake = ServerHandshake(
        max_header_bytes=max_bytes, max_header_count=max_count, origins=origins
    )
    chunks = [*pieces(sent, seed), *([b""] if eof else [])]
    result: HandshakeRequest | None = None
    fed = b""
    try:
        for chunk in chunks:
            fed += chunk
            result = handshake.receive_data(chunk)
            if result is not None:
                break
    except HandshakeError as exc:
        check_error(handshake, exc)
    else:
        if result is None:
            return
        check_request(handshake, result, fed)
    try:
        handshake.receive_data(b"more")
    except ProtocolError:
        pass
    else:
        raise AssertionError("receive_data after the end did not raise")


def seeds() -> list[bytes]:
    """Return a valid request under every setting, with and without trailing frames."""
    frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    bare = REQUEST.replace(b"Origin: https://app.example\r\n", b"")
    out = []
    for settings in (b"\0\0\0\0", b"\0\1\0\5", b"\1\0\1\3"):
        for request in (REQUEST, REQUEST + frame, bare):
            out.append(settings + request)
    out.append(b"\0\0\1\0" + REQUEST.replace(b"GET", b"POST"))
    out.append(b"\0\0\1\0" + REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0"))
    return out


def main() -> None:
    """Fuzz with libFuzzer; arguments as for libFuzzer (``-help=1``)."""
    run(Path(__file__).stem, seeds, sys.argv)


if __name__ == "__main__":
    main()
