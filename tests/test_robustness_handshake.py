"""Fuzzing the opening handshake: bad bytes get a HandshakeError, and the server a proper answer.

- :class:`~trio_wsext.handshake.ServerHandshake` fed arbitrary bytes or a
  mutated valid request, split anywhere, with or without EOF, returns a
  request or raises a :class:`~trio_wsext.exceptions.HandshakeError`; then
  :meth:`~trio_wsext.handshake.ServerHandshake.error_response` is a
  well-formed HTTP response (h11 reads it back) with a 4xx or 5xx status and
  the reason in its body.
- :class:`~trio_wsext.handshake.ClientHandshake` fed arbitrary bytes or a
  mutated valid response (a 101 or a rejection) raises only ``HandshakeError``
  subclasses, or returns a result.
- The header parsers raise only
  :class:`~trio_wsext.exceptions.InvalidHeaderFormat` on arbitrary text, and
  negotiation raises only ``NegotiationError`` on arbitrary offers.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Sequence
from typing import Final, Protocol, TypeAlias, TypeVar

import h11
import pytest
from hypothesis import given, settings, strategies as st

from trio_wsext.exceptions import (
    ConnectionRejected,
    HandshakeError,
    InvalidHeaderFormat,
    NegotiationError,
)
from trio_wsext.extensions.base import ClientExtensionFactory, ExtensionParameter
from trio_wsext.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from trio_wsext.handshake import (
    MAX_ERROR_REASON,
    MAX_HTTP_ERROR_DETAIL,
    MAX_REJECTION_BODY,
    ClientHandshake,
    ClientHandshakeResult,
    HandshakeRequest,
    ServerHandshake,
)
from trio_wsext.headers import (
    parse_extension_header,
    parse_subprotocol_header,
    parse_token_list,
    parse_upgrade_header,
)
from trio_wsext.negotiation import negotiate_client, negotiate_server

FUZZ: Final = settings(max_examples=200, deadline=None)

#: What error_response starts its one-line body with.
BODY_PREFIX: Final = b"Failed to open a WebSocket connection: "

#: Bytes that a peer's first frames might be: they follow the head.
TRAILING: Final = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"

T = TypeVar("T")


class Draw(Protocol):
    """What draws an example: a ``@composite``'s ``draw`` or ``st.data().draw``."""

    def __call__(self, strategy: st.SearchStrategy[T], /) -> T:
        """Draw one example from ``strategy``."""
        ...


Mutation: TypeAlias = Callable[[bytes, Draw], bytes]


# -- mutations of valid heads -------------------------------------------------------------------


def flip_bits(data: bytes, draw: Draw) -> bytes:
    """Flip one to three bits anywhere."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(out) - 1))
        out[position] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


def delete_range(data: bytes, draw: Draw) -> bytes:
    """Remove a run of bytes (a lost CR, a lost header line, a cut request line)."""
    start = draw(st.integers(0, len(data) - 1))
    end = draw(st.integers(start + 1, min(len(data), start + 40)))
    return data[:start] + data[end:]


def insert_bytes(data: bytes, draw: Draw) -> bytes:
    """Insert random bytes, or characters that matter to HTTP, anywhere."""
    position = draw(st.integers(0, len(data)))
    noise = draw(
        st.one_of(
            st.binary(min_size=1, max_size=20),
            st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b":", b" ", b",", b";", b'"', b"\0"]))
            .map(b"".join)
            .filter(bool),
        )
    )
    return data[:position] + noise + data[position:]


def duplicate_line(data: bytes, draw: Draw) -> bytes:
    """Send one line of the head twice."""
    lines = data.split(b"\r\n")
    index = draw(st.integers(0, len(lines) - 1))
    return b"\r\n".join([*lines[: index + 1], *lines[index:]])


def replace_value(data: bytes, draw: Draw) -> bytes:
    """Give one header line a value of arbitrary bytes."""
    lines = data.split(b"\r\n")
    headers = [i for i, line in enumerate(lines) if b":" in line]
    if not headers:
        return data
    index = draw(st.sampled_from(headers))
    name = lines[index].split(b":", 1)[0]
    lines[index] = name + b": " + draw(st.binary(max_size=40))
    return b"\r\n".join(lines)


def truncate(data: bytes, draw: Draw) -> bytes:
    """Cut the head short."""
    return data[: draw(st.integers(0, len(data) - 1))]


MUTATIONS: Final[list[Mutation]] = [
    flip_bits,
    delete_range,
    insert_bytes,
    duplicate_line,
    replace_value,
    truncate,
]


def pieces(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Cut ``data`` at ``cuts`` (taken modulo its length); never an empty piece."""
    bounds = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


# -- the server ---------------------------------------------------------------------------------


def valid_request(variant: int) -> bytes:
    """Return a valid opening handshake request; ``variant`` picks its options."""
    subprotocols = [None, ["chat"], ["chat", "superchat"]][variant % 3]
    extensions = [ClientPerMessageDeflateFactory()] if variant % 2 else None
    extra = [("Cookie", "a=b; c=d"), ("Origin", "http://example.com")] if variant % 4 else None
    handshake = ClientHandshake(
        "example.com",
        80 + variant,
        f"/chat?room={variant}",
        subprotocols=subprotocols,
        extensions=extensions,
        extra_headers=extra,
    )
    return handshake.request_bytes()


def read_response(response: bytes) -> tuple[h11.Response, bytes]:
    """Parse ``response`` as an HTTP/1.1 client would; return the response and its body."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "example.com")]))
    client.send(h11.EndOfMessage())
    client.receive_data(response)
    client.receive_data(b"")
    head = client.next_event()
    assert isinstance(head, h11.Response)
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.EndOfMessage):
            break
        assert isinstance(event, h11.Data)
        body += event.data
    assert isinstance(client.next_event(), h11.ConnectionClosed)
    return head, body


def check_error_response(handshake: ServerHandshake, exc: HandshakeError) -> int:
    """Check that ``error_response(exc)`` is a well-formed 4xx/5xx answer; return its status."""
    head, body = read_response(handshake.error_response(exc))
    headers = {name.lower(): value for name, value in head.headers}
    assert 400 <= head.status_code <= 599
    connection = [token.strip().lower() for token in headers[b"connection"].split(b",")]
    assert b"close" in connection
    assert headers[b"content-length"] == str(len(body)).encode()
    # One line: the reason (shortened past MAX_ERROR_REASON characters), then a full stop.
    assert body.startswith(BODY_PREFIX)
    assert body.endswith(b".\n")
    assert b"\n" not in body[:-1]
    reason = " ".join(str(exc).split())
    line = body[len(BODY_PREFIX) : -2].decode()
    if len(reason) <= MAX_ERROR_REASON:
        assert line in (reason, reason.removesuffix("."))
    else:
        assert len(line) <= MAX_ERROR_REASON + 1
        assert line.endswith("...")
        assert reason.startswith(line.removesuffix("..."))
    if head.status_code == 426:
        # RFC 7231 §6.5.15: "The server MUST send an Upgrade header field in a 426 response".
        assert headers[b"upgrade"] == b"websocket"
    if head.status_code == 405:
        assert headers[b"allow"] == b"GET"
    return head.status_code


def drive_server(
    handshake: ServerHandshake, chunks: Sequence[bytes], *, eof: bool
) -> tuple[HandshakeRequest | None, list[bytes]]:
    """Feed ``chunks`` (then EOF) until a request comes out or it raises.

    Returns:
        The request (or ``None`` while still incomplete) and the chunks not fed.
    """
    for i, chunk in enumerate(chunks):
        request = handshake.receive_data(chunk)
        if request is not None:
            return request, list(chunks[i + 1 :])
    if eof:
        request = handshake.receive_data(b"")
        assert request is None, "EOF never completes a request"
    return None, []


def check_request(request: HandshakeRequest) -> None:
    """Check what a server handler relies on in a request that passed."""
    assert request.method == "GET"
    assert len(base64.b64decode(request.key, validate=True)) == 16
    assert all(isinstance(p, str) and p for p in request.subprotocols)


@FUZZ
@given(
    data=st.binary(max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    eof=st.booleans(),
)
def test_server_handshake_answers_arbitrary_bytes(data: bytes, cuts: list[int], eof: bool) -> None:
    """Arbitrary bytes raise only HandshakeError, whose error_response is a proper 4xx/5xx."""
    handshake = ServerHandshake()
    try:
        request, _ = drive_server(handshake, pieces(data, cuts), eof=eof)
    except HandshakeError as exc:
        check_error_response(handshake, exc)
    else:
        if request is not None:
            check_request(request)


@FUZZ
@given(
    variant=st.integers(0, 11),
    mutation=st.sampled_from(MUTATIONS),
    data=st.data(),
    cuts=st.lists(st.integers(0, 1000), max_size=6),
    eof=st.booleans(),
)
def test_server_handshake_answers_mutated_requests(
    variant: int, mutation: Mutation, data: st.DataObject, cuts: list[int], eof: bool
) -> None:
    """A mutated valid request either passes whole or gets a proper 4xx/5xx answer."""
    mutated = mutation(valid_request(variant), data.draw)
    handshake = ServerHandshake()
    try:
        request, rest = drive_server(handshake, pieces(mutated + TRAILING, cuts), eof=eof)
    except HandshakeError as exc:
        check_error_response(handshake, exc)
    else:
        if request is not None:
            check_request(request)
            # The bytes behind the head are the first frames: none is lost.
            assert (request.extra_data + b"".join(rest)).endswith(TRAILING)


@pytest.mark.parametrize("variant", range(12))
@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(0, 1000), max_size=10))
def test_server_handshake_accepts_valid_request_in_any_split(
    variant: int, cuts: list[int]
) -> None:
    """The unmutated requests pass, split anywhere, and the bytes behind them are kept."""
    handshake = ServerHandshake()
    request, rest = drive_server(
        handshake, pieces(valid_request(variant) + TRAILING, cuts), eof=False
    )
    assert request is not None
    check_request(request)
    assert request.extra_data + b"".join(rest) == TRAILING


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"", 400, "connection closed before the request was complete"),
        (b"GET / HTTP/1.1\r\n", 400, "connection closed before the request was complete"),
    ],
    ids=["nothing", "request-line"],
)
def test_server_handshake_eof_names_the_problem(data: bytes, status: int, reason: str) -> None:
    """EOF before a whole request, even before its first byte, says the connection closed."""
    handshake = ServerHandshake()
    with pytest.raises(HandshakeError, match=rf"^{reason}$") as caught:
        drive_server(handshake, [data] if data else [], eof=True)
    assert check_error_response(handshake, caught.value) == status


@FUZZ
@given(
    size=st.integers(16385, 70000),
    header=st.sampled_from([b"X-Junk: ", b"Cookie: "]),
    cuts=st.lists(st.integers(0, 80000), max_size=4),
)
def test_server_handshake_refuses_oversized_head_with_431(
    size: int, header: bytes, cuts: list[int]
) -> None:
    """A head over max_header_bytes, whole or in pieces, gets 431 without waiting for its end."""
    request = valid_request(1)
    head, _, _ = request.partition(b"\r\n\r\n")
    oversized = head + b"\r\n" + header + b"a" * size + b"\r\n\r\n"
    handshake = ServerHandshake()
    with pytest.raises(HandshakeError, match=r"^request head exceeds 16384 bytes$") as caught:
        drive_server(handshake, pieces(oversized, cuts), eof=False)
    assert check_error_response(handshake, caught.value) == 431


def test_server_handshake_shortens_h11_description_of_a_long_garbage_line() -> None:
    """h11 quotes the whole bad request line; the error keeps its first 100 characters."""
    handshake = ServerHandshake()
    with pytest.raises(HandshakeError) as caught:
        handshake.receive_data(b"x" * 5000 + b"\r\n\r\n")
    detail = "illegal request line: bytearray(b'" + "x" * 63 + "..."
    assert len(detail) == MAX_HTTP_ERROR_DETAIL
    assert str(caught.value) == f"invalid HTTP request: {detail}"
    status, body = read_response(handshake.error_response(caught.value))
    assert (status.status_code, body) == (
        400,
        BODY_PREFIX + f"invalid HTTP request: {detail}\n".encode(),
    )


def test_server_handshake_error_response_bounds_a_long_reason() -> None:
    """A 10 KB malformed header is named in the answer, not echoed back whole."""
    request = valid_request(0).replace(
        b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: a;" + b"=" * 10000 + b"\r\n\r\n"
    )
    handshake = ServerHandshake()
    with pytest.raises(InvalidHeaderFormat) as caught:
        handshake.receive_data(request)
    head, body = read_response(handshake.error_response(caught.value))
    reason = "invalid Sec-WebSocket-Extensions header: expected parameter name at 2 in 'a;====="
    assert (head.status_code, body[: len(BODY_PREFIX) + len(reason)]) == (
        400,
        BODY_PREFIX + reason.encode(),
    )
    assert len(body) == len(BODY_PREFIX) + MAX_ERROR_REASON + 1


def test_client_handshake_shortens_h11_description_of_a_long_garbage_line() -> None:
    """A long garbage status line is named by its start."""
    handshake = ClientHandshake("example.com", 80, "/")
    with pytest.raises(HandshakeError) as caught:
        handshake.receive_data(b"x" * 5000 + b"\r\n\r\n")
    detail = "illegal status line: bytearray(b'" + "x" * 64 + "..."
    assert len(detail) == MAX_HTTP_ERROR_DETAIL
    assert str(caught.value) == f"invalid HTTP response: {detail}"


# -- the client ---------------------------------------------------------------------------------


def valid_exchange(variant: int) -> tuple[ClientHandshake, bytes]:
    """Return a client handshake and a valid answer to it: a 101, or a rejection."""
    subprotocols = ["chat", "superchat"] if variant % 2 else None
    client = ClientHandshake(
        "example.com",
        8080,
        "/",
        subprotocols=subprotocols,
        extensions=[ClientPerMessageDeflateFactory()] if variant % 3 else None,
    )
    server = ServerHandshake()
    request = server.receive_data(client.request_bytes())
    assert request is not None
    if variant % 4 == 3:
        return client, server.reject(403, body=b"go away\n")
    if variant % 4 == 2:
        chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
        return client, chunked + b"4\r\nnope\r\n0\r\n\r\n"
    response, _, _ = server.accept(
        request,
        subprotocol="superchat" if subprotocols else None,
        extensions=[ServerPerMessageDeflateFactory()],
    )
    return client, response + TRAILING


def drive_client(
    handshake: ClientHandshake, chunks: Sequence[bytes], *, eof: bool
) -> ClientHandshakeResult | None:
    """Feed ``chunks`` (then EOF) until a result comes out or it raises."""
    for chunk in chunks:
        result = handshake.receive_data(chunk)
        if result is not None:
            return result
    if eof:
        return handshake.receive_data(b"")
    return None


def check_client_error(exc: HandshakeError) -> None:
    """Check what a caller relies on in the client's handshake errors."""
    assert str(exc)
    if isinstance(exc, ConnectionRejected):
        assert exc.status_code != 101
        assert exc.body is not None
        assert len(exc.body) <= MAX_REJECTION_BODY


@FUZZ
@given(
    data=st.binary(max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    eof=st.booleans(),
)
def test_client_handshake_refuses_arbitrary_bytes(data: bytes, cuts: list[int], eof: bool) -> None:
    """Arbitrary bytes as a response raise only HandshakeError subclasses."""
    handshake = ClientHandshake("example.com", 80, "/")
    try:
        drive_client(handshake, pieces(data, cuts), eof=eof)
    except HandshakeError as exc:
        check_client_error(exc)


@FUZZ
@given(
    variant=st.integers(0, 11),
    mutation=st.sampled_from(MUTATIONS),
    data=st.data(),
    cuts=st.lists(st.integers(0, 1000), max_size=6),
    eof=st.booleans(),
)
def test_client_handshake_refuses_mutated_responses(
    variant: int, mutation: Mutation, data: st.DataObject, cuts: list[int], eof: bool
) -> None:
    """A mutated 101 or rejection raises only HandshakeError subclasses, or still passes."""
    client, response = valid_exchange(variant)
    mutated = mutation(response, data.draw)
    try:
        result = drive_client(client, pieces(mutated, cuts), eof=eof)
    except HandshakeError as exc:
        check_client_error(exc)
    else:
        if result is not None:
            assert all(isinstance(e, PerMessageDeflate) for e in result.extensions)
            assert result.subprotocol in (None, "chat", "superchat")


@pytest.mark.parametrize("variant", range(12))
@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(0, 1000), max_size=10))
def test_client_handshake_reads_valid_response_in_any_split(variant: int, cuts: list[int]) -> None:
    """The unmutated answers give the result or the rejection, split anywhere."""
    client, response = valid_exchange(variant)
    if variant % 4 >= 2:
        with pytest.raises(ConnectionRejected) as caught:
            drive_client(client, pieces(response, cuts), eof=True)
        assert (caught.value.status_code, caught.value.body) in [
            (403, b"go away\n"),
            (404, b"nope"),
        ]
        return
    result = drive_client(client, pieces(response, cuts), eof=False)
    assert result is not None
    assert result.subprotocol == ("superchat" if variant % 2 else None)
    assert len(result.extensions) == (1 if variant % 3 else 0)


# -- header grammar and negotiation -------------------------------------------------------------

#: Text as it comes off the wire (Latin-1), plus arbitrary Unicode for callers.
header_text = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=40),
    st.text(max_size=20),
    st.lists(
        st.sampled_from(
            ["a", "permessage-deflate", ";", ",", "=", '"', "\\", " ", "\t", "/", "x=1"]
        )
    ).map("".join),
)

PARSERS: Final = [
    parse_extension_header,
    parse_subprotocol_header,
    parse_token_list,
    parse_upgrade_header,
]


@pytest.mark.parametrize("parse", PARSERS, ids=lambda parse: parse.__name__)
@FUZZ
@given(lines=st.one_of(header_text, st.lists(header_text, max_size=3)))
def test_header_parsers_raise_only_invalid_header_format(
    parse: Callable[[str | Sequence[str]], object], lines: str | list[str]
) -> None:
    """Any text parses or raises InvalidHeaderFormat pointing into one of its lines."""
    error: InvalidHeaderFormat | None = None
    try:
        parse(lines)
    except InvalidHeaderFormat as exc:
        error = exc
    if error is not None:
        assert error.value is not None
        assert error.value in ([lines] if isinstance(lines, str) else lines)
        assert 0 <= error.pos <= len(error.value)


#: Parameters as a hostile or confused peer sends them: the real names with
#: bad values, and names that do not exist.
parameters = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "server_no_context_takeover",
                "client_no_context_takeover",
                "server_max_window_bits",
                "client_max_window_bits",
                "x",
            ]
        ),
        st.one_of(
            st.none(),
            st.sampled_from(["8", "9", "15", "16", "7", "0", "08", "-1", "", "abc", "1e1"]),
        ),
    ),
    max_size=4,
)
offers = st.lists(
    st.tuples(st.sampled_from(["permessage-deflate", "x-other"]), parameters), max_size=4
)


@FUZZ
@given(offers=offers)
def test_server_negotiation_declines_bad_offers_quietly(
    offers: list[tuple[str, list[ExtensionParameter]]],
) -> None:
    """Bad offers are declined, never raised; at most one permessage-deflate is accepted."""
    response, extensions = negotiate_server([ServerPerMessageDeflateFactory()], offers)
    assert len(response) == len(extensions) <= 1
    assert all(isinstance(e, PerMessageDeflate) for e in extensions)


@FUZZ
@given(response=offers)
def test_client_negotiation_raises_only_negotiation_error(
    response: list[tuple[str, list[ExtensionParameter]]],
) -> None:
    """Any response raises NegotiationError or gives one permessage-deflate at most."""
    factories: list[ClientExtensionFactory] = [ClientPerMessageDeflateFactory()]
    try:
        extensions = negotiate_client(factories, response)
    except NegotiationError as exc:
        message = str(exc)
    else:
        message = "accepted"
        assert len(extensions) <= 1
    assert message
