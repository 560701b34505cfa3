"""trio_wsext's echo server for the Autobahn|Testsuite, with room for the suite's 16 MiB messages.

``python -m trio_wsext serve`` keeps the library's default ``max_message_size`` (1 MiB) and has
no option to raise it, while cases 9.1.6 and 9.2.6 send 16 MiB messages. This is the same echo
loop with the limit that ``websockets_echo.py`` gets too, so that both libraries face the suite
on equal terms, and with keepalive pings off on both, so that each case's conversation holds
only the frames that the suite drives.

Protocol with ``run.py``: stdout carries JSON lines, first ``{"port": N}`` once listening, then
``{"closed": CODE}`` as each connection ends (one connection is one test case, so that a run
stopped before its reports are written still tells how many cases it got through).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys

import trio

from trio_wsext import ConnectionClosed, WebSocketRequest, WebSocketServer, serve_websocket

#: What ``--help`` says this program is.
DESCRIPTION = "An echo server of trio_wsext for the Autobahn|Testsuite."

#: The largest message the suite sends (cases 9.1.6 and 9.2.6), in bytes.
MAX_MESSAGE_SIZE = 16 * 2**20


def emit(value: dict[str, object]) -> None:
    """Write ``value`` as one JSON line on stdout, flushed, for ``run.py`` to read."""
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def echo(request: WebSocketRequest) -> None:
    """Accept the connection (permessage-deflate if offered) and send back every message."""
    ws = await request.accept()
    try:
        async for message in ws:
            await ws.send_message(message)
    except ConnectionClosed:
        pass  # an abnormal close: the suite's report says whether it was the right one
    finally:
        emit({"closed": ws.closed.code if ws.closed is not None else None})


async def main(host: str, port: int, max_message_size: int) -> None:
    """Serve the echo handler on ``host:port`` until the process is terminated."""
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            functools.partial(
                serve_websocket,
                echo,
                host,
                port,
                None,
                compression="deflate",
                max_message_size=max_message_size,
                ping_interval=None,
                ping_timeout=None,
            )
        )
        emit({"port": server.port})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read ``--host``, ``--port`` (0: any free port) and ``--max-message-size``."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: a free one)")
    parser.add_argument(
        "--max-message-size",
        type=int,
        default=MAX_MESSAGE_SIZE,
        help=f"largest incoming message in bytes (default {MAX_MESSAGE_SIZE})",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    trio.run(main, args.host, args.port, args.max_message_size)
