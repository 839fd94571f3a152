"""`backfill` on a seeded chain of pushes (the pass/fail boundary shown), `action NAME` on any
of a push's in-tree actions (input checked, permission by its actionPerm), and `--notify` /
`--quiet`, on the embedded local Taskcluster."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from dataclasses import replace

import pytest

from bot.adapters.console import ConsoleReplier
from bot.core.access import Level
from bot.core.adapter import Adapter
from bot.core.request import Request
from bot.core.settings import Mode, ProjectSettings
from bot.embedded import Embedded
from bot.localtc.chain import Breakage, Chain, seed_chain
from bot.localtc.seed import register_action_hooks, seed_push
from bot.localtc.server import Faults
from grammar import Action, Backfill, ParseError, Schedule, Try, parse_command
from tests.test_console_e2e import delivered, env

__all__ = ["env"]  # the console tests' embedded local Taskcluster, for pytest to find

PROJECT = "mozilla-central"
BROKEN = "test-linux1804-64-shippable-qr/opt-xpcshell-spi-nw-1"


async def say(env: Embedded, text: str, *, request: Request | None = None) -> str:
    out = io.StringIO()
    asked = request or Request("console", "sheriff", "console", text, direct=True)
    await env.bot.handle(asked, ConsoleReplier(out))
    assert await env.bot.idle(60)
    return out.getvalue()


def chain_of(env: Embedded, count: int = 8, break_at: int = 5) -> Chain:
    chain = seed_chain(
        env.tc, count, tasks=300, project=PROJECT, breakage=Breakage((BROKEN,), break_at=break_at)
    )
    assert env.worker is not None
    env.worker.decide = chain.outcome  # the chain's tasks end as its breakage says
    return chain


def test_the_grammar_of_backfill_action_notify_and_quiet() -> None:
    backfill = parse_command("bf M(bc3) on autoland@abcdef1 depth 3 x2 notify me --quiet")
    assert isinstance(backfill, Backfill)
    assert (backfill.depth, backfill.times, backfill.notify, backfill.quiet) == (3, 2, True, True)
    assert backfill.canonical() == "backfill M(bc3) depth 3 on autoland@abcdef1 x2 --notify --quiet"
    assert parse_command(backfill.canonical()) == backfill
    task = "-uCPrKG2T62-4YH1tWYa7Q"  # a taskId may begin with a dash
    action = parse_command(f'action retrigger-custom on {task} path="dom/a b" repeat=3 --dry-run')
    assert isinstance(action, Action)
    assert action.task is not None
    assert action.task.text == task
    assert json.loads(action.input) == {"path": "dom/a b", "repeat": 3}
    assert parse_command(action.canonical()) == action
    document = parse_command('action backfill mochitest-1 on abcdef12 {"depth": 3, "times": 2}')
    assert isinstance(document, Action)
    assert document.job is not None
    assert document.job.canonical() == "mochitest-1"
    assert document.revision is not None
    assert document.revision.node == "abcdef12"
    assert json.loads(document.input) == {"depth": 3, "times": 2}
    # `on` a bare word is the task's job; a second `on` the push
    on_job = parse_command("action cancel on mochitest-1 on autoland")
    assert isinstance(on_job, Action)
    assert on_job.revision is not None
    assert on_job.revision.project == "autoland"
    schedule = parse_command("schedule mochitest-1 --notify")
    assert isinstance(schedule, Schedule)
    assert schedule.notify
    tried = parse_command("try: -b do -p linux64 --quiet --notify")
    assert isinstance(tried, Try)
    assert (tried.notify, tried.quiet) == (True, True)
    assert parse_command(tried.canonical()) == tried


@pytest.mark.parametrize(
    ("text", "column", "says"),
    [
        ("backfill mochitest-1 depth 99", 28, "`depth` is 1 to 25 pushes"),
        ("backfill mochitest-1 depth", 27, "`depth` needs a number"),
        ("backfill", 9, "needs the job"),
        ("action", 7, "`actions` lists them"),
        ('action backfill {"depth": }', 27, "not a JSON object"),
        ("action backfill depth=[1,", 26, "`depth`"),
        ("action backfill a=1 a=2", 21, "given twice"),
        ('action backfill a=1 {"b": 2}', 29, "not both"),
        ("schedule mochitest-1 --notfy", 22, "`--notify`"),
        ("status --notify", 8, "takes no options"),
        ("action foo on x=1", 15, "`on` names what the action acts on"),
        ("action foo on -aaaaaaaaaaaaaaaaaaaaa", 15, "`on` names what"),
        ("action foo [1,2]", 12, "a list is not one"),
        ('action foo {"a":1', 12, "never closed"),
        ('action foo x="open', 12, "never closed"),
        ('action foo {"a": 1, "a": 2}', 12, "`a` is given twice"),
        ("action foo x=" + "[" * 25 + "]" * 25, 64, "more than 20 deep"),
    ],
)
def test_bad_backfills_and_actions_point_at_the_column(text: str, column: int, says: str) -> None:
    with pytest.raises(ParseError) as error:
        parse_command(text)
    assert error.value.column == column, str(error.value)
    assert says in str(error.value)


async def test_backfill_shows_where_a_job_started_failing(env: Embedded) -> None:
    chain = chain_of(env, 8, break_at=5)
    output = await say(env, f"backfill {BROKEN} on {PROJECT} depth 6")
    revisions = [push.revision[:12] for push in chain.pushes]
    assert "6 new tasks (6 requested, 0 dependencies)" in output, output
    assert "on the 6 pushes before it" in output
    assert f"#8 {revisions[7]} (this push)" in output
    final = output[output.index("finished:") :]
    # newest first: pushes 7, 6, 5 fail, 4, 3, 2 pass; the boundary named
    for number in (7, 6, 5):
        assert f"{revisions[number - 1]}: 0 ok, 1 failed (fails)" in final
    for number in (4, 3, 2):
        assert f"{revisions[number - 1]}: 1 ok (passes)" in final
    assert f"it broke after {revisions[3]} (passes) and by {revisions[4]} (fails)" in final
    assert revisions[0] not in final  # depth 6 from push 8 stops at push 2
    # each failure with its links and the first lines of its error summary
    assert "TEST-UNEXPECTED-FAIL | xpcshell/test_" in final
    # each task is on its own push's group, depending on what that push built
    queue = env.tc.queue
    request = re.search(r"\[(r[0-9a-f]+)\]", output)
    assert request is not None
    # `status` of it says the same: a line per push, the failures with their links
    status = await say(env, f"status {request[1]}")
    assert f"{revisions[4]}: 0 ok, 1 failed (fails)" in status
    assert f"it broke after {revisions[3]} (passes) and by {revisions[4]} (fails)" in status
    for number in (7, 6, 5):  # each failure names its push
        assert f"{BROKEN} on {revisions[number - 1]} failed: " in status, status
    stored = await env.store.plan(request[1])
    groups = {t.definition["taskGroupId"] for t in stored}
    assert groups == {push.decision_task_id for push in chain.pushes[1:7]}
    for task in stored:
        own = chain.pushes[
            [p.decision_task_id for p in chain.pushes].index(task.definition["taskGroupId"])
        ]
        for dependency in queue.tasks[task.task_id].definition["dependencies"]:
            assert dependency in {*own.push.label_to_taskid.values(), own.decision_task_id}


async def test_backfill_twice_by_one_delivery_creates_nothing_twice(env: Embedded) -> None:
    chain_of(env, 4, break_at=3)
    text = f"backfill {BROKEN} on {PROJECT} depth 3 x2"
    first = await say(env, text, request=delivered(text, "d-1"))
    before = len(env.tc.queue.tasks)
    again = await say(env, text, request=delivered(text, "d-1"))
    assert len(env.tc.queue.tasks) == before
    assert re.findall(r"\[(r[0-9a-f]+)\]", first)[0] == re.findall(r"\[(r[0-9a-f]+)\]", again)[0]


async def test_backfill_refusals_say_why(env: Embedded) -> None:
    chain = chain_of(env, 5, break_at=3)
    env.bot.settings = replace(
        env.bot.settings,
        projects={**env.bot.settings.projects, PROJECT: ProjectSettings(PROJECT, max_new_tasks=5)},
    )
    over = await say(env, f"backfill {BROKEN} on {PROJECT} depth 4 x2")
    assert "That would create 8 tasks; one request may create at most 5" in over
    first = await say(env, f"backfill {BROKEN} on {PROJECT}@{chain.pushes[0].revision}")
    assert "There is no push before" in first
    unordered = seed_push(env.tc, tasks=300, seed=0, project="translations")  # no pushlog id
    output = await say(env, f"backfill {BROKEN} on translations@{unordered.revision}")
    assert "has no pushlog id" in output or "matches no job" in output
    # a push before with no decision task is passed over; the rest are backfilled
    del env.tc.index.entries[f"gecko.v2.{PROJECT}.pushlog-id.4.decision"]
    skipped = await say(env, f"backfill {BROKEN} on {PROJECT} depth 2 --dry-run")
    assert chain.pushes[3].revision[:12] not in skipped
    assert chain.pushes[2].revision[:12] in skipped
    assert chain.pushes[1].revision[:12] in skipped


async def test_backfill_in_action_mode_runs_the_pushs_backfill_action(env: Embedded) -> None:
    chain = chain_of(env, 6, break_at=4)
    env.bot.settings = replace(
        env.bot.settings,
        projects={**env.bot.settings.projects, PROJECT: ProjectSettings(PROJECT, mode=Mode.ACTION)},
    )
    ran = next(
        label for label in chain.pushes[-1].push.label_to_taskid if label.startswith("test-")
    )
    output = await say(env, f"backfill {ran} on {PROJECT} depth 3")
    assert "via the push's backfill action" in output, output
    assert "created 3 tasks" in output
    assert "finished: 3 ok" in output
    for push in chain.pushes[2:5]:  # one per push, each named by its revision
        assert f"{push.revision[:12]}: 1 ok (passes)" in output
    assert "backfill backfill" not in output
    too_many = await say(env, f"backfill {ran} on {PROJECT} depth 3 x20")
    assert "refuses times: 20 is greater than the maximum of 10" in too_many


async def test_action_confirm_failures_on_a_task_runs_and_reports_it(env: Embedded) -> None:
    chain = chain_of(env, 3, break_at=9)
    label, task_id = next(
        (label, task) for label, task in chain.pushes[-1].push.label_to_taskid.items()
        if label.startswith("test-")
    )  # fmt: skip
    output = await say(env, f"action confirm-failures on {task_id} times=2")
    assert "via the push's confirm-failures action" in output, output
    assert "created 2 tasks" in output
    assert "finished: 2 ok" in output
    made = [
        t
        for t in env.tc.queue.tasks.values()
        if t.definition.get("metadata", {}).get("name") == label
    ]
    assert len(made) >= 3  # the push's own and the two copies
    preview = await say(env, f"action confirm-failures on {task_id} --dry-run")
    assert "would be triggered" in preview
    assert "nothing was triggered" in preview


async def test_an_actions_input_is_checked_and_its_field_named(env: Embedded) -> None:
    chain = chain_of(env, 2, break_at=9)
    tests = [
        t for label, t in chain.pushes[-1].push.label_to_taskid.items() if label.startswith("test-")
    ]
    builds = [
        t
        for label, t in chain.pushes[-1].push.label_to_taskid.items()
        if label.startswith("build-")
    ]
    before = len(env.tc.queue.tasks)
    bad = await say(env, f"action confirm-failures on {tests[0]} times=200")
    assert (
        "The `confirm-failures` action refuses times: 200 is greater than the maximum of 100" in bad
    )
    unknown = await say(env, f"action confirm-failure on {tests[0]}")
    assert "(did you mean `confirm-failures`?)" in unknown
    assert f"`actions on {tests[0]}` lists those it has" in unknown
    extra = await say(env, f"action confirm-failures on {tests[0]} tims=2")
    assert "tims" in extra
    assert "refuses" in extra
    build = await say(env, f"action confirm-failures on {builds[0]}")
    assert "confirm-failures" in build
    assert "triggered" not in build
    missing = await say(env, "action confirm-failures on fuCPrKG2T62-4YH1tWYa7Q")
    assert "There is no task `fuCPrKG2T62-4YH1tWYa7Q`" in missing
    assert len(env.tc.queue.tasks) == before  # nothing was triggered


class Writer(Adapter):
    """A place whose people may write, not administer."""

    source = "chat"

    async def level_of(self, request: Request) -> Level:
        return Level.WRITE


async def test_an_actions_permission_decides_who_may_run_it(env: Embedded) -> None:
    push = seed_push(env.tc, tasks=300, seed=4, project="try")
    register_action_hooks(env.tc, push)
    decision = env.tc.queue.tasks[push.decision_task_id]
    for artifacts in decision.artifacts.values():
        stored = artifacts["public/actions.json"]
        actions = json.loads(stored.content)
        for action in actions["actions"]:
            if action["name"] == "cancel-all":
                action["extra"]["actionPerm"] = "release-promotion"
        artifacts["public/actions.json"] = dataclasses.replace(
            stored, content=json.dumps(actions).encode()
        )
    env.bot.register(Writer())
    out = io.StringIO()
    asked = Request("chat", "dev", "room", f"action cancel-all on try@{push.revision}", direct=True)
    await env.bot.handle(asked, ConsoleReplier(out))
    assert await env.bot.idle(30)
    said = out.getvalue()
    assert "`release-promotion`" in said, said
    assert "needs admin" in said
    generic = io.StringIO()
    allowed = Request(
        "chat", "dev", "room", f"action add-new-jobs on try@{push.revision} tasks=[] --dry-run",
        direct=True,
    )  # fmt: skip
    await env.bot.handle(allowed, ConsoleReplier(generic))
    assert "would be triggered" in generic.getvalue(), generic.getvalue()


async def test_notify_tells_the_requester_and_quiet_posts_only_the_end(env: Embedded) -> None:
    chain = chain_of(env, 3, break_at=9)
    output = await say(env, f"backfill {BROKEN} on {PROJECT} depth 2 --notify --quiet")
    lines = output.splitlines()
    assert not [line for line in lines if re.search(r"\] \d+/\d+ done", line)], output
    told = [line for line in lines if "--notify --quiet: finished: 2 ok" in line]
    assert len(told) == 1, output
    loud = await say(env, f"backfill {BROKEN} on {PROJECT}@{chain.pushes[1].revision} depth 1")
    assert "done: 1 ok" in loud
    assert "--notify" not in loud


class Comments:
    """What a GitHub API client is asked to post, and nothing more."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, object]]] = []

    async def post(self, url: str, *, data: dict[str, object]) -> dict[str, object]:
        self.posted.append((url, data))
        return {"id": len(self.posted)}


async def test_notify_on_github_is_a_new_comment_mentioning_the_requester() -> None:
    from bot.adapters.github.client import GitHubReplier
    from bot.core.replies import Notifies

    gh = Comments()
    replier = GitHubReplier(gh, "mozilla/gecko", 7)  # type: ignore[arg-type]
    assert isinstance(replier, Notifies)
    await replier.notify("octocat", "[r1a2b] schedule mochitest-1 --notify: finished: 1 ok")
    url, data = gh.posted[0]
    assert url == "/repos/mozilla/gecko/issues/7/comments"
    assert str(data["body"]).startswith("@octocat [r1a2b] schedule mochitest-1 --notify: finished")


async def test_a_git_branchs_pushes_go_back_by_the_head_before_each(env: Embedded) -> None:
    project = "firefox-android"
    chain = seed_chain(
        env.tc, 6, tasks=300, project=project, git=True, breakage=Breakage((BROKEN,), break_at=4)
    )
    assert env.worker is not None
    env.worker.decide = chain.outcome
    assert all(push.base_revision is not None for push in chain.pushes)
    assert chain.pushes[1].base_revision == chain.pushes[0].revision
    revisions = [push.revision[:12] for push in chain.pushes]
    listed = await say(env, f"pushes 10 on {project}")
    lines = [line.strip() for line in listed.splitlines()]
    assert lines[0].endswith(f"6 pushes of {project}, newest first:"), listed
    assert [line.split()[0].rstrip(":") for line in lines[1:7]] == revisions[::-1]
    output = await say(env, f"backfill {BROKEN} on {project} depth 4")
    final = output[output.index("finished:") :]
    assert f"it broke after {revisions[2]} (passes) and by {revisions[3]} (fails)" in final, output
    # a push whose decision task is not indexed ends the walk, and says where
    del env.tc.index.entries[
        f"gecko.v2.{project}.revision.{chain.pushes[2].revision}.taskgraph.decision"
    ]
    stopped = await say(env, f"pushes 10 on {project}")
    assert f"stopped at {revisions[2]}" in stopped
    assert revisions[1] not in stopped


async def test_an_action_keeps_to_the_bots_limits_and_names_its_push(env: Embedded) -> None:
    chain = chain_of(env, 2, break_at=9)
    builds = [label for label in chain.pushes[-1].push.graph if label.startswith("build-")][:10]
    tasks = json.dumps(builds).replace(" ", "")
    before = len(env.tc.queue.tasks)
    many = await say(env, f"action add-new-jobs on {PROJECT}@latest tasks={tasks} times=100")
    assert "one request runs a job at most 20 times here" in many, many
    big = await say(env, f"action add-new-jobs on {PROJECT}@latest tasks={tasks} times=10")
    assert "would make about 100 tasks, more than 50" in big, big
    unaimed = await say(env, "action cancel-all")
    assert "Which push? `cancel-all` acts on a whole push" in unaimed
    assert len(env.tc.queue.tasks) == before  # nothing was triggered
    project = await say(env, f"action cancel-all on {PROJECT} --dry-run")
    assert f"on {PROJECT}@{chain.pushes[-1].revision[:12]} would be triggered" in project


async def test_a_backfill_of_several_jobs_says_where_each_one_broke(env: Embedded) -> None:
    chain = chain_of(env, 6, break_at=4)
    steady = BROKEN.replace("-nw-1", "-nw-2")  # never breaks
    output = await say(env, f"backfill {BROKEN} {steady} on {PROJECT} depth 4")
    final = [line.strip() for line in output[output.index("finished:") :].splitlines()]
    revisions = [push.revision[:12] for push in chain.pushes]
    broken_at, steady_at = final.index(f"{BROKEN}:"), final.index(f"{steady}:")
    own = final[broken_at + 1 : broken_at + 6] if broken_at < steady_at else final[broken_at + 1 :]
    assert own[:4] == [
        f"{revisions[4]}: 0 ok, 1 failed (fails)",
        f"{revisions[3]}: 0 ok, 1 failed (fails)",
        f"{revisions[2]}: 1 ok (passes)",
        f"{revisions[1]}: 1 ok (passes)",
    ], output
    assert own[4] == f"it broke after {revisions[2]} (passes) and by {revisions[3]} (fails)"
    others = final[steady_at + 1 : steady_at + 5]
    assert others == [f"{revision}: 1 ok (passes)" for revision in revisions[4:0:-1]], output


async def test_a_lost_hook_answer_is_said_and_the_same_command_never_fires_twice(
    env: Embedded,
) -> None:
    chain = chain_of(env, 2, break_at=9)
    task_id = next(
        t for label, t in chain.pushes[-1].push.label_to_taskid.items() if label.startswith("test-")
    )
    text = f"action confirm-failures on {task_id}"

    def action_tasks() -> int:
        return sum(
            1
            for t in env.tc.queue.tasks.values()
            if t.definition["taskGroupId"] == chain.pushes[-1].decision_task_id
            and str(t.definition.get("metadata", {}).get("name", "")).startswith("Action:")
        )

    env.tc.faults = Faults(
        lost_reply_rate=1.0, only="/trigger"
    )  # the hook runs, its answer is lost
    lost = await say(env, text, request=delivered(text, "d-lost"))
    env.tc.faults = Faults()
    assert "its answer was lost" in lost, lost
    assert "look for an `Action:` task" in lost
    fired = action_tasks()
    assert fired == 1  # the hook did run
    again = await say(env, text, request=delivered(text, "d-lost"))
    assert "was handled already" in again, again
    assert action_tasks() == fired  # never triggered a second time


async def test_error_summaries_the_queue_cannot_list_leave_the_links(env: Embedded) -> None:
    chain_of(env, 3, break_at=2)
    env.tc.faults = Faults(error_rate=1.0, only="/runs/0/artifacts")  # listArtifacts fails
    output = await say(env, f"backfill {BROKEN} on {PROJECT} depth 1")
    env.tc.faults = Faults()
    assert f"{BROKEN} on " in output, output
    assert "log: " in output  # the failure line, with its links
    assert "TEST-UNEXPECTED-FAIL" not in output  # but without what could not be read
    assert "finished: 0 ok, 1 failed" in output
