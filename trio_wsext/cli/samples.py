"""Sample messages for ``python -m trio_wsext demo`` and ``bench``.

Strategy: websockets' extension performance test sends words repeated thousands of times
(``"Data " * 2000``), which deflate shrinks 100-fold and no application ever
sends. These messages keep its four sizes but hold JSON-like text of
the kind real applications exchange (event records with ids, names, numbers
and timestamps), made from a fixed seed so every run sends the same bytes and
the compression figures can be compared between runs and machines.
"""

from __future__ import annotations

import json
import random
from typing import Final

__all__ = ["MESSAGE_SIZES", "sample_message"]

#: The four message sizes of websockets' "Extension Performance Testing":
#: ``"Hello" * 20``, ``"Test message " * 100``, ``"Data " * 2000`` and
#: ``"Content " * 10000`` are 100, 1,300, 10,000 and 80,000 characters.
MESSAGE_SIZES: Final[tuple[tuple[str, int], ...]] = (
    ("Small", 100),
    ("Medium", 1_300),
    ("Large", 10_000),
    ("Huge", 80_000),
)

_EVENTS: Final = ("login", "logout", "order", "payment", "refund", "view", "search", "click")
_CITIES: Final = ("Lisbon", "Osaka", "Nairobi", "Oslo", "Lima", "Austin", "Pune", "Perth")


def sample_message(size: int, *, seed: int = 0) -> str:
    """Return JSON-like text of exactly ``size`` ASCII characters.

    The text is a JSON array of event records, cut at ``size`` characters
    (so it is valid JSON only when the cut happens to fall at its end). The
    same ``size`` and ``seed`` always give the same text.

    Args:
        size: the length wanted, in characters (and bytes: the text is ASCII).
        seed: picks another, equally realistic, text of the same size.

    Raises:
        ValueError: ``size`` is negative.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, not {size}")
    rng = random.Random(f"{seed}:{size}")
    parts: list[str] = []
    length = 0
    while length < size:
        record = {
            "id": rng.randrange(10**6),
            "event": rng.choice(_EVENTS),
            "user": f"user{rng.randrange(5000)}",
            "city": rng.choice(_CITIES),
            "amount": round(rng.uniform(0, 500), 2),
            "ts": f"2024-05-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:"
            f"{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
            "ok": rng.random() < 0.9,
        }
        part = json.dumps(record, separators=(",", ":"))
        parts.append(part)
        length += len(part) + 1
    return ("[" + ",".join(parts) + "]")[:size]
