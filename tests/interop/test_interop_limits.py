"""trio_wsext's default max_message_size (2**20) against messages that peers compress.

A message of exactly max_message_size bytes must arrive, however the peer compressed it; one
byte more must fail the connection with 1009 on both sides.  Random data does not compress:
a deflater sends it as stored blocks, a few bytes longer than the message (up to about 4 %
with zlib's smallest memLevel; 0.24 % with websockets' defaults and trio_wsext's own, 12-bit
windows and memLevel 5; 0.21 % with a 2**10-byte window).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import pytest
import trio
from websockets.exceptions import ConnectionClosed as PeerConnectionClosed
from websockets.sync.client import connect

from trio_wsext import WebSocketRequest, open_websocket_url
from trio_wsext.exceptions import ConnectionClosed, WebSocketError

from .peers import PEER_MAX_SIZE, PEER_TIMEOUT, websockets_server
from .plan import compare_echo, random_bytes
from .processes import NODE_DIR, spawn
from .trio_side import serving

pytestmark = pytest.mark.interop

TEST_TIMEOUT: Final = 30
# trio_wsext's default max_message_size (API.md).
LIMIT: Final = 2**20
NODE_WINDOW_10: Final = {"perMessageDeflate": {"threshold": 0, "serverMaxWindowBits": 10}}

Outcome = tuple[str | None, int | None]
"""What one exchange ended with: the echo's verdict (None = intact), and a close code."""


@asynccontextmanager
async def node_server(node: str, tmp_path: Path) -> AsyncIterator[str]:
    """Run node/echo_server.js with a 2**10-byte server window; yield its URL."""
    argv = [node, "echo_server.js", json.dumps(NODE_WINDOW_10)]
    async with spawn(argv, cwd=NODE_DIR, stderr_path=tmp_path / "node.stderr") as child:
        yield f"ws://127.0.0.1:{(await child.receive_json())['port']}/"


async def trio_client_exchange(url: str, message: bytes) -> Outcome:
    """Send ``message`` with a default trio_wsext client; return how its echo fared."""
    async with open_websocket_url(url) as ws:
        await ws.send_message(message)
        try:
            return compare_echo(message, await ws.get_message()), None
        except ConnectionClosed as exc:
            return "no echo", exc.reason.code


def websockets_client_exchange(url: str, message: bytes) -> Outcome:
    """Send ``message`` with a default websockets client; return how its echo fared."""
    with connect(url, open_timeout=PEER_TIMEOUT, max_size=PEER_MAX_SIZE) as ws:
        ws.send(message)
        try:
            return compare_echo(message, ws.recv(timeout=PEER_TIMEOUT)), None
        except PeerConnectionClosed as exc:
            return "no echo", exc.rcvd.code if exc.rcvd else None


async def echo_once(request: WebSocketRequest) -> None:
    """Echo messages with a default trio_wsext server until the client leaves."""
    ws = await request.accept()
    try:
        async for message in ws:
            await ws.send_message(message)
    except WebSocketError:
        pass


async def _trio_to_websockets(size: int, request: pytest.FixtureRequest) -> Outcome:
    async with websockets_server({}) as (url, _):
        return await trio_client_exchange(url, random_bytes(size + 1, size))


async def _trio_to_node(size: int, request: pytest.FixtureRequest) -> Outcome:
    node, tmp_path = request.getfixturevalue("node"), request.getfixturevalue("tmp_path")
    async with node_server(node, tmp_path) as url:
        return await trio_client_exchange(url, random_bytes(size + 1, size))


async def _websockets_to_trio(size: int, request: pytest.FixtureRequest) -> Outcome:
    async with serving(echo_once, max_message_size=LIMIT) as url:
        message = random_bytes(size + 1, size)
        return await trio.to_thread.run_sync(websockets_client_exchange, url, message)


async def _trio_to_trio(size: int, request: pytest.FixtureRequest) -> Outcome:
    async with serving(echo_once, max_message_size=LIMIT) as url:
        return await trio_client_exchange(url, random_bytes(size + 1, size))


EXCHANGES: Final[dict[str, Callable[[int, pytest.FixtureRequest], Awaitable[Outcome]]]] = {
    "trio-client-websockets-server-defaults": _trio_to_websockets,
    "trio-client-node-server-window-10": _trio_to_node,
    "websockets-client-defaults-trio-server": _websockets_to_trio,
    # trio_wsext's own defaults (12-bit windows, memLevel 5) expand random data by 0.24 %.
    "trio-client-trio-server-defaults": _trio_to_trio,
}


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_trio_receives_compressed_message_of_exactly_max_message_size(
    exchange: str, request: pytest.FixtureRequest
) -> None:
    """A random message of exactly max_message_size, compressed by the peer, gets through."""
    with trio.fail_after(TEST_TIMEOUT):
        assert await EXCHANGES[exchange](LIMIT, request) == (None, None)


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_trio_refuses_compressed_message_one_byte_over_max_message_size(
    exchange: str, request: pytest.FixtureRequest
) -> None:
    """A random message one byte over max_message_size fails the connection with 1009."""
    with trio.fail_after(TEST_TIMEOUT):
        assert await EXCHANGES[exchange](LIMIT + 1, request) == ("no echo", 1009)
