"""Tests of ``python -m trio_wsext``, run as a user runs it: in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final

import pytest
import trio
import trustme

import trio_wsext
from trio_wsext import ConnectionClosed, WebSocketRequest, open_websocket_url, serve_websocket
from trio_wsext.cli.main import main, program_name

ROOT: Final = Path(__file__).resolve().parent.parent
#: The package is imported from this checkout whether or not it is installed.
ENV: Final = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
CLI: Final = (sys.executable, "-m", "trio_wsext")
#: Seconds a subprocess may take: Python's start-up on a busy 2-core machine
#: is most of it.
TIMEOUT: Final = 30


def run_cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command line to completion."""
    return subprocess.run(
        [*CLI, *args],
        input=input,
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=TIMEOUT,
        check=False,
    )


class LineReader:
    """Read lines from a subprocess's pipe."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""
        self.lines: list[str] = []

    async def readline(self) -> str:
        """Return the next line without its newline; ``""`` at end of file."""
        while b"\n" not in self._buffer:
            data = await self._stream.receive_some()
            if not data:
                line, self._buffer = self._buffer, b""
                return line.decode()
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        self.lines.append(line.decode())
        return self.lines[-1]

    async def wait_for(self, pattern: str) -> re.Match[str]:
        """Read lines until one matches ``pattern`` (``re.search``)."""
        while True:
            line = await self.readline()
            if match := re.search(pattern, line):
                return match
            if not line and not self._buffer:
                raise AssertionError(f"end of output before {pattern!r}; read {self.lines}")

    async def rest(self) -> str:
        """Read everything up to end of file."""
        chunks = [self._buffer]
        self._buffer = b""
        while data := await self._stream.receive_some():
            chunks.append(bytes(data))
        return b"".join(chunks).decode()


class Cli:
    """A running ``python -m trio_wsext`` with line readers on stdout and stderr."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdout is not None
        assert process.stderr is not None
        self.process = process
        self.stdout = LineReader(process.stdout)
        self.stderr = LineReader(process.stderr)

    async def send(self, text: str) -> None:
        """Write ``text`` to the process's standard input."""
        assert self.process.stdin is not None
        await self.process.stdin.send_all(text.encode())

    async def close_stdin(self) -> None:
        """Close the process's standard input: end of file."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    async def finish(self) -> tuple[int, str, str]:
        """Wait for the exit; return the status and the rest of stdout and stderr."""
        async with trio.open_nursery() as nursery:
            out: list[str] = []
            err: list[str] = []

            async def collect(reader: LineReader, into: list[str]) -> None:
                into.append(await reader.rest())

            nursery.start_soon(collect, self.stdout, out)
            nursery.start_soon(collect, self.stderr, err)
            status = await self.process.wait()
        return status, out[0], err[0]


@contextlib.asynccontextmanager
async def start_cli(*args: str) -> AsyncIterator[Cli]:
    """Run the command line with pipes on its standard streams; kill it if still running."""
    process = await trio.lowlevel.open_process(
        [*CLI, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
    )
    try:
        yield Cli(process)
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    await stream.aclose()


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    """A trio_wsext echo server in the test's process (compression on)."""

    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, echo, "127.0.0.1", 0, None)
        yield f"ws://127.0.0.1:{server.port}/chat"
        nursery.cancel_scope.cancel()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- usage and --help -------------------------------------------------------------------------


def test_help_lists_the_four_subcommands() -> None:
    """``--help`` exits 0 and names serve, connect, demo and bench."""
    result = run_cli("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m trio_wsext [-h] [--version] COMMAND ...\n")
    for command in ("serve", "connect", "demo", "bench"):
        assert re.search(rf"^    {command} +\S", result.stdout, re.MULTILINE), command


@pytest.mark.parametrize(
    ("command", "usage", "options"),
    [
        (
            "serve",
            "usage: python -m trio_wsext serve [-h] [--host HOST] [--port PORT]",
            ["--host", "--port", "--no-compression", "--certfile", "--keyfile"],
        ),
        (
            "connect",
            "usage: python -m trio_wsext connect [-h] [--no-compression] [--cafile CAFILE] URL",
            ["--no-compression", "--cafile"],
        ),
        ("demo", "usage: python -m trio_wsext demo [-h]", []),
        (
            "bench",
            "usage: python -m trio_wsext bench [-h] [--url URL] [--iterations N]",
            ["--url", "--iterations", "--duration", "--json"],
        ),
    ],
    ids=["serve", "connect", "demo", "bench"],
)
def test_subcommand_help_shows_usage_and_options(
    command: str, usage: str, options: Sequence[str]
) -> None:
    """``COMMAND --help`` exits 0 with its usage line and every option explained."""
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(usage)
    for option in options:
        assert re.search(rf"^  {option}\b.*\S", result.stdout, re.MULTILINE), option


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("launch",), "argument COMMAND: invalid choice: 'launch'"),
        (("serve", "--port", "http"), "argument --port: invalid port: 'http'"),
        (("serve", "--port", "65536"), "argument --port: port must be between 0 and 65535"),
        (("serve", "--keyfile", "key.pem"), "--keyfile needs --certfile"),
        (("connect",), "the following arguments are required: URL"),
        (
            ("connect", "http://example.com/"),
            "argument URL: WebSocket URL scheme must be 'ws' or 'wss', not 'http'",
        ),
        (("connect", "ws:///path"), "argument URL: WebSocket URL has no host: 'ws:///path'"),
        (
            ("connect", "ws://h:99999/"),
            "argument URL: WebSocket URL has an invalid port: 'ws://h:99999/'",
        ),
        (("connect", "--cafile", "ca.pem", "ws://h/"), "--cafile needs a wss:// URL"),
        (
            ("bench", "--url", "ws://h/#top"),
            "argument --url: WebSocket URL must not have a fragment: 'ws://h/#top'",
        ),
        (("bench", "--iterations", "0"), "argument --iterations: must be at least 1, not 0"),
        (("bench", "--duration", "-1"), "argument --duration: must be more than 0, not -1"),
    ],
    ids=[
        "no-command",
        "unknown-command",
        "port-not-a-number",
        "port-too-big",
        "keyfile-alone",
        "connect-no-url",
        "connect-http-url",
        "connect-no-host",
        "connect-bad-port",
        "connect-cafile-with-ws",
        "bench-url-fragment",
        "bench-zero-iterations",
        "bench-negative-duration",
    ],
)
def test_usage_error_exits_2_with_one_message(args: tuple[str, ...], error: str) -> None:
    """A usage error exits 2, prints the usage and the error, and no traceback."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: python -m trio_wsext")
    assert f": error: {error}" in result.stderr
    assert "Traceback" not in result.stderr


# --- serve ------------------------------------------------------------------------------------

SERVING: Final = r"Serving on (wss?)://127\.0\.0\.1:(\d+) \(compression: ([\w-]+)\); Ctrl-C stops$"


async def test_serve_echoes_logs_extensions_and_stops_on_ctrl_c() -> None:
    """``serve --port 0`` prints its port, echoes, logs the extensions, exits 0 on SIGINT."""
    with trio.fail_after(TIMEOUT):
        async with start_cli("serve", "--port", "0") as cli:
            match = await cli.stderr.wait_for(SERVING)
            assert match[1] == "ws"
            assert match[3] == "permessage-deflate"
            async with open_websocket_url(f"ws://127.0.0.1:{match[2]}/echo") as ws:
                await ws.send_message("hello")
                assert await ws.get_message() == "hello"
                await ws.send_message(b"\x00\xff")
                assert await ws.get_message() == b"\x00\xff"
                assert [extension.name for extension in ws.extensions] == ["permessage-deflate"]
            connected = await cli.stderr.wait_for(r"(\S+) connected to /echo, extensions: (.*)$")
            assert connected[1].startswith("127.0.0.1:")
            assert connected[2].startswith("permessage-deflate")
            await cli.stderr.wait_for(
                rf"{re.escape(connected[1])} closed: 1000 \(NORMAL_CLOSURE\); 2 messages echoed$"
            )
            cli.process.send_signal(signal.SIGINT)
            status, stdout, stderr = await cli.finish()
    assert status == 0
    assert stdout == ""
    assert re.search(r"SIGINT: closing connections and stopping\n.*Server stopped\.\n$", stderr)
    assert "Traceback" not in stderr


async def test_serve_stops_on_sigterm_and_closes_open_connections_with_1001() -> None:
    """SIGTERM stops ``serve`` with status 0; an open client sees 1001 (going away)."""
    with trio.fail_after(TIMEOUT):
        async with start_cli("serve", "--port", "0") as cli:
            match = await cli.stderr.wait_for(SERVING)
            async with open_websocket_url(f"ws://127.0.0.1:{match[2]}/") as ws:
                await cli.stderr.wait_for(r"connected to /, extensions")
                cli.process.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed):
                    await ws.get_message()
                assert ws.closed is not None
                assert ws.closed.code == 1001
            status, _, stderr = await cli.finish()
    assert status == 0
    assert re.search(
        r"SIGTERM: closing connections and stopping\n"
        r".* closed: 1001 \(GOING_AWAY\) server shutting down; 0 messages echoed\n"
        r".* Server stopped\.\n$",
        stderr,
    )
    assert "Traceback" not in stderr


async def test_serve_no_compression_negotiates_nothing() -> None:
    """``serve --no-compression`` answers a deflate offer with no extension."""
    with trio.fail_after(TIMEOUT):
        async with start_cli("serve", "--port", "0", "--no-compression") as cli:
            match = await cli.stderr.wait_for(SERVING)
            assert match[3] == "off"
            async with open_websocket_url(f"ws://127.0.0.1:{match[2]}/") as ws:
                assert ws.extensions == []
                await ws.send_message("plain")
                assert await ws.get_message() == "plain"
            await cli.stderr.wait_for(r"connected to /, extensions: none$")
            cli.process.send_signal(signal.SIGINT)
            status, _, _ = await cli.finish()
    assert status == 0


async def test_serve_tls_with_certfile_and_keyfile(tmp_path: Path) -> None:
    """``serve --certfile --keyfile`` serves wss:// that a client trusting the CA reaches."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with trio.fail_after(TIMEOUT):
        async with start_cli(
            "serve", "--port", "0",
            "--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem"),
        ) as cli:  # fmt: skip
            match = await cli.stderr.wait_for(SERVING)
            assert match[1] == "wss"
            async with open_websocket_url(f"wss://127.0.0.1:{match[2]}/", client_context) as ws:
                await ws.send_message("secret")
                assert await ws.get_message() == "secret"
            cli.process.send_signal(signal.SIGINT)
            status, _, _ = await cli.finish()
    assert status == 0


def test_serve_port_in_use_exits_1_with_one_line() -> None:
    """``serve`` on a port already in use exits 1 with one line naming the problem."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("serve", "--port", str(port))
    assert result.returncode == 1
    assert re.fullmatch(
        rf"python -m trio_wsext serve: error: cannot listen on 127\.0\.0\.1:{port}: "
        r".*[Aa]ddress already in use.*\n",
        result.stderr,
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ("serve", "--certfile", "{tmp}/missing.pem"),
            "cannot load the certificate and key from {tmp}/missing.pem: "
            "[Errno 2] No such file or directory",
        ),
        (
            ("serve", "--certfile", "{tmp}/garbage.pem", "--keyfile", "{tmp}/garbage.pem"),
            "cannot load the certificate and key from {tmp}/garbage.pem and {tmp}/garbage.pem: "
            "[SSL] PEM lib",
        ),
        (
            ("connect", "--cafile", "{tmp}/garbage.pem", "wss://127.0.0.1:1/"),
            "cannot load CA certificates from {tmp}/garbage.pem: ",
        ),
    ],
    ids=["serve-missing-certfile", "serve-garbage-certfile", "connect-garbage-cafile"],
)
def test_bad_tls_file_exits_1_with_one_line(
    tmp_path: Path, args: tuple[str, ...], error: str
) -> None:
    """A certificate, key or CA file that cannot be loaded: exit 1, one line naming it."""
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    result = run_cli(*(arg.format(tmp=tmp_path) for arg in args), input="")
    assert result.returncode == 1
    prefix = f"python -m trio_wsext {args[0]}: error: {error.format(tmp=tmp_path)}"
    assert result.stderr.startswith(prefix)
    assert result.stderr.count("\n") == 1


# --- connect ----------------------------------------------------------------------------------


async def test_connect_sends_lines_prints_replies_and_exits_0_on_eof(echo_url: str) -> None:
    """``connect URL`` sends each stdin line, prints ``< reply``, closes normally at EOF."""
    with trio.fail_after(TIMEOUT):
        async with start_cli("connect", echo_url) as cli:
            assert await cli.stdout.readline() == f"Connected to {echo_url}."
            extensions = await cli.stdout.readline()
            assert extensions.startswith("Extensions: permessage-deflate")
            await cli.send("hello\n")
            assert await cli.stdout.readline() == "< hello"
            await cli.send("h\u00e9llo w\u00f6rld\r\n\n")
            assert await cli.stdout.readline() == "< h\u00e9llo w\u00f6rld"
            assert await cli.stdout.readline() == "< "
            await cli.close_stdin()
            status, stdout, stderr = await cli.finish()
    assert status == 0
    assert stdout == "Connection closed: 1000 (NORMAL_CLOSURE).\n"
    assert stderr == ""


async def test_connect_no_compression_offers_nothing(echo_url: str) -> None:
    """``connect --no-compression`` negotiates no extension."""
    with trio.fail_after(TIMEOUT):
        async with start_cli("connect", "--no-compression", echo_url) as cli:
            await cli.stdout.wait_for("^Connected to ")
            assert await cli.stdout.readline() == "Extensions: none"
            await cli.close_stdin()
            status, _, _ = await cli.finish()
    assert status == 0


async def test_connect_prints_binary_and_exits_0_when_server_closes() -> None:
    """A binary message prints as hex; a server's close ends the session, input still open."""

    async def talk_and_close(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(b"\x00\x01\xfe")
        await ws.send_message("bye")
        await ws.aclose(1000, "done")

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, talk_and_close, "127.0.0.1", 0, None)
            async with start_cli("connect", f"ws://127.0.0.1:{server.port}/") as cli:
                status, stdout, stderr = await cli.finish()
                nursery.cancel_scope.cancel()
    assert status == 0
    assert stdout.splitlines()[2:] == [
        "< (binary) 0001fe",
        "< bye",
        "Connection closed: 1000 (NORMAL_CLOSURE) done.",
    ]
    assert stderr == ""


async def test_connect_exits_0_on_ctrl_c_after_closing_normally(echo_url: str) -> None:
    """SIGINT during a session closes the connection with 1000 and exits 0."""
    with trio.fail_after(TIMEOUT):
        async with start_cli("connect", echo_url) as cli:
            await cli.stdout.wait_for("^Extensions: ")
            cli.process.send_signal(signal.SIGINT)
            status, stdout, stderr = await cli.finish()
    assert status == 0
    assert stdout == "Connection closed: 1000 (NORMAL_CLOSURE).\n"
    assert stderr == ""


def test_connect_refused_exits_1_with_one_line() -> None:
    """``connect`` to a port nobody listens on exits 1 with one line, no traceback."""
    result = run_cli("connect", f"ws://127.0.0.1:{free_port()}/", input="")
    assert result.returncode == 1
    assert result.stdout == ""
    assert re.fullmatch(r"python -m trio_wsext connect: error: .+\n", result.stderr)


async def test_connect_rejected_exits_1_naming_the_status() -> None:
    """A server that rejects the handshake makes ``connect`` exit 1 with the HTTP status."""

    async def reject(request: WebSocketRequest) -> None:
        await request.reject(403, body=b"no entry")

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, reject, "127.0.0.1", 0, None)
        result = await trio.to_thread.run_sync(
            lambda: run_cli("connect", f"ws://127.0.0.1:{server.port}/", input="")
        )
        nursery.cancel_scope.cancel()
    assert result.returncode == 1
    assert result.stderr == (
        "python -m trio_wsext connect: error: "
        "server rejected WebSocket connection: HTTP 403: no entry\n"
    )


# --- demo and bench ---------------------------------------------------------------------------


def test_demo_prints_negotiation_and_the_table() -> None:
    """``demo`` exits 0 after printing the negotiated parameters and bytes per size."""
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        r"An echo server on ws://127\.0\.0\.1:\d+/demo and two clients, .*", lines[0]
    )
    offer = lines.index("Client 1 offers permessage-deflate. The server answers:")
    assert lines[offer + 1].startswith("  Sec-WebSocket-Extensions: permessage-deflate")
    assert lines[offer + 3].split()[0] == "server_max_window_bits"
    table = lines[lines.index("Bytes per message, client to server:") + 1 :]
    assert table[0].split() == [
        "Message", "App", "bytes", "Wire,", "plain", "Wire,", "deflate", "Saved",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split()[1:] for line in table[2:7]}
    assert list(rows) == ["Small", "Medium", "Large", "Huge", "Total"]
    assert rows["Huge"][0] == "80,000"
    # An 80,000-byte client frame: 2 + 8 bytes of header and a 4-byte mask.
    assert rows["Huge"][1] == "80,014"
    assert int(rows["Huge"][2].replace(",", "")) < 80_000 // 2


def test_bench_prints_a_row_per_case_and_progress_on_stderr() -> None:
    """``bench --iterations 2`` prints 8 rows (4 sizes x off/deflate) and progress."""
    result = run_cli("bench", "--iterations", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "Size",
        "Message",
        "Compression",
        "Round",
        "trips/s",
        "MB/s",
        "Wire/app",
    ]
    cases = [(line.split()[0], line.split()[3]) for line in lines[2:]]
    assert cases == [
        (size, compression)
        for size in ("Small", "Medium", "Large", "Huge")
        for compression in ("off", "deflate")
    ]
    assert result.stderr.splitlines() == [
        f"bench: [{n}/8] {size} ({length} B), compression {compression}"
        for n, (size, length, compression) in enumerate(
            [
                (size, length, compression)
                for size, length in (
                    ("Small", "100"),
                    ("Medium", "1,300"),
                    ("Large", "10,000"),
                    ("Huge", "80,000"),
                )
                for compression in ("off", "deflate")
            ],
            start=1,
        )
    ]


def test_bench_json_gives_every_case_with_its_figures() -> None:
    """``bench --json`` prints one JSON document with 8 results."""
    result = run_cli("bench", "--iterations", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["server"] == "in-process"
    assert (data["iterations"], data["duration"]) == (2, None)
    assert len(data["results"]) == 8
    huge_deflate = data["results"][-1]
    assert huge_deflate["size_name"] == "Huge"
    assert huge_deflate["compression"] == "deflate"
    assert huge_deflate["round_trips"] == 2
    assert huge_deflate["app_bytes"] == 2 * 2 * 80_000
    assert huge_deflate["wire_ratio"] < 0.5
    assert huge_deflate["round_trips_per_second"] > 0


async def test_bench_against_a_serve_process_by_url() -> None:
    """``bench --url`` measures an echo server of another process."""
    with trio.fail_after(TIMEOUT * 2):
        async with start_cli("serve", "--port", "0") as server:
            match = await server.stderr.wait_for(SERVING)
            url = f"ws://127.0.0.1:{match[2]}/"
            result = await trio.to_thread.run_sync(
                lambda: run_cli("bench", "--url", url, "--iterations", "1", "--json")
            )
            server.process.send_signal(signal.SIGINT)
            await server.finish()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["server"] == url


def test_bench_unreachable_url_exits_1_with_one_line() -> None:
    """``bench --url`` with nobody listening exits 1 with one line."""
    result = run_cli("bench", "--url", f"ws://127.0.0.1:{free_port()}/", "--iterations", "1")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "bench: [1/8] Small (100 B), compression off"
    assert re.fullmatch(r"python -m trio_wsext bench: error: .+", lines[1])
    assert len(lines) == 2


# --- main() in this process (the same paths, seen by coverage) --------------------------------


def test_main_demo_in_process_returns_0(capsys: pytest.CaptureFixture[str]) -> None:
    """``main(["demo"])`` prints the demo and returns 0."""
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert "Bytes per message, client to server:" in out
    assert err == ""


def test_main_bench_in_process_returns_1_for_an_unreachable_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``main(["bench", "--url", ...])`` returns 1 with one error line when nobody listens."""
    port = free_port()
    assert main(["bench", "--url", f"ws://127.0.0.1:{port}/", "--iterations", "1"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == (
        f"python -m trio_wsext bench: error: cannot connect to 127.0.0.1:{port}: "
        "connection refused"
    )


def test_main_bench_json_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """``main(["bench", "--json"])`` prints JSON that parses, with 8 results."""
    assert main(["bench", "--iterations", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["results"]) == 8


# --- serve --workers --------------------------------------------------------------------------

SERVING_WORKERS: Final = (
    r"Serving on (wss?)://127\.0\.0\.1:(\d+) with 2 worker processes "
    r"\(compression: ([\w-]+), (shared socket|reuse port)\); Ctrl-C stops$"
)
#: A worker's line for a new connection: its pid, then what ``serve`` logs.
WORKER_CONNECTED: Final = r"\[worker (\d+)\] (\S+) connected to /echo, extensions: (.*)$"


def test_serve_help_explains_workers_and_reuse_port() -> None:
    """``serve --help`` lists ``--workers N`` and ``--reuse-port`` with their help."""
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    assert re.search(r"^  --workers N +serve in N worker processes", result.stdout, re.MULTILINE)
    assert re.search(r"^  --reuse-port +with --workers: each worker", result.stdout, re.MULTILINE)


def test_serve_reuse_port_without_workers_is_a_usage_error() -> None:
    """``serve --reuse-port`` alone exits 2: it means nothing in one process."""
    result = run_cli("serve", "--reuse-port")
    assert result.returncode == 2
    assert ": error: --reuse-port needs --workers 2 or more" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("extra", [(), ("--reuse-port",)], ids=["shared-socket", "reuse-port"])
async def test_serve_workers_echo_from_two_processes_and_stop_on_sigterm(
    extra: tuple[str, ...],
) -> None:
    """``serve --workers 2``: both workers echo; SIGTERM closes a client with 1001; status 0."""
    with trio.fail_after(2 * TIMEOUT):
        async with start_cli("serve", "--port", "0", "--workers", "2", *extra) as cli:
            match = await cli.stderr.wait_for(SERVING_WORKERS)
            assert match[3] == "permessage-deflate"
            assert match[4] == ("reuse port" if extra else "shared socket")
            url = f"ws://127.0.0.1:{match[2]}/echo"
            pids: set[str] = set()
            for _ in range(200):  # until both workers have taken a connection
                async with open_websocket_url(url) as ws:
                    await ws.send_message("hello")
                    assert await ws.get_message() == "hello"
                connected = await cli.stderr.wait_for(WORKER_CONNECTED)
                assert connected[2].startswith("127.0.0.1:")
                assert connected[3].startswith("permessage-deflate")
                pids.add(connected[1])
                if len(pids) == 2:
                    break
            assert len(pids) == 2
            assert str(cli.process.pid) not in pids
            async with open_websocket_url(url) as ws:
                await cli.stderr.wait_for(WORKER_CONNECTED)
                cli.process.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed):
                    await ws.get_message()
                assert ws.closed is not None
                assert ws.closed.code == 1001
            status, stdout, stderr = await cli.finish()
    assert status == 0
    assert stdout == ""
    assert "SIGTERM: closing connections and stopping\n" in stderr
    assert re.search(
        r"closed: 1001 \(GOING_AWAY\) server shutting down; 0 messages echoed\n", stderr
    )
    assert stderr.endswith("Server stopped.\n")
    assert "Traceback" not in stderr


async def test_serve_workers_tls_with_certfile_and_keyfile(tmp_path: Path) -> None:
    """``serve --workers 2 --certfile --keyfile``: every worker serves wss://."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with trio.fail_after(2 * TIMEOUT):
        async with start_cli(
            "serve", "--port", "0", "--workers", "2",
            "--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem"),
        ) as cli:  # fmt: skip
            match = await cli.stderr.wait_for(SERVING_WORKERS)
            assert match[1] == "wss"
            async with open_websocket_url(f"wss://127.0.0.1:{match[2]}/", client_context) as ws:
                await ws.send_message("secret")
                assert await ws.get_message() == "secret"
            cli.process.send_signal(signal.SIGINT)
            status, _, stderr = await cli.finish()
    assert status == 0
    assert "Traceback" not in stderr


@pytest.mark.parametrize("extra", [(), ("--reuse-port",)], ids=["shared-socket", "reuse-port"])
def test_serve_workers_port_in_use_exits_1_with_one_line(extra: tuple[str, ...]) -> None:
    """``serve --workers 2`` on a port in use exits 1 with one line, as one process does."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--workers", "2", *extra)
    assert result.returncode == 1
    assert re.fullmatch(
        rf"python -m trio_wsext serve: error: cannot listen on 127\.0\.0\.1:{port}: "
        r"\[Errno \d+\] [Aa]ddress already in use\n",
        result.stderr,
    )


def test_version_prints_the_release(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"python -m trio_wsext {trio_wsext.__version__}\n"


@pytest.mark.parametrize(
    ("argv0", "name"),
    [
        ("/usr/local/bin/trio-wsext", "trio-wsext"),
        ("/work/main/trio_wsext/__main__.py", "python -m trio_wsext"),
        ("-c", "python -m trio_wsext"),
        ("", "python -m trio_wsext"),
        ("python3", "python -m trio_wsext"),
        ("/venv/bin/pytest", "python -m trio_wsext"),
    ],
)
def test_the_program_calls_itself_as_invoked(argv0: str, name: str) -> None:
    assert program_name(argv0) == name


def test_the_console_script_names_itself_in_its_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/trio-wsext", "--help"])
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: trio-wsext ")
    assert "  trio-wsext demo " in out
    assert "python -m" not in out
