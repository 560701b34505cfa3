"""Endpoints: Endpoint.url, and the addresses of streams and listeners."""

from __future__ import annotations

import ssl

import pytest
import trio
import trio.testing

from trio_wsext.endpoints import Endpoint, listener_endpoint, stream_endpoint


@pytest.mark.parametrize(
    ("address", "port", "is_ssl", "url"),
    [
        ("127.0.0.1", 80, False, "ws://127.0.0.1"),
        ("127.0.0.1", 8080, False, "ws://127.0.0.1:8080"),
        ("127.0.0.1", 443, False, "ws://127.0.0.1:443"),
        ("::1", 443, True, "wss://[::1]"),
        ("::1", 8443, True, "wss://[::1]:8443"),
    ],
    ids=["ws-default", "ws-port", "ws-on-443", "wss-v6-default", "wss-v6-port"],
)
def test_endpoint_url(address: str, port: int, is_ssl: bool, url: str) -> None:
    """Endpoint.url brackets IPv6 and leaves out the scheme's default port only."""
    assert Endpoint(address, port, is_ssl).url == url


def test_endpoint_refuses_a_non_address() -> None:
    """The address must be an IP address."""
    with pytest.raises(ValueError, match=r"^'example\.com' does not appear to be an IPv4 or IPv6"):
        Endpoint("example.com", 80, False)


async def test_memory_stream_and_listener_are_described_by_repr() -> None:
    """Streams and listeners without a socket give their repr."""
    stream, _ = trio.testing.memory_stream_pair()
    assert stream_endpoint(stream, local=True) == repr(stream)

    class Listener(trio.abc.Listener[trio.abc.Stream]):
        async def accept(self) -> trio.abc.Stream:  # pragma: no cover - never called
            raise NotImplementedError

        async def aclose(self) -> None:  # pragma: no cover - never called
            pass

    listener = Listener()
    assert listener_endpoint(listener) == repr(listener)


async def test_tcp_stream_and_listener_endpoints() -> None:
    """A TCP listener and both ends of a connection to it, on 127.0.0.1."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    assert listener_endpoint(listener) == Endpoint("127.0.0.1", port, False)
    with trio.fail_after(5):
        client = await trio.testing.open_stream_to_socket_listener(listener)
        server = await listener.accept()
    assert stream_endpoint(client, local=False) == Endpoint("127.0.0.1", port, False)
    assert stream_endpoint(server, local=True) == Endpoint("127.0.0.1", port, False)
    client_port = stream_endpoint(client, local=True)
    assert stream_endpoint(server, local=False) == client_port
    await client.aclose()
    assert stream_endpoint(client, local=True) == repr(client)  # closed: no address any more
    await server.aclose()
    await listener.aclose()
    assert listener_endpoint(listener) == repr(listener)


async def test_tls_listener_and_stream_say_is_ssl(tls_server_context: ssl.SSLContext) -> None:
    """SSLListener and SSLStream report the TCP address with is_ssl=True."""
    (inner,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = trio.SSLListener(inner, tls_server_context)
    port = inner.socket.getsockname()[1]
    assert listener_endpoint(listener) == Endpoint("127.0.0.1", port, True)
    with trio.fail_after(5):
        tcp = await trio.testing.open_stream_to_socket_listener(inner)
    stream = trio.SSLStream(tcp, ssl.create_default_context(), server_hostname="127.0.0.1")
    assert stream_endpoint(stream, local=False) == Endpoint("127.0.0.1", port, True)
    await trio.aclose_forcefully(stream)
    await listener.aclose()
