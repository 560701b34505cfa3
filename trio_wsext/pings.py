"""Pings in flight (:rfc:`6455#section-5.5.2`): payloads, the tasks waiting, pong matching.

Strategy: each ping in flight is keyed by its payload, in the order sent. RFC
6455 §5.5.3 lets a peer answer a burst of pings with one pong ("an endpoint
MAY elect to send a Pong frame for only the most recently processed Ping
frame"), so a pong answers its own ping and every earlier one, as in
trio-websocket. A pong that matches nothing is unsolicited and ignored
("A response to an unsolicited Pong frame is not expected"). When the
connection closes, every waiter wakes up unanswered.
"""

from __future__ import annotations

import os
from typing import Final, final

import attrs
import trio

__all__ = [
    "MAX_CONTROL_PAYLOAD",
    "PING_PAYLOAD_SIZE",
    "PingTracker",
    "PingWaiter",
]

#: Bytes in a ping payload chosen for the caller; trio-websocket uses 32 random bits too.
PING_PAYLOAD_SIZE: Final = 4

#: RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
MAX_CONTROL_PAYLOAD: Final = 125


@attrs.define
class PingWaiter:
    """One ping waiting for its pong."""

    event: trio.Event = attrs.Factory(trio.Event)
    """Set when a pong answered the ping or the connection closed."""
    answered: bool = False
    """Whether a pong answered it (``False`` after a close)."""


@final
class PingTracker:
    """The pings in flight of one connection, oldest first."""

    def __init__(self) -> None:
        self._waiters: dict[bytes, PingWaiter] = {}

    def __len__(self) -> int:
        return len(self._waiters)

    def add(
        self, payload: bytes | bytearray | memoryview | None = None
    ) -> tuple[bytes, PingWaiter]:
        """Register a ping; ``None`` picks a random payload not in flight.

        Returns:
            The payload to send and the waiter its pong will wake.

        Raises:
            ValueError: the payload is over 125 bytes or already in flight.
        """
        if payload is None:
            data = os.urandom(PING_PAYLOAD_SIZE)
            while data in self._waiters:  # pragma: no cover - 1 chance in 2**32
                data = os.urandom(PING_PAYLOAD_SIZE)
        else:
            data = bytes(payload)
            if len(data) > MAX_CONTROL_PAYLOAD:
                raise ValueError(f"ping payload is {len(data)} bytes, more than 125")
            if data in self._waiters:
                raise ValueError(f"a ping with payload {data!r} is already in flight")
        waiter = PingWaiter()
        self._waiters[data] = waiter
        return data, waiter

    def check(self, payload: bytes | bytearray | memoryview) -> None:
        """Raise what :meth:`add` would for ``payload``, without registering it.

        Raises:
            ValueError: the payload is over 125 bytes or already in flight.
        """
        data = bytes(payload)
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError(f"ping payload is {len(data)} bytes, more than 125")
        if data in self._waiters:
            raise ValueError(f"a ping with payload {data!r} is already in flight")

    def forget(self, payload: bytes, waiter: PingWaiter) -> None:
        """Stop tracking ``payload`` if ``waiter`` still waits for it (a cancelled ping)."""
        if self._waiters.get(payload) is waiter:
            del self._waiters[payload]

    def pong_received(self, payload: bytes) -> None:
        """Wake the ping with this payload and every ping sent before it."""
        if payload not in self._waiters:
            return  # unsolicited
        for key in list(self._waiters):
            waiter = self._waiters.pop(key)
            waiter.answered = True
            waiter.event.set()
            if key == payload:
                return

    def close(self) -> None:
        """Wake every waiter, unanswered: the connection is closed."""
        waiters = list(self._waiters.values())
        self._waiters.clear()
        for waiter in waiters:
            waiter.event.set()
