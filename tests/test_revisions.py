"""Short revisions, as people type them, expanded to the push they name (or a clear no)."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from bot.adapters.console import ConsoleReplier
from bot.core.request import Request
from bot.embedded import Embedded, embedded
from bot.localtc.seed import seed_push
from bot.revisions import RevisionError, expand_revision
from bot.store import SqliteStore


@pytest_asyncio.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=600, worker_seconds=0.05) as running:
        running.bot.settings = replace(running.bot.settings, poll_interval=0.05)
        yield running
    await store.close()


async def say(env: Embedded, text: str) -> str:
    out = io.StringIO()
    request = Request(source="console", actor="sheriff", place="console", text=text, direct=True)
    await env.bot.handle(request, ConsoleReplier(out))
    assert await env.bot.idle(30)
    return out.getvalue()


def a_test(env: Embedded) -> str:
    ran = env.push.push.label_to_taskid
    return next(x for x in env.push.push.graph if x.startswith("test-") and x not in ran)


async def test_the_latest_push_by_its_short_revision(env: Embedded) -> None:
    push = env.push
    output = await say(env, f"schedule {a_test(env)} on {push.revision[:7]} --dry-run")
    assert f"on {push.project}@{push.revision[:12]}:" in output.splitlines()[0]
    requests = await env.store.recent_requests()
    assert [r.revision for r in requests] == [push.revision]


async def test_an_older_push_the_bot_worked_on_by_its_short_revision(env: Embedded) -> None:
    older = env.push
    label = a_test(env)
    await say(env, f"schedule {label} on {older.revision} --dry-run")
    newer = seed_push(env.tc, tasks=300, seed=77, project=older.project)
    assert await env.bot.decisions.find(older.project, None) == newer.decision_task_id
    output = await say(env, f"schedule {label} on {older.project}@{older.revision[:9]} --dry-run")
    assert f"on {older.project}@{older.revision[:12]}:" in output.splitlines()[0]
    found = re.search(r"\[(r[0-9a-f]+)\]", output)
    assert found, output
    record = await env.store.request(found[1])
    assert record is not None
    assert (record.revision, record.decision_task_id) == (
        older.revision,
        older.decision_task_id,
    )


async def test_an_unknown_short_revision_is_explained_and_schedules_nothing(
    env: Embedded,
) -> None:
    before = len(env.tc.queue.tasks)
    output = await say(env, f"schedule {a_test(env)} on 0123abc")
    assert output == (
        f"taskbot> `0123abc` is no push of {env.push.project} that the bot knows by a short "
        "revision: give all 40 hex digits (Treeherder shows them), or "
        f"`on {env.push.project}` for its latest push.\n"
    )
    assert len(env.tc.queue.tasks) == before
    assert await env.store.recent_requests() == []


async def test_a_short_revision_of_two_pushes_asks_for_more_digits(env: Embedded) -> None:
    project = env.push.project
    one, two = "abcdef1" + "0" * 33, "abcdef1" + "f" * 33
    for n, revision in enumerate((one, two, "abcdef2" + "0" * 33)):
        await env.store.add_request(
            f"r{n}",
            source="console",
            actor="a",
            place="p",
            text="t",
            project=project,
            revision=revision,
        )
    with pytest.raises(RevisionError) as caught:
        await expand_revision(env.bot, project, "ABCDEF1")
    assert str(caught.value) == (
        f"`abcdef1` could be `{one[:12]}`, `{two[:12]}` on {project}: give more of its digits."
    )
    assert await expand_revision(env.bot, project, "abcdef1f") == two
    assert await expand_revision(env.bot, project, one) == one  # full: taken as it is
    # Another project's pushes are not this one's.
    with pytest.raises(RevisionError):
        await expand_revision(env.bot, "mozilla-central", "abcdef1f")
