"""The extended CONNECT (RFC 8441), sans-I/O: the server's checks and answers, the client's."""

from __future__ import annotations

import pytest

from trio_wsext.exceptions import ConnectionRejected, HandshakeError, NegotiationError
from trio_wsext.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from trio_wsext.http2.handshake import (
    Http2ClientHandshake,
    Http2Refusal,
    accept_headers,
    check_request,
    reject_headers,
)

Headers = list[tuple[bytes, bytes]]


def _request(**changes: bytes | None) -> Headers:
    headers: dict[bytes, bytes | None] = {
        b":method": b"CONNECT",
        b":protocol": b"websocket",
        b":scheme": b"https",
        b":path": b"/chat?room=1",
        b":authority": b"example.com",
        b"sec-websocket-version": b"13",
        b"sec-websocket-protocol": b"chat, superchat",
        b"sec-websocket-extensions": b"permessage-deflate; client_max_window_bits",
        b"origin": b"https://example.com",
    }
    for name, value in changes.items():
        headers[name.replace("_", "-").replace("pseudo-", ":").encode()] = value
    return [(name, value) for name, value in headers.items() if value is not None]


def test_server_checks_a_browser_request() -> None:
    """A request as Chromium sends it becomes a HandshakeRequest with host from :authority."""
    request = check_request(_request(), origins=frozenset({"https://example.com"}))
    assert request.method == "CONNECT"
    assert request.path == "/chat?room=1"
    assert request.subprotocols == ["chat", "superchat"]
    assert request.extensions == [("permessage-deflate", [("client_max_window_bits", None)])]
    assert request.headers[0] == (b"host", b"example.com")
    assert not any(name.startswith(b":") for name, _ in request.headers)


# Req. (what is wrong)                   Resp.
# :method GET                            405, allow: CONNECT
# CONNECT without :protocol              400 (a tunnel)
# :protocol h2c                          501 (RFC 9220 §3)
# sec-websocket-version 8                400, sec-websocket-version: 13
# no sec-websocket-version               400, sec-websocket-version: 13
# Origin not allowed                     403
# malformed extension offer              400
# END_STREAM on the HEADERS              400
REFUSALS = [
    ("get", _request(pseudo_method=b"GET", pseudo_protocol=None), False, 405, b"allow"),
    ("tunnel", _request(pseudo_protocol=None), False, 400, None),
    ("other-protocol", _request(pseudo_protocol=b"h2c"), False, 501, None),
    ("version-8", _request(sec_websocket_version=b"8"), False, 400, b"sec-websocket-version"),
    ("no-version", _request(sec_websocket_version=None), False, 400, b"sec-websocket-version"),
    ("origin", _request(origin=b"https://evil.example"), False, 403, None),
    ("bad-offer", _request(sec_websocket_extensions=b"a;;"), False, 400, None),
    ("end-stream", _request(), True, 400, None),
]


@pytest.mark.parametrize(
    ("request_headers", "end_stream", "status", "header"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_server_refuses_invalid_request(
    request_headers: Headers, end_stream: bool, status: int, header: bytes | None
) -> None:
    """Each fault gets its status (and the header that says what would do)."""
    with pytest.raises(Http2Refusal) as refused:
        check_request(
            request_headers, end_stream=end_stream, origins=frozenset({"https://example.com"})
        )
    assert refused.value.status_code == status
    answer, body = refused.value.response()
    assert answer[0] == (b":status", str(status).encode())
    assert body.startswith(b"Failed to open a WebSocket connection: ")
    if header is not None:
        assert header in {name for name, _ in answer}


def test_server_refuses_too_many_headers() -> None:
    """More header fields than max_header_count: 431."""
    headers = _request() + [(b"x-filler", b"1")] * 10
    with pytest.raises(Http2Refusal, match=r"^request has more than 12 headers$") as refused:
        check_request(headers, max_header_count=12)
    assert refused.value.status_code == 431


def test_server_accepts_with_negotiated_deflate_and_subprotocol() -> None:
    """accept_headers answers :status 200 with the chosen subprotocol and extension."""
    request = check_request(_request())
    headers, active = accept_headers(
        request,
        subprotocol="superchat",
        extra_headers={"X-Server": "trio"},
        extensions=[ServerPerMessageDeflateFactory()],
    )
    assert headers[0] == (b":status", b"200")
    assert (b"sec-websocket-protocol", b"superchat") in headers
    assert (b"x-server", b"trio") in headers
    assert [name for name, _ in headers if name == b"sec-websocket-extensions"]
    assert isinstance(active[0], PerMessageDeflate)


def test_server_accept_refuses_forbidden_extra_headers() -> None:
    """Connection-specific headers cannot go into an HTTP/2 answer (RFC 9113 §8.2.2)."""
    request = check_request(_request())
    with pytest.raises(ValueError, match=r"^extra_headers may not set Connection: "):
        accept_headers(request, extra_headers={"Connection": "close"})
    with pytest.raises(ValueError, match=r"not offered"):
        accept_headers(request, subprotocol="other")


def test_server_reject_headers_carry_status_and_length() -> None:
    """reject_headers: :status, the extra headers, content-length of the body."""
    assert reject_headers(404, {"X-Why": "gone"}, b"nope") == [
        (b":status", b"404"),
        (b"x-why", b"gone"),
        (b"content-length", b"4"),
    ]
    with pytest.raises(ValueError, match=r"^status_code must be from 200 to 599, not 101$"):
        reject_headers(101)


def test_client_request_is_an_extended_connect() -> None:
    """The client's request: the five pseudo-headers, version 13, offers, Host as :authority."""
    handshake = Http2ClientHandshake(
        "example.com",
        443,
        "/chat",
        secure=True,
        subprotocols=["chat"],
        extra_headers={"Host": "other.example", "Origin": "https://example.com"},
        extensions=[ClientPerMessageDeflateFactory()],
    )
    headers = dict(handshake.request_headers)
    assert headers[b":method"] == b"CONNECT"
    assert headers[b":protocol"] == b"websocket"
    assert headers[b":scheme"] == b"https"
    assert headers[b":path"] == b"/chat"
    assert headers[b":authority"] == b"other.example"
    assert headers[b"sec-websocket-version"] == b"13"
    assert headers[b"sec-websocket-protocol"] == b"chat"
    assert headers[b"sec-websocket-extensions"] == b"permessage-deflate; client_max_window_bits"
    assert headers[b"origin"] == b"https://example.com"
    assert b"host" not in headers
    # The server's own check takes what the client sends.
    assert check_request(handshake.request_headers).path == "/chat"


def test_client_refuses_forbidden_extra_headers() -> None:
    """Upgrade and Connection have no place in HTTP/2."""
    with pytest.raises(ValueError, match=r"may not set upgrade"):
        Http2ClientHandshake("a", 80, "/", secure=False, extra_headers={"upgrade": "websocket"})


def test_client_checks_the_servers_answer() -> None:
    """A 200 with an extension and a subprotocol that were offered gives them back."""
    handshake = Http2ClientHandshake(
        "a", 80, "/", secure=False, subprotocols=["chat"],
        extensions=[ClientPerMessageDeflateFactory()],
    )  # fmt: skip
    result = handshake.receive_response(
        [
            (b":status", b"200"),
            (b"sec-websocket-protocol", b"chat"),
            (b"sec-websocket-extensions", b"permessage-deflate"),
        ]
    )
    assert result.subprotocol == "chat"
    assert isinstance(result.extensions[0], PerMessageDeflate)
    assert result.response_headers == [
        (b"sec-websocket-protocol", b"chat"),
        (b"sec-websocket-extensions", b"permessage-deflate"),
    ]


def test_client_fails_on_an_unoffered_subprotocol() -> None:
    """RFC 6455 §4.1: a subprotocol that was not offered fails the connection."""
    handshake = Http2ClientHandshake("a", 80, "/", secure=False, subprotocols=["chat"])
    with pytest.raises(NegotiationError, match=r"^server chose subprotocol 'x'"):
        handshake.receive_response([(b":status", b"200"), (b"sec-websocket-protocol", b"x")])


def test_client_refuses_a_non_2xx_answer() -> None:
    """The I/O side reads the body of a refusal; the check itself refuses a non-2xx status."""
    handshake = Http2ClientHandshake("a", 80, "/", secure=False)
    with pytest.raises(HandshakeError, match=r"^the server answered 403, not 2xx$") as raised:
        handshake.receive_response([(b":status", b"403")])
    assert not isinstance(raised.value, ConnectionRejected)
