"""websockets' (asyncio) echo server for the Autobahn|Testsuite, the reference beside trio_wsext.

It runs with the same settings as ``trio_wsext_echo.py``: permessage-deflate accepted
(``compression="deflate"``), a 16 MiB message limit (websockets' default ``max_size`` is 1 MiB,
and cases 9.1.6 and 9.2.6 send 16 MiB messages), and keepalive pings off.

websockets also caps a message at 4096 fragments by default, where trio_wsext has no such cap:
cases 9.3.1 and 9.4.1 send a 4 MiB message in 65536 fragments of 64 bytes, which websockets then
refuses with 1009. The cap is read from ``WEBSOCKETS_MAX_FRAGMENTS`` when websockets is
imported, so this module sets it first, to :data:`MAX_FRAGMENTS` unless it is already set
(``WEBSOCKETS_MAX_FRAGMENTS=4096`` gives websockets' default back).

Protocol with ``run.py``: stdout carries JSON lines, first ``{"port": N}`` once listening, then
``{"closed": CODE}`` as each connection ends (one connection is one test case).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

#: websockets' cap on the fragments of one message, for this server: enough for the suite's
#: 65536 (cases 9.3.1 and 9.4.1).
MAX_FRAGMENTS = 2**17

os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", str(MAX_FRAGMENTS))

from websockets.asyncio.server import ServerConnection, serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

#: What ``--help`` says this program is.
DESCRIPTION = "An echo server of websockets (asyncio) for the Autobahn|Testsuite."

#: The largest message the suite sends (cases 9.1.6 and 9.2.6), in bytes.
MAX_MESSAGE_SIZE = 16 * 2**20


def emit(value: dict[str, object]) -> None:
    """Write ``value`` as one JSON line on stdout, flushed, for ``run.py`` to read."""
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def echo(connection: ServerConnection) -> None:
    """Send back every message: text as text, binary as binary."""
    try:
        async for message in connection:
            await connection.send(message)
    except ConnectionClosed:
        pass  # an abnormal close: the suite's report says whether it was the right one
    finally:
        code = connection.close_code
        emit({"closed": code})


async def main(host: str, port: int, max_size: int) -> None:
    """Serve the echo handler on ``host:port`` until the process is terminated."""
    async with serve(
        echo,
        host,
        port,
        compression="deflate",
        max_size=max_size,
        ping_interval=None,
    ) as server:
        emit({"port": server.sockets[0].getsockname()[1]})
        await server.serve_forever()


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
    asyncio.run(main(args.host, args.port, args.max_message_size))
