"""Writes that arrive one at a time, made in few transactions: one that comes while none is
under way is written at once; those that come during a write go together in the next."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """``await batcher(item)`` is ``write([item, ...])``'s result for ``item``; ``write``
    returns one result per item, in order."""

    def __init__(self, write: Callable[[list[Item]], Awaitable[list[Result]]]) -> None:
        self.write = write
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writing = False
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        if self._writing:
            future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
            self._waiting.append((item, future))
            return await asyncio.shield(future)
        self._writing = True
        try:
            (result,) = await self.write([item])
        finally:
            if self._waiting:
                self._writer = asyncio.create_task(self._write_waiting())
            else:
                self._writing = False
        return result

    async def _write_waiting(self) -> None:
        """Write what waited, batch after batch, then let the next one write at once."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    results = await self.write([item for item, _ in batch])
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._writing = False
