"""Searches in progress: the global concurrency limit, and a clean stop at shutdown.

Strategy: each answer runs inside the task Bolt started for its listener; `run()` registers that
task so shutdown can find it. A semaphore caps how many searches hit the servers at once (the
others wait their turn, and their parent message says so). `drain()` stops new requests, lets
running ones finish until a short deadline, then cancels the rest and waits briefly for them to
say so in their threads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class RunningSearches:
    def __init__(self, max_concurrent: int) -> None:
        self.accepting = True
        self._slots = asyncio.Semaphore(max_concurrent)
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def busy(self) -> bool:
        """True when a new search would have to wait for a slot."""
        return self._slots.locked()

    async def run(self, work: Awaitable[T]) -> T:
        """Await `work` in the current task, registered so that shutdown can wait for it."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            return await work
        finally:
            if task is not None:
                self._tasks.discard(task)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the global search slots."""
        async with self._slots:
            yield

    async def drain(self, grace_s: float, cancel_wait_s: float = 2.0) -> tuple[int, int]:
        """Refuse new searches, wait up to `grace_s` for running ones, then cancel the rest.

        Returns (finished, cancelled).
        """
        self.accepting = False
        tasks = set(self._tasks)
        if not tasks:
            return 0, 0
        done, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=cancel_wait_s)
        return len(done), len(pending)
