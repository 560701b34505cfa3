"""The connection's queues: order, room, hand-over, cancellation, closing and turns."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_wsext.queues import MessageQueue, TurnQueue

# -- MessageQueue --------------------------------------------------------------------------


async def test_message_queue_is_fifo_and_says_when_it_is_full() -> None:
    """has_room is True below size; put never refuses; get_nowait takes the oldest."""
    queue: MessageQueue[str] = MessageQueue(2)
    room = []
    for item in "abc":
        room.append(queue.has_room())
        queue.put(item)
    assert room == [True, True, False]
    assert not queue.has_room()
    assert len(queue) == 3
    assert [queue.get_nowait(), queue.get_nowait(), queue.get_nowait()] == ["a", "b", "c"]
    with pytest.raises(trio.WouldBlock):
        queue.get_nowait()


async def test_message_queue_hands_a_message_to_a_waiting_consumer() -> None:
    """A consumer waiting in get receives the next message directly, without queueing it."""
    queue: MessageQueue[str] = MessageQueue(0)
    received: list[str] = []

    async def consumer() -> None:
        received.append(await queue.get())

    async with trio.open_nursery() as nursery:
        assert not queue.has_room()
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        assert queue.has_room()  # size 0: room only for a waiting task
        queue.put("hello")
        assert not queue.has_room()
        assert len(queue) == 0
    assert received == ["hello"]


async def test_message_queue_hands_over_in_arrival_order() -> None:
    """Several waiting consumers get the messages in the order they started waiting."""
    queue: MessageQueue[int] = MessageQueue(0)
    received: list[tuple[int, int]] = []

    async def consumer(name: int) -> None:
        received.append((name, await queue.get()))

    async with trio.open_nursery() as nursery:
        for name in range(3):
            nursery.start_soon(consumer, name)
            await trio.testing.wait_all_tasks_blocked()
        for item in (10, 11, 12):
            queue.put(item)
    # trio runs the woken tasks in random order: compare who got what, not when.
    assert dict(received) == {0: 10, 1: 11, 2: 12}


async def test_message_queue_cancelled_get_loses_nothing(autojump_clock: trio.abc.Clock) -> None:
    """A cancelled get leaves no waiter behind: the next message is queued, not lost."""
    queue: MessageQueue[str] = MessageQueue(1)
    with trio.move_on_after(1):
        await queue.get()
    assert not queue._getters
    queue.put("a")
    assert queue.get_nowait() == "a"


async def test_message_queue_close_lets_queued_messages_be_taken_first() -> None:
    """After close, queued messages come out, then EndOfChannel; later puts are dropped."""
    queue: MessageQueue[str] = MessageQueue(2)
    queue.put("a")
    queue.close()
    queue.put("b")
    assert queue.closed
    assert queue.get_nowait() == "a"
    with pytest.raises(trio.EndOfChannel):
        queue.get_nowait()


async def test_message_queue_close_wakes_waiting_consumers() -> None:
    """Consumers waiting when the queue closes get EndOfChannel."""
    queue: MessageQueue[str] = MessageQueue(1)
    ended: list[bool] = []

    async def consumer() -> None:
        with pytest.raises(trio.EndOfChannel):
            await queue.get()
        ended.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        queue.close()
    assert ended == [True, True]


async def test_message_queue_clear_discards_everything() -> None:
    """clear empties the queue, so there is room again."""
    queue: MessageQueue[str] = MessageQueue(1)
    queue.put("a")
    assert not queue.has_room()
    queue.clear()
    assert queue.has_room()
    with pytest.raises(trio.WouldBlock):
        queue.get_nowait()


# -- TurnQueue --------------------------------------------------------------------------


async def test_turn_queue_wakes_one_task_at_a_time_in_arrival_order() -> None:
    """wake_one picks the oldest waiting task, and only that one."""
    turns = TurnQueue()
    woken: list[int] = []

    async def waiter(name: int) -> None:
        await turns.wait()
        woken.append(name)

    async with trio.open_nursery() as nursery:
        for name in range(3):
            nursery.start_soon(waiter, name)
            await trio.testing.wait_all_tasks_blocked()
        assert turns
        for expected in ([0], [0, 1], [0, 1, 2]):
            turns.wake_one()
            await trio.testing.wait_all_tasks_blocked()
            assert woken == expected
        assert not turns
        turns.wake_one()  # nobody waits: nothing happens


async def test_turn_queue_cancelled_wait_leaves_no_trace(autojump_clock: trio.abc.Clock) -> None:
    """A cancelled waiter is gone: the next wake_one goes to the task behind it."""
    turns = TurnQueue()
    woken: list[str] = []

    async def waiter(name: str, scope: trio.CancelScope | None = None) -> None:
        if scope is None:
            await turns.wait()
        else:
            with scope:
                await turns.wait()
        woken.append(name)

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter, "cancelled", scope)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(waiter, "second")
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert woken == ["cancelled"]  # it left its with-block by cancellation
        turns.wake_one()
    assert woken == ["cancelled", "second"]


async def test_turn_queue_close_raises_a_new_error_in_every_waiter_and_later() -> None:
    """close wakes every waiter with its own exception; later waits raise at once."""
    turns = TurnQueue()
    errors: list[BaseException] = []

    async def waiter() -> None:
        try:
            await turns.wait()
        except ValueError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        turns.close(lambda: ValueError("closed"))
    assert len(errors) == 2
    assert errors[0] is not errors[1]
    with pytest.raises(ValueError, match="closed"):
        await turns.wait()
