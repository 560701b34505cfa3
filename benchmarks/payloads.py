"""Deterministic message payloads: small text and realistic JSON-like text.

Strategy: every message of a run is different, so that permessage-deflate's
context takeover cannot turn a repeated message into a few back-references,
and the same seed gives the same bytes in every process and every run, so
that the libraries compress exactly the same data. The JSON-like text looks
like an API feed (ids, names, timestamps, prices, tags, nested objects):
neither random bytes (incompressible) nor one repeated record (compresses to
nothing).
"""

from __future__ import annotations

import json
import random
from functools import cache
from typing import Final

SMALL_SIZE: Final = 64
"""Bytes of each small text message (issue 6: "lockstep echo of 64-byte text")."""

SMALL_POOL: Final = 256
"""Distinct small messages cycled through; 256 makes any cache of "last message" useless."""

LARGE_POOL: Final = 8
"""Distinct large messages per size. 8 x 64 KiB is 16 times the 32 KiB deflate
window, so no message can refer back to an identical earlier one."""

_WORDS: Final = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "order",
    "trade",
    "quote",
    "price",
    "volume",
    "status",
    "active",
    "pending",
    "filled",
    "cancelled",
    "market",
    "limit",
    "stop",
    "buy",
    "sell",
    "user",
    "account",
    "region",
    "europe",
    "america",
    "asia",
    "update",
]


@cache
def small_messages() -> tuple[str, ...]:
    """Return :data:`SMALL_POOL` distinct ASCII strings of exactly :data:`SMALL_SIZE` bytes."""
    messages = []
    for i in range(SMALL_POOL):
        head = f'{{"seq":{i},"op":"tick","v":'
        messages.append(head + "x" * (SMALL_SIZE - len(head) - 1) + "}")
    return tuple(messages)


def _record(rng: random.Random, i: int) -> dict[str, object]:
    """Return one record of an API-feed-like document."""
    return {
        "id": 10_000_000 + i,
        "uuid": f"{rng.getrandbits(128):032x}",
        "user": {
            "name": f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()}",
            "account": f"AC-{rng.randrange(10**8):08d}",
            "region": rng.choice(("eu-west", "us-east", "ap-south", "sa-east")),
        },
        "ts": f"2026-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:"
        f"{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z",
        "side": rng.choice(("buy", "sell")),
        "price": round(rng.uniform(1, 5000), 4),
        "qty": rng.randrange(1, 10_000),
        "status": rng.choice(("active", "pending", "filled", "cancelled")),
        "tags": rng.sample(_WORDS, rng.randrange(1, 5)),
        "note": " ".join(rng.choices(_WORDS, k=rng.randrange(3, 12))),
    }


@cache
def json_message(size: int, index: int) -> str:
    """Return JSON-like text of exactly ``size`` ASCII bytes, different for each ``index``.

    Args:
        size: Length in bytes (ASCII, so also in characters).
        index: Which message of the pool; the same (size, index) always gives the same text.
    """
    rng = random.Random(size * 1_000 + index)
    records: list[str] = []
    length = 1  # the enclosing brackets, minus the comma the last record does not have
    i = index * 1_000_000
    while length <= size:
        text = json.dumps(_record(rng, i), separators=(",", ":"))
        records.append(text)
        length += len(text) + 1
        i += 1
    document = "[" + ",".join(records) + "]"
    # Cut to size inside the last record and pad the tail so the text keeps its shape.
    return document[: size - 2] + "]]" if len(document) > size else document


def json_messages(size: int) -> tuple[str, ...]:
    """Return the :data:`LARGE_POOL` distinct JSON-like messages of ``size`` bytes."""
    return tuple(json_message(size, i) for i in range(LARGE_POOL))
