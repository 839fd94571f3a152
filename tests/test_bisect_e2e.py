"""`bisect JOB` on seeded chains of pushes, on the embedded local Taskcluster and its
simulated worker: the first push where the job fails is found in at most ⌈log₂ N⌉ + 2
rounds with fewer tasks than a backfill of every push; what pushes ran already counts;
pushes without the job are passed over; a restart carries the search on without running a
round twice; `cancel` stops it; a big one waits for `confirm`."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import replace

import pytest

from bot.adapters.console import ConsoleReplier
from bot.bisecting import load, round_id
from bot.core.request import Request
from bot.core.settings import Mode, ProjectSettings
from bot.culprit.search import most_rounds
from bot.embedded import Embedded
from bot.graph.materialize import task_label
from bot.localtc.chain import Breakage, Chain, seed_chain
from bot.localtc.queue import TaskRecord
from bot.localtc.server import Faults
from bot.service import Bot
from bot.store import RequestState
from grammar import Bisect, ParseError, parse_command
from tests.test_console_e2e import env

__all__ = ["env"]  # the console tests' embedded local Taskcluster, for pytest to find

PROJECT = "mozilla-central"
BROKEN = "test-linux1804-64-shippable-qr/opt-xpcshell-spi-nw-1"


def asked(text: str) -> Request:
    return Request("console", "sheriff", "console", text, direct=True)


async def say(env: Embedded, text: str, *, wait: float = 180) -> str:
    out = io.StringIO()
    await env.bot.handle(asked(text), ConsoleReplier(out))
    assert await env.bot.idle(wait)
    return out.getvalue()


def chain_of(
    env: Embedded, count: int, break_at: int, *, flaky: float = 0.0, seed: int = 1
) -> Chain:
    breakage = Breakage((BROKEN,), break_at=break_at, flaky=flaky, seed=seed)
    chain = seed_chain(env.tc, count, tasks=300, project=PROJECT, breakage=breakage)
    assert env.worker is not None
    env.worker.decide = chain.outcome  # the chain's tasks end as its breakage says
    return chain


def tip(chain: Chain) -> str:
    """The chain's newest push, named (where the job fails)."""
    return f"{PROJECT}@{chain.pushes[-1].revision[:12]}"


def search_id(output: str) -> str:
    found = re.search(r"\[(r[0-9a-f]+)\] bisect", output)
    assert found, output
    return found[1]


async def state_of(env: Embedded, request_id: str) -> RequestState:
    record = await env.store.request(request_id)
    assert record is not None
    return record.state


def created_for(env: Embedded, request_id: str) -> int:
    """Tasks the Queue holds that the bot created for request ``request_id``."""
    return sum(
        1
        for record in env.tc.queue.tasks.values()
        if (record.definition.get("extra") or {}).get("taskbot", {}).get("request") == request_id
    )


def test_the_grammar_of_bisect() -> None:
    command = parse_command("culprit M(bc3) on autoland@abcdef1 from 1234567 x5 max 64 pushes -q")
    assert isinstance(command, Bisect)
    assert command.good is not None
    assert (command.good.node, command.copies, command.max_pushes) == ("1234567", 5, 64)
    assert command.quiet
    assert parse_command(command.canonical()) == command
    plain = parse_command("bisect mochitest-1")
    assert isinstance(plain, Bisect)
    assert (plain.copies, plain.max_pushes, plain.good) == (3, None, None)


@pytest.mark.parametrize(
    ("text", "column", "says"),
    [
        ("bisect", 7, "needs the job that started failing"),
        ("bisect a b", 10, "one job at a time"),
        ("bisect a from", 14, "`from` needs the push where the job still passes"),
        ("bisect a from abc12", 15, "7 to 40 hex digits"),
        ("bisect a max", 13, "`max` needs a number"),
        ("bisect a max 1 pushes", 14, "2 to 1000 pushes"),
        ("bisect a x13", 10, "1 to 12 times per push"),
        ("bisect a x2 x3", 13, "repeats what column 10 already says"),
        ("bisect a --depth 3", 10, "--depth"),
    ],
)
def test_bad_bisects_point_at_the_column(text: str, column: int, says: str) -> None:
    with pytest.raises(ParseError) as error:
        parse_command(text)
    assert error.value.column == column, str(error.value)
    assert says in str(error.value)


CASES = [
    (16, 2, 0.0),
    (16, 9, 0.0),
    (16, 16, 0.0),
    (16, 11, 0.1),
    (64, 3, 0.0),
    (64, 41, 0.0),
    (64, 50, 0.1),
]


@pytest.mark.parametrize(("count", "break_at", "flaky"), CASES)
async def test_the_culprit_is_found_in_log2_rounds_with_fewer_tasks_than_a_backfill(
    env: Embedded, count: int, break_at: int, flaky: float
) -> None:
    chain = chain_of(env, count, break_at, flaky=flaky, seed=break_at)
    output = await say(env, f"bisect {BROKEN} on {tip(chain)} max {count} pushes")
    culprit = chain.pushes[break_at - 1]
    assert f"found: #{break_at} {culprit.revision[:12]} by dev{break_at % 7}@example.com" in output
    assert f"“Bug {1_900_000 + break_at} - change number {break_at} r=reviewer”" in output
    assert f"the change: https://hg.example.com/{PROJECT}/rev/{culprit.revision}" in output
    rounds = len(re.findall(r"\] round \d+:", output))
    bound = math.ceil(math.log2(count)) + 2
    used = int(re.findall(r"(\d+) tasks \(a backfill of the", output)[-1])
    linear = 3 * (count - 1)
    print(
        f"{count} pushes, break at {break_at}, flaky {flaky}: {rounds} rounds (≤ {bound}), "
        f"{used} tasks against {linear} for a backfill of every push"
    )
    assert rounds <= bound, output
    assert used < linear, output
    state = await load(env.bot, search_id(output))
    assert state is not None
    assert used == sum(created_for(env, str(r["request"])) for r in state.rounds)
    assert await state_of(env, search_id(output)) == RequestState.FINISHED


async def test_what_pushes_ran_already_counts_and_a_push_without_the_job_is_passed_over(
    env: Embedded,
) -> None:
    chain = chain_of(env, 16, 9)
    # push 5 has no such job (its graph was made without it): passed over, said
    decision = chain.pushes[4].decision_task_id
    record = env.tc.queue.tasks[decision]
    for name in ("public/full-task-graph.json", "public/label-to-taskid.json"):
        artifact = record.artifacts[0][name]
        content = json.loads(artifact.content)
        content.pop(BROKEN, None)
        record.artifacts[0][name] = dataclasses.replace(
            artifact, content=json.dumps(content).encode()
        )
    output = await say(env, f"bisect {BROKEN} on {tip(chain)} max 16 pushes")
    assert f"#5 {chain.pushes[4].revision[:12]}: skipped, no `{BROKEN}` in its task graph" in output
    assert f"found: #9 {chain.pushes[8].revision[:12]}" in output, output
    had = re.findall(r"#(\d+) [0-9a-f]{12}: had (\d+) of (\d+) (passed|failed) already", output)
    for number, _, _, how in had:  # a push's own runs were counted before any was added
        assert (how == "failed") == (int(number) >= 9)


async def test_the_failing_push_defaults_to_the_latest_where_the_job_failed(env: Embedded) -> None:
    chain = chain_of(env, 12, 4)
    output = await say(env, f"bisect {BROKEN} on {PROJECT} max 12 pushes")
    assert "found: #4 " + chain.pushes[3].revision[:12] in output, output


async def test_a_job_that_never_failed_and_a_range_without_the_good_push_are_refused(
    env: Embedded,
) -> None:
    chain = chain_of(env, 6, 99)  # never breaks
    never = await say(env, f"bisect {BROKEN} on {PROJECT}")
    assert f"`{BROKEN}` failed on none of the 6 latest pushes" in never
    far = await say(
        env, f"bisect {BROKEN} on {tip(chain)} from {chain.pushes[0].revision[:12]} max 3"
    )
    assert "is not among the 2 pushes before" in far
    several = await say(env, f"bisect 'xpcshell' on {PROJECT}")
    assert "a search follows one: name it" in several
    assert not [
        r for r in env.tc.queue.tasks.values() if "taskbot" in r.definition.get("extra", {})
    ]


async def test_a_named_passing_push_narrows_the_range_and_a_dry_run_schedules_nothing(
    env: Embedded,
) -> None:
    chain = chain_of(env, 16, 12)
    before = len(env.tc.queue.tasks)
    good = chain.pushes[9].revision[:12]
    dry = await say(env, f"bisect {BROKEN} on {tip(chain)} from {good} --dry-run")
    assert "7 pushes, #10 " in dry, dry
    assert "(passes)" in dry
    assert "(dry run: nothing was scheduled)" in dry
    assert len(env.tc.queue.tasks) == before
    output = await say(env, f"bisect {BROKEN} on {tip(chain)} from {good}")
    assert "found: #12 " in output, output
    assert len(re.findall(r"\] round \d+:", output)) <= 1 + math.ceil(math.log2(7))


async def test_a_restart_mid_search_carries_it_on_and_runs_no_round_twice(env: Embedded) -> None:
    chain = chain_of(env, 32, 21)
    env.worker.seconds = 0.5  # slow enough to stop the bot with a round running
    out = io.StringIO()
    await env.bot.handle(
        asked(f"bisect {BROKEN} on {tip(chain)} max 32 pushes"), ConsoleReplier(out)
    )
    request_id = search_id(out.getvalue())
    for _ in range(600):  # until its third round is under way
        state = await load(env.bot, request_id)
        if (
            state is not None
            and len(state.rounds) == 3
            and created_for(env, state.rounds[2]["request"])
        ):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail(out.getvalue())
    await env.bot.stop()  # a crash or a deploy: nothing more of this process
    env.worker.seconds = 0.05
    restarted = Bot(env.bot.settings, env.store, env.bot.clients, instance=env.bot.instance)
    later = io.StringIO()
    assert request_id in await restarted.resume(ConsoleReplier(later))
    assert await restarted.idle(180)
    said = out.getvalue() + later.getvalue()
    assert f"found: #21 {chain.pushes[20].revision[:12]}" in later.getvalue(), said
    state = await load(env.bot, request_id)
    assert state is not None
    numbers = [r["round"] for r in state.rounds]
    assert numbers == list(range(1, len(numbers) + 1))
    for r in state.rounds:  # each round's tasks created once, with its own ids
        assert created_for(env, str(r["request"])) == r["copies"], r
    assert said.count("round 3:") == 1


async def test_cancel_stops_the_search_and_its_running_round(env: Embedded) -> None:
    chain = chain_of(env, 16, 5)
    env.worker.seconds = 3.0  # the round runs while it is cancelled
    out = io.StringIO()
    await env.bot.handle(asked(f"bisect {BROKEN} on {tip(chain)} max 16"), ConsoleReplier(out))
    request_id = search_id(out.getvalue())
    first = round_id(request_id, 1)
    for _ in range(200):
        if created_for(env, first) == 6:
            break
        await asyncio.sleep(0.05)
    cancelled = await say(env, f"cancel {request_id}")
    assert f"Stopped the search {request_id}; cancelled 6 tasks of {first}" in cancelled, cancelled
    said = out.getvalue()
    assert "stopped: cancelled" in said, said
    assert "round 1:" not in said  # a round cut short says nothing of the job
    assert "round 2:" not in said
    assert await state_of(env, request_id) == RequestState.CANCELLED
    assert not created_for(env, round_id(request_id, 2))


async def test_a_search_bigger_than_the_threshold_waits_for_confirm(env: Embedded) -> None:
    env.bot.settings = replace(
        env.bot.settings,
        projects={PROJECT: ProjectSettings(PROJECT, confirm_threshold=20, bisect_tasks=60)},
    )
    chain = chain_of(env, 64, 33)
    held = await say(env, f"bisect {BROKEN} on {tip(chain)} max 64 pushes x3")
    request_id = search_id(held)
    assert "held: up to 27 tasks over up to 8 rounds when runs agree (never more than 60)" in held
    assert "is more than 20." in held, held
    assert f"To go ahead: `confirm {request_id}`" in held
    assert not created_for(env, round_id(request_id, 1))
    output = await say(env, f"confirm {request_id}")
    assert f"found: #33 {chain.pushes[32].revision[:12]}" in output, output


async def test_the_task_limit_stops_a_search_and_says_where(env: Embedded) -> None:
    env.bot.settings = replace(
        env.bot.settings, projects={PROJECT: ProjectSettings(PROJECT, bisect_tasks=12)}
    )
    chain = chain_of(env, 64, 40)
    output = await say(env, f"bisect {BROKEN} on {tip(chain)} max 64 pushes")
    assert "inconclusive: it would need more than the 12 tasks a search may create here" in output
    assert "stopped where the break is in" in output, output


async def test_status_of_a_search_shows_its_rounds_and_its_answer(env: Embedded) -> None:
    chain = chain_of(env, 8, 6)
    output = await say(env, f"bisect {BROKEN} on {tip(chain)} max 8 pushes")
    request_id = search_id(output)
    status = await say(env, f"status {request_id}")
    assert (
        f"[{request_id}] bisect {BROKEN} on {tip(chain)} max 8 pushes: finished: found: #6"
        in status
    )
    assert "  round 1: #8 " in status, status
    listed = await say(env, "status")
    assert f"[{request_id}] bisect" in listed, listed


class Card:
    """A place whose messages are edited in place (as GitHub comments and Matrix messages)."""

    def __init__(self) -> None:
        self.posts: list[str] = []
        self.edits: list[tuple[str, str]] = []

    async def post(self, text: str) -> str:
        self.posts.append(text)
        return f"message-{len(self.posts)}"

    async def react(self, reaction: str) -> None:
        return None

    async def edit(self, reference: str, text: str) -> None:
        self.edits.append((reference, text))


async def test_where_replies_are_edited_the_search_is_one_card_kept_current(
    env: Embedded,
) -> None:
    env.bot.settings = replace(
        env.bot.settings,
        projects={PROJECT: ProjectSettings(PROJECT, treeherder_url="https://th.example.com/")},
    )
    chain = chain_of(env, 16, 10)
    card = Card()
    await env.bot.handle(asked(f"bisect {BROKEN} on {tip(chain)} --notify"), card)
    assert await env.bot.idle(180)
    assert len(card.posts) == 2, card.posts  # the card, then the requester told it ended
    assert card.posts[0].startswith("[r")
    assert "found: #10" in card.posts[1]
    assert {reference for reference, _ in card.edits} == {"message-1"}
    rounds = [len(re.findall(r"round \d+:", text)) for _, text in card.edits]
    assert rounds == sorted(rounds)  # the card only grows, a line per round
    final = card.edits[-1][1]
    assert f"found: #10 {chain.pushes[9].revision[:12]}" in final, final
    assert (
        f"treeherder: https://th.example.com/jobs?repo={PROJECT}&revision="
        f"{chain.pushes[9].revision}&searchStr={BROKEN.replace('/', '%2F')}"
    ) in final
    assert final.count("round 1:") == 1


async def test_in_action_mode_each_round_runs_through_the_pushs_own_action(env: Embedded) -> None:
    env.bot.settings = replace(
        env.bot.settings, projects={PROJECT: ProjectSettings(PROJECT, mode=Mode.ACTION)}
    )
    chain = chain_of(env, 8, 6)
    output = await say(env, f"bisect {BROKEN} on {tip(chain)}")
    assert f"found: #6 {chain.pushes[5].revision[:12]}" in output, output
    rounds = len(re.findall(r"\] round \d+:", output))
    fired = [p for hook in env.tc.hooks.hooks.values() for p in hook.fired]
    assert len(fired) == rounds  # one add-new-jobs action per round, on that round's push
    groups = {p["decision"]["action"]["taskGroupId"] for p in fired}
    assert groups <= {push.decision_task_id for push in chain.pushes}


async def test_a_queue_that_stops_answering_for_a_while_delays_the_search_and_loses_nothing(
    env: Embedded, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("bot.bisecting.RETRY_AFTER", 0.5)
    chain = chain_of(env, 16, 12)
    # every read of a task group fails (after the client's own retries), then the Queue is
    # back; every other answer of the Queue is lost half the time meanwhile
    env.tc.faults = Faults(error_rate=1.0, only="/task-group/")
    out = io.StringIO()
    await env.bot.handle(asked(f"bisect {BROKEN} on {tip(chain)}"), ConsoleReplier(out))
    await asyncio.sleep(3)
    env.tc.faults = Faults(lost_reply_rate=0.5, only="/task/", seed=3)
    await asyncio.sleep(2)
    env.tc.faults = Faults()
    assert await env.bot.idle(180)
    said = out.getvalue()
    assert f"found: #12 {chain.pushes[11].revision[:12]}" in said, said
    assert "error on my side" not in said
    assert "waits after: 500" in caplog.text  # the search itself waited, then carried on
    state = await load(env.bot, search_id(said))
    assert state is not None
    for r in state.rounds:
        assert created_for(env, str(r["request"])) == r["copies"], r


def ending_by_push(env: Embedded, chain: Chain, how: Callable[[int], str]) -> None:
    """The job ends on push N (1 the oldest) as ``how(N)`` says; every other job passes."""

    def decide(record: TaskRecord) -> str | None:
        number = chain.number_of_group(str(record.definition.get("taskGroupId", "")))
        if number is None:
            return None
        return how(number) if task_label(record.definition) == BROKEN else "completed"

    assert env.worker is not None
    env.worker.decide = decide


async def test_where_every_run_ends_in_an_exception_the_search_says_so_and_stops(
    env: Embedded,
) -> None:
    chain = chain_of(env, 16, 9)
    ending_by_push(env, chain, lambda n: "exception" if n == 16 else "completed")
    output = await say(env, f"bisect {BROKEN} on {tip(chain)} max 16 pushes")
    assert "round 1: #16 " in output
    assert "no run ended (6 ended in an exception) → no result" in output, output
    assert (
        "inconclusive: every run of the job on the push it fails on ended in an exception" in output
    )
    assert "round 2:" not in output
    assert "1 round, 6 tasks" in output


async def test_pushes_whose_runs_all_end_in_exceptions_are_passed_over(env: Embedded) -> None:
    chain = chain_of(env, 16, 9)
    ending_by_push(
        env,
        chain,
        lambda n: "exception" if n in (5, 6, 7, 8) else ("failed" if n >= 9 else "completed"),
    )
    output = await say(env, f"bisect {BROKEN} on {tip(chain)} max 16 pushes")
    assert "skipped, every run of the job there ended in an exception" in output, output
    assert f"found: #9 {chain.pushes[8].revision[:12]}" in output, output
    assert "runs kept disagreeing" not in output
    assert len(re.findall(r"\] round \d+:", output)) <= most_rounds(16) + 4


async def test_a_heavy_intermittent_makes_the_answer_say_how_sure_it_is(env: Embedded) -> None:
    chain = chain_of(env, 32, 20, flaky=0.5, seed=7)
    output = await say(env, f"bisect {BROKEN} on {tip(chain)} max 32 pushes")
    assert re.search(r"\d+ of \d+ failed, \d+ passed", output), output  # runs disagreed
    assert "sure: every run agreed" not in output
    assert "less sure: runs disagreed; the job failed" in output, output
    assert re.search(r"would come by chance about once in \d+", output)


async def test_cancel_or_confirm_of_a_search_that_ended_says_so(env: Embedded) -> None:
    chain = chain_of(env, 8, 4)
    output = await say(env, f"bisect {BROKEN} on {tip(chain)} max 8 pushes")
    request_id = search_id(output)
    again = await say(env, f"cancel {request_id}")
    assert f"The search {request_id} is finished already: there is nothing of it to stop." in again
    confirmed = await say(env, f"confirm {request_id}")
    assert "is not waiting for confirmation (it is finished)" in confirmed
    assert await state_of(env, request_id) == RequestState.FINISHED


async def test_a_restart_after_the_answer_says_it_again_but_keeps_it_once(env: Embedded) -> None:
    chain = chain_of(env, 8, 3)
    output = await say(env, f"bisect {BROKEN} on {tip(chain)} max 8 pushes")
    request_id = search_id(output)
    # as if the process died between sending the answer and recording the search ended
    await env.store.set_state(request_id, RequestState.SEARCHING)
    restarted = Bot(env.bot.settings, env.store, env.bot.clients, instance=env.bot.instance)
    later = io.StringIO()
    assert request_id in await restarted.resume(ConsoleReplier(later))
    assert await restarted.idle(60)
    assert f"found: #3 {chain.pushes[2].revision[:12]}" in later.getvalue()
    state = await load(env.bot, request_id)
    assert state is not None
    assert sum(line.startswith("found:") for line in state.lines) == 1
    assert await state_of(env, request_id) == RequestState.FINISHED


async def test_a_good_push_of_another_project_or_beyond_the_pushes_there_are_is_refused(
    env: Embedded,
) -> None:
    chain = chain_of(env, 6, 3)
    other = await say(env, f"bisect {BROKEN} on {tip(chain)} from autoland@{'0' * 12}")
    assert "names another project's push; a search stays on mozilla-central" in other
    beyond = await say(env, f"bisect {BROKEN} on {tip(chain)} from {'0' * 12} max 64")
    assert "is not among the 5 pushes before" in beyond
    assert "no push before them could be found" in beyond, beyond
    dry = await say(env, f"bisect {BROKEN} on {tip(chain)} --dry-run")
    status = await say(env, f"status {search_id(dry)}")
    assert ": previewed" in status, status


async def test_a_job_failing_on_every_push_searched_says_the_break_is_older(env: Embedded) -> None:
    chain = chain_of(env, 8, 1)  # broken since before the chain began
    whole = await say(env, f"bisect {BROKEN} on {tip(chain)} max 8 pushes")
    assert "inconclusive: the job fails on the oldest push searched too" in whole, whole
    assert f"#1 {chain.pushes[0].revision[:12]} is the oldest push that could be found" in whole
    assert "stopped where" not in whole
    part = await say(env, f"bisect {BROKEN} on {tip(chain)} max 4 pushes")
    assert "(it searched 4 pushes: widen it with `max 8 pushes` or `from REVISION`)" in part, part
