"""Where a connection's tasks wait: decoded messages for ``get_message``, and senders' turns.

Strategy: :func:`trio.open_memory_channel` would do, but a connection needs
less of it and pays for all of it: four objects, two sets and two ordered
dicts per channel (~2.5 KiB per idle connection), and a scheduler round per
``send``. These hold a ``deque`` or a list (made on first use) and the parked
tasks, hand an item straight to a waiting task with
:func:`trio.lowlevel.reschedule`, and never yield on their own: the caller
decides when to checkpoint.

- :class:`MessageQueue`: whole incoming messages, filled by whichever task
  parses (the reader, or ``get_message`` itself), taken by any number of
  ``get_message`` callers. It never makes its producer wait: the producer
  asks :meth:`~MessageQueue.has_room` and stops parsing when there is none,
  so what the application has not taken yet stays as received bytes.
- :class:`TurnQueue`: tasks waiting, in arrival order, for their turn to
  frame a message (the send side is busy in a worker thread, or too many
  bytes wait for the wire).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final, Generic, TypeVar, final

import outcome
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

__all__ = ["MessageQueue", "TurnQueue"]

T = TypeVar("T")


class _Closed:
    """Handed to a waiting consumer when the queue closes with nothing left."""


#: The value a parked consumer receives when the queue closed empty.
_CLOSED: Final = _Closed()


@final
class MessageQueue(Generic[T]):
    """Whole incoming messages, at most ``size`` waiting.

    Args:
        size: messages buffered before :meth:`has_room` says no (0: a message
            is parsed only for a task already waiting for one).
    """

    __slots__ = ("_closed", "_getters", "_items", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: deque[T] | None = None
        self._getters: list[Task] = []  # a list: usually 0 or 1, and a deque is 600 B
        self._closed = False

    def __len__(self) -> int:
        return len(self._items) if self._items else 0

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called: nothing more will be queued."""
        return self._closed

    def has_room(self) -> bool:
        """Whether one more message may be parsed: below ``size``, or a task waits for one."""
        items = self._items
        return (len(items) if items else 0) < self._size or bool(self._getters)

    def put(self, item: T) -> None:
        """Hand ``item`` to the oldest waiting task, or queue it. Closed: dropped."""
        if self._closed:
            return
        if self._getters:
            reschedule(self._getters.pop(0), outcome.Value(item))
            return
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(item)

    def get_nowait(self) -> T:
        """Take the oldest message.

        Raises:
            trio.WouldBlock: none is queued.
            trio.EndOfChannel: none is queued and the queue is closed.
        """
        if self._items:
            return self._items.popleft()
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

        def abort(_: object) -> Abort:
            getters.remove(task)
            return Abort.SUCCEEDED

        item = await wait_task_rescheduled(abort)
        if item is _CLOSED:
            raise trio.EndOfChannel
        return item  # type: ignore[no-any-return]

    def clear(self) -> None:
        """Discard every queued message."""
        if self._items:
            self._items.clear()

    def close(self) -> None:
        """No more messages: consumers take what is queued, then get ``EndOfChannel``."""
        self._closed = True
        getters, self._getters = self._getters, []
        for task in getters:  # waiting consumers mean nothing is queued
            reschedule(task, outcome.Value(_CLOSED))


@final
class TurnQueue:
    """Tasks waiting for their turn, woken one at a time in arrival order."""

    __slots__ = ("_error", "_waiting")

    def __init__(self) -> None:
        self._waiting: deque[Task] | None = None
        self._error: Callable[[], BaseException] | None = None

    def __bool__(self) -> bool:
        return bool(self._waiting)

    async def wait(self) -> None:
        """Wait until :meth:`wake_one` picks this task.

        Cancellation while waiting leaves no trace; a task already picked
        returns normally (and the cancellation reaches it at its next
        checkpoint).

        Raises:
            BaseException: the error :meth:`close` was given the maker of, at
                once if it was called before.
        """
        if self._error is not None:
            raise self._error()
        if self._waiting is None:
            self._waiting = deque()
        waiting = self._waiting
        task = current_task()
        waiting.append(task)

        def abort(_: object) -> Abort:
            waiting.remove(task)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def wake_one(self) -> None:
        """Give the oldest waiting task its turn, if any waits."""
        if self._waiting:
            reschedule(self._waiting.popleft())

    def close(self, error: Callable[[], BaseException]) -> None:
        """Wake every waiting task with a new ``error()``; later waits raise one too."""
        self._error = error
        waiting, self._waiting = self._waiting, None
        while waiting:
            reschedule(waiting.popleft(), outcome.Error(error()))
