"""Measure permessage-deflate settings: compression ratio against memory per connection.

Run from the repository's root::

    python -m benchmarks.deflate_defaults            # the full tables (about 3 minutes)
    python -m benchmarks.deflate_defaults --quick    # fewer messages and pairs
    python -m benchmarks.deflate_defaults --mem-levels   # table 5 only (about 2 minutes)

Strategy: every figure comes from trio_wsext's own :class:`PerMessageDeflate`,
as a connection would use it: a server-side extension encodes a stream of
messages with context takeover, a client-side one decodes them (checking the
round trip). The messages are deterministic, realistic JSON of three kinds
(chat events, telemetry records, API responses) at three sizes (100 B, 1 KiB,
16 KiB); each message differs from the others, so context takeover helps only
as much as real traffic lets it.

- Table 1: window bits 9-15 x memLevel {1, 3, 5, 8, 9}: the compressed size in
  % of the original per message size, and the memory of one connection's
  compressor + decompressor, measured with tracemalloc over ``--pairs``
  connections that have each sent and received a message.
- Table 2: small messages (8-512 B): bytes saved per message and CPU time per
  message (compress + decompress), to choose ``threshold``.
- Table 3: the chosen defaults at 1,000 connections: idle (never used),
  after traffic, and after traffic with no_context_takeover; tracemalloc and
  the process's RSS growth.
- Table 4: the CPU that freeing the zlib objects after each message costs.
- Table 5 (``--mem-levels``, alone): memLevel 1-9 at the server's default
  windows, for the backend in use (zlib-ng when installed, unless
  ``TRIO_WSEXT_DEFLATE_BACKEND=zlib``): compressed size, compression speed,
  and the memory of a compressor, busy, and of a connection side that went
  idle and released its compressor. The RSS figures come from a fresh
  process per cell, because tracemalloc sees only what the backend allocates
  through Python's allocator.

Timings are medians of a few runs on a shared machine: read them as orders of
magnitude. Sizes and memory are exact for this zlib.
"""

from __future__ import annotations

import argparse
import enum
import gc
import importlib.metadata
import json
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable, Sequence
from typing import Final

from benchmarks.payloads import json_message, json_messages
from trio_wsext.extensions.deflate_codec import BACKEND
from trio_wsext.extensions.permessage_deflate import (
    DEFAULT_MAX_WINDOW_BITS,
    DEFAULT_MEM_LEVEL,
    DEFAULT_THRESHOLD,
    PerMessageDeflate,
)
from trio_wsext.frames import Frame, Opcode

SIZES: Final = (100, 1024, 16384)
"""Target message sizes in bytes (issue 4: 100 B, 1 KiB, 16 KiB)."""

WINDOW_BITS: Final = tuple(range(9, 16))
"""Window sizes measured; 8 compresses exactly as 9 does (zlib's smallest raw window)."""

MEM_LEVELS: Final = (1, 3, 5, 8, 9)
"""memLevel values measured; 8 is zlib's default, 9 its maximum."""

SMALL_SAMPLE: Final = b'{"type":"message","room":"general","user":"alice","text":"hello there"}'
"""The message each connection sends and receives before its memory is measured."""

BUSY_BYTES: Final = 40_000
"""Bytes sent each way for a "busy" RSS figure: more than the largest window (32 KiB)."""

MEM_LEVEL_SWEEP: Final = tuple(range(1, 10))
"""memLevel values of table 5: every one zlib accepts."""

LARGE_SIZE: Final = 65536
"""Bytes of the JSON-like messages of the echo benchmark (benchmarks.payloads) in table 5."""

LARGE_SAMPLE_BYTES: Final = 2**20
"""Bytes of the message a "full" compressor of table 5 has compressed: at any
memLevel, more symbols than its buffer holds, so that every page is written."""

SPEED_RUNS: Final = 7
"""Runs per speed figure of table 5, memLevels interleaved; the median is kept."""

PER_MESSAGE_OVERHEAD: Final = 2 + 52
"""Bytes around a small message on the wire when it travels alone: a 2-byte
WebSocket header and 52 bytes of IPv4 + TCP headers with timestamps."""

SMALL_BUCKETS: Final = (
    (8, 16),
    (16, 24),
    (24, 32),
    (32, 48),
    (48, 64),
    (64, 96),
    (96, 128),
    (128, 256),
    (256, 512),
)
"""Size ranges [low, high) of small messages, to choose the threshold."""

_WORDS: Final = (
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "it",
    "you",
    "that",
    "he",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "I",
    "his",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
    "or",
    "had",
    "by",
    "hot",
    "word",
    "but",
    "what",
    "some",
    "we",
    "can",
    "out",
    "other",
    "were",
    "all",
    "there",
    "when",
    "up",
    "use",
    "your",
    "how",
    "said",
    "an",
    "each",
    "she",
    "which",
    "do",
    "their",
    "time",
    "if",
    "will",
    "way",
    "about",
    "many",
    "then",
    "them",
    "write",
    "would",
    "like",
    "so",
    "these",
    "her",
    "long",
    "make",
    "thing",
    "see",
    "him",
    "two",
    "has",
    "look",
    "more",
    "day",
    "could",
    "go",
    "come",
    "did",
    "number",
    "sound",
    "no",
    "most",
    "people",
    "my",
    "over",
    "know",
    "water",
    "than",
    "call",
    "first",
    "who",
    "may",
    "down",
    "side",
    "been",
    "now",
    "find",
    "deploy",
    "server",
    "latency",
    "cache",
    "ticket",
    "release",
    "meeting",
    "review",
    "build",
    "merge",
    "branch",
    "config",
    "schema",
    "query",
    "index",
    "metrics",
    "alert",
)
_NAMES: Final = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "yasmin",
    "zoe",
)
_ROOMS: Final = ("general", "random", "ops", "design", "release-2.4", "support")


#: Zipf's law: the word of rank r appears with a weight 1/r, as in real text.
_WORD_WEIGHTS: Final = [1 / rank for rank in range(1, len(_WORDS) + 1)]


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, _WORD_WEIGHTS, k=rng.randrange(3, 18))
    return " ".join(words).capitalize() + rng.choice((".", ".", "?", "!"))


def _timestamp(rng: random.Random, base: int) -> str:
    seconds = base + rng.randrange(86_400)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rng.randrange(1000):03d}Z"
    )


def chat_event(rng: random.Random, i: int) -> dict[str, object]:
    """Return one chat event: a message, a reaction, typing or presence."""
    user = rng.choice(_NAMES)
    kind = rng.choices(("message", "reaction", "typing", "presence"), (6, 2, 1, 1))[0]
    event: dict[str, object] = {"type": kind, "room": rng.choice(_ROOMS), "user": user}
    if kind == "message":
        event |= {
            "text": _sentence(rng),
            "id": f"msg_{1_700_000 + i:08d}",
            "ts": _timestamp(rng, 1_714_000_000),
            "mentions": rng.sample(_NAMES, rng.randrange(0, 3)),
        }
    elif kind == "reaction":
        event |= {
            "id": f"msg_{1_700_000 + rng.randrange(i + 1):08d}",
            "emoji": rng.choice((":+1:", ":tada:", ":eyes:", ":heart:")),
        }
    elif kind == "presence":
        event |= {
            "status": rng.choice(("online", "away", "offline")),
            "ts": _timestamp(rng, 1_714_000_000),
        }
    return event


def telemetry_record(rng: random.Random, i: int) -> dict[str, object]:
    """Return one telemetry record of a sensor."""
    return {
        "device": f"sensor-{rng.randrange(64):04d}",
        "seq": i,
        "ts": 1_714_000_000_000 + i * 1000 + rng.randrange(1000),
        "temp_c": round(rng.gauss(21.5, 2.0), 2),
        "humidity": round(rng.uniform(30, 70), 1),
        "battery": rng.randrange(5, 101),
        "rssi": -rng.randrange(40, 95),
        "status": rng.choices(("ok", "warn", "error"), (90, 8, 2))[0],
        "location": {
            "lat": round(48.85 + rng.uniform(-0.05, 0.05), 5),
            "lon": round(2.35 + rng.uniform(-0.05, 0.05), 5),
        },
    }


def api_item(rng: random.Random, i: int) -> dict[str, object]:
    """Return one item of a paginated API response."""
    name = rng.choice(_NAMES)
    return {
        "id": 100_000 + i,
        "name": f"{name.title()} {rng.choice(_NAMES).title()}",
        "email": f"{name}.{rng.randrange(1000)}@example.com",
        "created_at": _timestamp(rng, 1_600_000_000 + rng.randrange(10**8)),
        "role": rng.choice(("admin", "member", "viewer")),
        "tags": rng.sample(
            ("beta", "vip", "eu", "us", "trial", "staff", "partner"), rng.randrange(0, 4)
        ),
        "score": round(rng.uniform(0, 100), 3),
        "active": rng.random() < 0.8,
    }


_KINDS: Final[dict[str, Callable[[random.Random, int], dict[str, object]]]] = {
    "chat": chat_event,
    "telemetry": telemetry_record,
    "api": api_item,
}


def messages(kind: str, size: int, count: int, seed: int = 7) -> list[bytes]:
    """Return ``count`` distinct JSON messages of about ``size`` bytes.

    Near 100 B, a message is one record with its last fields dropped until it
    fits (a compact event); larger ones are a batch (chat history, telemetry
    batch, a page of API results) of as many records as fit in ``size``.
    """
    rng = random.Random(f"{kind}-{size}-{seed}")
    make = _KINDS[kind]
    out: list[bytes] = []
    serial = 0

    def dump(body: object) -> bytes:
        return json.dumps(body, separators=(",", ":")).encode()

    while len(out) < count:
        if size <= 128:
            record = make(rng, serial)
            serial += 1
            while len(dump(record)) > size * 1.1 and len(record) > 2:
                record.popitem()
            out.append(dump(record))
            continue
        records: list[dict[str, object]] = []
        text = dump({"items": records, "page": serial})
        while True:
            records.append(make(rng, serial))
            serial += 1
            bigger = dump({"items": records, "page": serial})
            if len(bigger) > size:
                records.pop()
                break
            text = bigger
        out.append(text)
    return out


def small_messages(count: int) -> list[bytes]:
    """Return ``count`` small JSON messages of 8-512 bytes.

    Heartbeats, acks, typing and cursor events, short chat lines, and single
    chat, telemetry and API records: what small-message traffic carries.
    """
    rng = random.Random("small")
    out = []
    for i in range(count):
        shape = rng.randrange(9)
        body: object
        if shape == 0:
            body = {"ack": i}
        elif shape == 1:
            body = {"op": 1, "d": 1000 + i}
        elif shape == 2:
            body = {"type": "ack", "id": f"msg_{1_700_000 + i:08d}"}
        elif shape == 3:
            body = {"type": "typing", "user": rng.choice(_NAMES)}
        elif shape == 4:
            body = {"x": rng.randrange(2000), "y": rng.randrange(1200)}
        elif shape == 5:
            body = {
                "t": "msg",
                "text": " ".join(rng.choices(_WORDS, _WORD_WEIGHTS, k=rng.randrange(1, 12))),
            }
        elif shape == 6:
            body = chat_event(rng, i)
        elif shape == 7:
            body = telemetry_record(rng, i)
        else:
            body = [api_item(rng, i + k) for k in range(rng.randrange(1, 4))]
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def _pair(
    bits: int, mem_level: int, *, no_context_takeover: bool = False
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    settings = {"memLevel": mem_level}
    server = PerMessageDeflate(
        True, bits, bits, no_context_takeover, no_context_takeover, settings
    )
    client = PerMessageDeflate(
        False, bits, bits, no_context_takeover, no_context_takeover, settings
    )
    return server, client


def compressed_percent(stream: Sequence[bytes], bits: int, mem_level: int) -> float:
    """Return the compressed payload bytes of ``stream`` in % of the original bytes."""
    server, client = _pair(bits, mem_level)
    original = compressed = 0
    for data in stream:
        frame = server.encode(Frame(Opcode.TEXT, data))
        if client.decode(frame).data != data:
            raise RuntimeError("round trip failed")
        original += len(data)
        compressed += len(frame.data)
    return 100 * compressed / original


def memory_per_pair(
    bits: int,
    mem_level: int,
    pairs: int,
    *,
    traffic: bool = True,
    no_context_takeover: bool = False,
) -> float:
    """Return tracemalloc's bytes per connection side (compressor + decompressor).

    Each of ``pairs`` server-side extensions sends one message to, and
    receives one from, a client-side peer; the peers are then dropped, so
    what is left is what a server holds per connection.
    """
    sample = SMALL_SAMPLE
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = []
    for _ in range(pairs):
        server, client = _pair(bits, mem_level, no_context_takeover=no_context_takeover)
        if traffic:
            client.decode(server.encode(Frame(Opcode.TEXT, sample)))
            server.decode(client.encode(Frame(Opcode.TEXT, sample)))
        kept.append(server)
        del client
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / pairs


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * 4096


class Sample(enum.IntEnum):
    """The message each connection of an RSS probe sends (and receives)."""

    SMALL = 0
    """:data:`SMALL_SAMPLE`, a 70-byte chat event."""
    BUSY = 1
    """:data:`BUSY_BYTES` of API results: every page of even a 32 KiB window written."""
    FULL = 2
    """:data:`LARGE_SAMPLE_BYTES` of JSON-like text: every page of the compressor written."""


class Held(enum.IntEnum):
    """What each connection of an RSS probe holds when the RSS is read."""

    PAIR = 0
    """A compressor and a decompressor, after one message each way."""
    COMPRESSOR = 1
    """A compressor alone, after it compressed one message."""
    RELEASED = 2
    """A pair after one message each way, then release_idle_memory(): an idle connection."""


def _sample_bytes(sample: Sample) -> bytes:
    """Return the message that ``sample`` names."""
    if sample is Sample.SMALL:
        return SMALL_SAMPLE
    if sample is Sample.BUSY:
        return messages("api", BUSY_BYTES, 1)[0]
    return json_message(LARGE_SAMPLE_BYTES, 0).encode()


def rss_per_pair(
    bits: int, mem_level: int, pairs: int, *, busy: bool = True, no_context_takeover: bool = False
) -> float:
    """Return the growth of a fresh process's RSS per connection side, after traffic.

    ``busy`` sends :data:`BUSY_BYTES` each way, so that every page of the
    windows has been written (a connection in steady use); otherwise one small
    message each way.
    """
    sample = Sample.BUSY if busy else Sample.SMALL
    return rss_per_side(bits, mem_level, pairs, sample, Held.PAIR, no_context_takeover)


def rss_per_side(
    bits: int,
    mem_level: int,
    pairs: int,
    sample: Sample,
    held: Held,
    no_context_takeover: bool = False,
) -> float:
    """Return the growth of a fresh process's RSS per connection side.

    A fresh process, because memory freed by earlier measurements would be
    reused without growing the RSS; and the RSS, because it counts what the
    backend allocates outside Python's allocator, and only the pages written.
    """
    probe = [sys.executable, "-m", "benchmarks.deflate_defaults", "--rss-probe"]
    arguments = (bits, mem_level, int(no_context_takeover), pairs, sample, held)
    probe += [str(int(argument)) for argument in arguments]
    result = subprocess.run(probe, capture_output=True, text=True, check=True)
    return float(result.stdout)


def _rss_probe(
    bits: int, mem_level: int, no_context_takeover: bool, pairs: int, sample: Sample, held: Held
) -> float:
    data = _sample_bytes(sample)
    # Warm up everything but zlib, so that only the connections' memory is counted.
    _pair(bits, mem_level)[0].encode(Frame(Opcode.TEXT, b"warm up"), compress=False)
    gc.collect()
    before = _rss()
    kept = []
    for _ in range(pairs):
        server, client = _pair(bits, mem_level, no_context_takeover=no_context_takeover)
        sent = server.encode(Frame(Opcode.TEXT, data))
        if held is not Held.COMPRESSOR:
            client.decode(sent)
            server.decode(client.encode(Frame(Opcode.TEXT, data)))
        if held is Held.RELEASED:
            server.release_idle_memory()
        kept.append(server)
        del client, sent
    gc.collect()
    return (_rss() - before) / pairs


def allocated_per_compressor(bits: int, mem_level: int, count: int) -> float:
    """Return tracemalloc's bytes per compressor that compressed one small message.

    Only what the backend allocates through Python's allocator is seen (the
    standard library's zlib and the zlib-ng package both do, today).
    """
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = []
    for _ in range(count):
        server = _pair(bits, mem_level)[0]
        server.encode(Frame(Opcode.TEXT, SMALL_SAMPLE))
        kept.append(server)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / count


def compress_rates(
    stream: Sequence[bytes], bits: int, mem_levels: Sequence[int], runs: int
) -> dict[int, float]:
    """Return each memLevel's compression speed, in MB/s of original bytes (CPU time).

    One server-side extension per run compresses the whole stream with
    context takeover, as a connection does. The memLevels take turns within
    each run, so that the machine's drift spreads over all of them; the
    median of ``runs`` is kept.
    """
    total = sum(len(data) for data in stream)
    seconds: dict[int, list[float]] = {level: [] for level in mem_levels}
    for _ in range(runs):
        for level in mem_levels:
            server = _pair(bits, level)[0]
            frames = [Frame(Opcode.TEXT, data) for data in stream]
            start = time.process_time()
            for frame in frames:
                server.encode(frame)
            seconds[level].append(time.process_time() - start)
    return {level: total / statistics.median(spent) / 1e6 for level, spent in seconds.items()}


def cpu_microseconds(
    stream: Sequence[bytes],
    bits: int,
    mem_level: int,
    *,
    compress: bool,
    no_context_takeover: bool = False,
    runs: int = 5,
) -> float:
    """Return the median CPU time per message to encode and decode ``stream``."""
    results = []
    for _ in range(runs):
        server, client = _pair(bits, mem_level, no_context_takeover=no_context_takeover)
        start = time.process_time()
        for data in stream:
            client.decode(server.encode(Frame(Opcode.TEXT, data), compress=compress))
        results.append((time.process_time() - start) / len(stream) * 1e6)
    return statistics.median(results)


def _row(*cells: object) -> None:
    print("| " + " | ".join(str(cell) for cell in cells) + " |", flush=True)


def _header(*names: str) -> None:
    _row(*names)
    _row(*("---" for _ in names))


def ratio_table(counts: dict[int, int], pairs: int) -> None:
    """Print table 1: compressed size and memory per window bits and memLevel."""
    streams = {size: [messages(kind, size, counts[size]) for kind in _KINDS] for size in SIZES}
    print("Table 1: compressed size in % of the original (lower is better; the mean over")
    print("chat, telemetry and API messages), and memory per connection side (compressor +")
    print("decompressor): allocated (tracemalloc), and resident (RSS growth) once 40 KB went")
    print("each way, which writes every page of even a 32 KiB window\n")
    _header(
        "window bits", "memLevel", *(f"{size} B" for size in SIZES), "KiB allocated", "KiB RSS"
    )
    for bits in WINDOW_BITS:
        for mem_level in MEM_LEVELS:
            cells = [
                statistics.mean(compressed_percent(s, bits, mem_level) for s in streams[size])
                for size in SIZES
            ]
            allocated = memory_per_pair(bits, mem_level, pairs) / 1024
            resident = rss_per_pair(bits, mem_level, pairs) / 1024
            _row(
                bits,
                mem_level,
                *(f"{c:.1f}" for c in cells),
                f"{allocated:.0f}",
                f"{resident:.0f}",
            )


def threshold_table(count: int) -> None:
    """Print table 2: what compressing small messages saves and costs."""
    bits, mem_level = DEFAULT_MAX_WINDOW_BITS, DEFAULT_MEM_LEVEL
    print(f"\nTable 2: small messages, window bits {bits}, memLevel {mem_level}; saved % counts")
    print(f"{PER_MESSAGE_OVERHEAD} bytes of WebSocket + TCP/IP headers per message\n")
    _header(
        "size", "messages", "mean B", "compressed B", "saved B", "saved % of wire",
        "compressed B, no context takeover", "CPU µs compressed", "CPU µs uncompressed",
    )  # fmt: skip
    pool = small_messages(count)
    for low, high in SMALL_BUCKETS:
        bucket = [m for m in pool if low <= len(m) < high][:2000]
        if not bucket:
            continue
        taking_over = _pair(bits, mem_level)[0]
        alone = _pair(bits, mem_level, no_context_takeover=True)[0]
        mean = statistics.mean(len(m) for m in bucket)
        compressed = statistics.mean(
            len(taking_over.encode(Frame(Opcode.TEXT, m)).data) for m in bucket
        )
        fresh = statistics.mean(len(alone.encode(Frame(Opcode.TEXT, m)).data) for m in bucket)
        wire = 100 * (mean - compressed) / (mean + PER_MESSAGE_OVERHEAD)
        on = cpu_microseconds(bucket, bits, mem_level, compress=True)
        off = cpu_microseconds(bucket, bits, mem_level, compress=False)
        _row(
            f"{low}-{high - 1} B", len(bucket), f"{mean:.0f}", f"{compressed:.1f}",
            f"{mean - compressed:.1f}", f"{wire:.0f}", f"{fresh:.1f}", f"{on:.1f}", f"{off:.1f}",
        )  # fmt: skip


def defaults_table(pairs: int) -> None:
    """Print table 3: memory of the defaults, idle, lightly used and busy."""
    bits, mem_level = DEFAULT_MAX_WINDOW_BITS, DEFAULT_MEM_LEVEL
    print(f"\nTable 3: per connection side at {pairs} connections: the defaults (window bits")
    print(f"{bits}, memLevel {mem_level}, threshold {DEFAULT_THRESHOLD}) and zlib's (15, 8).")
    print("RSS after one 70-byte message each way, and after 40 KB each way\n")
    _header("settings and state", "KiB allocated", "KiB RSS, one message", "KiB RSS, 40 KB")
    idle = memory_per_pair(bits, mem_level, pairs, traffic=False) / 1024
    _row("defaults, idle: negotiated, no message compressed yet", f"{idle:.1f}", "-", "-")
    cases = (
        ("defaults, context takeover", bits, mem_level, False),
        ("defaults, no_context_takeover", bits, mem_level, True),
        ("zlib's defaults, context takeover", 15, 8, False),
    )
    for label, case_bits, case_mem_level, nct in cases:
        allocated = memory_per_pair(case_bits, case_mem_level, pairs, no_context_takeover=nct)
        light, busy = (
            rss_per_pair(case_bits, case_mem_level, pairs, busy=busy, no_context_takeover=nct)
            for busy in (False, True)
        )
        _row(label, f"{allocated / 1024:.1f}", f"{light / 1024:.1f}", f"{busy / 1024:.1f}")


def lazy_table() -> None:
    """Print table 4: what freeing the zlib objects after each message costs in CPU."""
    print("\nTable 4: CPU per message (encode + decode, one side each), 100-byte chat events;")
    print("no_context_takeover creates and frees a compressor and a decompressor per message\n")
    _header("window bits, memLevel", "µs, context takeover", "µs, no_context_takeover")
    stream = messages("chat", 100, 2000)
    for bits, mem_level in ((DEFAULT_MAX_WINDOW_BITS, DEFAULT_MEM_LEVEL), (15, 8)):
        kept, freed = (
            cpu_microseconds(stream, bits, mem_level, compress=True, no_context_takeover=nct)
            for nct in (False, True)
        )
        _row(f"{bits}, {mem_level}", f"{kept:.1f}", f"{freed:.1f}")


def backend_description() -> str:
    """Return the deflate backend in use and its versions, for the tables' headers."""
    if BACKEND != "zlib-ng":
        return f"zlib {zlib.ZLIB_RUNTIME_VERSION}"
    from zlib_ng import zlib_ng

    package = importlib.metadata.version("zlib-ng")
    return f"zlib-ng {zlib_ng.ZLIBNG_RUNTIME_VERSION} (the zlib-ng package {package})"


_TABLE_5_CAPTION: Final = """\
Table 5: memLevel at window bits {bits} (the server's default), {backend}.
Compressed size in % of the original (lower is better): the mean over chat, telemetry and
API messages, and the echo benchmark's 64 KiB JSON-like text. Compression speed: MB/s of
original bytes, CPU time, median of {runs}. Memory per connection side: what tracemalloc sees
of a compressor, and the RSS growth of {pairs} in a fresh process: compressors after one
70-byte message; after one of 1 MiB (every page written: a busy connection); connections
that sent and received {busy} KB each way, then released their compressor (idle ones)
"""


def _mem_level_row(
    level: int,
    streams: dict[int, list[list[bytes]]],
    large: Sequence[bytes],
    rates: Sequence[dict[int, float]],
    pairs: int,
) -> list[str]:
    """Return the cells of table 5's row for ``level``; the RSS ones probe fresh processes."""
    bits = DEFAULT_MAX_WINDOW_BITS
    sizes = [
        statistics.mean(compressed_percent(stream, bits, level) for stream in streams[size])
        for size in SIZES
    ]
    sizes.append(compressed_percent(large, bits, level))
    memory = [allocated_per_compressor(bits, level, min(pairs, 100))]
    for sample, held in (
        (Sample.SMALL, Held.COMPRESSOR),
        (Sample.FULL, Held.COMPRESSOR),
        (Sample.BUSY, Held.RELEASED),
    ):
        memory.append(rss_per_side(bits, level, pairs, sample, held))
    return [
        str(level),
        *(f"{size:.2f}" for size in sizes),
        *(f"{rate[level]:.0f}" for rate in rates),
        *(f"{size / 1024:.0f}" for size in memory),
    ]


def mem_level_table(counts: dict[int, int], pairs: int, runs: int) -> None:
    """Print table 5: memLevel 1-9 at the default windows, for the backend in use."""
    bits = DEFAULT_MAX_WINDOW_BITS
    streams = {size: [messages(kind, size, counts[size]) for kind in _KINDS] for size in SIZES}
    large = [text.encode() for text in json_messages(LARGE_SIZE)]
    mixed = [message for stream in streams[16384] for message in stream]
    rates = [
        compress_rates(mixed, bits, MEM_LEVEL_SWEEP, runs),
        compress_rates(large * 4, bits, MEM_LEVEL_SWEEP, runs),
    ]
    caption = _TABLE_5_CAPTION.format(
        bits=bits, backend=backend_description(), runs=runs, pairs=pairs, busy=BUSY_BYTES // 1000
    )
    print(caption)
    _header(
        "memLevel", *(f"{size} B" for size in SIZES), "64 KiB JSON-like",
        "MB/s, 16 KiB", "MB/s, 64 KiB", "KiB allocated, compressor",
        "KiB RSS, compressor after 70 B", "KiB RSS, compressor after 1 MiB",
        "KiB RSS, idle after release",
    )  # fmt: skip
    for level in MEM_LEVEL_SWEEP:
        _row(*_mem_level_row(level, streams, large, rates, pairs))


def main(argv: Sequence[str] | None = None) -> None:
    """Print the tables as Markdown: 1 to 4, or 5 alone (``--mem-levels``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and connections")
    parser.add_argument("--pairs", type=int, default=1000, help="connections per memory figure")
    parser.add_argument(
        "--mem-levels",
        action="store_true",
        help="print only table 5: memLevel 1-9 for the backend in use",
    )
    parser.add_argument("--rss-probe", nargs=6, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_probe:
        bits, mem_level, no_context_takeover, pairs, sample, held = args.rss_probe
        probe = (bits, mem_level, bool(no_context_takeover), pairs, Sample(sample), Held(held))
        print(_rss_probe(*probe))
        return
    counts = {100: 300, 1024: 100, 16384: 24} if args.quick else {100: 2000, 1024: 600, 16384: 96}
    pairs = 100 if args.quick else args.pairs
    version = sys.version.split()[0]
    if args.mem_levels:
        print(f"{backend_description()}, Python {version}\n")
        mem_level_table(counts, pairs, 3 if args.quick else SPEED_RUNS)
        return
    print(f"zlib {zlib.ZLIB_RUNTIME_VERSION}, Python {version}, {pairs} connections per memory\n")
    ratio_table(counts, pairs)
    threshold_table(4000 if args.quick else 20000)
    defaults_table(pairs)
    lazy_table()


if __name__ == "__main__":
    main()
