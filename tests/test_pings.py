"""PingTracker: payloads in flight, pong matching, waking on close."""

from __future__ import annotations

import pytest

from trio_wsext.pings import PING_PAYLOAD_SIZE, PingTracker


def test_add_picks_a_random_payload() -> None:
    """Without a payload, a random 4-byte one, different each time."""
    tracker = PingTracker()
    first, _ = tracker.add()
    second, _ = tracker.add()
    assert len(first) == len(second) == PING_PAYLOAD_SIZE
    assert first != second
    assert len(tracker) == 2


def test_add_copies_a_bytes_like_payload() -> None:
    """A bytearray payload is tracked as bytes."""
    payload, _ = PingTracker().add(bytearray(b"abc"))
    assert payload == b"abc"
    assert type(payload) is bytes


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        ([b"x" * 126], r"^ping payload is 126 bytes, more than 125$"),
        ([b"same", b"same"], r"^a ping with payload b'same' is already in flight$"),
    ],
    ids=["too-long", "in-flight"],
)
def test_add_refuses(payloads: list[bytes], message: str) -> None:
    """An over-long payload, or one already in flight, is a ValueError."""
    tracker = PingTracker()
    for payload in payloads[:-1]:
        tracker.add(payload)
    with pytest.raises(ValueError, match=message):
        tracker.add(payloads[-1])


def test_pong_answers_its_ping_and_every_earlier_one() -> None:
    """RFC 6455 §5.5.3: one pong may answer a burst; later pings keep waiting."""
    tracker = PingTracker()
    waiters = [tracker.add(payload)[1] for payload in (b"1", b"2", b"3")]
    tracker.pong_received(b"2")
    assert [(w.event.is_set(), w.answered) for w in waiters] == [
        (True, True),
        (True, True),
        (False, False),
    ]
    assert len(tracker) == 1


def test_unsolicited_pong_changes_nothing() -> None:
    """A pong that matches no ping is ignored."""
    tracker = PingTracker()
    _, waiter = tracker.add(b"1")
    tracker.pong_received(b"nobody asked")
    assert not waiter.event.is_set()
    assert len(tracker) == 1


def test_close_wakes_every_waiter_unanswered() -> None:
    """Closing wakes all waiters with answered=False and forgets them."""
    tracker = PingTracker()
    waiters = [tracker.add()[1] for _ in range(3)]
    tracker.close()
    assert [(w.event.is_set(), w.answered) for w in waiters] == [(True, False)] * 3
    assert len(tracker) == 0


def test_forget_drops_only_its_own_waiter() -> None:
    """forget() of a cancelled ping leaves a newer ping with the same payload alone."""
    tracker = PingTracker()
    old = tracker.add(b"p")[1]
    tracker.forget(b"p", old)
    new = tracker.add(b"p")[1]
    tracker.forget(b"p", old)  # stale: must not drop the new one
    tracker.pong_received(b"p")
    assert new.answered
