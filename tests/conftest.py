"""Fixtures shared by the connection, client and server tests."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest
import trustme
from helpers import open_connection_pair

from trio_wsext.connection import WebSocketConnection


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
