"""Batcher: writes that arrive one at a time, made in few transactions."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.batching import Batcher


async def test_what_comes_during_a_write_goes_together_in_the_next_in_order() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        await asyncio.sleep(0.01)
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(write)
    results = await asyncio.gather(*(batcher(n) for n in range(1, 8)))
    assert results == [10, 20, 30, 40, 50, 60, 70]
    assert writes == [[1], [2, 3, 4, 5, 6, 7]]
    assert await batcher(8) == 80  # idle again: written at once
    assert writes[-1] == [8]


async def test_a_failed_write_fails_its_own_callers_only() -> None:
    calls = 0

    async def write(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if "bad" in items:
            raise RuntimeError("the store said no")
        return items

    batcher: Batcher[str, str] = Batcher(write)
    first = asyncio.create_task(batcher("a"))
    await asyncio.sleep(0)
    failing = [asyncio.create_task(batcher(x)) for x in ("bad", "b")]
    done = await asyncio.gather(first, *failing, return_exceptions=True)
    assert done[0] == "a"
    assert all(isinstance(x, RuntimeError) for x in done[1:])
    assert await batcher("c") == "c"  # the next write goes on
    with pytest.raises(RuntimeError):
        await batcher("bad")
    assert calls == 4
