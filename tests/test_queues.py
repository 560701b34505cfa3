"""The connection's two bounded queues: order, bounds, waiting, cancellation and closing."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_wsext.queues import MessageQueue, OutgoingQueue

# -- MessageQueue --------------------------------------------------------------------------


async def test_message_queue_is_fifo_and_bounded() -> None:
    """put_nowait queues up to size items, then says False; get_nowait takes the oldest."""
    queue: MessageQueue[str] = MessageQueue(2)
    assert [queue.put_nowait("a"), queue.put_nowait("b"), queue.put_nowait("c")] == [
        True,
        True,
        False,
    ]
    assert len(queue) == 2
    assert [queue.get_nowait(), queue.get_nowait()] == ["a", "b"]
    with pytest.raises(trio.WouldBlock):
        queue.get_nowait()


async def test_message_queue_put_waits_for_room() -> None:
    """A full queue: put waits until a consumer takes a message, then queues its own."""
    queue: MessageQueue[str] = MessageQueue(1)
    queue.put_nowait("a")
    done: list[bool] = []

    async def producer() -> None:
        await queue.put("b")
        done.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert done == []
        assert queue.get_nowait() == "a"
    assert done == [True]
    assert queue.get_nowait() == "b"


async def test_message_queue_hands_a_message_to_a_waiting_consumer() -> None:
    """A consumer waiting in get receives the next message directly."""
    queue: MessageQueue[str] = MessageQueue(0)
    received: list[str] = []

    async def consumer() -> None:
        received.append(await queue.get())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        assert queue.put_nowait("hello")
    assert received == ["hello"]
    assert len(queue) == 0


async def test_message_queue_of_size_zero_is_a_rendezvous(autojump_clock: trio.abc.Clock) -> None:
    """Size 0: put waits until a consumer waits, and hands the message over."""
    queue: MessageQueue[str] = MessageQueue(0)
    assert not queue.put_nowait("early")
    received: list[str] = []

    async def consumer() -> None:
        await trio.sleep(1)
        received.append(await queue.get())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        with trio.fail_after(5):
            await queue.put("message")
    assert received == ["message"]


async def test_message_queue_cancelled_get_loses_nothing(autojump_clock: trio.abc.Clock) -> None:
    """A consumer cancelled while waiting takes nothing; the next message stays queued."""
    queue: MessageQueue[str] = MessageQueue(1)
    with trio.move_on_after(1) as scope:
        await queue.get()
    assert scope.cancelled_caught
    assert queue.put_nowait("kept")
    assert queue.get_nowait() == "kept"


async def test_message_queue_close_lets_queued_messages_be_taken_first() -> None:
    """After close: the queued messages, then EndOfChannel; puts are dropped."""
    queue: MessageQueue[str] = MessageQueue(4)
    queue.put_nowait("a")
    queue.close()
    assert queue.put_nowait("dropped")
    await queue.put("dropped too")
    assert queue.get_nowait() == "a"
    with pytest.raises(trio.EndOfChannel):
        queue.get_nowait()


async def test_message_queue_close_wakes_waiting_consumers() -> None:
    """Consumers waiting when the queue closes get EndOfChannel."""
    queue: MessageQueue[str] = MessageQueue(1)
    ended = 0

    async def consumer() -> None:
        nonlocal ended
        with pytest.raises(trio.EndOfChannel):
            await queue.get()
        ended += 1

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        queue.close()
    assert ended == 3


async def test_message_queue_clear_discards_and_unblocks_the_producer() -> None:
    """clear() empties the queue; a producer waiting for room queues its message."""
    queue: MessageQueue[str] = MessageQueue(1)
    queue.put_nowait("old")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.put, "new")
        await trio.testing.wait_all_tasks_blocked()
        queue.clear()
    assert queue.get_nowait() == "new"


# -- OutgoingQueue -------------------------------------------------------------------------


async def test_outgoing_queue_take_returns_everything_in_order() -> None:
    """take() returns every queued item, oldest first, and whether it is the end."""
    queue: OutgoingQueue[int] = OutgoingQueue(3)
    assert [queue.put_nowait(1), queue.put_nowait(2), queue.put_nowait(3)] == [True] * 3
    assert not queue.put_nowait(4)
    assert queue.take() == ([1, 2, 3], False)
    assert queue.take() == ([], False)


async def test_outgoing_queue_waiting_senders_move_in_whole_and_in_order() -> None:
    """Senders waiting for room are queued in arrival order when the writer takes a batch."""
    queue: OutgoingQueue[int] = OutgoingQueue(2)
    queue.put_nowait(1)
    queue.put_nowait(2)
    returned: list[int] = []

    async def sender(item: int) -> None:
        await queue.put(item)
        returned.append(item)

    async with trio.open_nursery() as nursery:
        for item in (3, 4, 5):
            nursery.start_soon(sender, item)
            await trio.testing.wait_all_tasks_blocked()
        assert queue.take() == ([1, 2], False)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(returned) == [3, 4]  # both woken (in any order), items queued in order
        assert queue.take() == ([3, 4], False)
    assert queue.take() == ([5], False)


async def test_outgoing_queue_cancelled_sender_queues_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A sender cancelled while waiting for room leaves its item out."""
    queue: OutgoingQueue[int] = OutgoingQueue(1)
    queue.put_nowait(1)
    with trio.move_on_after(1) as scope:
        await queue.put(2)
    assert scope.cancelled_caught
    assert queue.take() == ([1], False)
    assert queue.take() == ([], False)


async def test_outgoing_queue_close_refuses_senders_and_keeps_the_queue() -> None:
    """close(): waiting and new senders get ClosedResourceError; queued items stay, then end."""
    queue: OutgoingQueue[int] = OutgoingQueue(1)
    queue.put_nowait(1)
    refused = 0

    async def sender() -> None:
        nonlocal refused
        with pytest.raises(trio.ClosedResourceError):
            await queue.put(2)
        refused += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        queue.close()
    assert refused == 1
    assert queue.closed
    with pytest.raises(trio.ClosedResourceError):
        queue.put_nowait(3)
    assert queue.take() == ([1], True)


@pytest.mark.parametrize("how", ["put_nowait", "wake", "close"])
async def test_outgoing_queue_wait_returns_on_work(how: str) -> None:
    """The writer waiting in wait() wakes for an item, a wake() or close()."""
    queue: OutgoingQueue[int] = OutgoingQueue(1)
    woke = False

    async def writer() -> None:
        nonlocal woke
        await queue.wait()
        woke = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert not woke
        if how == "put_nowait":
            queue.put_nowait(1)
        elif how == "wake":
            queue.wake()
        else:
            queue.close()
    assert woke


async def test_outgoing_queue_cancelled_wait_leaves_no_writer_behind(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A cancelled wait() unregisters the writer: a later wake() wakes nobody."""
    queue: OutgoingQueue[int] = OutgoingQueue(1)
    with trio.move_on_after(1):
        await queue.wait()
    queue.wake()  # nothing to reschedule: would raise if a stale task were registered
    assert queue.put_nowait(1)
