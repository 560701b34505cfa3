"""Fan-out across processes: every message of a Redis channel to every WebSocket client.

One process of this program serves WebSocket clients and subscribes to one
Redis pub/sub channel; each message published there goes to all its clients
with :func:`trio_wsext.broadcast`. Run one process per core (each is one trio
event loop: one core) behind a load balancer or on several ports, and every
client of every process gets every message, in the order Redis received them::

    redis-server --port 6379 --save '' --appendonly no &
    python examples/redis_fanout.py --port 8765 &
    python examples/redis_fanout.py --port 8766 &
    python -m trio_wsext connect ws://127.0.0.1:8765/   # in another terminal
    redis-cli publish broadcast 'hello, every client of every process'

Ctrl-C (or SIGTERM) stops a process cleanly: its clients get a close with
1001 (going away) and it exits with status 0. docs/scaling.md measures what a
process carries and how to size a deployment.

**Delivery.** Redis pub/sub delivers at most once: a message published while
this process is not subscribed (the Redis connection dropped, the process
restarts) is lost for its clients, and the drop is logged at WARNING, as is
each attempt to reconnect (with exponential back-off, 0.5 s doubling to
30 s) and the new subscription. A client that reads slower than messages
come is closed with 1008 (``--on-slow close``, the default; it knows it
missed messages and can reconnect) or left out of the messages it cannot
take (``--on-slow skip``), and never holds the others back. Where every
message must arrive, use Redis Streams (XADD, and XREAD from the last ID a
client saw), which are kept, instead of pub/sub.

**Why redis-py in a worker thread.** redis-py is the reference client (Redis
maintains it) and the one this project's ``deploy`` extra declares; its
pub/sub reader is a blocking call, so it runs in one worker thread
(:func:`trio.to_thread.run_sync`) that hands messages to trio in batches. A
trio-native client exists and is maintained (coredis since 6.0, through
anyio), but it would be a second Redis dependency for what one thread does:
the thread costs a hand-over per batch of messages, not per client, and the
event loop never blocks on Redis. The thread polls (``get_message`` with a
timeout of :data:`POLL_SECONDS`) and checks between polls whether trio wants
it to stop (:func:`trio.from_thread.check_cancelled`), so shutdown waits at
most that long for it, and never hangs.

Text messages (valid UTF-8) go out as WebSocket text messages, anything else
as binary. permessage-deflate is negotiated with ``server_no_context_takeover``,
so each message is compressed once per group of clients that share the
compression parameters, not once per client, and an idle client holds no
compressor.
"""

from __future__ import annotations

import argparse
import logging
import random
import resource
import signal
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final, Literal, NoReturn, TypeAlias, get_args
from urllib.parse import urlsplit

import redis
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

from trio_wsext import WebSocketConnection, WebSocketRequest, broadcast, serve_websocket
from trio_wsext.endpoints import Endpoint
from trio_wsext.extensions.permessage_deflate import (
    DEFAULT_MAX_WINDOW_BITS,
    DEFAULT_MEM_LEVEL,
    DEFAULT_THRESHOLD,
    ServerPerMessageDeflateFactory,
)

logger = logging.getLogger("redis_fanout")

#: Seconds the Redis thread waits for a message before it checks whether trio
#: asked it to stop: the most that shutdown waits for it.
POLL_SECONDS: Final = 0.25
#: Messages handed to trio at once when they arrive faster than it takes them:
#: one thread hand-over per batch, and a bounded batch keeps memory bounded.
MAX_BATCH: Final = 256
#: Batches waiting for the broadcaster before the Redis thread stops reading
#: (Redis then buffers, up to its pub/sub client-output-buffer-limit).
QUEUED_BATCHES: Final = 4
#: Seconds to connect to Redis: a blackholed address delays shutdown this long at most.
CONNECT_TIMEOUT: Final = 2.0
#: Seconds between the PINGs redis-py sends on a quiet subscription, so that a
#: connection that died silently is noticed.
HEALTH_CHECK_INTERVAL: Final = 10
#: Reconnection back-off: first delay, factor and cap, in seconds; each delay
#: is drawn between half and all of it, so that processes spread out.
FIRST_RETRY: Final = 0.5
RETRY_FACTOR: Final = 2.0
MAX_RETRY: Final = 30.0
#: Seconds connected clients get for the closing handshake at shutdown.
DISCONNECT_TIMEOUT: Final = 5.0

Batch: TypeAlias = list[bytes]
"""Message payloads from Redis, in order."""

OnSlow: TypeAlias = Literal["close", "skip"]
""":func:`~trio_wsext.broadcast`'s ``on_slow`` policies."""


def compression_factory() -> ServerPerMessageDeflateFactory:
    """Return permessage-deflate as the library's default, but without server context takeover.

    With ``server_no_context_takeover`` a message compresses the same for every
    client with the same parameters, so :func:`~trio_wsext.broadcast` compresses
    it once per group; and no client keeps a compressor between messages.
    ``client_no_context_takeover`` frees the decompressor of a client that talks.
    """
    return ServerPerMessageDeflateFactory(
        server_max_window_bits=DEFAULT_MAX_WINDOW_BITS,
        client_max_window_bits=DEFAULT_MAX_WINDOW_BITS,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        compress_settings={"memLevel": DEFAULT_MEM_LEVEL},
        threshold=DEFAULT_THRESHOLD,
    )


class Clients:
    """The open WebSocket connections of this process, and the handler that keeps them."""

    def __init__(self) -> None:
        """Start with no connections."""
        self.connections: set[WebSocketConnection] = set()

    async def handler(self, request: WebSocketRequest) -> None:
        """Accept, then keep the connection in :attr:`connections` until it closes.

        Clients only listen; what they send is read and dropped, so that the
        connection keeps reading its control frames (pings, the close).
        """
        ws = await request.accept()
        self.connections.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            self.connections.discard(ws)


def redacted(url: str) -> str:
    """Return ``url`` without its password, for the log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def read_subscription(
    url: str,
    channel: str,
    send: trio.MemorySendChannel[Batch],
    subscribed: Callable[[], None],
) -> NoReturn:
    """Subscribe to ``channel`` and send its messages to trio in batches, until stopped.

    Runs in a worker thread. ``subscribed`` is called in the trio thread once
    Redis confirmed the subscription. redis-py's own retries are off, so a
    dropped connection raises at once and the caller decides what to log and
    when to retry.

    Raises:
        trio.Cancelled: trio cancelled the call (checked every :data:`POLL_SECONDS`).
        redis.RedisError: the connection failed or dropped.
    """
    client = redis.Redis.from_url(
        url,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=CONNECT_TIMEOUT,
        health_check_interval=HEALTH_CHECK_INTERVAL,
    )
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(channel)
        while True:
            trio.from_thread.check_cancelled()
            batch: Batch = []
            message = pubsub.get_message(timeout=POLL_SECONDS)
            while message is not None:
                if message["type"] == "message":
                    batch.append(message["data"])
                elif message["type"] == "subscribe":
                    trio.from_thread.run_sync(subscribed)
                if len(batch) >= MAX_BATCH:
                    break
                message = pubsub.get_message(timeout=0.0)
            if batch:
                trio.from_thread.run(send.send, batch)
    finally:
        pubsub.close()
        client.close()


async def follow_channel(url: str, channel: str, send: trio.MemorySendChannel[Batch]) -> None:
    """Keep a subscription to ``channel`` open, reconnecting with back-off; never returns.

    Logs the subscription (INFO), each failure to connect or drop (WARNING)
    and the delay before the next attempt. Cancellation stops the worker
    thread within :data:`POLL_SECONDS` (or :data:`CONNECT_TIMEOUT` while it
    connects) and closes the Redis connection.
    """
    delay = FIRST_RETRY
    where = redacted(url)
    subscribed_now = False

    def subscribed() -> None:
        nonlocal delay, subscribed_now
        delay = FIRST_RETRY
        subscribed_now = True
        logger.info("subscribed to %r at %s", channel, where)

    while True:
        subscribed_now = False
        try:
            await trio.to_thread.run_sync(read_subscription, url, channel, send, subscribed)
        except redis.RedisError as exc:
            error = f"{type(exc).__name__}: {exc}"
        pause = delay * random.uniform(0.5, 1.0)
        if subscribed_now:
            logger.warning(
                "lost the subscription to %r at %s (%s); messages published until it is"
                " back are lost; resubscribing in %.1f s",
                channel,
                where,
                error,
                pause,
            )
        else:
            logger.warning(
                "cannot subscribe to %r at %s (%s); retrying in %.1f s",
                channel,
                where,
                error,
                pause,
            )
        await trio.sleep(pause)
        delay = min(delay * RETRY_FACTOR, MAX_RETRY)


def as_message(data: bytes) -> str | bytes:
    """Return ``data`` as text if it is UTF-8, else as it is (a binary message)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def peer(ws: WebSocketConnection) -> str:
    """Return ``host:port`` of the client of ``ws``, for the log."""
    remote = ws.remote
    return f"{remote.address}:{remote.port}" if isinstance(remote, Endpoint) else str(remote)


async def fan_out(
    receive: trio.MemoryReceiveChannel[Batch], clients: Clients, on_slow: OnSlow
) -> None:
    """Broadcast every message received to every client, in order.

    A client too slow to take a message now is closed with 1008 or skipped
    (``on_slow``); either way the others are not kept waiting. Closes are
    logged at INFO.
    """
    async for batch in receive:
        for data in batch:
            result = await broadcast(tuple(clients.connections), as_message(data), on_slow=on_slow)
            if result.closed:
                logger.info(
                    "closed %d slow client(s) with 1008: %s",
                    len(result.closed),
                    ", ".join(map(peer, result.closed)),
                )


async def stop_on_signal(cancel_scope: trio.CancelScope) -> None:
    """Cancel ``cancel_scope`` on SIGINT (Ctrl-C) or SIGTERM: a graceful shutdown."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            logger.info("%s: shutting down", signal.Signals(signum).name)
            cancel_scope.cancel()
            return


async def run(args: argparse.Namespace) -> None:
    """Serve, follow the channel and fan out until a signal; then shut down gracefully."""
    clients = Clients()
    send, receive = trio.open_memory_channel[Batch](QUEUED_BATCHES)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_on_signal, nursery.cancel_scope)
        server = await nursery.start(
            partial(
                serve_websocket,
                clients.handler,
                args.host,
                args.port,
                None,
                extensions=[compression_factory()],
                disconnect_timeout=DISCONNECT_TIMEOUT,
            )
        )
        logger.info("listening on ws://%s:%d/", args.host, server.port)
        nursery.start_soon(fan_out, receive, clients, args.on_slow)
        nursery.start_soon(follow_channel, args.redis_url, args.channel, send)
    logger.info("stopped")


def raise_open_files_limit() -> int:
    """Raise this process's open-files soft limit to its hard limit; return the limit.

    Each connection is a file descriptor; the usual soft limit (1,024) is far
    below what one process serves. The hard limit is the system's to raise
    (``ulimit -Hn``, systemd's ``LimitNOFILE``): see docs/scaling.md.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="%(default)s")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on: %(default)s")
    parser.add_argument("--port", type=int, default=8765, help="0 for any free port: %(default)s")
    parser.add_argument("--channel", default="broadcast", help="Redis channel: %(default)s")
    parser.add_argument(
        "--on-slow",
        choices=get_args(OnSlow),
        default="close",
        help="what to do with a client too slow to take a message: %(default)s",
    )
    parser.add_argument("--log-level", default="INFO", help="%(default)s")
    return parser.parse_args(argv)


def main() -> None:
    """Run one fan-out process until Ctrl-C or SIGTERM."""
    args = parse_args()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logger.info("open files limit: %d", raise_open_files_limit())
    trio.run(run, args)


if __name__ == "__main__":
    main()
