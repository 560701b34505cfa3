"""The broadcast benchmark (``python -m benchmarks.broadcast``) in its smallest size.

Each library's server process broadcasts a few messages to a few raw-socket
client connections, in both configurations, so the benchmark cannot rot
unnoticed: every message must be delivered, received, compressed, and
count as many bytes on both sides; trio_wsext must compress once per message
without context takeover and once per connection with it. The frame
counter of the client process is tested on bytes first.
"""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

from benchmarks import broadcast
from benchmarks.broadcast_clients import WireCounter, negotiation_problem
from benchmarks.broadcast_server import CONFIGURATIONS, LIBRARIES, tick_messages
from benchmarks.load import wire

CONNECTIONS = 20
MESSAGES = 5


def server_frame(payload: bytes, *, opcode: int = wire.TEXT, rsv1: bool = True) -> bytes:
    """Return an unmasked frame with FIN set, as a server sends it."""
    first = 0x80 | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, size)
    elif size < 2**16:
        head = struct.pack("!BBH", first, 126, size)
    else:
        head = struct.pack("!BBQ", first, 127, size)
    return head + payload


def test_wire_counter_counts_frames_cut_anywhere() -> None:
    """Messages, compressed messages and bytes add up however the stream is cut."""
    stream = (
        server_frame(b"x" * 5)
        + server_frame(b"y" * 300, rsv1=False)
        + server_frame(b"z" * 70_000, opcode=wire.BINARY)
        + server_frame(struct.pack("!H", 1000), opcode=wire.CLOSE, rsv1=False)
    )
    left, right = socket.socketpair()
    try:
        for cut in [1, 2, 3, 7, 11, 301, 4096, len(stream)]:
            counter = WireCounter(left)
            for start in range(0, len(stream), cut):
                counter.feed(memoryview(stream)[start : start + cut])
            assert (counter.bytes, counter.messages, counter.compressed, counter.closed) == (
                len(stream),
                3,
                2,
                True,
            ), cut
            assert counter.remaining == 0
    finally:
        left.close()
        right.close()


def test_negotiation_check_matches_configuration() -> None:
    """The clients refuse a response that negotiated the other configuration."""
    without = wire.Response(
        101, {"sec-websocket-extensions": "permessage-deflate; server_no_context_takeover"}
    )
    default = wire.Response(
        101, {"sec-websocket-extensions": "permessage-deflate; server_max_window_bits=12"}
    )
    assert negotiation_problem(without, "no_context_takeover") is None
    assert negotiation_problem(without, "context_takeover") is not None
    assert negotiation_problem(default, "context_takeover") is None
    assert negotiation_problem(default, "no_context_takeover") is not None
    assert negotiation_problem(wire.Response(101, {}), "context_takeover") is not None


def test_tick_messages_are_new_each_round_and_the_same_everywhere() -> None:
    """About 16 KiB each, all different, and reproducible from the seed."""
    messages = tick_messages(4)
    assert len(set(messages)) == 4
    assert all(15_000 < len(m.encode()) < 18_000 for m in messages)
    assert json.loads(messages[1])["seq"] == 1
    assert tick_messages(4) == messages


def test_smallest_run_delivers_everything_and_counts_agree(tmp_path: Path) -> None:
    """Every library, both configurations: all delivered, received, compressed, counted."""
    settings = broadcast.Settings(connections=CONNECTIONS, messages=MESSAGES, repeat=1)
    lines: list[str] = []
    runs = broadcast.run_all(settings, LIBRARIES, CONFIGURATIONS, tmp_path, lines.append)
    assert len(runs) == len(LIBRARIES) * len(CONFIGURATIONS) == len(lines)
    raw = len(tick_messages(1)[0].encode())
    for run in runs:
        assert broadcast.problems(run) == [], (run.library, run.configuration, run.error)
        assert run.server is not None
        total = CONNECTIONS * MESSAGES
        assert run.delivered == total
        assert run.server["skipped"] == 0
        assert run.client_total("messages") == run.client_total("compressed") == total
        figures = run.figures()
        assert figures is not None
        # Compressed JSON: well under the message, well over nothing.
        assert raw / 10 < figures["wire_bytes_per_message"] < raw
        assert figures["messages_per_second"] > 0
        assert figures["cpu_us_per_message"] > 0
        if run.library == "trio_wsext":
            shared = run.configuration == "no_context_takeover"
            assert run.server["encodings"] == (MESSAGES if shared else total)
    table = broadcast.table_lines(runs, LIBRARIES, CONFIGURATIONS)
    assert len([line for line in table if line.startswith("| no_context_takeover")]) == 5
    json.dumps(broadcast.document(runs, {"command": "test"}))


def test_problems_catch_lost_messages() -> None:
    """A client that received fewer messages than the server delivered is a problem."""
    run = broadcast.Run("context_takeover", "websockets", 0)
    run.server = {
        "connections": 2, "delivered": 4, "skipped": 0, "not_open": 0, "backlogged": 0,
        "drained": True, "wall": 1.0, "cpu": 0.5,
    }  # fmt: skip
    run.clients = [{"messages": 3, "compressed": 3, "bytes": 30, "closed": 0, "cpu": 0.1}]
    assert broadcast.problems(run) == ["clients received 3 messages, the server delivered 4"]
    run.clients[0] |= {"messages": 4, "compressed": 4}
    assert broadcast.problems(run) == []
