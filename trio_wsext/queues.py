"""The two bounded queues of a connection: whole incoming messages, and outgoing items.

Strategy: :func:`trio.open_memory_channel` would do, but a connection needs
less of it and pays for all of it: four objects, two sets and two ordered
dicts per channel (~2.5 KiB per idle connection), and a scheduler round per
``send``. These queues hold a ``deque`` (made on first use) and the parked
tasks, hand an item straight to a waiting task with
:func:`trio.lowlevel.reschedule`, and never yield on their own: the caller
decides when to checkpoint. Both keep the channel semantics the connection
relies on: bounded, FIFO, an item is queued whole or not at all when a
waiting task is cancelled, and ``close()`` lets what is queued be taken
first.

- :class:`MessageQueue`: one producer (the reader task), any number of
  consumers (``get_message``). Size 0 is a rendezvous: the reader hands a
  message over only to a task already waiting for one.
- :class:`OutgoingQueue`: any number of producers (``send_message``, ``ping``,
  ``pong``), one consumer (the writer task), which takes everything waiting
  at once so that one ``send_all`` carries the batch.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Generic, TypeVar, final

import outcome
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

__all__ = ["MessageQueue", "OutgoingQueue"]

T = TypeVar("T")


class _Closed:
    """Handed to a waiting consumer when the queue closes with nothing left."""


#: The value a parked consumer receives when the queue closed empty.
_CLOSED: Final = _Closed()


@final
class MessageQueue(Generic[T]):
    """Whole incoming messages, at most ``size`` waiting; one producer.

    Args:
        size: messages buffered before :meth:`put` waits (0: hand over only).
    """

    __slots__ = ("_closed", "_getters", "_items", "_putter", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: deque[T] | None = None
        self._getters: list[Task] = []  # a list: usually 0 or 1, and a deque is 600 B
        self._putter: Task | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._items) if self._items else 0

    def put_nowait(self, item: T) -> bool:
        """Queue ``item`` or hand it to a waiting task; ``False`` if full. Closed: dropped."""
        if self._closed:
            return True
        if self._getters:
            reschedule(self._getters.pop(0), outcome.Value(item))
            return True
        items = self._items
        if items is None:
            items = self._items = deque()
        if len(items) < self._size:
            items.append(item)
            return True
        return False

    async def put(self, item: T) -> None:
        """Queue ``item``, waiting while the queue is full (the producer only).

        Not a checkpoint when there is room. Cancellation while waiting leaves
        ``item`` unqueued. After :meth:`close` the item is dropped.
        """
        while not self.put_nowait(item):
            task = current_task()
            self._putter = task

            def abort(_: object) -> Abort:
                self._putter = None
                return Abort.SUCCEEDED

            await wait_task_rescheduled(abort)

    def get_nowait(self) -> T:
        """Take the oldest message.

        Raises:
            trio.WouldBlock: none is queued.
            trio.EndOfChannel: none is queued and the queue is closed.
        """
        if self._items:
            item = self._items.popleft()
            self._wake_putter()
            return item
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def get(self) -> T:
        """Wait for the next message (call :meth:`get_nowait` first: this always waits).

        Cancellation loses nothing: a message is handed over only to a task
        that is still waiting, and a task that was handed one returns it.

        Raises:
            trio.EndOfChannel: the queue closed with nothing left.
        """
        task = current_task()
        getters = self._getters
        getters.append(task)
        self._wake_putter()  # a rendezvous (size 0) hands over only to a waiting task

        def abort(_: object) -> Abort:
            getters.remove(task)
            return Abort.SUCCEEDED

        item = await wait_task_rescheduled(abort)
        if item is _CLOSED:
            raise trio.EndOfChannel
        return item  # type: ignore[no-any-return]

    def clear(self) -> None:
        """Discard every queued message, so a producer waiting for room goes on."""
        if self._items:
            self._items.clear()
        self._wake_putter()

    def close(self) -> None:
        """No more messages: consumers take what is queued, then get ``EndOfChannel``."""
        self._closed = True
        getters, self._getters = self._getters, []
        for task in getters:  # waiting consumers mean nothing is queued
            reschedule(task, outcome.Value(_CLOSED))
        self._wake_putter()

    def _wake_putter(self) -> None:
        if self._putter is not None:
            reschedule(self._putter)
            self._putter = None


@final
class OutgoingQueue(Generic[T]):
    """Items for the writer task, at most ``size`` waiting; one consumer.

    Args:
        size: items queued before :meth:`put` waits.
    """

    __slots__ = ("_closed", "_items", "_senders", "_size", "_writer")

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: list[T] = []
        self._senders: deque[tuple[Task, T]] | None = None
        self._writer: Task | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def put_nowait(self, item: T) -> bool:
        """Queue ``item`` if there is room; ``False`` if full.

        Raises:
            trio.ClosedResourceError: the queue is closed.
        """
        if self._closed:
            raise trio.ClosedResourceError
        if len(self._items) >= self._size:
            return False
        self._items.append(item)
        self.wake()
        return True

    async def put(self, item: T) -> None:
        """Wait for room and queue ``item`` whole (call :meth:`put_nowait` first).

        Cancellation while waiting leaves ``item`` unqueued; once the task is
        woken, the item is queued.

        Raises:
            trio.ClosedResourceError: the queue closed while waiting.
        """
        task = current_task()
        if self._senders is None:
            self._senders = deque()
        senders = self._senders
        entry = (task, item)
        senders.append(entry)

        def abort(_: object) -> Abort:
            senders.remove(entry)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def wake(self) -> None:
        """Wake the writer if it waits in :meth:`take` (new work, or a control frame)."""
        if self._writer is not None:
            reschedule(self._writer)
            self._writer = None

    async def wait(self) -> None:
        """Wait until :meth:`put_nowait`, :meth:`wake` or :meth:`close` (the writer only)."""
        self._writer = current_task()

        def abort(_: object) -> Abort:
            self._writer = None
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def take(self) -> tuple[list[T], bool]:
        """Take everything queued; waiting senders' items move in behind it.

        Returns:
            The items, oldest first, and whether the queue is closed and
            now empty (nothing will ever follow).
        """
        items, self._items = self._items, []
        senders = self._senders
        while senders and len(self._items) < self._size:
            task, item = senders.popleft()
            self._items.append(item)
            reschedule(task)
        return items, self._closed and not self._items

    def close(self) -> None:
        """Refuse new items; waiting senders get ``ClosedResourceError``; queued ones stay."""
        self._closed = True
        senders, self._senders = self._senders, None
        while senders:
            task, _ = senders.popleft()
            reschedule(task, outcome.Error(trio.ClosedResourceError()))
        self.wake()
