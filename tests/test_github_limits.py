"""GitHub's rate limits: the bot waits as asked and retries; replies are not dropped."""

from __future__ import annotations

import time
from http import HTTPStatus

import aiohttp
import gidgethub
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from gidgethub.aiohttp import GitHubAPI

from bot.adapters.github.client import GitHubReplier
from bot.adapters.github.limits import wait_for, with_retries


class Flaky:
    """Answers the first ``failures`` comment posts with a limit, then creates the comment."""

    def __init__(self, failures: list[tuple[int, dict[str, str], str]]) -> None:
        self.failures = failures
        self.calls = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/repos/{owner}/{repo}/issues/{number}/comments", self.comment)
        return app

    async def comment(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.failures:
            status, headers, message = self.failures.pop(0)
            return web.json_response({"message": message}, status=status, headers=headers)
        return web.json_response({"id": 7, "body": (await request.json())["body"]}, status=201)


async def post_through(
    failures: list[tuple[int, dict[str, str], str]],
) -> tuple[Flaky, list[float], str]:
    flaky = Flaky(failures)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with TestServer(flaky.app()) as server, aiohttp.ClientSession() as session:
        gh = GitHubAPI(session, "t", oauth_token="x", base_url=str(server.make_url("")).rstrip("/"))
        replier = GitHubReplier(gh, "o/r", 1, sleep=sleep)
        reference = await replier.post("[r1234] card")
    return flaky, waits, reference


async def test_secondary_limits_wait_retry_after_then_backoff() -> None:
    flaky, waits, reference = await post_through(
        [
            (429, {"Retry-After": "7"}, "slow down"),
            (403, {}, "You have exceeded a secondary rate limit. Please wait a few minutes."),
        ]
    )
    assert reference == "7"
    assert flaky.calls == 3
    assert waits == [7.0, 120.0]  # Retry-After, then backoff from a minute (capped at 2)


async def test_the_primary_limit_waits_for_the_reset() -> None:
    reset = int(time.time()) + 30
    headers = {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset),
        "X-RateLimit-Used": "5000",
    }
    flaky, waits, _ = await post_through([(403, headers, "API rate limit exceeded")])
    assert flaky.calls == 2
    assert 20 <= waits[0] <= 31


async def test_other_refusals_are_not_retried() -> None:
    with pytest.raises(gidgethub.BadRequest):
        await post_through([(404, {}, "Not Found")])


async def test_attempts_are_bounded() -> None:
    calls = 0

    async def always_limited() -> None:
        nonlocal calls
        calls += 1
        raise gidgethub.BadRequest(HTTPStatus.TOO_MANY_REQUESTS, "slow down")

    async def no_sleep(seconds: float) -> None:
        return None

    with pytest.raises(gidgethub.BadRequest):
        await with_retries(always_limited, attempts=4, sleep=no_sleep)
    assert calls == 4
    assert wait_for(gidgethub.GitHubBroken(HTTPStatus.BAD_GATEWAY), 1) is not None
    assert wait_for(gidgethub.BadRequest(HTTPStatus.UNPROCESSABLE_ENTITY), 1) is None
