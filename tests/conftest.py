"""Fixtures shared by the connection, client and server tests."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest
import trustme
from helpers import open_connection_pair

from trio_wsext.connection import WebSocketConnection

#: The environment variables the client reads a proxy from (proxy=True, the default).
PROXY_VARIABLES = [
    f"{scheme}_proxy" for scheme in ("http", "https", "ws", "wss", "all", "socks", "no")
]


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's ``HTTPS_PROXY`` & co. out of the loopback tests.

    The proxy tests set their own variables in the test.
    """
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
async def connection_pair() -> AsyncIterator[tuple[WebSocketConnection, WebSocketConnection]]:
    """A running (client, server) pair over an in-memory stream pair, keepalive off."""
    async with open_connection_pair() as pair:
        yield pair


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1, ::1 and localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "::1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def tls_client_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts :func:`tls_ca`."""
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context
