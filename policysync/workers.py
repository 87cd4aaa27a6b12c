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


async def to_the_end(work: Awaitable[R], interrupted: Callable[[], None]) -> R:
    """Await `work` to its end, even when the awaiting task is cancelled: Ctrl-C makes
    asyncio.run cancel its main task; `interrupted()` is called then, so that `work`
    winds down (it starts nothing new, finishes what is in progress), and waited for.
    A second Ctrl-C stops the process at once (asyncio.run raises KeyboardInterrupt)."""
    task = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():  # `work` itself was cancelled
                raise
            interrupted()
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # handled: the caller goes on with the result
