"""The messages the checks send, and how a check describes one that came back changed.

Strategy: every message is deterministic (a seeded generator), so a failure
reproduces. Binary messages are random bytes, which no compressor shrinks, so
that their frames stay as large on the wire as in the application (past the
thread thresholds, past the size limit); text messages mix characters of 1
to 4 UTF-8 bytes and are sized in UTF-8 bytes, exactly, because every size
limit of the protocol counts bytes. Fragmented messages are
:class:`FragmentPlan`\\ s: a message split into the pieces that
:meth:`~trio_wsext.protocol.Protocol.send_fragment` sends.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Final

import attrs

__all__ = [
    "ROUND_TRIP_SIZES",
    "FragmentPlan",
    "Message",
    "binary_message",
    "describe",
    "describe_change",
    "fragment_plans",
    "round_trip_messages",
    "text_message",
]

#: What the application sends or receives: ``str`` for text, ``bytes`` for binary.
Message = str | bytes

#: Payload sizes around every boundary of RFC 6455's framing (a 7-bit length
#: up to 125, a 16-bit one from 126 to 65535, a 64-bit one from 65536) and
#: the library's default ``max_message_size`` (1 MiB).
ROUND_TRIP_SIZES: Final = (0, 1, 125, 126, 127, 65535, 65536, 65537, 2**20)

#: The text every text message is cut from: characters of 1, 2, 3 and 4 UTF-8
#: bytes, in a seeded random order, starting with a non-ASCII one.
_TEXT_BLOCK: Final = "é" + "".join(
    random.Random(6455).choices(["a", "b", " ", "é", "ß", "€", "中", "🎉", "\n"], k=4095)
)
_TEXT_BLOCK_BYTES: Final = _TEXT_BLOCK.encode("utf-8")


def text_message(size: int) -> str:
    """Return a text message of exactly ``size`` UTF-8 bytes, non-ASCII from 2 bytes up."""
    repeats, rest = divmod(size, len(_TEXT_BLOCK_BYTES))
    head = _TEXT_BLOCK_BYTES[:rest].decode("utf-8", "ignore")
    return _TEXT_BLOCK * repeats + head + "a" * (rest - len(head.encode("utf-8")))


def binary_message(size: int, seed: int = 7692) -> bytes:
    """Return ``size`` random bytes (incompressible), the same for the same seed."""
    return random.Random(seed).randbytes(size)


def round_trip_messages() -> list[Message]:
    """Return the round-trip check's messages: text and binary at every size, then extras."""
    messages: list[Message] = []
    for size in ROUND_TRIP_SIZES:
        messages.append(text_message(size))
        messages.append(binary_message(size, seed=size))
    # Compressible data too: a compressor's best case is also its corner case.
    messages.append(bytes(65536))
    messages.append("a" * 65536)
    return messages


def _size(message: Message) -> int:
    return len(message.encode("utf-8")) if isinstance(message, str) else len(message)


def describe(message: Message) -> str:
    """Describe a message for a failure: ``"a 126-byte text message"``."""
    kind = "text" if isinstance(message, str) else "binary"
    size = _size(message)
    return f"an empty {kind} message" if size == 0 else f"a {size}-byte {kind} message"


def describe_change(expected: Message, received: object) -> str:
    """Say how ``received`` differs from ``expected``: type, size, first differing byte."""
    if not isinstance(received, str | bytes):
        return f"{describe(expected)} arrived as {type(received).__name__}"
    if isinstance(expected, str) != isinstance(received, str):
        return f"{describe(expected)} arrived as {describe(received)}: its type changed"
    sent = expected.encode("utf-8") if isinstance(expected, str) else expected
    got = received.encode("utf-8") if isinstance(received, str) else received
    first = next(
        (i for i, (a, b) in enumerate(zip(sent, got, strict=False)) if a != b),
        min(len(sent), len(got)),
    )
    return (
        f"{describe(expected)} arrived as {describe(received)}, "
        f"different from byte {first} on (sent {sent[first : first + 8]!r}, "
        f"received {got[first : first + 8]!r})"
    )


@attrs.frozen
class FragmentPlan:
    """A message to send in fragments."""

    label: str
    """What the plan exercises, for a failure."""
    pieces: tuple[bytes, ...]
    """The payload of each frame, in order (text as UTF-8, split anywhere)."""
    text: bool
    """Whether the message is text."""
    ping_after: int | None = None
    """Send a ping after this fragment (its index), in the middle of the message."""

    @property
    def message(self) -> Message:
        """The whole message, as the receiver should see it."""
        data = b"".join(self.pieces)
        return data.decode("utf-8") if self.text else data


def _split(data: bytes, cuts: Sequence[int]) -> tuple[bytes, ...]:
    bounds = [0, *cuts, len(data)]
    return tuple(data[a:b] for a, b in itertools.pairwise(bounds))


def fragment_plans() -> list[FragmentPlan]:
    """Return the fragmented messages of the fragments check (and of the chains)."""
    greeting = "héllo wörld ✓ 中文 🎉".encode()
    small_text = text_message(4000).encode("utf-8")
    big = binary_message(4 * 65536, seed=4)
    return [
        FragmentPlan(
            "a text message split inside its multi-byte characters",
            _split(greeting, [1, 2, 3, 9, 16, 17, 24]),
            text=True,
        ),
        FragmentPlan(
            "a binary message with empty first and last fragments",
            (b"", binary_message(1000, seed=1), b""),
            text=False,
        ),
        FragmentPlan(
            "a text message in 40 fragments of 100 bytes",
            _split(small_text, range(100, 4000, 100)),
            text=True,
        ),
        FragmentPlan(
            "a 256 KiB binary message in four fragments, with a ping between the 2nd and 3rd",
            _split(big, [65536, 2 * 65536, 3 * 65536]),
            text=False,
            ping_after=1,
        ),
        FragmentPlan(
            "a compressible 128 KiB text message in two fragments",
            _split(("ab" * 65536).encode(), [65536]),
            text=True,
        ),
        FragmentPlan("a binary message in one fragment", (b"\x00\x01\x02",), text=False),
    ]
