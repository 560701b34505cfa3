"""ALPN and the connection preface: how the server tells HTTP/2 from HTTP/1.1."""

from __future__ import annotations

import ssl

import pytest
import trustme

from trio_wsext.http2.selection import (
    PREFACE,
    configure_server_alpn,
    read_preface,
    server_alpn,
)
from trio_wsext.http2.settings import Http2Options, StaticResponse, require_h2


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def test_read_preface_decides_on_a_whole_first_read() -> None:
    """A first read with the whole preface is HTTP/2 without another read."""

    async def receive() -> bytes:
        raise AssertionError("no read needed")

    assert await read_preface(PREFACE + b"\x00\x00", receive) == (True, PREFACE + b"\x00\x00")


async def test_read_preface_http11_request_needs_no_read() -> None:
    """A GET is HTTP/1.1 at its first byte."""

    async def receive() -> bytes:
        raise AssertionError("no read needed")

    assert await read_preface(b"GET / HTTP/1.1\r\n", receive) == (False, b"GET / HTTP/1.1\r\n")


async def test_read_preface_reads_on_while_ambiguous() -> None:
    """A preface in pieces, and a PUT that starts like it, are told apart by reading on."""
    pieces = [PREFACE[3:10], PREFACE[10:]]

    async def receive() -> bytes:
        return pieces.pop(0)

    assert await read_preface(PREFACE[:3], receive) == (True, PREFACE)
    rest = [b"UT / HTTP/1.1\r\n"]

    async def receive_put() -> bytes:
        return rest.pop(0)

    assert await read_preface(b"P", receive_put) == (False, b"PUT / HTTP/1.1\r\n")


async def test_read_preface_eof_in_the_middle_is_not_http2() -> None:
    """A connection that ends inside the preface is no HTTP/2 client."""

    async def receive() -> bytes:
        return b""

    assert await read_preface(PREFACE[:5], receive) == (False, PREFACE[:5])


def test_server_alpn_probe_reads_what_a_context_picks() -> None:
    """No ALPN: None; after configure_server_alpn: h2; an owner's http/1.1 is kept."""
    ca = trustme.CA()
    context = _server_context(ca)
    assert server_alpn(context) is None
    assert configure_server_alpn(context) == "h2"
    assert server_alpn(context) == "h2"
    owned = _server_context(ca)
    owned.set_alpn_protocols(["http/1.1"])
    assert configure_server_alpn(owned) == "http/1.1"
    assert server_alpn(owned) == "http/1.1"


def test_require_h2_passes_with_h2_installed() -> None:
    """h2 is installed in the test environment (the test extra)."""
    require_h2()


def test_require_h2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without h2, asking for HTTP/2 says which extra to install."""
    monkeypatch.setattr("trio_wsext.http2.settings.h2_available", lambda: False)
    with pytest.raises(ImportError, match=r"pip install 'trio_wsext\[http2\]'"):
        require_h2()


def test_options_check_their_ranges() -> None:
    """Bad settings raise at once, naming the setting."""
    with pytest.raises(ValueError, match=r"^stream_window must be from 65535"):
        Http2Options(stream_window=1000)
    with pytest.raises(ValueError, match=r"^max_concurrent_streams must be from 1"):
        Http2Options(max_concurrent_streams=0)
    with pytest.raises(ValueError, match=r"^static paths must be str starting with '/'"):
        Http2Options(static={"index.html": StaticResponse(b"")})
    options = Http2Options(max_concurrent_streams=10, stream_window=100_000)
    assert options.connection_window == 1_000_000
