"""Tests of trio_wsext.cli.echo: the echo server of ``serve``, ``demo`` and ``bench``."""

from __future__ import annotations

import logging
from functools import partial

import pytest
import trio

from trio_wsext import Endpoint, open_websocket_url
from trio_wsext.cli.echo import _endpoint, describe_extensions, serve_echo


async def test_serve_echo_echoes_text_and_binary() -> None:
    """Each message comes back as it went, text as text and binary as binary."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_echo, "127.0.0.1", 0)
            async with open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                messages: list[str | bytes] = ["caf\u00e9", b"\x00\xff", "", b""]
                for message in messages:
                    await ws.send_message(message)
                    assert await ws.get_message() == message
            nursery.cancel_scope.cancel()


class Records(logging.Handler):
    """Keep the messages logged; set ``closed`` once a close is logged."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.closed = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if " closed: " in self.messages[-1]:
            self.closed.set()


async def test_serve_echo_logs_connection_extensions_and_close() -> None:
    """The logger gets the peer, path and negotiated extensions, then the close."""
    records = Records()
    logger = logging.getLogger("test_echo")
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    partial(serve_echo, "127.0.0.1", 0, compression=None, logger=logger)
                )
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/room?x=1") as ws:
                    assert describe_extensions(ws) == "none"
                    local = ws.local
                    await ws.send_message("one")
                    await ws.get_message()
                await records.closed.wait()
                nursery.cancel_scope.cancel()
    finally:
        logger.removeHandler(records)
    assert isinstance(local, Endpoint)
    peer = f"127.0.0.1:{local.port}"
    assert records.messages == [
        f"{peer} connected to /room?x=1, extensions: none",
        f"{peer} closed: 1000 (NORMAL_CLOSURE); 1 messages echoed",
    ]


async def test_describe_extensions_quotes_the_response_header() -> None:
    """With deflate on, the description is the server's Sec-WebSocket-Extensions value."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_echo, "127.0.0.1", 0)
            async with open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                header = dict(ws.response_headers)[b"sec-websocket-extensions"].decode()
                assert describe_extensions(ws) == header
                assert header.startswith("permessage-deflate")
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("address", "text"),
    [
        (Endpoint("127.0.0.1", 8765, False), "127.0.0.1:8765"),
        (Endpoint("::1", 8765, True), "[::1]:8765"),
        (("10.0.0.1", 80), "10.0.0.1:80"),
        ("<memory stream>", "<memory stream>"),
    ],
    ids=["endpoint-v4", "endpoint-v6", "tuple", "other"],
)
def test_endpoint_formats_peer_addresses(address: object, text: str) -> None:
    """Peers print as host:port, IPv6 hosts in brackets, anything else as it is."""
    assert _endpoint(address) == text
