"""The load and fault harness's small version against trio_wsext's echo server, with its checks.

Each scenario test starts a fresh server process and the harness's client
processes (benchmarks.load.settings.SMALL: 100 connections x 10 messages,
10 hostile clients of each kind, 200 churn cycles), and asserts what a
server must do under load and attack: every echo back intact and in order,
every bad client answered within its bound, every file descriptor released,
every protocol violation failed with the close code the RFCs give it.
The bounds are those of the server's defaults: a 10 s handshake timeout.
The short scenarios also run against websockets, as a check on the harness.
The pure parts (frames, messages, figures) are tested first, on bytes.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import pytest

from benchmarks.load import figures, messages, report, scenarios, violations, wire
from benchmarks.load.settings import SMALL, ScenarioName

LIBRARY = "trio_wsext"
"""The server under test; the long scenarios (hostile, newcomer) run against it alone."""

PEERS = [LIBRARY, "websockets"]
"""The servers of the short scenarios: websockets too, so that a harness that
passes anything would show up as a difference."""

HANDSHAKE_TIMEOUT = 10.0
"""trio_wsext's default connect_timeout, which the benchmark server keeps."""

ACCEPT_SLACK = 5.0
"""Seconds a busy server may take to accept a connection: its connect_timeout
counts from the accept, the client's clock from its connect. The same as
:data:`PROMPT`: a loaded 2-core machine measured 2.1 s."""

PROMPT = 5.0
"""Seconds within which a server answers garbage or a bomb: at once, give or take a busy CPU."""


def client_payload(frame: bytes) -> bytes:
    """Return the unmasked payload of one whole client frame."""
    code = frame[1] & 0x7F
    start = 2 + {126: 2, 127: 8}.get(code, 0) + 4
    assert frame[start - 4 : start] == wire.MASK_KEY
    return wire.apply_mask(frame[start:])


@pytest.mark.parametrize("seq", [0, 3, 57], ids=["medium", "small", "large"])
def test_message_frame_inflates_to_its_text(seq: int) -> None:
    """A precomputed frame unmasks and inflates, sync tail appended, to the message's text."""
    frame = messages.payloads(12).frame(7, seq)
    assert frame[0] == 0xC1  # FIN, RSV1, text
    text = zlib.decompressobj(-15).decompress(client_payload(frame) + wire.SYNC_TAIL)
    assert text == messages.text(7, seq)
    assert messages.parse_ids(text) == (7, seq)


def test_message_sizes_follow_the_sequence_number() -> None:
    """One message in 50 is 64 KiB, one in 8 is 64 bytes, the rest about 2 kB."""
    assert [messages.size_of(seq) for seq in (0, 3, 7, 57)] == [
        "medium",
        "small",
        "large",
        "large",
    ]
    assert len(messages.text(7, 57)) == pytest.approx(65_536, abs=32)
    assert len(messages.text(7, 3)) == pytest.approx(64, abs=16)


def test_parse_ids_refuses_text_without_header() -> None:
    """Text that is not one of the harness's messages has no ids."""
    assert messages.parse_ids(b'{"x":1}') is None
    assert messages.parse_ids(b'{"c":1,"s":x,"d":1}') is None


def test_frame_reader_splits_frames_across_reads() -> None:
    """Frames cut anywhere come out whole, in order, once."""
    data = b"\x81\x05hello" + b"\x88\x02\x03\xe8" + b"\x82\x7e\x01\x00" + bytes(256)
    reader = wire.FrameReader()
    frames = [f for i in range(len(data)) for f in reader.feed(data[i : i + 1])]
    assert [(f.opcode, len(f.payload)) for f in frames] == [(1, 5), (8, 2), (2, 256)]
    assert wire.close_code(frames[1].payload) == 1000


def test_frame_reader_refuses_masked_server_frame() -> None:
    """A masked frame from a server is a protocol violation."""
    with pytest.raises(wire.WireError, match=r"^the server masked a frame$"):
        wire.FrameReader().feed(b"\x81\x85" + bytes(9))


def test_client_window_bits_follows_the_answer() -> None:
    """The client compresses with the window the server's answer allows."""
    answer = wire.Response(
        101,
        {"sec-websocket-extensions": "permessage-deflate; client_max_window_bits=12"},
    )
    assert wire.client_window_bits(answer) == 12
    assert wire.client_window_bits(wire.Response(101, {})) is None


def test_backpressure_figures_split_the_bytes() -> None:
    """What the server holds is what it read minus what it wrote back."""
    result = {
        "how": "stalled",
        "seconds": 0.5,
        "sent": 10 * 2**20,
        "client_unsent": 4 * 2**20,
        "server_receive_queue": 2 * 2**20,
        "server_send_queue": 2**20,
        "client_unread": 2**20,
    }
    assert figures.backpressure(result)["backpressure.held_mib"] == 2.0


def test_violation_cells_mark_the_expected_code() -> None:
    """A close with the expected code gets a tick; another code or an eof does not."""
    answers: list[dict[str, Any]] = [
        {"name": "unmasked", "how": "close 1002", "reason": "", "seconds": 0.01},
        {"name": "bad_deflate", "how": "close 1002", "reason": "", "seconds": 0.01},
        {"name": "over_limit", "how": "eof", "reason": None, "seconds": 0.01},
    ]
    result = figures.violations_answered(answers)
    assert result["violations.exact"] == 1
    assert result["violations.length_msb.how"] == "missing"
    runs = [scenarios.Run("violations", LIBRARY, 0, result)]
    cells = {
        row.key: report.cell(runs, row, LIBRARY) for row in report.ROWS if row.style == "verdict"
    }
    assert cells["violations.unmasked.how"] == "1002 ✓"
    assert cells["violations.bad_deflate.how"] == "1002"
    assert cells["violations.over_limit.how"] == "eof"


def run(scenario: ScenarioName, tmp_path: Path, library: str = LIBRARY) -> figures.Figures:
    """Run ``scenario``'s small version against ``library``; fail on a harness error."""
    result = scenarios.run_one(scenario, library, 0, scenarios.Context(SMALL, tmp_path))
    assert result.error is None, result.error
    assert result.figures is not None
    assert result.figures["server_alive"] is True
    return result.figures


def assert_good_traffic(result: figures.Figures) -> None:
    """Every good connection opened, and every message came back once, intact, in order."""
    assert result["opened"] == SMALL.connections, result["handshake_failures"]
    assert result["connect_errors"] == {}
    assert result["dropped"] == {}
    assert result["sent"] == SMALL.connections * SMALL.messages
    assert result["echoed"] == result["sent"]
    for key in ("lost", "duplicated", "reordered", "corrupted", "stalled"):
        assert result[key] == 0, key
    assert result["fds_extra"] == 0


@pytest.mark.parametrize("library", PEERS)
def test_server_echoes_every_message_under_load(library: str, tmp_path: Path) -> None:
    """Scenario 1: no message lost, duplicated, reordered or corrupted; fds released."""
    assert_good_traffic(run("load", tmp_path, library))


def test_server_answers_every_hostile_client_within_its_bound(tmp_path: Path) -> None:
    """Scenario 2: garbage gets a 400, a bomb 1009, slowloris its timeout; good clients unharmed.

    A mid-frame reset has nothing to answer: the fds coming back checks that
    the server let go of it. A slow consumer is answered only by the
    keepalive (20 s + 20 s), past the bound: what it may send is bounded instead.
    """
    result = run("hostile", tmp_path)
    assert_good_traffic(result)
    n = SMALL.hostile_per_kind
    assert result["garbage.how"] == {"http 400": n}
    assert result["garbage.max_s"] < PROMPT
    assert result["bomb.how"] == {"close 1009": n}
    assert result["bomb.max_s"] < PROMPT
    assert result["slowloris.answered"] == n, result["slowloris.how"]
    assert result["slowloris.max_s"] < HANDSHAKE_TIMEOUT + ACCEPT_SLACK
    assert result["mid_frame_reset.how"] == {"reset by client": n}
    assert result["slow_consumer.sent_mib"] < 32


def test_newcomer_gets_its_echo_during_load(tmp_path: Path) -> None:
    """Scenario 3: a connection opened while the others echo gets its handshake and echo."""
    result = run("newcomer", tmp_path)
    assert result["newcomer.total"] >= 1
    assert result["newcomer.ok"] == result["newcomer.total"], result["newcomer.how"]
    assert result["errors"] == 0


@pytest.mark.parametrize("library", PEERS)
def test_server_releases_every_fd_after_churn(library: str, tmp_path: Path) -> None:
    """Scenario 4: every cycle closes cleanly or is reset; the fd count returns to baseline."""
    result = run("churn", tmp_path, library)
    assert result["churn.done"] == SMALL.churn
    assert result["churn.failed"] == 0, result["churn.how"]
    assert result["churn.aborted"] == SMALL.churn // 5
    assert result["fds_extra"] == 0


@pytest.mark.parametrize("library", PEERS)
def test_server_stops_reading_from_a_client_that_does_not_read(
    library: str, tmp_path: Path
) -> None:
    """Scenario 6: the server holds at most 4 MiB of a flood it cannot echo."""
    result = run("backpressure", tmp_path, library)
    assert result["backpressure.how"] == {"stalled": 1}
    assert result["backpressure.held_mib"] is not None
    assert result["backpressure.held_mib"] <= 4


EXPECTED_CODES = {
    "unmasked": 1002,  # RFC 6455 §5.1
    "reserved_opcode": 1002,  # §5.2
    "rsv2": 1002,  # §5.2
    "fragmented_ping": 1002,  # §5.5
    "long_ping": 1002,  # §5.5
    "lone_continuation": 1002,  # §5.4
    "interleaved": 1002,  # §5.4
    "text_not_utf8": 1007,  # §8.1, §7.4.1
    "close_one_byte": 1002,  # §5.5.1
    "close_1005": 1002,  # §7.4.1
    "close_reason_not_utf8": 1007,  # §5.5.1, §8.1
    "over_limit": 1009,  # §7.4.1, from the header alone
    "bad_deflate": 1007,  # RFC 7692 §6.2
    "length_msb": 1002,  # §5.2
}
"""The close code each violation must get, written out here rather than read from the harness."""


def test_server_fails_each_protocol_violation_with_its_close_code(tmp_path: Path) -> None:
    """Scenario 7: each of the 14 violations gets a close frame with the code the RFCs give."""
    assert list(EXPECTED_CODES) == [v.name for v in violations.VIOLATIONS]
    result = run("violations", tmp_path)
    got = {name: result[f"violations.{name}.how"] for name in EXPECTED_CODES}
    assert got == {name: f"close {code}" for name, code in EXPECTED_CODES.items()}
    assert result["violations.exact"] == result["violations.total"] == 14
    assert all(result[f"violations.{name}.seconds"] < PROMPT for name in EXPECTED_CODES)
