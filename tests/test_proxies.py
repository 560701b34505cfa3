"""Proxies without a network: proxy URLs, the environment, the CONNECT exchange, the extra."""

from __future__ import annotations

import base64
import os
import sys
from typing import Any

import pytest
import trio
import trio.testing

from trio_wsext import open_websocket
from trio_wsext.handshake import DEFAULT_USER_AGENT
from trio_wsext.proxies import (
    HTTPConnect,
    Proxy,
    ProxyError,
    ProxyStatusError,
    check_socks_support,
    get_proxy,
    http_connect,
    parse_proxy,
)

# -- proxy URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.example:3128", Proxy("http", "proxy.example", 3128)),
        ("http://proxy.example", Proxy("http", "proxy.example", 80)),
        ("https://proxy.example/", Proxy("https", "proxy.example", 443)),
        ("socks5h://127.0.0.1", Proxy("socks5h", "127.0.0.1", 1080)),
        ("SOCKS5://[::1]:9050", Proxy("socks5", "::1", 9050)),
        ("socks4a://p:1", Proxy("socks4a", "p", 1)),
        ("socks4://p:1", Proxy("socks4", "p", 1)),
        (
            "http://al%40ice:p%3Ass@proxy.example:8080",
            Proxy("http", "proxy.example", 8080, "al@ice", "p:ss"),
        ),
        ("http://bob:@p:1", Proxy("http", "p", 1, "bob", "")),
    ],
    ids=[
        "http",
        "http-default-port",
        "https-default-port",
        "socks-default-port",
        "ipv6-uppercase",
        "socks4a",
        "socks4",
        "credentials-decoded",
        "empty-password",
    ],
)
def test_parse_proxy(url: str, expected: Proxy) -> None:
    """Scheme, host, port (the scheme's by default) and decoded credentials."""
    assert parse_proxy(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://p:21", r"^proxy URL scheme must be one of http://, https://, socks5h://, "),
        ("proxy.example:3128", r"^proxy URL scheme must be one of "),
        ("http://", r"^proxy URL has no host: 'http://'$"),
        ("http://p:99999", r"^proxy URL has an invalid port: 'http://p:99999'$"),
        ("http://p:0", r"^proxy URL has an invalid port: 'http://p:0'$"),
        ("http://p:1/path", r"^proxy URL must not have a path, query or fragment: "),
        ("http://p:1?q", r"^proxy URL must not have a path, query or fragment: "),
        ("http://bob@p:1", r"^proxy URL has a user name but no password: 'http://bob@p:1'$"),
        (
            "http://bob:secret@p:1/x",
            r"^proxy URL must not have a path, query or fragment: 'http://bob:\*\*\*@p:1/x'$",
        ),
    ],
    ids=[
        "scheme",
        "no-scheme",
        "no-host",
        "port-range",
        "port-zero",
        "path",
        "query",
        "user-without-password",
        "password-hidden",
    ],
)
def test_parse_proxy_refuses(url: str, message: str) -> None:
    """A URL that names no usable proxy: ValueError, the password never shown."""
    with pytest.raises(ValueError, match=message):
        parse_proxy(url)


def test_proxy_str_and_repr_leave_out_the_password() -> None:
    """Messages and logs show the proxy, never its password."""
    proxy = parse_proxy("https://alice:s3cret@[2001:db8::1]:8443")
    assert str(proxy) == "https://[2001:db8::1]:8443"
    assert proxy.address == "[2001:db8::1]:8443"
    assert "s3cret" not in repr(proxy)
    assert "alice" in repr(proxy)


# -- the environment -----------------------------------------------------------------------


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any proxy variable (nor CGI's REQUEST_METHOD)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)
    return monkeypatch


#: (variables, the proxy for ws://example.com, the proxy for wss://example.com)
ENVIRONMENTS: list[tuple[dict[str, str], str | None, str | None]] = [
    ({}, None, None),
    ({"https_proxy": "http://s:1"}, "http://s:1", "http://s:1"),
    ({"http_proxy": "http://h:1"}, "http://h:1", None),
    ({"HTTPS_PROXY": "http://S:1"}, "http://S:1", "http://S:1"),
    (
        {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:1"},
        "http://lower:1",
        "http://lower:1",
    ),
    (
        {"http_proxy": "http://h:1", "https_proxy": "http://s:1"},
        "http://s:1",
        "http://s:1",
    ),
    (
        {"ws_proxy": "http://w:1", "wss_proxy": "http://ws:1", "https_proxy": "http://s:1"},
        "http://w:1",
        "http://ws:1",
    ),
    (
        {"socks_proxy": "socks5h://k:1", "https_proxy": "http://s:1"},
        "socks5h://k:1",
        "socks5h://k:1",
    ),
    ({"https_proxy": "socks5h://k:1"}, "socks5h://k:1", "socks5h://k:1"),
    ({"all_proxy": "socks5://a:1"}, "socks5://a:1", "socks5://a:1"),
    ({"ALL_PROXY": "http://A:1"}, "http://A:1", "http://A:1"),
    ({"all_proxy": "http://a:1", "http_proxy": "http://h:1"}, "http://h:1", "http://a:1"),
    ({"all_proxy": "http://a:1", "https_proxy": "http://s:1"}, "http://s:1", "http://s:1"),
    ({"https_proxy": "http://s:1", "no_proxy": "example.com"}, None, None),
    ({"https_proxy": "http://s:1", "NO_PROXY": ".com"}, None, None),
    ({"https_proxy": "http://s:1", "no_proxy": "*"}, None, None),
    (
        {"https_proxy": "http://s:1", "no_proxy": "other.com,xample.com"},
        "http://s:1",
        "http://s:1",
    ),
]


@pytest.mark.parametrize(
    ("variables", "for_ws", "for_wss"),
    ENVIRONMENTS,
    ids=[
        "none",
        "https-for-both",
        "http-for-ws-only",
        "upper-case",
        "lower-case-wins",
        "https-before-http",
        "ws-and-wss-first",
        "socks-before-https",
        "socks-in-https",
        "all-for-both",
        "all-upper-case",
        "all-last",
        "https-before-all",
        "no-proxy-host",
        "no-proxy-domain-upper-case",
        "no-proxy-star",
        "no-proxy-other-names",
    ],
)
def test_get_proxy_reads_the_environment_as_websockets_does(
    environ: pytest.MonkeyPatch,
    variables: dict[str, str],
    for_ws: str | None,
    for_wss: str | None,
) -> None:
    """ws(s)_proxy, socks, https_proxy (both), http_proxy (ws), all_proxy; no_proxy first."""
    for name, value in variables.items():
        environ.setenv(name, value)
    assert get_proxy("example.com", 80, secure=False) == for_ws
    assert get_proxy("example.com", 443, secure=True) == for_wss


def test_get_proxy_checks_no_proxy_against_an_ipv6_address(environ: pytest.MonkeyPatch) -> None:
    """An IPv6 target is matched with brackets, as no_proxy lists it."""
    environ.setenv("https_proxy", "http://s:1")
    environ.setenv("no_proxy", "[::1]")
    assert get_proxy("::1", 8080, secure=True) is None
    assert get_proxy("::2", 8080, secure=True) == "http://s:1"


# -- the CONNECT exchange ------------------------------------------------------------------

PROXY = Proxy("http", "proxy.example", 3128)
ALICE = Proxy("http", "proxy.example", 3128, "alice", "s3cret")


@pytest.mark.parametrize(
    ("proxy", "host", "port", "expected"),
    [
        (
            PROXY,
            "example.com",
            443,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        ),
        (
            PROXY,
            "example.com",
            80,
            b"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n",
        ),
        (PROXY, "::1", 8080, b"CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
        (
            ALICE,
            "example.com",
            443,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
            b"Proxy-Authorization: Basic " + base64.b64encode(b"alice:s3cret") + b"\r\n\r\n",
        ),
    ],
    ids=["default-wss-port", "default-ws-port", "ipv6", "basic-auth"],
)
def test_connect_request_names_the_target_with_its_port(
    proxy: Proxy, host: str, port: int, expected: bytes
) -> None:
    """RFC 9110 §9.3.6: authority form, the port always; Basic credentials from the URL."""
    assert HTTPConnect(proxy, host, port, user_agent=None).request_bytes() == expected


def test_connect_request_sends_our_user_agent_by_default() -> None:
    """User-Agent is the handshake's."""
    request = HTTPConnect(PROXY, "example.com", 443).request_bytes()
    assert f"\r\nUser-Agent: {DEFAULT_USER_AGENT}\r\n".encode() in request


def test_connect_refuses_a_bad_port() -> None:
    """A port out of range raises before anything is sent."""
    with pytest.raises(ValueError, match=r"^port must be an int from 1 to 65535, not 0$"):
        HTTPConnect(PROXY, "example.com", 0)


def exchange() -> HTTPConnect:
    """A CONNECT to example.com:443 through PROXY."""
    return HTTPConnect(PROXY, "example.com", 443, user_agent=None)


def test_connect_opens_the_tunnel_on_2xx_in_pieces() -> None:
    """A 200 answer fed a byte at a time: False until its head is whole, then True."""
    connect = exchange()
    answer = b"HTTP/1.1 200 Connection established\r\n\r\n"
    assert [connect.receive_data(answer[i : i + 1]) for i in range(len(answer))] == [False] * (
        len(answer) - 1
    ) + [True]


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.0 200 Connection established\r\nProxy-Agent: x\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    ],
    ids=["content-length-ignored", "http-1.0", "after-1xx"],
)
def test_connect_opens_the_tunnel_on_any_2xx(answer: bytes) -> None:
    """Any 2xx opens it; its Content-Length is ignored (RFC 9110 §9.3.6); 1xx are skipped."""
    assert exchange().receive_data(answer) is True


def test_connect_refuses_bytes_through_the_tunnel_before_the_client_spoke() -> None:
    """Neither a WebSocket server nor a TLS server speaks first: bytes behind the 2xx are wrong."""
    with pytest.raises(ProxyError) as caught:
        exchange().receive_data(b"HTTP/1.1 200 OK\r\n\r\nabc")
    assert str(caught.value) == (
        "proxy http://proxy.example:3128 sent 3 bytes through the tunnel to example.com:443"
        " before the client spoke"
    )
    assert caught.value.proxy == PROXY


def test_connect_407_names_the_proxy_status_and_what_to_do() -> None:
    """407 without credentials: ProxyStatusError with status, reason, headers and body."""
    connect = exchange()
    answer = (
        b"HTTP/1.0 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Basic realm="p"\r\nContent-Length: 4\r\n\r\nnope'
    )
    with pytest.raises(ProxyStatusError) as caught:
        connect.receive_data(answer)
    error = caught.value
    assert str(error) == (
        "proxy http://proxy.example:3128 refused to open a tunnel to example.com:443:"
        " HTTP 407 Proxy Authentication Required"
        " (give credentials in the proxy URL: scheme://user:password@host)"
    )
    assert (error.status_code, error.reason, error.body) == (
        407,
        "Proxy Authentication Required",
        b"nope",
    )
    assert (b"proxy-authenticate", b'Basic realm="p"') in error.headers
    assert isinstance(error, ProxyError)


@pytest.mark.parametrize("status", [b"407 Denied", b"401 Unauthorized"], ids=["407", "401"])
def test_connect_407_with_credentials_says_they_were_refused(status: bytes) -> None:
    """407 (or tinyproxy's 401) despite credentials: the user is named, never the password."""
    connect = HTTPConnect(ALICE, "example.com", 443)
    with pytest.raises(ProxyStatusError) as caught:
        connect.receive_data(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
    assert str(caught.value).endswith(
        f": HTTP {status.decode()} (the credentials of user 'alice' were refused)"
    )
    assert "s3cret" not in str(caught.value)


def test_connect_error_is_raised_once_its_body_ends_at_eof() -> None:
    """A 502 whose body runs to EOF: raised at EOF, the body kept."""
    connect = exchange()
    assert connect.receive_data(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n") is False
    assert connect.receive_data(b"cannot reach") is False
    with pytest.raises(ProxyStatusError) as caught:
        connect.receive_data(b"")
    assert str(caught.value) == (
        "proxy http://proxy.example:3128 refused to open a tunnel to example.com:443:"
        " HTTP 502 Bad Gateway"
    )
    assert caught.value.body == b"cannot reach"


def test_connect_error_body_is_kept_up_to_64_kib() -> None:
    """A huge error body is not read past 64 KiB: the error is raised there."""
    connect = exchange()
    connect.receive_data(b"HTTP/1.1 503 Busy\r\nContent-Length: 1000000\r\n\r\n")
    with pytest.raises(ProxyStatusError) as caught:
        connect.receive_data(b"x" * 70000)
    assert len(caught.value.body) == 65536


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ([b"\x05\x00"], "an answer that is not valid HTTP"),
        ([b""], "no whole answer before closing the connection"),
        ([b"HTTP/1.1 200 OK\r\n", b""], "no whole answer before closing the connection"),
        ([b"HTTP/1.1 200 OK\r\nX: " + b"y" * 20000], "an answer head over 16384 bytes"),
    ],
    ids=["socks-answer", "eof", "eof-in-head", "head-too-large"],
)
def test_connect_reports_an_answer_that_is_not_http(data: list[bytes], detail: str) -> None:
    """Garbage, EOF or an endless head: ProxyError naming the proxy and the target."""
    connect = exchange()
    *first, last = data
    for chunk in first:
        assert connect.receive_data(chunk) is False
    with pytest.raises(ProxyError) as caught:
        connect.receive_data(last)
    assert type(caught.value) is ProxyError
    assert str(caught.value) == (
        f"proxy http://proxy.example:3128 sent {detail} to CONNECT example.com:443"
    )


def test_connect_refuses_data_after_it_ended() -> None:
    """Feeding an exchange that is over is a bug of the caller."""
    connect = exchange()
    connect.receive_data(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(RuntimeError, match=r"^the CONNECT exchange is over$"):
        connect.receive_data(b"more")


async def test_http_connect_runs_the_exchange_over_a_stream() -> None:
    """Over an in-memory stream: the proxy reads the request, answers, then bytes go through."""
    client, proxy = trio.testing.memory_stream_pair()
    received: list[bytes] = []

    async def fake_proxy() -> None:
        request = b""
        while not request.endswith(b"\r\n\r\n"):
            request += await proxy.receive_some()
        received.append(request)
        await proxy.send_all(b"HTTP/1.1 200 OK\r\n\r\n")
        received.append(bytes(await proxy.receive_some()))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fake_proxy)
            await http_connect(client, exchange())
            await client.send_all(b"through")
    assert received == [exchange().request_bytes(), b"through"]


async def test_http_connect_reports_a_broken_stream_as_a_proxy_error() -> None:
    """The proxy's side closed abruptly: ProxyError naming the proxy, the cause kept."""
    client, proxy = trio.testing.lockstep_stream_pair()
    await proxy.aclose()
    with trio.fail_after(5), pytest.raises(ProxyError) as caught:
        await http_connect(client, exchange())
    assert str(caught.value).startswith(
        "connection to proxy http://proxy.example:3128 broke before the tunnel to"
        " example.com:443 was open: "
    )
    assert isinstance(caught.value.__cause__, trio.BrokenResourceError)


# -- the socks extra and the client's options ----------------------------------------------


@pytest.fixture
def without_python_socks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import python_socks`` fail, as when the extra is not installed."""
    for name in list(sys.modules):
        if name == "python_socks" or name.startswith("python_socks."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "python_socks", None)


@pytest.mark.usefixtures("without_python_socks")
def test_socks_without_python_socks_names_the_extra() -> None:
    """A SOCKS proxy without python-socks: ImportError that says what to install."""
    with pytest.raises(ImportError) as caught:
        check_socks_support(parse_proxy("socks5h://127.0.0.1:1080"))
    assert str(caught.value) == (
        "a socks5h:// proxy needs python-socks: pip install 'trio_wsext[socks]'"
    )
    check_socks_support(parse_proxy("http://127.0.0.1:3128"))  # HTTP needs nothing


@pytest.mark.usefixtures("without_python_socks")
async def test_client_with_a_socks_proxy_and_no_python_socks_fails_before_connecting() -> None:
    """The ImportError comes before any I/O (the proxy on port 1 is never tried)."""
    with pytest.raises(ImportError, match=r"pip install 'trio_wsext\[socks\]'"):
        async with open_websocket("127.0.0.1", 1, proxy="socks5://127.0.0.1:1"):
            pass  # pragma: no cover


@pytest.mark.parametrize(
    ("proxy", "error", "message"),
    [
        ("ftp://p:1", ValueError, r"^proxy URL scheme must be one of "),
        ("http://p:1/x", ValueError, r"^proxy URL must not have a path, query or fragment"),
        (3128, TypeError, r"^proxy must be a URL string, True or None, not int$"),
    ],
    ids=["scheme", "path", "type"],
)
async def test_client_checks_the_proxy_option_before_connecting(
    proxy: Any, error: type[Exception], message: str
) -> None:
    """A bad proxy option raises before any socket is opened."""
    with pytest.raises(error, match=message):
        async with open_websocket("127.0.0.1", 1, proxy=proxy):
            pass  # pragma: no cover


async def test_client_reports_an_invalid_proxy_from_the_environment(
    environ: pytest.MonkeyPatch,
) -> None:
    """An unusable proxy variable: ValueError naming the URL it was for, before connecting."""
    environ.setenv("http_proxy", "ftp://p:1")
    with pytest.raises(ValueError, match=r"^the environment's proxy for ws://127\.0\.0\.1:1/ is"):
        async with open_websocket("127.0.0.1", 1):
            pass  # pragma: no cover
