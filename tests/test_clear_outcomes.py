"""What every adapter's people are told when a command ends: nothing left to cancel, tasks a
reset Taskcluster forgot, progress that never goes back; on the embedded default."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from bot.adapters.api import CollectingReplier
from bot.core.request import Request
from bot.embedded import Embedded, embedded
from bot.store import RequestState, SqliteStore
from tests.test_console_e2e import a_test, env, request_id, say

__all__ = ["env"]


async def test_cancel_of_a_finished_request_says_nothing_was_left(env: Embedded) -> None:
    rid = request_id(await say(env, f"schedule {a_test(env, ran=False)} x2"))
    record = await env.store.request(rid)
    assert record is not None
    assert record.state == RequestState.FINISHED
    answer = await say(env, f"cancel {rid}", wait=False)
    assert answer == (
        f"taskbot> Nothing was left to cancel of {rid}; 2 tasks had finished already.\n"
    )
    record = await env.store.request(rid)
    assert record is not None
    assert record.state == RequestState.FINISHED


class Lines(CollectingReplier):
    """A console-like place that keeps every reply (its `said`)."""

    @property
    def said(self) -> list[str]:
        return self.replies


async def test_tasks_a_reset_taskcluster_forgot_end_the_request_once(tmp_path: Path) -> None:
    """The embedded Taskcluster keeps its tasks in memory: after a restart it knows none of
    them. The request ends as lost, said once; cancel says what the Queue does not know."""
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=1500, worker_seconds=60.0) as slow:
        slow.bot.settings = replace(slow.bot.settings, poll_interval=0.05)
        place = Lines()
        text = f"schedule {a_test(slow, ran=False)} x2"
        await slow.bot.handle(Request("console", "sheriff", "console", text, direct=True), place)
        rid = request_id(place.said[-1])
        for task in await slow.store.plan(rid):  # the Taskcluster restarts: all forgotten
            slow.tc.queue.tasks.pop(task.task_id)
        assert await slow.bot.idle(30)
        lost = [line for line in place.said if " lost: " in line]
        assert lost == [
            f"[{rid}] lost: the Taskcluster it was scheduled on no longer knows its 2 "
            "unfinished tasks (was it reset?), so nothing more will be reported. Ask again if "
            "the jobs are still wanted."
        ]
        record = await slow.store.request(rid)
        assert record is not None
        assert record.state == RequestState.LOST
        await slow.bot.handle(
            Request("console", "sheriff", "console", f"cancel {rid}", direct=True), place
        )
        assert place.said[-1].startswith(
            f"Nothing was cancelled of {rid}; the Queue does not know 2 tasks"
        )
        assert await slow.bot.resume(place) == []  # never followed again
    await store.close()


async def test_a_query_shows_its_matches_by_suite_and_a_loose_one_is_held(env: Embedded) -> None:
    before = len(env.tc.queue.tasks)
    output = await say(env, "schedule 'reftest' for linux64 debug", wait=False)
    headline, by_suite = output.splitlines()[:2]
    rid = request_id(headline)
    assert " — held: " in headline
    assert "match the query only as letters in order, not as written" in headline
    assert headline.endswith(f"To go ahead: `confirm {rid}` within 30 minutes.")
    assert by_suite.strip().startswith("matched by suite: ")
    assert "reftest ×" in by_suite
    assert len(env.tc.queue.tasks) == before  # nothing before the person confirms
    # Written exactly, it matches as written: shown by suite, and not held for it.
    exact = await say(env, 'schedule "\'reftest" for linux64 debug --dry-run', wait=False)
    assert " — held: " not in exact
    assert "matched by suite: " in exact


async def test_a_try_that_selects_no_test_says_so_and_schedules_nothing(env: Embedded) -> None:
    before = len(env.tc.queue.tasks)
    answer = await say(env, "try: -b do -p linux64 -u nosuchsuite", wait=False)
    assert answer == (
        "taskbot> That selects no test on this push, only 2 build or other jobs, so nothing "
        "was scheduled. Check the test names (`jobs NAME` searches the push); for the builds "
        "alone, say `-u none`.\n"
    )
    assert len(env.tc.queue.tasks) == before
    builds = await say(env, "try: -b do -p linux64 -u none --dry-run", wait=False)
    assert "2 new tasks" in builds


async def test_a_line_based_chat_hears_of_progress_by_quarters_not_per_task(
    env: Embedded,
) -> None:
    ran = env.push.push.label_to_taskid
    labels = [x for x in env.push.push.graph if x.startswith("test-") and x not in ran][:20]
    place = Lines()
    text = "schedule " + " ".join(labels)
    await env.bot.handle(Request("console", "sheriff", "console", text, direct=True), place)
    assert await env.bot.idle(60)
    progress = [line for line in place.said if re.match(r"\[r[0-9a-f]+\] \d+/\d+ done", line)]
    failures = [line for line in progress if " failed " in line or " exception " in line]
    assert len(progress) - len(failures) <= 4, progress  # one per quarter at most
    assert progress[-1].split()[1] == f"{len(labels)}/{len(labels)}"
    assert place.said[-1].startswith(f"[{request_id(place.said[0])}] finished: ")
