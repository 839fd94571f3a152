"""`bisect JOB` on seeded chains of pushes: the first push where the job fails is found in
at most ⌈log₂ N⌉ + 2 rounds, with fewer tasks than a backfill of every push, on the embedded
local Taskcluster and its simulated worker."""

from __future__ import annotations

import io
import re

from bot.adapters.console import ConsoleReplier
from bot.core.request import Request
from bot.culprit.search import most_rounds
from bot.embedded import Embedded
from bot.localtc.chain import Breakage, Chain, seed_chain
from tests.test_console_e2e import delivered, env

__all__ = ["delivered", "env"]

PROJECT = "mozilla-central"
BROKEN = "test-linux1804-64-shippable-qr/opt-xpcshell-spi-nw-1"


async def say(env: Embedded, text: str, *, wait: float = 120) -> str:
    out = io.StringIO()
    asked = Request("console", "sheriff", "console", text, direct=True)
    await env.bot.handle(asked, ConsoleReplier(out))
    assert await env.bot.idle(wait)
    return out.getvalue()


def chain_of(env: Embedded, count: int, break_at: int, flaky: float = 0.0, seed: int = 1) -> Chain:
    chain = seed_chain(
        env.tc,
        count,
        tasks=300,
        project=PROJECT,
        breakage=Breakage((BROKEN,), break_at=break_at, flaky=flaky, seed=seed),
    )
    assert env.worker is not None
    env.worker.decide = chain.outcome
    return chain


async def test_bisect_finds_the_push_that_broke_the_job(env: Embedded) -> None:
    chain = chain_of(env, 16, break_at=7)
    output = await say(env, f"bisect {BROKEN} on {PROJECT} max 16 pushes")
    print(output)
    culprit = chain.pushes[6].revision[:12]
    assert f"found: #7 {culprit}" in output, output
    rounds = re.findall(r"round (\d+):", output)
    assert len(rounds) <= most_rounds(16)
