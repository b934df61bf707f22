"""Output that arrives in lists (a command's lines, a search's events): taken one by one, or
put together from a first list and the lists after it.

Strategy: each function is an async generator over async generators that closes what it reads
when it is closed itself, so a consumer that stops early ends the command behind it at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

_T = TypeVar("_T")


async def each(batches: AsyncGenerator[list[_T], None]) -> AsyncGenerator[_T, None]:
    """The items of `batches` one by one (closing it when closed)."""
    async with contextlib.aclosing(batches) as lists:
        async for batch in lists:
            for item in batch:
                yield item


async def once(batch: list[_T]) -> AsyncGenerator[list[_T], None]:
    """`batch` as the only list (none when it is empty)."""
    if batch:
        yield batch


async def chained(first: list[_T], rest: AsyncIterator[list[_T]]) -> AsyncGenerator[list[_T], None]:
    """`first`, then the batches of `rest`."""
    if first:
        yield first
    async for batch in rest:
        yield batch
