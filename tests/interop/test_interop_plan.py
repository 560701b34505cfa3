"""The interop plan itself: payload sizes, the JavaScript twin, and the checks on reports.

These run without trio_wsext, so the peers' side of the matrix is proven on its own.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Final

import pytest

from .plan import (
    PLAN,
    RUN_LENGTH,
    DriverReport,
    EchoReport,
    Effective,
    Step,
    StepResult,
    TrioSide,
    compare_echo,
    driver_problems,
    echo_problems,
    effective_deflate,
    expected_received,
    negotiation_problems,
    payload,
    run_message,
    traffic_problems,
)
from .processes import NODE_DIR

pytestmark = pytest.mark.interop

NODE_TIMEOUT: Final = 30
PLAN_BYTES: Final = sum(size for _, size, _ in expected_received())


@pytest.mark.parametrize("step", PLAN, ids=[step.name for step in PLAN])
def test_plan_payload_has_its_size_in_bytes(step: Step) -> None:
    """Every plan message is exactly its size in bytes (UTF-8 bytes for text), of its type."""
    message = payload(step)
    data = message.encode() if isinstance(message, str) else message
    assert (len(data), isinstance(message, str)) == (step.size, step.kind == "text")


def test_plan_text_mixes_every_utf8_width() -> None:
    """The text payloads carry 1-, 2-, 3- and 4-byte UTF-8 sequences."""
    text = payload(PLAN[2])
    assert isinstance(text, str)
    assert {len(char.encode()) for char in text} == {1, 2, 3, 4}


def test_run_repeats_blocks_beyond_small_windows() -> None:
    """Run message i repeats message i-7's block more than 2**10 bytes back."""
    first, again = run_message(0), run_message(7)
    assert isinstance(first, str)
    assert isinstance(again, str)
    assert first[4:] == again[4:]
    between = sum(
        len(m.encode()) if isinstance(m, str) else len(m) for m in map(run_message, range(1, 7))
    )
    assert 2**10 < between < 2**12


def test_node_plan_generates_the_same_messages(node: str) -> None:
    """plan.js generates byte for byte the messages that plan.py generates."""
    done = subprocess.run(
        [node, "plan.js"], cwd=NODE_DIR, capture_output=True, check=True, timeout=NODE_TIMEOUT
    )
    assert [tuple(row) for row in json.loads(done.stdout)] == expected_received()


@pytest.mark.parametrize(
    ("offer", "response", "expected"),
    [
        ("permessage-deflate", None, None),
        ("permessage-deflate", "x-other", None),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate", Effective()),
        (
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10",
            Effective(9, 10),
        ),
        ("permessage-deflate; client_max_window_bits=11", "permessage-deflate", Effective(15, 11)),
        (
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
            Effective(15, 15, True, True),
        ),
    ],
    ids=[
        "declined",
        "other-extension",
        "bare",
        "both-windows",
        "offered-window",
        "no-context-takeover",
    ],
)
def test_effective_deflate_reads_offer_and_response(
    offer: str, response: str | None, expected: Effective | None
) -> None:
    """The settings both sides apply follow RFC 7692 §7.1 from the offer and the response."""
    assert effective_deflate(offer, response) == expected


def test_driver_check_accepts_a_complete_report() -> None:
    """A report with every step passed, a pong and a 1000 close has no problem."""
    steps = [StepResult(step.name, True) for step in PLAN] + [StepResult("run-100", True)]
    assert driver_problems(DriverReport(ping_ok=True, steps=steps, close_code=1000)) == []


def test_driver_check_lists_every_problem() -> None:
    """A failed step, a missing pong, a missing step and a wrong close code are all named."""
    steps = [StepResult(PLAN[0].name, False, "sent 0 bytes, got 1 bytes")]
    assert driver_problems(DriverReport(ping_ok=False, steps=steps, close_code=1006)) == [
        f"driver ran steps {[PLAN[0].name]}, expected {[s.name for s in PLAN] + ['run-100']}",
        "text-0: sent 0 bytes, got 1 bytes",
        "driver's ping got no pong (ping_ok=False)",
        "driver saw close code 1006, expected 1000",
    ]


def test_echo_check_notices_one_corrupted_message() -> None:
    """One message received with different bytes fails the echo side's check by name."""
    received = expected_received()
    received[3] = (received[3][0], received[3][1], "0" * 64)
    problems = echo_problems(EchoReport(ping_ok=True, received=received, close_code=1000))
    assert problems == [
        f"echo side received {len(PLAN) + RUN_LENGTH} messages, expected {len(PLAN) + RUN_LENGTH};"
        " mismatches: [\"binary-125: expected ('binary', 125), received ('binary', 125)"
        ' with different bytes"]'
    ]


def test_compare_echo_names_type_and_first_difference() -> None:
    """An echo of the wrong type or with a changed byte is described precisely."""
    assert compare_echo("é", "é") is None
    assert compare_echo("é", "é".encode()) == "sent str, got bytes"
    assert (
        compare_echo(b"abcd", b"abXd") == "sent 4 bytes, got 4 bytes, first difference at byte 2"
    )


@dataclass(frozen=True)
class Stats:
    """A stand-in for trio_wsext's ConnectionStatistics after the whole plan."""

    wire_bytes_sent: int
    wire_bytes_received: int
    messages_sent: int = len(PLAN) + RUN_LENGTH
    messages_received: int = len(PLAN) + RUN_LENGTH
    bytes_sent: int = PLAN_BYTES
    bytes_received: int = PLAN_BYTES


PLAIN: Final = Stats(PLAN_BYTES + 1000, PLAN_BYTES + 1000)
COMPRESSED: Final = Stats(PLAN_BYTES // 3, PLAN_BYTES // 3)


def _side(offered: str, negotiated: str, extensions: list[object], stats: Stats) -> TrioSide:
    return TrioSide(offered, negotiated, extensions, is_server=False, statistics=stats)


@pytest.mark.parametrize(
    ("expect", "stats", "problems"),
    [
        (None, PLAIN, []),
        (Effective(), COMPRESSED, []),
        (
            Effective(),
            Stats(PLAN_BYTES // 3, PLAN_BYTES + 1000),
            [
                f"{PLAN_BYTES + 1000} wire bytes received for {PLAN_BYTES} bytes: not compressed"
                " (expected under 75%)"
            ],
        ),
        (
            None,
            Stats(PLAN_BYTES // 3, PLAN_BYTES + 1000),
            [f"{PLAN_BYTES // 3} wire bytes sent for {PLAN_BYTES} bytes, yet no compression"],
        ),
        (
            None,
            Stats(PLAN_BYTES, PLAN_BYTES, messages_received=3),
            [
                f"statistics count {(len(PLAN) + RUN_LENGTH, 3, PLAN_BYTES, PLAN_BYTES)} (messages"
                f" sent, received, bytes sent, received), expected"
                f" {(len(PLAN) + RUN_LENGTH, len(PLAN) + RUN_LENGTH, PLAN_BYTES, PLAN_BYTES)}"
            ],
        ),
    ],
    ids=["plain", "compressed", "one-way-uncompressed", "compressed-unasked", "lost-messages"],
)
def test_traffic_check_reads_compression_off_the_statistics(
    expect: Effective | None, stats: Stats, problems: list[str]
) -> None:
    """The statistics show whether both directions were compressed and nothing was lost."""
    assert traffic_problems(expect, _side("", "", [], stats)) == problems


def test_negotiation_check_notices_a_one_sided_extension() -> None:
    """The negotiation check fails when trio_wsext reads back an extension the peer lacks."""
    side = _side("permessage-deflate", "permessage-deflate", [], PLAIN)
    problems = negotiation_problems(
        None, side, peer_offered="permessage-deflate", peer_negotiated=None
    )
    assert problems == [
        "response: trio_wsext saw 'permessage-deflate', the peer None",
        "expected no extension, got 'permessage-deflate' and []",
    ]


def test_negotiation_check_compares_read_back_attributes() -> None:
    """An extension whose attributes disagree with the header is reported."""

    class Reported:
        name = "permessage-deflate"
        is_server = False
        server_max_window_bits = 15
        client_max_window_bits = 15
        server_no_context_takeover = False
        client_no_context_takeover = False

        def __repr__(self) -> str:
            return "Reported()"

    side = _side(
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=10",
        [Reported()],
        COMPRESSED,
    )
    problems = negotiation_problems(
        Effective(10), side, peer_offered=side.offered, peer_negotiated=side.negotiated
    )
    assert problems == [
        "Reported() reads back {'is_server': False, 'server_max_window_bits': 15,"
        " 'client_max_window_bits': 15, 'server_no_context_takeover': False,"
        " 'client_no_context_takeover': False}, the header says {'is_server': False,"
        " 'server_max_window_bits': 10, 'client_max_window_bits': 15,"
        " 'server_no_context_takeover': False, 'client_no_context_takeover': False}"
    ]
