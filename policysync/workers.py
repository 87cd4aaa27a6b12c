"""A fixed pool of workers to go through many organizations: what every command that
reads or writes organizations uses, whatever the provider."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

Progress = Callable[[int], None]  # called with 1 for each item done
T = TypeVar("T")
R = TypeVar("R")


async def each(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    parallelism: int,
    tick: Progress | None = None,
) -> list[R]:
    """`work` on every item, `parallelism` at a time, results in the order they finish.
    A fixed pool of workers sharing one iterator (not a task per item) keeps memory
    flat for tens of thousands of organizations."""
    results: list[R] = []
    pending = iter(items)

    async def worker() -> None:
        for item in pending:  # each worker takes the next item
            results.append(await work(item))
            if tick is not None:
                tick(1)

    await asyncio.gather(*(worker() for _ in range(max(1, min(parallelism, len(items))))))
    return results
