"""The server handshake's security rules: origins, request targets, settable head limits."""

from __future__ import annotations

from functools import partial

import pytest
import trio
from test_handshake import raw_request

from trio_wsext import WebSocketRequest, WebSocketServer, serve_websocket
from trio_wsext.exceptions import HandshakeError
from trio_wsext.handshake import ServerHandshake, request_path


def _status(handshake: ServerHandshake, data: bytes) -> int:
    """Feed a whole request; return 101-to-be (0) or the HTTP error status sent."""
    try:
        handshake.receive_data(data)
    except HandshakeError as exc:
        return int(handshake.error_response(exc).split(b" ", 2)[1])
    return 0


@pytest.mark.parametrize(
    ("origins", "sent", "status"),
    [
        (None, "https://evil.example", 0),
        (["https://app.example"], "https://app.example", 0),
        (["https://app.example"], "https://evil.example", 403),
        (["https://app.example"], None, 403),
        (["https://app.example", None], None, 0),
        ([None], "https://app.example", 403),
        (["https://app.example"], "https://APP.example", 403),  # exact, as websockets
    ],
)
def test_origins_admit_exactly_the_listed_origins(
    origins: list[str | None] | None, sent: str | None, status: int
) -> None:
    """An Origin outside the list gets 403; None in the list admits requests without one."""
    add = [] if sent is None else [("Origin", sent)]
    assert _status(ServerHandshake(origins=origins), raw_request(add=add)) == status


def test_two_origin_headers_are_refused() -> None:
    """A request with two Origin headers is not admitted by either."""
    request = raw_request(add=[("Origin", "https://app.example"), ("Origin", "https://x.example")])
    assert _status(ServerHandshake(origins=["https://app.example"]), request) == 403


def test_origins_given_as_one_string_is_a_type_error() -> None:
    """origins="https://app.example" (not a list) fails loudly, not as a set of characters."""
    with pytest.raises(TypeError, match="origins must be a list"):
        ServerHandshake(origins="https://app.example")
    with pytest.raises(TypeError, match="origins must hold str or None, not int"):
        ServerHandshake(origins=[1])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("server.example.com", 0),
        ("server.example.com:8080", 0),
        ("127.0.0.1:9000", 0),
        ("[::1]:9000", 0),
        ("[fe80::1%25eth0]", 0),
        ("", 0),  # RFC 7230 §5.4: empty when the target URI has no authority
        ("evil.example/x", 400),
        ("user@server.example.com", 400),
        ("server.example.com:port", 400),
        ("[::1", 400),
        ("[not:an:address]", 400),
        ("a,b", 0),  # sub-delims are reg-name characters
        ("two words", 400),
        (None, 400),  # missing: h11's own 400
    ],
)
def test_host_must_be_a_valid_host_and_port(host: str | None, status: int) -> None:
    """RFC 7230 §5.4: a Host with an invalid field-value gets 400, as a missing one does."""
    assert _status(ServerHandshake(), raw_request(replace={"Host": host})) == status


def test_an_invalid_host_is_named_in_the_error() -> None:
    handshake = ServerHandshake()
    with pytest.raises(HandshakeError, match=r"invalid Host: 'evil\.example/x'"):
        handshake.receive_data(raw_request(replace={"Host": "evil.example/x"}))


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/chat?room=1", "/chat?room=1"),
        ("http://evil.example/x", "/x"),
        ("ws://server.example/chat?room=1", "/chat?room=1"),
        ("https://server.example", "/"),
        ("server.example:443", None),  # authority-form: CONNECT's, names no resource
        ("*", None),
        ("chat", None),
    ],
)
def test_request_path_reduces_the_absolute_form_to_its_path(target: str, path: str | None) -> None:
    """RFC 7230 §5.3: origin-form kept, absolute-form reduced, the other forms refused."""
    assert request_path(target) == path


def test_absolute_form_target_reaches_the_handler_as_a_path() -> None:
    """GET http://evil.example/x becomes request.path == "/x", never the host."""
    handshake = ServerHandshake()
    request = handshake.receive_data(raw_request("GET http://evil.example/x HTTP/1.1"))
    assert request is not None
    assert request.path == "/x"


def test_asterisk_target_is_a_bad_request() -> None:
    """A target that names no resource gets 400."""
    assert _status(ServerHandshake(), raw_request("GET * HTTP/1.1")) == 400


async def test_serve_websocket_takes_origins_and_head_limits() -> None:
    """origins, max_header_bytes and max_header_count are settable on the server."""
    answered: list[str] = []

    async def handler(request: WebSocketRequest) -> None:
        answered.append(request.path)
        await request.reject(404)

    async def status_of(port: int, request: bytes) -> bytes:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(request)
        data = b""
        while b"\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            data += chunk
        await stream.aclose()
        return data.split(b"\r\n", 1)[0]

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(
                partial(
                    serve_websocket,
                    handler,
                    "127.0.0.1",
                    0,
                    None,
                    origins=["https://app.example"],
                    max_header_count=8,
                    max_header_bytes=1024,
                )
            )
            good = raw_request(add=[("Origin", "https://app.example")])
            evil = raw_request(add=[("Origin", "https://evil.example")])
            many = raw_request(add=[("Origin", "https://app.example")] + [("X-A", "1")] * 8)
            big = raw_request(add=[("Origin", "https://app.example"), ("X-A", "a" * 2000)])
            assert await status_of(server.port, good) == b"HTTP/1.1 404 Not Found"
            assert await status_of(server.port, evil) == b"HTTP/1.1 403 Forbidden"
            assert await status_of(server.port, many) == (
                b"HTTP/1.1 431 Request Header Fields Too Large"
            )
            assert await status_of(server.port, big) == (
                b"HTTP/1.1 431 Request Header Fields Too Large"
            )
            nursery.cancel_scope.cancel()
    assert answered == ["/chat"]
