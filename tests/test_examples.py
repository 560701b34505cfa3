"""Run every program in examples/ as a user would, and check what it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parent.parent
EXAMPLES: Final = ROOT / "examples"
ENV: Final = {**os.environ, "PYTHONPATH": str(ROOT)}
#: Seconds an example may take: each finishes in about one on this machine;
#: the rest is room for a busy 2-core CI runner.
TIMEOUT: Final = 60

TESTED: Final = {
    "advanced_compression.py",
    "basic_compression.py",
    "custom_extension.py",
    "debug_extension.py",
    "extension_chain.py",
    "performance_test.py",
}
#: Examples that need a server of their own, tested where it runs (``nox -s proxy``).
TESTED_ELSEWHERE: Final = {
    "redis_fanout.py",  # a redis-server: tests/deploy/test_redis_fanout.py
}


def run_example(name: str) -> list[str]:
    """Run ``examples/<name>``; check it exits 0 with nothing on stderr; return its lines."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def test_every_example_is_tested() -> None:
    """Each examples/*.py has a test here or elsewhere (a new example needs one)."""
    assert {path.name for path in EXAMPLES.glob("*.py")} == TESTED | TESTED_ELSEWHERE


def test_basic_compression() -> None:
    """The server and client print the seed's lines; 18,000 bytes cross as far fewer."""
    lines = run_example("basic_compression.py")
    assert lines[:3] == [
        "Compression server started",
        "Received compressed message: 18000 chars",
        "Received: 18006 characters",
    ]
    match = re.fullmatch(r"Sent 18,000 bytes as (\d+) bytes on the wire", lines[3])
    assert match is not None
    assert int(match[1]) < 1000
    assert len(lines) == 4


def test_advanced_compression() -> None:
    """Both configurations negotiate, echo four sizes and report wire bytes for each."""
    lines = run_example("advanced_compression.py")
    standard = lines.index("=== Standard Compression Configuration ===")
    custom = lines.index("=== Custom Compression Configuration ===")
    assert lines[standard + 1].startswith("Negotiated: PerMessageDeflate(is_server=False, ")
    assert lines[custom + 1] == (
        "Negotiated: PerMessageDeflate(is_server=False, server_max_window_bits=12, "
        "client_max_window_bits=12, server_no_context_takeover=False, "
        "client_no_context_takeover=False, compress_settings={'memLevel': 6}, threshold=0)"
    )
    for first in (standard + 2, custom + 2):
        sizes = []
        for number, line in enumerate(lines[first : first + 4], start=1):
            match = re.fullmatch(
                rf"Message {number}: (\d+) -> \1 chars, wire bytes (\d+) out, (\d+) in", line
            )
            assert match is not None, line
            sizes.append((int(match[1]), int(match[2]), int(match[3])))
        assert [size for size, _, _ in sizes] == [13, 750, 7000, 65000]
        # The seed's repeated words: the huge message crosses in well under 1%.
        assert all(out < 1000 and back < 1000 for _, out, back in sizes)
    assert not any(line.startswith("Configuration failed") for line in lines)


def test_custom_extension() -> None:
    """The right password negotiates simple-encrypt; a wrong one goes on without it."""
    lines = run_example("custom_extension.py")
    assert lines == [
        "Starting server with custom encryption extension...",
        "",
        "=== Client password: 'shared-secret-password' ===",
        "Negotiated extensions: ['simple-encrypt', 'permessage-deflate']",
        "Server received (decrypted): This message is encrypted!",
        "Client received (decrypted): Encrypted echo: This message is encrypted!",
        "",
        "=== Client password: 'wrong-password' ===",
        "Negotiated extensions: ['permessage-deflate']",
        "Server received (not encrypted): This message is encrypted!",
        "Client received (not encrypted): Encrypted echo: This message is encrypted!",
    ]


def test_extension_chain() -> None:
    """The chain runs on a frame by hand, then negotiated on a connection in chain order."""
    lines = run_example("extension_chain.py")
    connection = lines.index("=== The same chain, negotiated on a connection ===")
    assert lines[:connection] == [
        "=== Extension Chain Test ===",
        "Original message: 500 characters",
        "",
        "Encoding (outgoing):",
        "[OUT #1] TEXT: 500 bytes",
        "[OUT #1] TEXT: 61 bytes",
        "Final encoded size: 61 bytes",
        "",
        "Decoding (incoming):",
        "[IN #2] TEXT: 61 bytes",
        "[IN #2] TEXT: 500 bytes",
        "Final decoded size: 500 characters",
        "",
        "Roundtrip successful: True",
        "",
    ]
    # Encode in offer order, decode in reverse, on both sides.
    assert lines[connection + 1 : connection + 11] == [
        "Negotiated: ['pre-compress', 'simple-compress', 'post-compress']",
        "[client/pre-compress OUT #1] TEXT: 500 bytes",
        "[client/post-compress OUT #1] TEXT: 61 bytes",
        "[server/post-compress IN #1] TEXT: 61 bytes",
        "[server/pre-compress IN #1] TEXT: 500 bytes",
        "[server/pre-compress OUT #2] TEXT: 500 bytes",
        "[server/post-compress OUT #2] TEXT: 61 bytes",
        "[client/post-compress IN #2] TEXT: 61 bytes",
        "[client/pre-compress IN #2] TEXT: 500 bytes",
        "Echo matches: True",
    ]


def test_performance_test() -> None:
    """The seed's table: a header and one row per configuration and size."""
    lines = run_example("performance_test.py")
    assert lines[:3] == [
        "=== Extension Performance Test ===",
        "Config               Size     Time (ms)  Throughput (MB/s)",
        "-" * 65,
    ]
    rows = [
        re.fullmatch(r"(No Compression|Default Compression) +(\w+) +[\d.]+ +[\d.]+", line)
        for line in lines[3:]
    ]
    assert [(row[1], row[2]) for row in rows if row is not None] == [
        (config, size)
        for config in ("No Compression", "Default Compression")
        for size in ("Small", "Medium", "Large", "Huge")
    ]
    assert len(lines) == 11


@pytest.fixture(scope="module")
def debug_lines() -> list[str]:
    """The output of debug_extension.py."""
    return run_example("debug_extension.py")


def test_debug_extension_simulation(debug_lines: list[str]) -> None:
    """Part one prints every frame twice and the seed's statistics."""
    stats = debug_lines.index("=== test-debug Extension Statistics ===")
    assert debug_lines[0] == "=== Debug Extension Example ==="
    assert debug_lines[1:6] == [
        "[DEBUG] Encoding frame:",
        " Opcode: TEXT",
        " Size: 13 bytes",
        " FIN: True",
        " RSV: FalseFalseFalse",
    ]
    assert debug_lines.count(" Opcode: PONG") == 2
    assert debug_lines[stats + 2 : stats + 6] == [
        "Frames encoded: 4",
        "Frames decoded: 4",
        "Bytes in: 25",
        "Bytes out: 25",
    ]


def test_debug_extension_on_a_connection(debug_lines: list[str]) -> None:
    """Part two sees compressed frames (RSV1) of a real connection, and counts them."""
    part = debug_lines[debug_lines.index("=== Debug Extension on a connection ===") :]
    # The 280-character text goes out compressed, with RSV1 set.
    assert part[1:6] == [
        "[DEBUG] Encoding frame:",
        " Opcode: TEXT",
        part[3],
        " FIN: True",
        " RSV: TrueFalseFalse",
    ]
    size = re.fullmatch(r" Size: (\d+) bytes", part[3])
    assert size is not None
    assert int(size[1]) < 280
    stats = part.index("=== debug Extension Statistics ===")
    # A text and a binary message each way, and the closing handshake.
    assert part[stats + 2 : stats + 4] == ["Frames encoded: 3", "Frames decoded: 3"]
