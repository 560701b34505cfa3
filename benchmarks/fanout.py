"""Fan-out through Redis: ``python -m benchmarks.fanout`` (``--quick`` for a small run).

Strategy: a redis-server, N processes of examples/redis_fanout.py (the real
program, one per core) and, per server, one client process holding M
WebSocket connections to it. Three figures per server, read from /proc (the
example's Redis thread included):

- memory: the resident set before any client connects, with M idle
  connections, and after the burst; the growth divided by M is what a
  connection costs. The kernel's share is apart: the growth of its slab
  memory (system-wide, so other programs' activity shows in it) per socket;
- idle CPU: over ``--idle`` seconds (at least the 20 s ping interval) with the
  connections idle, which is what keepalive and timers cost;
- delivery: P messages published in one burst, timed until every connection
  of every client has all of them: delivered messages per second end to end
  (P x N x M over that time) and server CPU time per delivered message.

All of it runs twice: with clients that do not offer permessage-deflate and
with clients that offer the default (the example answers with
server_no_context_takeover).

The clients are not WebSocket libraries: asyncio protocols that parse frames
with :mod:`benchmarks.load.wire`, count whole messages, answer pings, and
inflate only the last message of each connection, to check it is the last
one published. They cost far less per message than the servers, but share
the machine's cores with them (and with Redis): the messages per second are
this machine's, the CPU per message is the servers' own. The run takes about
two minutes by default, one with ``--quick``.

The client process is this module too: ``python -m benchmarks.fanout client
PORT CONNECTIONS on|off``, driven by JSON lines (:class:`benchmarks.processes.Child`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import attrs
import redis

from benchmarks.load import wire
from benchmarks.payloads import json_message
from benchmarks.processes import ROOT, Child, WorkerError
from benchmarks.procfs import cpu_seconds, rss_bytes

EXAMPLE: Final = ROOT / "examples" / "redis_fanout.py"
"""The fan-out server program measured."""

START_TIMEOUT: Final = 60.0
"""Seconds a server or client process has to get ready (cold caches, a busy CPU)."""

DELIVERY_TIMEOUT: Final = 120.0
"""Seconds the clients have to receive a burst: a stuck run fails, never hangs."""

SETTLE: Final = 1.0
"""Seconds to wait before reading a resident set, for freed memory and queues to settle."""

CONNECT_BATCH: Final = 200
"""Connections a client opens at once (below any listen backlog)."""

WARM_UP: Final = 20
"""Messages published before the timed burst, so that every path has run once."""

PUBLISH_CHUNK: Final = 1000
"""PUBLISH commands per pipeline round trip."""


@attrs.frozen
class Settings:
    """One run's sizes."""

    processes: int
    """Fan-out server processes (one per core)."""
    connections: int
    """WebSocket connections per server process."""
    messages: int
    """Messages in the timed burst."""
    size: int
    """Bytes of each message (JSON-like text)."""
    idle: float
    """Seconds the idle connections' CPU is measured for: the default, 20 s, is
    the example's ping interval, so it holds one keepalive ping per connection;
    ``--quick``'s 10 s may hold none."""


DEFAULT: Final = Settings(processes=2, connections=1000, messages=300, size=256, idle=20.0)
QUICK: Final = Settings(processes=2, connections=200, messages=200, size=256, idle=10.0)


@attrs.frozen
class Result:
    """What one mode (compression off or on) measured."""

    compression: bool
    delivered: int
    """Messages counted by the clients in the burst: messages x processes x connections."""
    seconds: float
    """From the first PUBLISH to the last connection's last message."""
    server_cpu: float
    """CPU seconds of all the server processes during the burst."""
    redis_cpu: float
    """CPU seconds of redis-server during the burst."""
    idle_cpu: float
    """CPU seconds of all the server processes per second, with the connections idle."""
    connections: int
    """Connections in all."""
    rss_base: float
    """Mean resident set of a server process before clients connect, bytes."""
    rss_idle_per_connection: float
    """Resident set growth with the idle connections, per connection, bytes."""
    rss_after_per_connection: float
    """Resident set growth after the burst, per connection, bytes."""
    slab_per_socket: float
    """Growth of the kernel's slab memory (system-wide) per TCP socket opened, bytes:
    the kernel's share of an idle connection, on each end."""

    @property
    def rate(self) -> float:
        """Delivered messages per second, end to end."""
        return self.delivered / self.seconds

    @property
    def cpu_per_message(self) -> float:
        """Server CPU seconds per delivered message."""
        return self.server_cpu / self.delivered

    @property
    def idle_core_per_10k(self) -> float:
        """Share of a core that 10,000 idle connections keep busy (keepalive, timers)."""
        return self.idle_cpu / self.connections * 10_000


def slab_bytes() -> int:
    """Return the kernel's slab memory (``Slab`` in /proc/meminfo), system-wide."""
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("Slab:"):
                return int(line.split()[1]) * 1024
    raise LookupError("no Slab line in /proc/meminfo")


def message(seq: int, size: int) -> bytes:
    """Return message ``seq``: its number, then JSON-like text, ``size`` bytes in all."""
    prefix = f"{seq:06d} "
    return (prefix + json_message(size - len(prefix), seq % 16)).encode("ascii")


# --------------------------------------------------------------------- client


class _Connection(asyncio.Protocol):
    """One WebSocket client connection that counts the messages it receives."""

    def __init__(self, client: _Client, port: int, offer: str | None) -> None:
        """Prepare a connection of ``client`` to ``port`` offering ``offer`` (or nothing)."""
        self.client = client
        self.port = port
        self.offer = offer
        self.key = wire.new_key()
        self.head: bytearray | None = bytearray()
        self.reader = wire.FrameReader()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.window: int | None = None
        self.count = 0
        self.last: wire.Frame | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the opening handshake."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(wire.handshake_request(self.port, self.key, offer=self.offer))

    def data_received(self, data: bytes) -> None:
        """Finish the handshake, then count whole messages and answer pings."""
        if self.head is not None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            response = wire.parse_response(bytes(self.head[:end]))
            data = bytes(self.head[end + 4 :])
            self.head = None
            problem = wire.upgrade_problem(response, self.key)
            if problem is not None:
                self.opened.set_exception(wire.WireError(problem))
                return
            self.window = wire.client_window_bits(response)
            self.opened.set_result(None)
        for frame in self.reader.feed(data):
            if frame.opcode == wire.PING:
                assert self.transport is not None
                self.transport.write(wire.client_frame(wire.PONG, frame.payload))
            elif frame.opcode == wire.CLOSE:
                self.client.fail(f"closed by the server: {wire.close_code(frame.payload)}")
            elif frame.fin:
                self.count += 1
                self.last = frame
                if self.count == self.client.target:
                    self.client.one_done()

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail the handshake, or the run: the server never closes a connection here."""
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        else:
            self.client.fail(f"connection lost: {exc}")

    def last_text(self) -> str:
        """Return the last message received, inflated if it was compressed."""
        assert self.last is not None
        payload = self.last.payload
        if self.last.rsv1:
            # server_no_context_takeover: each message inflates on its own.
            payload = zlib.decompressobj(-15).decompress(payload + wire.SYNC_TAIL)
        return payload.decode("ascii")


def _same(connection: _Connection) -> _Connection:
    """Return ``connection``: the protocol factory of ``create_connection``."""
    return connection


class _Client:
    """The client process: M connections to one server, driven by JSON lines on stdin."""

    def __init__(self) -> None:
        """Start with no connections and nothing expected."""
        self.connections: list[_Connection] = []
        self.target = 0
        self.done = 0
        self.finished: asyncio.Event = asyncio.Event()
        self.error: str | None = None

    def one_done(self) -> None:
        """Count a connection that has all the messages expected."""
        self.done += 1
        if self.done == len(self.connections):
            self.finished.set()

    def fail(self, error: str) -> None:
        """Record the first error and end the wait: the harness reports it."""
        if self.error is None:
            self.error = error
        self.finished.set()

    def expect(self, count: int) -> None:
        """Wait for ``count`` messages on every connection from now on."""
        self.target = count
        self.done = sum(connection.count >= count for connection in self.connections)
        self.finished = asyncio.Event()
        if self.done == len(self.connections):
            self.finished.set()

    async def connect(self, port: int, count: int, offer: str | None) -> None:
        """Open ``count`` connections to ``port``, :data:`CONNECT_BATCH` at a time."""
        loop = asyncio.get_running_loop()
        while len(self.connections) < count:
            batch = [
                _Connection(self, port, offer)
                for _ in range(min(CONNECT_BATCH, count - len(self.connections)))
            ]
            await asyncio.gather(
                *(
                    loop.create_connection(partial(_same, connection), "127.0.0.1", port)
                    for connection in batch
                )
            )
            await asyncio.gather(*(connection.opened for connection in batch))
            self.connections += batch


def raise_open_files_limit() -> None:
    """Raise the open-files soft limit to the hard limit: each connection is a descriptor."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _answer(answer: dict[str, Any]) -> None:
    """Write one JSON line to the harness."""
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


async def _client_main(port: int, count: int, compression: bool) -> None:
    """Connect, report, then answer each ``{"expect": n}`` once every connection has n."""
    client = _Client()
    await client.connect(port, count, wire.OFFER if compression else None)
    windows = {connection.window for connection in client.connections}
    _answer({"connected": count, "windows": sorted(map(str, windows))})
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, json.loads(line))
        os._exit(0)  # the harness is gone: never outlive it

    threading.Thread(target=read_stdin, daemon=True).start()
    while True:
        command = await commands.get()
        client.expect(command["expect"])
        await client.finished.wait()
        if client.error is not None:
            _answer({"error": client.error})
            continue
        done_at = time.monotonic()
        lasts = {connection.last_text()[:6] for connection in client.connections}
        _answer({"done_at": done_at, "last": sorted(lasts)})


def client_main(argv: Sequence[str]) -> None:
    """``client PORT CONNECTIONS on|off``: the client process."""
    port, count, compression = int(argv[0]), int(argv[1]), argv[2] == "on"
    raise_open_files_limit()
    asyncio.run(_client_main(port, count, compression))


# -------------------------------------------------------------------- harness


def _log(text: str) -> None:
    """Show progress on stderr."""
    print(f"fanout: {text}", file=sys.stderr, flush=True)


def _free_port() -> int:
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Process:
    """A server child (redis-server or the example) with its output in a log file."""

    def __init__(self, argv: list[str], log_path: Path, port: int) -> None:
        """Start ``argv``, which listens on ``port``, with its output in ``log_path``."""
        self.log_path = log_path
        self.port = port
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )

    def wait_for(self, text: str) -> None:
        """Wait until ``text`` is in the log; raise :class:`WorkerError` if it never is."""
        deadline = time.monotonic() + START_TIMEOUT
        while text not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise WorkerError(f"no {text!r}:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it takes too long."""
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _wait_subscribers(client: redis.Redis, channel: str, count: int) -> None:
    """Wait until ``channel`` has ``count`` subscribers (PUBSUB NUMSUB)."""
    deadline = time.monotonic() + START_TIMEOUT
    while client.pubsub_numsub(channel)[0][1] != count:
        if time.monotonic() > deadline:
            raise WorkerError(f"{channel!r} never got {count} subscribers")
        time.sleep(0.05)


def _publish(
    client: redis.Redis, channel: str, messages: Sequence[bytes], subscribers: int
) -> None:
    """Publish ``messages`` in pipelines; check each reached ``subscribers`` servers."""
    for start in range(0, len(messages), PUBLISH_CHUNK):
        with client.pipeline(transaction=False) as pipeline:
            for data in messages[start : start + PUBLISH_CHUNK]:
                pipeline.publish(channel, data)
            counts = pipeline.execute()
        if any(count != subscribers for count in counts):
            raise WorkerError(f"a message reached {set(counts)} subscribers, not {subscribers}")


def _expect(clients: Sequence[Child], count: int) -> None:
    """Tell every client to report once each connection has ``count`` messages."""
    for client in clients:
        client.send({"expect": count})


def _done(clients: Sequence[Child], last: int) -> float:
    """Return when the last client had all it expected; check the last message was ``last``."""
    done = 0.0
    for client in clients:
        answer = client.read(DELIVERY_TIMEOUT)
        if answer["last"] != [f"{last:06d}"]:
            raise WorkerError(f"{client.name}: last messages {answer['last']}, not {last}")
        done = max(done, answer["done_at"])
    return done


def run_mode(
    settings: Settings, compression: bool, redis_port: int, redis_pid: int, work: Path
) -> Result:
    """Measure one mode: start the servers and clients, publish, time, read /proc."""
    channel = f"fanout-{'on' if compression else 'off'}"
    servers: list[_Process] = []
    clients: list[Child] = []
    client = redis.Redis(host="127.0.0.1", port=redis_port)
    try:
        for index in range(settings.processes):
            port = _free_port()
            server = _Process(
                [
                    sys.executable, str(EXAMPLE),
                    "--redis-url", f"redis://127.0.0.1:{redis_port}/0",
                    "--port", str(port), "--channel", channel,
                ],
                work / f"server-{channel}-{index}.log",
                port,
            )  # fmt: skip
            servers.append(server)
            server.wait_for(f"listening on ws://127.0.0.1:{port}/")
        _wait_subscribers(client, channel, settings.processes)
        time.sleep(SETTLE)
        pids = [server.process.pid for server in servers]
        base = [rss_bytes(pid) for pid in pids]
        slab_before = slab_bytes()
        _log(f"{channel}: {settings.processes} servers up; connecting {settings.connections} each")
        for server in servers:
            clients.append(
                Child(
                    "benchmarks.fanout",
                    ["client", str(server.port), str(settings.connections),
                     "on" if compression else "off"],
                    f"client-{channel}-{server.port}",
                    work,
                )
            )  # fmt: skip
        windows = {tuple(child.read(START_TIMEOUT)["windows"]) for child in clients}
        expected = ("12",) if compression else ("None",)
        if windows != {expected}:
            raise WorkerError(f"negotiated windows {windows}, expected {expected}")
        time.sleep(SETTLE)
        idle = [rss_bytes(pid) for pid in pids]
        slab_after = slab_bytes()
        _log(f"{channel}: idle for {settings.idle:g} s")
        idle_before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(settings.idle)
        idle_cpu = (sum(cpu_seconds(pid) for pid in pids) - idle_before) / settings.idle
        seq = 0
        warm = [message(seq + i, settings.size) for i in range(WARM_UP)]
        seq += WARM_UP
        _expect(clients, seq)
        _publish(client, channel, warm, settings.processes)
        _done(clients, seq - 1)
        burst = [message(seq + i, settings.size) for i in range(settings.messages)]
        _log(f"{channel}: publishing {settings.messages} messages")
        cpu_before = [cpu_seconds(pid) for pid in pids]
        redis_before = cpu_seconds(redis_pid)
        seq += settings.messages
        _expect(clients, seq)
        start = time.monotonic()
        _publish(client, channel, burst, settings.processes)
        done = _done(clients, seq - 1)
        server_cpu = sum(cpu_seconds(pid) for pid in pids) - sum(cpu_before)
        redis_cpu = cpu_seconds(redis_pid) - redis_before
        time.sleep(SETTLE)
        after = [rss_bytes(pid) for pid in pids]
    finally:
        for child in clients:
            child.stop()
        for server in servers:
            server.stop()
        client.close()
    connections = settings.connections * settings.processes
    return Result(
        compression=compression,
        delivered=settings.messages * connections,
        seconds=done - start,
        server_cpu=server_cpu,
        redis_cpu=redis_cpu,
        idle_cpu=idle_cpu,
        connections=connections,
        rss_base=sum(base) / len(base),
        rss_idle_per_connection=(sum(idle) - sum(base)) / connections,
        rss_after_per_connection=(sum(after) - sum(base)) / connections,
        # Both ends of every connection are sockets of this machine.
        slab_per_socket=(slab_after - slab_before) / (2 * connections),
    )


def format_table(settings: Settings, results: Sequence[Result]) -> str:
    """Return the results as a Markdown table."""
    lines = [
        "| clients offer | delivered | seconds | delivered msg/s | server CPU µs/msg"
        " | Redis CPU s | idle CPU, 10k conns | server RSS at start | RSS/connection idle"
        " | RSS/connection after | kernel slab/socket |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        lines.append(
            f"| {'permessage-deflate' if result.compression else 'no compression'}"
            f" | {result.delivered:,} | {result.seconds:.2f} | {result.rate:,.0f}"
            f" | {result.cpu_per_message * 1e6:.2f} | {result.redis_cpu:.2f}"
            f" | {result.idle_core_per_10k:.0%} of a core"
            f" | {result.rss_base / 2**20:.1f} MiB"
            f" | {result.rss_idle_per_connection / 1024:.1f} KiB"
            f" | {result.rss_after_per_connection / 1024:.1f} KiB"
            f" | {result.slab_per_socket / 1024:.1f} KiB |"
        )
    return "\n".join(lines)


def _commit() -> str:
    """Return the checkout's commit, and whether it has changes to tracked files."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
    except OSError:
        return "unknown"
    if not head:
        return "unknown (not a git checkout)"
    return f"{head}{' (with local changes)' if dirty else ''}"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the harness's command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run (under a minute)")
    parser.add_argument("--processes", type=int, help=f"servers ({DEFAULT.processes})")
    parser.add_argument("--connections", type=int, help=f"per server ({DEFAULT.connections})")
    parser.add_argument("--messages", type=int, help=f"in the burst ({DEFAULT.messages})")
    parser.add_argument("--size", type=int, help=f"bytes a message ({DEFAULT.size})")
    parser.add_argument("--idle", type=float, help=f"seconds of idle CPU ({DEFAULT.idle:g})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run both modes and print the table."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["client"]:
        client_main(argv[1:])
        return
    args = parse_args(argv)
    base = QUICK if args.quick else DEFAULT
    settings = Settings(
        processes=args.processes or base.processes,
        connections=args.connections or base.connections,
        messages=args.messages or base.messages,
        size=args.size or base.size,
        idle=args.idle or base.idle,
    )
    program = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(program).exists():
        sys.exit("fanout: needs redis-server (Debian's redis-server; `nox -s proxy` installs it)")
    raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        work = Path(tmp)
        redis_port = _free_port()
        redis_server = _Process(
            [program, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
             "--appendonly", "no", "--dir", str(work)],
            work / "redis.log",
            redis_port,
        )  # fmt: skip
        try:
            redis_server.wait_for("Ready to accept connections")
            results = [
                run_mode(settings, compression, redis_port, redis_server.process.pid, work)
                for compression in (False, True)
            ]
        finally:
            redis_server.stop()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"Fan-out through Redis, {now}, commit {_commit()}, {os.cpu_count()} CPUs"
        f" (load average {load}): "
        f"{settings.processes} processes x {settings.connections} connections, "
        f"{settings.messages} messages of {settings.size} bytes"
    )
    print()
    print(format_table(settings, results))


if __name__ == "__main__":
    main()
