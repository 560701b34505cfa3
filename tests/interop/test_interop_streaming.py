"""Streaming messages against independent peers: websockets (its trio API) and Node's ws.

trio_wsext sends a message as fragments (``send_message(iterable)``), compressed per
fragment, and the peer must rebuild it byte for byte; the peer sends a fragmented message
and ``get_message_stream()`` must give it frame by frame. With and without
permessage-deflate.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest
import trio
from websockets.trio.client import connect as websockets_connect
from websockets.trio.server import ServerConnection, serve as websockets_serve

import trio_wsext
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate

from .processes import NODE_DIR, spawn

pytestmark = pytest.mark.interop

TIMEOUT: Final = 60

#: What trio_wsext streams: compressible text chunks, one frame each.
CHUNKS: Final = [f"trio chunk {i} " * 700 for i in range(6)]
MESSAGE: Final = "".join(CHUNKS)

#: What the peers stream back.
PEER_CHUNKS: Final = [f"peer chunk {i} " * 600 for i in range(5)]


def _digest(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


async def _chunks() -> AsyncIterator[str]:
    for chunk in CHUNKS:
        yield chunk
        await trio.lowlevel.checkpoint()


def _compressed(ws: trio_wsext.WebSocketConnection) -> bool:
    return any(isinstance(extension, PerMessageDeflate) for extension in ws.extensions)


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_trio_client_streams_to_and_from_a_websockets_server(
    compression: str | None, nursery: trio.Nursery
) -> None:
    async def handler(ws: ServerConnection) -> None:
        pieces = [piece async for piece in ws.recv_streaming()]
        joined = "".join(str(piece) for piece in pieces)
        await ws.send(json.dumps({"pieces": len(pieces), "sha256": _digest(joined)}))
        await ws.send(iter(PEER_CHUNKS))
        await ws.wait_closed()

    server = await nursery.start(
        lambda task_status: websockets_serve(
            handler, 0, host="127.0.0.1", compression=compression, task_status=task_status
        )
    )
    port = server.listeners[0].socket.getsockname()[1]
    with trio.fail_after(TIMEOUT):
        async with trio_wsext.open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
            assert _compressed(ws) is (compression == "deflate")
            await ws.send_message(_chunks())
            report = json.loads(str(await ws.get_message()))
            # websockets got one piece per frame: our chunks and the empty final frame.
            assert report == {"pieces": len(CHUNKS) + 1, "sha256": _digest(MESSAGE)}
            pieces = [piece async for piece in ws.get_message_stream()]
            assert pieces == PEER_CHUNKS
    await server.aclose()


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_websockets_client_streams_to_and_from_a_trio_server(
    compression: str | None, nursery: trio.Nursery
) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: trio_wsext.WebSocketRequest) -> None:
        ws = await request.accept()
        seen["compressed"] = _compressed(ws)
        pieces = [piece async for piece in ws.get_message_stream()]
        seen["pieces"] = pieces
        await ws.send_message(iter(CHUNKS))
        with contextlib.suppress(trio_wsext.ConnectionClosed):
            await ws.get_message()

    server = await nursery.start(trio_wsext.serve_websocket, handler, "127.0.0.1", 0, None)
    with trio.fail_after(TIMEOUT):
        async with websockets_connect(
            f"ws://127.0.0.1:{server.port}/", compression=compression
        ) as client:
            await client.send(iter(PEER_CHUNKS))
            received = [piece async for piece in client.recv_streaming()]
            assert "".join(str(piece) for piece in received) == MESSAGE
            # A frame per chunk, then the empty final frame.
            assert len(received) == len(CHUNKS) + 1
    assert seen["compressed"] is (compression == "deflate")
    assert seen["pieces"] == PEER_CHUNKS


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "plain"])
async def test_trio_client_streams_to_and_from_a_node_ws_server(
    deflate: bool, node: str, tmp_path: Path
) -> None:
    options = {"chunks": 4, "perMessageDeflate": deflate}
    argv = [node, "fragments_server.js", json.dumps(options)]
    with trio.fail_after(TIMEOUT):
        async with spawn(argv, cwd=NODE_DIR, stderr_path=tmp_path / "node.stderr") as child:
            port = (await child.receive_json())["port"]
            async with trio_wsext.open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
                assert _compressed(ws) is deflate
                await ws.send_message(_chunks())
                report = json.loads(str(await ws.get_message()))
                assert report == {
                    "length": len(MESSAGE.encode()),
                    "sha256": _digest(MESSAGE),
                    "binary": False,
                }
                pieces = [piece async for piece in ws.get_message_stream()]
                assert pieces == [f"node fragment {i} " * 500 for i in range(4)]
