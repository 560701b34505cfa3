"""Tests of trio_wsext.handshake: the client's request and checks, the server's, and interop."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

import pytest
import websockets.extensions.base as ws_base
from websockets.client import ClientProtocol
from websockets.frames import Frame as WsFrame, Opcode as WsOpcode
from websockets.http11 import Response as WsResponse
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from trio_wsext.exceptions import (
    ConnectionRejected,
    HandshakeError,
    InvalidHeader,
    InvalidHeaderFormat,
    NegotiationError,
    ProtocolError,
)
from trio_wsext.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from trio_wsext.frames import Frame, FrameParser, Opcode, serialize_frame
from trio_wsext.handshake import (
    DEFAULT_USER_AGENT,
    ClientHandshake,
    ClientHandshakeResult,
    HandshakeRequest,
    ServerHandshake,
    accept_key,
)

#: RFC 6455 §1.3's example key.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="

# -- helpers -----------------------------------------------------------------------


class EchoExtension(Extension):
    """A pass-through extension that remembers its parameters."""

    def __init__(self, name: str, parameters: Sequence[ExtensionParameter]) -> None:
        super().__init__(name)
        self.parameters = list(parameters)


class EchoClientFactory(ClientExtensionFactory):
    """A seed-style client factory that accepts any answer."""

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        """Build the extension with the server's parameters."""
        return EchoExtension(self.name, parameters)


class EchoServerFactory(ServerExtensionFactory):
    """A seed-style server factory that accepts any offer and echoes its parameters."""

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept the offer as it is."""
        return list(parameters), EchoExtension(self.name, parameters)


def raw_request(
    start: str = "GET /chat HTTP/1.1",
    *,
    replace: dict[str, str | None] | None = None,
    add: Sequence[tuple[str, str]] = (),
) -> bytes:
    """Build a request head: RFC 6455 §1.2's example, with headers replaced or added."""
    base = [
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", RFC_KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    replace = replace or {}
    headers = [(n, replace.get(n, v)) for n, v in base]
    lines = [start] + [f"{n}: {v}" for n, v in headers if v is not None]
    lines += [f"{n}: {v}" for n, v in add]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def raw_response(
    client: ClientHandshake,
    status: str = "101 Switching Protocols",
    *,
    replace: dict[str, str | None] | None = None,
    add: Sequence[tuple[str, str]] = (),
) -> bytes:
    """Build a valid 101 for ``client``, with headers replaced or added."""
    base = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(client.key)),
    ]
    replace = replace or {}
    headers = [(n, replace.get(n, v)) for n, v in base]
    lines = [f"HTTP/1.1 {status}"] + [f"{n}: {v}" for n, v in headers if v is not None]
    lines += [f"{n}: {v}" for n, v in add]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def head_lines(data: bytes) -> list[str]:
    """Split an HTTP head into its lines, without the empty line at its end."""
    head, _, _ = data.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n")


def header(lines: Sequence[str], name: str) -> list[str]:
    """Return the values of header ``name`` among head lines."""
    prefix = name.lower() + ":"
    return [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith(prefix)]


def frames_in(data: bytes, *, require_mask: bool) -> list[Frame]:
    """Parse every frame in ``data``."""
    parser = FrameParser(require_mask=require_mask)
    parser.feed(data)
    frames = []
    while (frame := parser.next_frame()) is not None:
        frames.append(frame)
    return frames


def feed_bytewise_then_eof(client: ClientHandshake, data: bytes) -> None:
    """Feed ``data`` to ``client`` one byte at a time, then EOF; each must return None."""
    for i in range(len(data)):
        assert client.receive_data(data[i : i + 1]) is None
    client.receive_data(b"")


def feed_then_eof(client: ClientHandshake, data: bytes) -> None:
    """Feed ``data`` to ``client`` at once, then EOF."""
    client.receive_data(data)
    client.receive_data(b"")


def server_error(
    data: bytes, server: ServerHandshake | None = None
) -> tuple[HandshakeError, bytes]:
    """Feed ``data`` to a server handshake that must refuse it; return the error and answer."""
    server = server or ServerHandshake()
    with pytest.raises(HandshakeError) as info:
        server.receive_data(data)
    return info.value, server.error_response(info.value)


# -- accept key ----------------------------------------------------------------------


def test_accept_key_matches_rfc_example() -> None:
    """RFC 6455 §1.3: the key dGhlIHNhbXBsZSBub25jZQ== is answered s3pPLMBiTxaQ9kYGzzhZRbK+xOo=."""
    assert accept_key(RFC_KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# -- the client's request ------------------------------------------------------------


def test_client_request_has_every_handshake_header() -> None:
    """The request is a GET with Host, Upgrade, Connection, key, version 13 and User-Agent."""
    client = ClientHandshake("example.com", 80, "/chat?room=1")
    lines = head_lines(client.request_bytes())
    assert lines == [
        "GET /chat?room=1 HTTP/1.1",
        "Host: example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {client.key}",
        "Sec-WebSocket-Version: 13",
        f"User-Agent: {DEFAULT_USER_AGENT}",
    ]
    assert client.request_bytes().endswith(b"\r\n\r\n")
    assert client.request_headers[0] == (b"Host", b"example.com")


def test_client_key_is_random_base64_of_16_bytes() -> None:
    """Each handshake has its own key, the base64 of 16 bytes (RFC 6455 §4.1)."""
    keys = {ClientHandshake("example.com", 80, "/").key for _ in range(8)}
    assert len(keys) == 8
    assert all(len(base64.b64decode(key, validate=True)) == 16 for key in keys)


def test_client_user_agent_names_library_and_python() -> None:
    """The User-Agent reads trio_wsext/<version> Python/<x.y>."""
    assert re.fullmatch(r"trio_wsext/\S+ Python/3\.\d+", DEFAULT_USER_AGENT)


@pytest.mark.parametrize(
    ("host", "port", "secure", "expected"),
    [
        ("example.com", 80, False, "example.com"),
        ("example.com", 443, True, "example.com"),
        ("example.com", 443, False, "example.com:443"),
        ("example.com", 80, True, "example.com:80"),
        ("127.0.0.1", 8080, False, "127.0.0.1:8080"),
        ("::1", 8000, False, "[::1]:8000"),
        ("::1", 443, True, "[::1]"),
        ("bücher.example", 80, False, "xn--bcher-kva.example"),
    ],
    ids=["ws", "wss", "ws on 443", "wss on 80", "IPv4", "IPv6", "IPv6 wss", "IDN"],
)
def test_client_host_omits_default_port(host: str, port: int, secure: bool, expected: str) -> None:
    """Host carries the port only when it is not the scheme's default; IPv6 gets brackets."""
    client = ClientHandshake(host, port, "/", secure=secure)
    assert header(head_lines(client.request_bytes()), "Host") == [expected]


def test_client_offers_subprotocols_and_extensions_in_order() -> None:
    """Offered subprotocols and extensions go into their headers, in order."""
    client = ClientHandshake(
        "example.com",
        80,
        "/",
        subprotocols=["chat", "superchat"],
        extensions=[EchoClientFactory("b", [("x", "1")]), EchoClientFactory("a", [("k", "a+/=")])],
    )
    lines = head_lines(client.request_bytes())
    assert header(lines, "Sec-WebSocket-Protocol") == ["chat, superchat"]
    assert header(lines, "Sec-WebSocket-Extensions") == ['b; x=1, a; k="a+/="']


def test_client_sends_extra_headers_and_lets_them_replace_host_and_user_agent() -> None:
    """Extra headers (pairs or a mapping, str or bytes) are sent; Host, User-Agent replaced."""
    client = ClientHandshake(
        "example.com",
        80,
        "/",
        extra_headers=[("Origin", "https://example.com"), (b"User-Agent", b"bot/1"), ("X-A", "é")],
    )
    lines = head_lines(client.request_bytes())
    assert header(lines, "Origin") == ["https://example.com"]
    assert header(lines, "User-Agent") == ["bot/1"]
    assert client.request_bytes().count(b"User-Agent") == 1
    assert b"X-A: \xc3\xa9\r\n" in client.request_bytes()
    mapped = ClientHandshake("example.com", 80, "/", extra_headers={"Host": "front.example"})
    assert header(head_lines(mapped.request_bytes()), "Host") == ["front.example"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 0}, "port must be an int from 1 to 65535, not 0"),
        ({"port": True}, "port must be an int from 1 to 65535, not True"),
        ({"resource": "chat"}, "resource must start with '/', not 'chat'"),
        ({"resource": "/a b"}, "cannot make a request for '/a b': Illegal target characters"),
        (
            {"resource": "/caf\xe9"},
            "resource must be ASCII (percent-encode the rest), not '/café'",
        ),
        ({"host": "exa mple.com"}, "host 'exa mple.com' is not a valid host name"),
        ({"host": "x" * 64 + ".com"}, f"host '{'x' * 64}.com' is not a valid host name"),
        ({"subprotocols": "chat"}, "subprotocols must be a sequence of str, not a str"),
        ({"subprotocols": ["a b"]}, "subprotocol 'a b' is not a token"),
        (
            {"extra_headers": [("Sec-WebSocket-Key", "x")]},
            "extra_headers may not set Sec-WebSocket-Key: the handshake does",
        ),
        (
            {"extra_headers": {"Connection": "close"}},
            "extra_headers may not set Connection: the handshake does",
        ),
        (
            {"extra_headers": [("X-A", "1\r\nX-B: 2")]},
            "value of header 'X-A' holds a control character",
        ),
        ({"extra_headers": [("X A", "1")]}, "header name 'X A' is not a token"),
        ({"extra_headers": [("Été", "1")]}, "header name 'Été' is not a token"),
    ],
    ids=[
        "port 0",
        "port bool",
        "resource",
        "resource space",
        "resource non-ASCII",
        "host",
        "host label too long",
        "subprotocols str",
        "subprotocol",
        "reserved header",
        "reserved mapping",
        "CRLF injection",
        "name",
        "non-ASCII name",
    ],
)
def test_client_refuses_bad_argument(kwargs: dict[str, object], message: str) -> None:
    """An argument that cannot make a valid request raises ValueError naming it."""
    arguments: dict[str, object] = {"host": "example.com", "port": 80, "resource": "/"}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ClientHandshake(**arguments)  # type: ignore[arg-type]


# -- the client's checks of the response ---------------------------------------------


def test_client_accepts_101_split_byte_by_byte() -> None:
    """A 101 fed one byte at a time completes on its last byte."""
    client = ClientHandshake("example.com", 80, "/")
    response = raw_response(client)
    results = [client.receive_data(response[i : i + 1]) for i in range(len(response))]
    assert results[:-1] == [None] * (len(response) - 1)
    assert results[-1] == ClientHandshakeResult(
        subprotocol=None,
        extensions=[],
        response_headers=[
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", accept_key(client.key).encode()),
        ],
        extra_data=b"",
    )


def test_client_compares_upgrade_and_connection_case_insensitively() -> None:
    """Upgrade and Connection match case-insensitively; Connection is a list."""
    client = ClientHandshake("example.com", 80, "/")
    response = raw_response(
        client, replace={"Upgrade": "WebSocket", "Connection": "keep-alive, UPGRADE"}
    )
    assert client.receive_data(response) is not None


def test_client_skips_interim_responses() -> None:
    """A 100 Continue before the 101 is skipped (RFC 7231 §6.2)."""
    client = ClientHandshake("example.com", 80, "/")
    result = client.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n" + raw_response(client))
    assert result is not None


def test_client_keeps_frames_sent_right_behind_the_101() -> None:
    """Frames in the same bytes as the 101 come back as extra_data, whole."""
    client = ClientHandshake("example.com", 80, "/")
    frames = [Frame(Opcode.TEXT, b"hello"), Frame(Opcode.BINARY, b"\x00" * 300)]
    wire = b"".join(serialize_frame(frame, mask=False) for frame in frames)
    result = client.receive_data(raw_response(client) + wire)
    assert result is not None
    assert result.extra_data == wire
    assert frames_in(result.extra_data, require_mask=False) == frames


def test_client_returns_negotiated_subprotocol_and_extensions() -> None:
    """The result carries the chosen subprotocol and the extensions in response order."""
    client = ClientHandshake(
        "example.com",
        80,
        "/",
        subprotocols=["chat", "superchat"],
        extensions=[EchoClientFactory("a"), EchoClientFactory("b")],
    )
    response = raw_response(
        client,
        add=[("Sec-WebSocket-Protocol", "superchat"), ("Sec-WebSocket-Extensions", "b; q=1, a")],
    )
    result = client.receive_data(response)
    assert result is not None
    assert result.subprotocol == "superchat"
    assert [(e.name, e.parameters) for e in result.extensions if isinstance(e, EchoExtension)] == [
        ("b", [("q", "1")]),
        ("a", []),
    ]


CLIENT_FAULTS: list[
    tuple[str, dict[str, str | None], list[tuple[str, str]], type[Exception], str]
] = [
    ("no Upgrade", {"Upgrade": None}, [], InvalidHeader, "missing Upgrade header"),
    ("Upgrade h2c", {"Upgrade": "h2c"}, [], InvalidHeader, "invalid Upgrade header: 'h2c'"),
    (
        "Upgrade list",
        {"Upgrade": "websocket, h2c"},
        [],
        InvalidHeader,
        "invalid Upgrade header: 'websocket, h2c'",
    ),
    ("no Connection", {"Connection": None}, [], InvalidHeader, "missing Connection header"),
    (
        "Connection keep-alive",
        {"Connection": "keep-alive"},
        [],
        InvalidHeader,
        "invalid Connection header: 'keep-alive'",
    ),
    (
        "no accept",
        {"Sec-WebSocket-Accept": None},
        [],
        InvalidHeader,
        "missing Sec-WebSocket-Accept header",
    ),
    (
        "wrong accept",
        {"Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
        [],
        InvalidHeader,
        "invalid Sec-WebSocket-Accept header: 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='",
    ),
    (
        "two accepts",
        {"Sec-WebSocket-Accept": "{accept}"},
        [("Sec-WebSocket-Accept", "{accept}")],
        InvalidHeader,
        "invalid Sec-WebSocket-Accept header: more than one line: ['{accept}', '{accept}']",
    ),
    (
        "extension not offered",
        {},
        [("Sec-WebSocket-Extensions", "x-other")],
        NegotiationError,
        "server accepted extension 'x-other', which was not offered",
    ),
    (
        "extension twice",
        {},
        [("Sec-WebSocket-Extensions", "x-test"), ("Sec-WebSocket-Extensions", "x-test")],
        NegotiationError,
        "server accepted extension 'x-test' twice",
    ),
    (
        "malformed extensions",
        {},
        [("Sec-WebSocket-Extensions", "x-test;")],
        InvalidHeaderFormat,
        "invalid Sec-WebSocket-Extensions header: expected parameter name at 7 in 'x-test;'",
    ),
    (
        "subprotocol not offered",
        {},
        [("Sec-WebSocket-Protocol", "other")],
        NegotiationError,
        "server chose subprotocol 'other', which was not offered",
    ),
    (
        "two subprotocols",
        {},
        [("Sec-WebSocket-Protocol", "chat, superchat")],
        InvalidHeader,
        "invalid Sec-WebSocket-Protocol header: several values: ['chat', 'superchat']",
    ),
]


@pytest.mark.parametrize(
    ("replace", "add", "error", "message"),
    [row[1:] for row in CLIENT_FAULTS],
    ids=[row[0] for row in CLIENT_FAULTS],
)
def test_client_fails_bad_101(
    replace: dict[str, str | None],
    add: list[tuple[str, str]],
    error: type[Exception],
    message: str,
) -> None:
    """A 101 that breaks RFC 6455 §4.1's client checks fails the handshake with a clear error."""
    client = ClientHandshake(
        "example.com",
        80,
        "/",
        subprotocols=["chat", "superchat"],
        extensions=[EchoClientFactory("x-test")],
    )
    accept = accept_key(client.key)
    replace = {name: v if v is None else v.format(accept=accept) for name, v in replace.items()}
    add = [(name, value.format(accept=accept)) for name, value in add]
    expected = message.format(accept=accept)
    with pytest.raises(error, match=f"^{re.escape(expected)}$"):
        client.receive_data(raw_response(client, replace=replace, add=add))
    with pytest.raises(ProtocolError, match=r"^the opening handshake is over$"):
        client.receive_data(b"")


@pytest.mark.parametrize(
    ("response", "body"),
    [
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\nno way!", b"no way!"),
        (
            b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nno \r\n4\r\nway!\r\n0\r\n\r\n",
            b"no way!",
        ),
        (b"HTTP/1.1 403 Forbidden\r\n\r\nno way!", b"no way!"),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", b""),
    ],
    ids=["content-length", "chunked", "until EOF", "empty"],
)
def test_client_raises_connection_rejected_with_whole_body(response: bytes, body: bytes) -> None:
    """A non-101 answer raises ConnectionRejected with status, headers and the body read fully."""
    client = ClientHandshake("example.com", 80, "/")
    with pytest.raises(ConnectionRejected) as info:
        feed_bytewise_then_eof(client, response)
    assert (info.value.status_code, info.value.body) == (403, body)
    assert str(info.value).startswith("server rejected WebSocket connection: HTTP 403")
    assert all(name == name.lower() for name, _ in info.value.headers)


def test_client_caps_rejection_body() -> None:
    """A huge error body is cut at 64 KiB and reading stops there."""
    client = ClientHandshake("example.com", 80, "/")
    head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 10000000\r\n\r\n"
    with pytest.raises(ConnectionRejected) as info:
        client.receive_data(head + b"x" * 100_000)
    assert (info.value.status_code, info.value.body) == (500, b"x" * 65536)


def test_client_keeps_body_cut_short_by_eof() -> None:
    """EOF in the middle of an error body still raises ConnectionRejected with what arrived."""
    client = ClientHandshake("example.com", 80, "/")
    client.receive_data(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10\r\n\r\nbusy")
    with pytest.raises(ConnectionRejected) as info:
        client.receive_data(b"")
    assert (info.value.status_code, info.value.body) == (503, b"busy")
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "connection closed before the handshake response was complete"),
        (b"HTTP/1.1 101 Swi", "connection closed before the handshake response was complete"),
        (b"garbage\r\n\r\n", "invalid HTTP response: illegal status line: bytearray(b'garbage')"),
        (
            b"HTTP/1.1 101 OK\r\n" + b"X: y\r\n" * 129 + b"\r\n",
            "response has more than 128 headers",
        ),
        (
            b"HTTP/1.1 101 OK\r\nX: " + b"y" * 16384 + b"\r\n\r\n",
            "response head exceeds 16384 bytes",
        ),
        (b"HTTP/1.1 101 OK\r\nX: " + b"y" * 20000, "response head exceeds 16384 bytes"),
    ],
    ids=["EOF", "EOF in head", "garbage", "too many headers", "head too large", "head grows"],
)
def test_client_fails_broken_response(data: bytes, message: str) -> None:
    """A response that is not HTTP, too large, or cut short raises HandshakeError saying so."""
    client = ClientHandshake("example.com", 80, "/")
    with pytest.raises(HandshakeError, match=f"^{re.escape(message)}$"):
        feed_then_eof(client, data)


# -- the server's checks of the request ----------------------------------------------


def test_server_parses_rfc_example_request() -> None:
    """RFC 6455 §1.2's request gives a HandshakeRequest with its key, subprotocols and offers."""
    data = raw_request(
        add=[
            ("Origin", "http://example.com"),
            ("Sec-WebSocket-Protocol", "chat, superchat"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
            ("Sec-WebSocket-Extensions", 'x-enc; key="a+/="'),
        ]
    )
    request = ServerHandshake().receive_data(data)
    assert request == HandshakeRequest(
        method="GET",
        path="/chat",
        headers=[
            (b"host", b"server.example.com"),
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-key", RFC_KEY.encode()),
            (b"sec-websocket-version", b"13"),
            (b"origin", b"http://example.com"),
            (b"sec-websocket-protocol", b"chat, superchat"),
            (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
            (b"sec-websocket-extensions", b'x-enc; key="a+/="'),
        ],
        key=RFC_KEY,
        subprotocols=["chat", "superchat"],
        extensions=[
            ("permessage-deflate", [("client_max_window_bits", None)]),
            ("x-enc", [("key", "a+/=")]),
        ],
        extra_data=b"",
    )


@pytest.mark.parametrize(
    ("replace", "add"),
    [
        ({"Upgrade": "WebSocket"}, []),
        ({"Upgrade": "h2c, websocket"}, []),
        ({"Connection": "keep-alive, upgrade"}, []),
        ({"Connection": "keep-alive"}, [("Connection", "UPGRADE")]),
        ({}, [("Content-Length", "0")]),
    ],
    ids=["Upgrade case", "Upgrade list", "Connection list", "Connection lines", "empty body"],
)
def test_server_accepts_request_variants(
    replace: dict[str, str | None], add: list[tuple[str, str]]
) -> None:
    """Upgrade and Connection are case-insensitive comma lists, over any number of lines."""
    assert ServerHandshake().receive_data(raw_request(replace=replace, add=add)) is not None


def test_server_reads_request_split_byte_by_byte_and_keeps_frames() -> None:
    """A request fed a byte at a time completes; bytes behind the head are extra_data."""
    frame = serialize_frame(Frame(Opcode.TEXT, b"early"), mask=True)
    data = raw_request() + frame
    server = ServerHandshake()
    head_length = len(raw_request())
    for i in range(head_length - 1):
        assert server.receive_data(data[i : i + 1]) is None
    request = server.receive_data(data[head_length - 1 :])
    assert request is not None
    assert request.extra_data == frame
    assert frames_in(request.extra_data, require_mask=True) == [Frame(Opcode.TEXT, b"early")]


SERVER_FAULTS: list[tuple[str, bytes, int, str, list[str]]] = [
    (
        "POST",
        raw_request("POST /chat HTTP/1.1", add=[("Content-Length", "0")]),
        405,
        "unsupported HTTP method 'POST'",
        ["Allow: GET"],
    ),
    ("HTTP/1.0", raw_request("GET /chat HTTP/1.0"), 400, "unsupported HTTP version 1.0", []),
    (
        "no Host",
        raw_request(replace={"Host": None}),
        400,
        "invalid HTTP request: Missing mandatory Host: header",
        [],
    ),
    (
        "two Hosts",
        raw_request(add=[("Host", "other.example")]),
        400,
        "invalid HTTP request: Found multiple Host: headers",
        [],
    ),
    (
        "no Upgrade",
        raw_request(replace={"Upgrade": None}),
        426,
        "missing Upgrade header",
        ["Upgrade: websocket", "Connection: Upgrade, close"],
    ),
    (
        "Upgrade h2c",
        raw_request(replace={"Upgrade": "h2c"}),
        426,
        "invalid Upgrade header: 'h2c'",
        ["Upgrade: websocket"],
    ),
    (
        "malformed Upgrade",
        raw_request(replace={"Upgrade": "web socket"}),
        400,
        "invalid Upgrade header: expected ',' at 4 in 'web socket'",
        [],
    ),
    (
        "no Connection",
        raw_request(replace={"Connection": None}),
        426,
        "missing Connection header",
        ["Upgrade: websocket"],
    ),
    (
        "Connection keep-alive",
        raw_request(replace={"Connection": "keep-alive"}),
        426,
        "invalid Connection header: 'keep-alive'",
        ["Upgrade: websocket"],
    ),
    (
        "malformed Connection",
        raw_request(replace={"Connection": "keep alive"}),
        400,
        "invalid Connection header: expected ',' at 5 in 'keep alive'",
        [],
    ),
    (
        "no version",
        raw_request(replace={"Sec-WebSocket-Version": None}),
        426,
        "missing Sec-WebSocket-Version header",
        ["Sec-WebSocket-Version: 13"],
    ),
    (
        "version 8",
        raw_request(replace={"Sec-WebSocket-Version": "8"}),
        426,
        "invalid Sec-WebSocket-Version header: '8'",
        ["Sec-WebSocket-Version: 13", "Upgrade: websocket"],
    ),
    (
        "two versions",
        raw_request(add=[("Sec-WebSocket-Version", "8")]),
        426,
        "invalid Sec-WebSocket-Version header: '13, 8'",
        ["Sec-WebSocket-Version: 13"],
    ),
    (
        "no key",
        raw_request(replace={"Sec-WebSocket-Key": None}),
        400,
        "missing Sec-WebSocket-Key header",
        [],
    ),
    (
        "key not base64",
        raw_request(replace={"Sec-WebSocket-Key": "not base64!"}),
        400,
        "invalid Sec-WebSocket-Key header: not the base64 of 16 bytes: 'not base64!'",
        [],
    ),
    (
        "key of 15 bytes",
        raw_request(replace={"Sec-WebSocket-Key": base64.b64encode(b"x" * 15).decode()}),
        400,
        "invalid Sec-WebSocket-Key header: not the base64 of 16 bytes: 'eHh4eHh4eHh4eHh4eHh4'",
        [],
    ),
    (
        "two keys",
        raw_request(add=[("Sec-WebSocket-Key", RFC_KEY)]),
        400,
        f"invalid Sec-WebSocket-Key header: more than one line: ['{RFC_KEY}', '{RFC_KEY}']",
        [],
    ),
    (
        "malformed extensions",
        raw_request(add=[("Sec-WebSocket-Extensions", "foo;")]),
        400,
        "invalid Sec-WebSocket-Extensions header: expected parameter name at 4 in 'foo;'",
        [],
    ),
    (
        "malformed subprotocols",
        raw_request(add=[("Sec-WebSocket-Protocol", "chat superchat")]),
        400,
        "invalid Sec-WebSocket-Protocol header: expected ',' at 5 in 'chat superchat'",
        [],
    ),
    (
        "body",
        raw_request(add=[("Content-Length", "5")]) + b"hello",
        400,
        "a handshake request has no body",
        [],
    ),
    (
        "garbage",
        b"garbage\r\n\r\n",
        400,
        "invalid HTTP request: illegal request line: bytearray(b'garbage')",
        [],
    ),
    ("HTTP/2.0", raw_request("GET /chat HTTP/2.0"), 505, "unsupported HTTP version 2.0", []),
    (
        "too many headers",
        raw_request(add=[("X-Pad", "1")] * 124),
        431,
        "request has more than 128 headers",
        [],
    ),
    (
        "head too large",
        raw_request(add=[("X-Pad", "y" * 16384)]),
        431,
        "request head exceeds 16384 bytes",
        [],
    ),
    (
        "head grows",
        b"GET / HTTP/1.1\r\nX-Pad: " + b"y" * 20000,
        431,
        "request head exceeds 16384 bytes",
        [],
    ),
]


@pytest.mark.parametrize(
    ("data", "status", "reason", "headers"),
    [row[1:] for row in SERVER_FAULTS],
    ids=[row[0] for row in SERVER_FAULTS],
)
def test_server_answers_bad_request_with_status_and_reason(
    data: bytes, status: int, reason: str, headers: list[str]
) -> None:
    """Each bad request raises, naming the fault, and error_response has the right status."""
    error, answer = server_error(data)
    assert str(error) == reason
    lines = head_lines(answer)
    assert lines[0].startswith(f"HTTP/1.1 {status} ")
    assert set(headers) <= set(lines)
    assert header(lines, "Connection")[0].endswith("close")
    assert answer.partition(b"\r\n\r\n")[2] == (
        f"Failed to open a WebSocket connection: {reason}.\n".encode()
    )


def test_server_error_response_is_exact_for_bad_version() -> None:
    """A version other than 13 is answered 426 with Sec-WebSocket-Version: 13 (RFC 6455 §4.4)."""
    _, answer = server_error(raw_request(replace={"Sec-WebSocket-Version": "8"}))
    body = b"Failed to open a WebSocket connection: invalid Sec-WebSocket-Version header: '8'.\n"
    assert answer == (
        b"HTTP/1.1 426 Upgrade Required\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade, close\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def test_server_error_response_answers_foreign_error_with_400() -> None:
    """An error that this handshake did not raise gets a plain 400."""
    answer = ServerHandshake().error_response(HandshakeError("went\r\nwrong"))
    assert head_lines(answer)[0] == "HTTP/1.1 400 Bad Request"
    assert answer.endswith(b"\r\n\r\nFailed to open a WebSocket connection: went wrong.\n")


def test_server_counts_headers_against_its_limit() -> None:
    """max_header_count counts header lines: the limit passes, one more is refused."""
    data = raw_request(add=[("X-Pad", "1")] * 5)  # 10 headers
    assert ServerHandshake(max_header_count=10).receive_data(data) is not None
    error, answer = server_error(data, ServerHandshake(max_header_count=9))
    assert str(error) == "request has more than 9 headers"
    assert head_lines(answer)[0] == "HTTP/1.1 431 Request Header Fields Too Large"


def test_server_measures_head_against_byte_limit() -> None:
    """max_header_bytes bounds the head arriving whole; the bytes behind it do not count."""
    data = raw_request()
    frame = serialize_frame(Frame(Opcode.BINARY, b"x" * 1000), mask=True)
    assert ServerHandshake(max_header_bytes=len(data)).receive_data(data + frame) is not None
    error, _ = server_error(data, ServerHandshake(max_header_bytes=len(data) - 1))
    assert str(error) == f"request head exceeds {len(data) - 1} bytes"


def test_server_fails_request_cut_by_eof() -> None:
    """EOF before the request head is complete raises HandshakeError."""
    server = ServerHandshake()
    assert server.receive_data(raw_request()[:30]) is None
    with pytest.raises(
        HandshakeError, match=r"^connection closed before the request was complete$"
    ):
        server.receive_data(b"")


def test_server_refuses_data_after_request() -> None:
    """receive_data after the request was complete is local misuse."""
    server = ServerHandshake()
    assert server.receive_data(raw_request()) is not None
    with pytest.raises(
        ProtocolError, match=r"^the opening handshake request was already received$"
    ):
        server.receive_data(b"more")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_header_bytes": 0}, "max_header_bytes must be a positive int, not 0"),
        ({"max_header_count": -1}, "max_header_count must be a positive int, not -1"),
        ({"max_header_count": True}, "max_header_count must be a positive int, not True"),
    ],
    ids=["bytes 0", "count negative", "count bool"],
)
def test_server_refuses_bad_limits(kwargs: dict[str, Any], message: str) -> None:
    """Limits must be positive ints."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ServerHandshake(**kwargs)


# -- the server's answers ------------------------------------------------------------


def rfc_request(**add: str) -> HandshakeRequest:
    """Parse RFC 6455 §1.2's request with headers added (underscores become dashes)."""
    extra = [(name.replace("_", "-"), value) for name, value in add.items()]
    request = ServerHandshake().receive_data(raw_request(add=extra))
    assert request is not None
    return request


def test_server_accept_answers_rfc_example() -> None:
    """The 101 carries RFC 6455 §1.3's accept value for its key."""
    response, extensions, headers = ServerHandshake().accept(rfc_request())
    assert response == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    assert extensions == []
    assert headers[2] == (b"Sec-WebSocket-Accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")


def test_server_accept_lists_extensions_in_order_accepted() -> None:
    """The response names the accepted extensions in the client's order, with their parameters."""
    request = rfc_request(Sec_WebSocket_Extensions='b; q=1, x-none, a; k="a+/="')
    response, extensions, headers = ServerHandshake().accept(
        request,
        extensions=[EchoServerFactory("a"), EchoServerFactory("b")],
        subprotocol=None,
        extra_headers={"Server": "test"},
    )
    assert header(head_lines(response), "Sec-WebSocket-Extensions") == ['b; q=1, a; k="a+/="']
    assert [extension.name for extension in extensions] == ["b", "a"]
    assert (b"Server", b"test") in headers
    assert (
        response
        == b"\r\n".join(
            [b"HTTP/1.1 101 Switching Protocols", *(n + b": " + v for n, v in headers)]
        )
        + b"\r\n\r\n"
    )


def test_server_accept_sends_chosen_subprotocol() -> None:
    """The chosen subprotocol is sent; one not offered is refused."""
    request = rfc_request(Sec_WebSocket_Protocol="chat, superchat")
    response, _, _ = ServerHandshake().accept(request, subprotocol="superchat")
    assert header(head_lines(response), "Sec-WebSocket-Protocol") == ["superchat"]
    with pytest.raises(ValueError, match=r"^subprotocol 'other' was not offered by the client$"):
        ServerHandshake().accept(request, subprotocol="other")


def test_server_accept_refuses_reserved_extra_header() -> None:
    """extra_headers may not override a header the 101 sets itself."""
    with pytest.raises(
        ValueError, match=r"^extra_headers may not set Sec-WebSocket-Accept: the handshake does$"
    ):
        ServerHandshake().accept(rfc_request(), extra_headers=[("Sec-WebSocket-Accept", "x")])


def test_server_reject_builds_complete_response() -> None:
    """reject() sends the status, the extra headers, the body and Connection: close."""
    answer = ServerHandshake().reject(
        403, extra_headers=[("Content-Type", "text/plain")], body=b"go away"
    )
    assert answer == (
        b"HTTP/1.1 403 Forbidden\r\n"
        b"Content-Type: text/plain\r\n"
        b"Connection: close\r\n"
        b"Content-Length: 7\r\n\r\ngo away"
    )


def test_server_reject_keeps_callers_connection_header_and_unknown_status() -> None:
    """A caller's Connection header replaces the default; unknown statuses have no phrase."""
    answer = ServerHandshake().reject(599, extra_headers={"Connection": "keep-alive"})
    assert answer == b"HTTP/1.1 599\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (101, "status_code must be from 200 to 599, not 101"),
        (600, "status_code must be from 200 to 599, not 600"),
        (True, "status_code must be an int, not True"),
    ],
    ids=["101", "600", "bool"],
)
def test_server_reject_refuses_non_final_status(status: int, message: str) -> None:
    """reject() takes final statuses only."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ServerHandshake().reject(status)


def test_server_reject_refuses_framing_headers() -> None:
    """Content-Length is computed by reject(); the caller may not set it."""
    with pytest.raises(
        ValueError, match=r"^extra_headers may not set Content-Length: the handshake does$"
    ):
        ServerHandshake().reject(400, extra_headers=[("Content-Length", "3")])


# -- client and server against each other --------------------------------------------


def test_client_and_server_complete_handshake_and_keep_first_frames() -> None:
    """Our client and server agree on subprotocol and extensions; early frames survive."""
    client = ClientHandshake(
        "localhost",
        8000,
        "/chat",
        subprotocols=["v2", "v1"],
        extensions=[EchoClientFactory("x-b", [("n", "1")]), EchoClientFactory("x-a")],
        extra_headers={"Origin": "http://localhost"},
    )
    server = ServerHandshake()
    client_frame = serialize_frame(Frame(Opcode.TEXT, b"from client"), mask=True)
    request = server.receive_data(client.request_bytes() + client_frame)
    assert request is not None
    assert (request.path, request.subprotocols) == ("/chat", ["v2", "v1"])
    assert frames_in(request.extra_data, require_mask=True) == [Frame(Opcode.TEXT, b"from client")]
    response, server_extensions, _ = server.accept(
        request, subprotocol="v1", extensions=[EchoServerFactory("x-a"), EchoServerFactory("x-b")]
    )
    server_frame = serialize_frame(Frame(Opcode.BINARY, b"from server"), mask=False)
    result = client.receive_data(response + server_frame)
    assert result is not None
    assert result.subprotocol == "v1"
    assert [e.name for e in result.extensions] == [e.name for e in server_extensions]
    assert [e.name for e in result.extensions] == ["x-b", "x-a"]
    assert frames_in(result.extra_data, require_mask=False) == [
        Frame(Opcode.BINARY, b"from server")
    ]


def test_client_rejects_server_error_response() -> None:
    """Our client turns our server's error response into ConnectionRejected."""
    client = ClientHandshake("localhost", 8000, "/")
    server = ServerHandshake()
    request = client.request_bytes().replace(
        b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 7"
    )
    error, answer = server_error(request, server)
    with pytest.raises(ConnectionRejected) as info:
        client.receive_data(answer)
    assert info.value.status_code == 426
    assert (b"sec-websocket-version", b"13") in info.value.headers
    assert info.value.body == f"Failed to open a WebSocket connection: {error}.\n".encode()


# -- against the websockets library (an independent implementation) ------------------


class WsEchoExtension(ws_base.Extension):
    """A websockets pass-through extension."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[assignment]

    def encode(self, frame: WsFrame) -> WsFrame:
        """Pass the frame through."""
        return frame

    def decode(self, frame: WsFrame, *, max_size: int | None = None) -> WsFrame:
        """Pass the frame through."""
        return frame


class WsClientFactory(ws_base.ClientExtensionFactory):
    """A websockets client factory that offers ``params`` and accepts an echo of them."""

    def __init__(self, name: str, params: list[tuple[str, str | None]]) -> None:
        self.name = name  # type: ignore[assignment]
        self.params = params
        self.answer: list[tuple[str, str | None]] | None = None

    def get_request_params(self) -> list[tuple[str, str | None]]:
        """Offer the parameters."""
        return self.params

    def process_response_params(
        self,
        params: Sequence[tuple[str, str | None]],
        accepted_extensions: Sequence[ws_base.Extension],
    ) -> ws_base.Extension:
        """Remember the answer and accept."""
        self.answer = list(params)
        return WsEchoExtension(self.name)


class WsServerFactory(ws_base.ServerExtensionFactory):
    """A websockets server factory that accepts any offer and echoes its parameters."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[assignment]

    def process_request_params(
        self,
        params: Sequence[tuple[str, str | None]],
        accepted_extensions: Sequence[ws_base.Extension],
    ) -> tuple[list[tuple[str, str | None]], ws_base.Extension]:
        """Accept the offer as it is."""
        return list(params), WsEchoExtension(self.name)


def test_server_accepts_websockets_client() -> None:
    """A request from websockets' ClientProtocol passes; its client accepts our 101 and frame."""
    ws_factory = WsClientFactory("x-test", [("a", "1"), ("flag", None)])
    ws_client = ClientProtocol(
        parse_uri("ws://localhost:8765/path?q=1"),
        subprotocols=["chat", "superchat"],  # type: ignore[list-item]
        extensions=[ws_factory],
    )
    ws_client.send_request(ws_client.connect())
    request_data = b"".join(ws_client.data_to_send())
    server = ServerHandshake()
    request = server.receive_data(request_data)
    assert request is not None
    assert request.path == "/path?q=1"
    assert request.subprotocols == ["chat", "superchat"]
    assert request.extensions == [("x-test", [("a", "1"), ("flag", None)])]
    response, extensions, _ = server.accept(
        request, subprotocol="superchat", extensions=[EchoServerFactory("x-test")]
    )
    assert [e.name for e in extensions] == ["x-test"]
    frame = serialize_frame(Frame(Opcode.TEXT, b"hello websockets"), mask=False)
    ws_client.receive_data(response + frame)
    events = ws_client.events_received()
    assert ws_client.handshake_exc is None
    assert ws_client.state is WsState.OPEN
    assert ws_client.subprotocol == "superchat"
    assert ws_factory.answer == [("a", "1"), ("flag", None)]
    assert isinstance(events[0], WsResponse)
    assert isinstance(events[1], WsFrame)
    assert (events[1].opcode, events[1].data) == (WsOpcode.TEXT, b"hello websockets")


def test_websockets_client_reads_our_error_response() -> None:
    """websockets' client sees our 426 as a rejection with status 426."""
    ws_client = ClientProtocol(parse_uri("ws://localhost:8765/"))
    request_data = ws_client.connect()
    request_data.headers["Sec-WebSocket-Version"] = "8"
    ws_client.send_request(request_data)
    _, answer = server_error(b"".join(ws_client.data_to_send()))
    ws_client.receive_data(answer)
    ws_client.receive_eof()
    events = ws_client.events_received()
    assert isinstance(events[0], WsResponse)
    assert events[0].status_code == 426
    assert events[0].headers["Sec-WebSocket-Version"] == "13"
    assert ws_client.handshake_exc is not None


def test_client_accepted_by_websockets_server() -> None:
    """websockets' ServerProtocol accepts our request; we keep its first frame."""
    client = ClientHandshake(
        "localhost",
        8765,
        "/path",
        subprotocols=["chat"],
        extensions=[EchoClientFactory("x-test", [("a", "1")])],
    )
    ws_server = ServerProtocol(
        subprotocols=["chat"],  # type: ignore[list-item]
        extensions=[WsServerFactory("x-test")],
    )
    ws_server.receive_data(client.request_bytes())
    (request,) = ws_server.events_received()
    response = ws_server.accept(request)  # type: ignore[arg-type]
    assert response.status_code == 101, response.body
    ws_server.send_response(response)
    ws_server.send_text(b"hello trio_wsext")
    result = client.receive_data(b"".join(ws_server.data_to_send()))
    assert result is not None
    assert result.subprotocol == "chat"
    assert [(e.name, e.parameters) for e in result.extensions if isinstance(e, EchoExtension)] == [
        ("x-test", [("a", "1")])
    ]
    assert frames_in(result.extra_data, require_mask=False) == [
        Frame(Opcode.TEXT, b"hello trio_wsext")
    ]


def test_client_rejected_by_websockets_server() -> None:
    """websockets' reject() becomes ConnectionRejected with its status and body."""
    client = ClientHandshake("localhost", 8765, "/")
    ws_server = ServerProtocol()
    ws_server.receive_data(client.request_bytes())
    ws_server.events_received()
    ws_server.send_response(ws_server.reject(403, "Forbidden here\n"))
    with pytest.raises(ConnectionRejected) as info:
        feed_bytewise_then_eof(client, b"".join(ws_server.data_to_send()))
    assert (info.value.status_code, info.value.body) == (403, b"Forbidden here\n")


def test_client_refuses_a_header_of_the_wrong_type() -> None:
    """A number as a header value says so (bytes(1) would be a NUL byte, not "1")."""
    with pytest.raises(TypeError, match=r"^value of header 'X-A' must be str or bytes, not int$"):
        ClientHandshake("example.com", 80, "/", extra_headers={"X-A": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^header name 3 must be str or bytes, not int$"):
        ClientHandshake("example.com", 80, "/", extra_headers=[(3, "x")])  # type: ignore[list-item]
