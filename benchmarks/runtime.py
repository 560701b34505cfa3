"""The few event-loop primitives the workloads need, for trio and for asyncio.

Strategy: each workload is written once, as a coroutine that uses only a
:class:`Runtime` (run two tasks at once, sleep, a semaphore) and the adapter's
:class:`~benchmarks.adapters.base.Connection`; it then runs unchanged under
``trio.run`` for the trio libraries and ``asyncio.run`` for the asyncio ones.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, TypeVar

import trio

T = TypeVar("T")

RuntimeName = Literal["trio", "asyncio"]


class Semaphore(Protocol):
    """What trio's and asyncio's semaphores have in common."""

    async def acquire(self) -> object:
        """Take one unit, waiting until one is free."""

    def release(self) -> None:
        """Give one unit back."""


class Runtime(ABC):
    """An event loop, seen through what the workloads use of it."""

    name: RuntimeName

    @abstractmethod
    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        """Run ``main`` in a fresh event loop and return its result."""

    @abstractmethod
    async def gather(self, *tasks: Callable[[], Awaitable[None]]) -> None:
        """Run ``tasks`` concurrently; return when all are done, raise if one raises."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``."""

    @abstractmethod
    def semaphore(self, value: int) -> Semaphore:
        """Return a new semaphore holding ``value`` units."""


class TrioRuntime(Runtime):
    """:class:`Runtime` on trio."""

    name: RuntimeName = "trio"

    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        """Run ``main`` under ``trio.run``."""

        async def wrapper() -> T:
            return await main()

        return trio.run(wrapper)

    async def gather(self, *tasks: Callable[[], Awaitable[None]]) -> None:
        """Run ``tasks`` in a nursery."""
        async with trio.open_nursery() as nursery:
            for task in tasks:
                nursery.start_soon(task)

    async def sleep(self, seconds: float) -> None:
        """Sleep with ``trio.sleep``."""
        await trio.sleep(seconds)

    def semaphore(self, value: int) -> Semaphore:
        """Return a ``trio.Semaphore``."""
        return trio.Semaphore(value)


class AsyncioRuntime(Runtime):
    """:class:`Runtime` on asyncio (the default event loop; no uvloop)."""

    name: RuntimeName = "asyncio"

    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        """Run ``main`` under ``asyncio.run``."""

        async def wrapper() -> T:
            return await main()

        return asyncio.run(wrapper())

    async def gather(self, *tasks: Callable[[], Awaitable[None]]) -> None:
        """Run ``tasks`` in a task group."""
        async with asyncio.TaskGroup() as group:
            for task in tasks:
                group.create_task(_call(task))

    async def sleep(self, seconds: float) -> None:
        """Sleep with ``asyncio.sleep``."""
        await asyncio.sleep(seconds)

    def semaphore(self, value: int) -> Semaphore:
        """Return an ``asyncio.Semaphore``."""
        return asyncio.Semaphore(value)


async def _call(task: Callable[[], Awaitable[None]]) -> None:
    """Await ``task()``: turns an awaitable factory into a coroutine for ``create_task``."""
    await task()


def get_runtime(name: RuntimeName) -> Runtime:
    """Return the runtime called ``name``."""
    return TrioRuntime() if name == "trio" else AsyncioRuntime()
