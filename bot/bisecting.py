"""A culprit search as it runs: each round runs the job on one push, waits for the runs to
end, counts what the push says of the job and narrows the range; the search's state is kept
in the store after every step, so a restart (or another replica) carries on from there."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from bot.core.replies import EditsInPlace, Replier
from bot.core.request import derived_request_id
from bot.core.runtime import Runtime
from bot.culprit.search import (
    FAILS_AT_THE_END,
    Ask,
    Found,
    Search,
    Stopped,
    Tally,
    Verdict,
    most_rounds,
)
from bot.graph import GraphError
from bot.reporting import group_url, tell_requester, treeherder_url, wishes_of
from bot.scheduling import load_push, materialized, plan_on
from bot.store import RequestRecord, RequestState
from bot.submission import submitter_for
from bot.tc.decision import ArtifactError, DecisionNotFoundError
from bot.tc.evidence import runs_of
from bot.tc.retry import is_transient
from grammar.build import MAX_BISECT_COPIES

log = logging.getLogger(__name__)

ROUND = "bisect-round"  # the command text of a round's request starts with it
STOPPABLE = (RequestState.SEARCHING, RequestState.AWAITING_CONFIRMATION)
ENDED = (RequestState.FINISHED, RequestState.FAILED, RequestState.CANCELLED, RequestState.LOST)
WAIT_EVERY = 1.0  # seconds between two looks at whether a round's tasks have all ended
EXTRA_ROUNDS = 6  # rounds beyond log2 allowed for pushes whose runs disagree
RETRIES = 5  # a search carries on after this many transient errors in a row, no more
RETRY_AFTER = 2.0  # seconds before carrying on after the first one (then doubling)

NOT_THERE = "no `{label}` in its task graph"
UNREADABLE = "its task graph could not be read ({error})"
NO_RUNS = "every run of the job there ended in an exception"
NO_RUNS_WHERE_IT_FAILS = (
    "every run of the job on the push it fails on ended in an exception: it cannot run there now"
)
TASK_LIMIT = "it would need more than the {cap} tasks a search may create here (`bisect_tasks`)"
ROUND_LIMIT = "runs kept disagreeing after {rounds} rounds"
NOT_SCHEDULED = "round {round} could not be scheduled: {error}"
CANCELLED = "cancelled"
SURE_ENOUGH = 0.05  # an answer the intermittent alone explains more often is worth checking


@dataclass
class PushRef:
    """One push of the range: its place in the pushlog (0: none), revision, decision task."""

    pushlog_id: int
    revision: str
    decision: str
    owner: str = ""

    def name(self) -> str:
        place = f"#{self.pushlog_id} " if self.pushlog_id else ""
        return f"{place}{self.revision[:12]}"


@dataclass
class SearchState:
    """All a search needs to carry on: the range, what each push said, its rounds."""

    project: str
    label: str
    pushes: list[PushRef]  # oldest first; the last one is where the job fails
    copies: int
    max_copies: int
    good: int | None  # the push named as passing, if one was
    task_cap: int
    header: str
    tallies: dict[int, list[int]] = field(default_factory=dict)  # push -> [passed, failed]
    looked: list[int] = field(default_factory=list)  # pushes whose own runs were counted
    missing: dict[int, str] = field(default_factory=dict)  # push -> why the job cannot run
    rounds: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the card's lines under its header
    tasks: int = 0  # tasks the rounds created
    halted: str | None = None  # why the search cannot go on, found on the way
    answer: list[str] = field(default_factory=list)  # its last lines, once it ended
    walked_all: bool = True  # False: no push older than the oldest here could be found

    def search(self) -> Search:
        search = Search(
            len(self.pushes),
            copies=self.copies,
            max_copies=self.max_copies,
            good=self.good,
            missing=set(self.missing),
        )
        for push, (passed, failed) in self.tallies.items():
            search.tallies[push] = Tally(passed, failed)
        return search

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["tallies"] = {str(k): v for k, v in self.tallies.items()}
        data["missing"] = {str(k): v for k, v in self.missing.items()}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SearchState:
        data = json.loads(text)
        data["pushes"] = [PushRef(**p) for p in data["pushes"]]
        data["tallies"] = {int(k): v for k, v in data["tallies"].items()}
        data["missing"] = {int(k): v for k, v in data["missing"].items()}
        return cls(**data)

    def most_rounds(self) -> int:
        return most_rounds(len(self.pushes)) + EXTRA_ROUNDS

    def range_line(self, search: Search) -> str:
        """Where the break can be now."""
        low = search.good if search.good is not None else -1
        candidates = [p for p in range(low + 1, search.bad + 1) if p not in self.missing]
        first, last = self.pushes[low + 1], self.pushes[search.bad]
        count = len(candidates)
        where = last.name() if count == 1 else f"{first.name()} … {last.name()}"
        return f"the break is in {where} ({count} push{'es' if count != 1 else ''})"


def is_round(record: RequestRecord) -> bool:
    """Whether ``record`` is a round of a culprit search (reported by its search)."""
    return (record.command or "").startswith(ROUND)


def round_id(search_id: str, number: int) -> str:
    return derived_request_id("bisect", f"{search_id}/{number}")


class Silent:
    """Where a round's own replies go: nowhere (its search reports for it)."""

    async def post(self, text: str) -> str:
        return ""

    async def react(self, reaction: str) -> None:
        return None


async def stop_search(
    bot: Runtime, record: RequestRecord, state: SearchState
) -> list[RequestRecord]:
    """Stop the search ``record`` (one in a ``STOPPABLE`` state); its rounds still running,
    whose tasks the caller cancels."""
    await bot.store.set_state(record.id, RequestState.CANCELLED, error="cancelled")
    running = []
    for round_ in state.rounds:
        found = await bot.store.request(str(round_["request"]))
        if found is not None and found.state not in ENDED:
            running.append(found)
    return running


async def save(bot: Runtime, request_id: str, state: SearchState) -> None:
    await bot.store.save_search(request_id, state.to_json())


async def load(bot: Runtime, request_id: str) -> SearchState | None:
    text = await bot.store.search(request_id)
    return SearchState.from_json(text) if text is not None else None


def card_of(request_id: str, state: SearchState) -> str:
    return "\n".join([state.header, *(f"  {line}" for line in state.lines)])


async def show(
    bot: Runtime, replier: Replier, record: RequestRecord, state: SearchState, new: list[str]
) -> None:
    """The card with the search's lines: edited in place where replies can be, else the
    new lines as one message (nothing but the end when the requester asked for quiet)."""
    body = card_of(record.id, state)
    earlier = await bot.store.reply(record.id, "chat", record.place)
    reference = str(earlier["reference"]) if earlier and earlier["reference"] else None
    try:
        if isinstance(replier, EditsInPlace) and reference:
            await replier.edit(reference, body)
        elif earlier is None:
            reference = await replier.post(body)
        elif new:
            await replier.post("\n".join(f"[{record.id}] {line}" for line in new))
    except Exception as error:  # the store has the lines: the next edit catches up
        log.warning("the card of %s could not be updated: %s", record.id, error)
        return
    await bot.store.save_reply(record.id, "chat", record.place, body, reference)


async def run_search(bot: Runtime, replier: Replier, request_id: str) -> None:
    """Carry the search on until it ends; once per process at a time, and by the replica
    holding the request."""
    if request_id in bot.following:
        return
    bot.following.add(request_id)
    try:
        async with bot.renewing(request_id) as lost:
            for attempt in range(RETRIES + 1):
                try:
                    await _run(bot, replier, request_id, lost)
                    break
                except Exception as error:
                    if not is_transient(error) or attempt == RETRIES:
                        raise
                    # Taskcluster or the store did not answer: every step is kept, so the
                    # search carries on from the last one (a round is never made twice).
                    log.warning("the search %s waits after: %s", request_id, error)
                    await asyncio.sleep(RETRY_AFTER * 2**attempt)
    except Exception:
        log.exception("the culprit search %s failed", request_id)
        with contextlib.suppress(Exception):
            await bot.store.set_state(request_id, RequestState.FAILED, error="crashed")
            await replier.post(f"[{request_id}] the search stopped on an error on my side.")
    finally:
        bot.following.discard(request_id)


async def _run(bot: Runtime, replier: Replier, request_id: str, lost: asyncio.Event) -> None:
    state = await load(bot, request_id)
    record = await bot.store.request(request_id)
    if state is None or record is None:
        return
    quiet = wishes_of(record).quiet
    while not lost.is_set():
        record = await bot.store.request(request_id)
        assert record is not None
        if record.state != RequestState.SEARCHING:
            if record.state == RequestState.CANCELLED:
                await _end(bot, replier, record, state, [f"stopped: {CANCELLED}"], None)
            return
        search = state.search()
        step = search.next()
        if state.halted is not None:
            step = Stopped(state.halted, None, None)
        if isinstance(step, Found | Stopped):
            await _finish(bot, replier, record, state, search, step)
            return
        if step.push not in state.looked:  # what the push says already, before adding to it
            new = await _look(bot, state, step.push)
            await save(bot, request_id, state)
            if new and not quiet:
                await show(bot, replier, record, state, new)
            continue
        open_round = state.rounds[-1] if state.rounds and state.rounds[-1]["open"] else None
        if open_round is None:
            problem = _over_limits(state, step)
            if problem:
                await _finish(bot, replier, record, state, search, Stopped(problem, None, None))
                return
            open_round = {
                "round": len(state.rounds) + 1,
                "push": step.push,
                "copies": step.copies,
                "request": round_id(request_id, len(state.rounds) + 1),
                "open": True,
            }
            state.rounds.append(open_round)
            await save(bot, request_id, state)  # before any task: a restart finds the round
        error = await _schedule_round(bot, record, state, open_round)
        if error is None:
            error = await _wait(bot, request_id, open_round["request"], lost)
        if lost.is_set():
            return
        if error == CANCELLED:
            continue  # the search itself was cancelled: said at the top
        if error is not None:
            said = NOT_SCHEDULED.format(round=open_round["round"], error=error)
            await _finish(bot, replier, record, state, search, Stopped(said, None, None))
            return
        line = await _count_round(bot, state, open_round)
        open_round["open"] = False
        await save(bot, request_id, state)
        if not quiet:
            await show(bot, replier, record, state, [line])


async def _look(bot: Runtime, state: SearchState, push: int) -> list[str]:
    """Count the runs the push has of the job already; a push without the job is passed
    over. The lines to add to the card, if any."""
    ref = state.pushes[push]
    state.looked.append(push)
    try:
        loaded = await load_push(bot, state.project, ref.revision, ref.decision)
    except (ArtifactError, GraphError, DecisionNotFoundError) as error:
        state.missing[push] = UNREADABLE.format(error=str(error)[:200])
    else:
        if state.label not in loaded.graph:
            state.missing[push] = NOT_THERE.format(label=state.label)
    if push in state.missing:
        line = f"{ref.name()}: skipped, {state.missing[push]}"
        state.lines.append(line)
        return [line]
    runs = await runs_of(bot.clients.queue, ref.decision, state.label)
    state.tallies[push] = [runs.passed, runs.failed]
    if not runs.passed + runs.failed:
        return []
    line = f"{ref.name()}: had {_runs(runs.passed, runs.failed)} already"
    state.lines.append(line)
    return [line]


def _over_limits(state: SearchState, ask: Ask) -> str | None:
    if len(state.rounds) >= state.most_rounds():
        return ROUND_LIMIT.format(rounds=len(state.rounds))
    if state.tasks + ask.copies > state.task_cap:
        return TASK_LIMIT.format(cap=state.task_cap)
    return None


async def _schedule_round(
    bot: Runtime, record: RequestRecord, state: SearchState, round_: dict[str, Any]
) -> str | None:
    """Create the round's tasks, once: a round recorded before a restart is carried on
    (same taskIds), never planned twice. None, or why it could not be."""
    round_request = str(round_["request"])
    earlier = await bot.store.request(round_request)
    if earlier is not None:
        if earlier.state in (RequestState.RECEIVED, RequestState.PLANNED):
            if not await bot.store.plan(round_request):
                return earlier.error or "not planned"
            await _submit(bot, state, earlier)  # planned, then this process stopped
        return None
    ref = state.pushes[int(round_["push"])]
    try:
        push = await load_push(bot, state.project, ref.revision, ref.decision)
        planned = await plan_on(bot, push, [state.label], round_request, int(round_["copies"]))
    except (ArtifactError, GraphError, DecisionNotFoundError) as error:
        return str(error)[:300]
    number = round_["round"]
    await bot.store.add_request(
        round_request,
        source=record.source,
        actor=record.actor,
        place=record.place,
        text=f"round {number} of {record.id}",
        command=f"{ROUND} {number} of {record.id}: {state.label} x{round_['copies']}",
        project=state.project,
        revision=ref.revision,
        decision_task_id=ref.decision,
    )
    _, planned_tasks = await materialized(
        bot, round_request, f"{record.source}:{record.actor}", [(push, planned)]
    )
    await bot.store.save_plan(round_request, planned_tasks)
    made = await bot.store.request(round_request)
    assert made is not None
    await _submit(bot, state, made)
    return None


async def _submit(bot: Runtime, state: SearchState, round_request: RequestRecord) -> None:
    """As the project creates jobs: by createTask, or through the push's own action."""
    submitter = submitter_for(bot.settings.project(state.project))
    await bot.store.set_state(round_request.id, submitter.state)
    await submitter.submit(bot, Silent(), round_request, None)


async def _wait(
    bot: Runtime, search_id: str, round_request: str, lost: asyncio.Event
) -> str | None:
    """Wait for the round's tasks to end (its request followed as any other); None, or
    why the round came to nothing."""
    while not lost.is_set():
        searching = await bot.store.request(search_id)
        if searching is None or searching.state != RequestState.SEARCHING:
            return CANCELLED  # (its round then ended as cancelled: no result of the job)
        record = await bot.store.request(round_request)
        if record is None:
            return "its request is gone"
        if record.state == RequestState.FAILED:
            return record.error or "its tasks could not be created"
        if record.state in ENDED:
            return None
        await asyncio.sleep(min(WAIT_EVERY, bot.settings.poll_interval))
    return None


async def _count_round(bot: Runtime, state: SearchState, round_: dict[str, Any]) -> str:
    """What the round's runs said, and the push's runs in all counted; the card's line."""
    push = int(round_["push"])
    ref = state.pushes[push]
    stored = await bot.store.plan(str(round_["request"]))
    state.tasks += sum(1 for t in stored if t.submitted)
    mine = [t for t in stored if t.requested]
    passed = sum(t.state == "completed" for t in mine)
    failed = sum(t.state == "failed" for t in mine)
    runs = await runs_of(bot.clients.queue, ref.decision, state.label)
    state.tallies[push] = [runs.passed, runs.failed]
    if mine and not passed + failed:  # no run of this round said anything of the job
        if push == len(state.pushes) - 1:
            state.halted = NO_RUNS_WHERE_IT_FAILS
        else:
            state.missing[push] = NO_RUNS
    after = state.search()
    step = after.next()  # settles what the runs prove before the push is judged
    verdict = after.judge(push)
    said = f"round {round_['round']}: {ref.name()} x{round_['copies']}: {_runs(passed, failed)}"
    if passed + failed < len(mine):
        said += f" ({len(mine) - passed - failed} ended in an exception)"
    if push in state.missing:
        said += f" → skipped, {state.missing[push]}"
    elif verdict is Verdict.UNDECIDED and isinstance(step, Stopped) and not runs.failed:
        said += " → passes"
    elif state.halted is not None:
        said += " → no result"
    elif verdict is Verdict.UNDECIDED:
        said += f" → undecided ({_runs(runs.passed, runs.failed)} in all): more copies"
    else:
        said += f" → {verdict.value}"
        if isinstance(step, Ask):
            said += "; " + state.range_line(after)
    state.lines.append(said)
    return said


def _runs(passed: int, failed: int) -> str:
    runs = passed + failed
    if not runs:
        return "no run ended"
    if failed == 0:
        return f"{passed} of {runs} passed"
    if passed == 0:
        return f"{failed} of {runs} failed"
    return f"{failed} of {runs} failed, {passed} passed"


async def _finish(
    bot: Runtime,
    replier: Replier,
    record: RequestRecord,
    state: SearchState,
    search: Search,
    step: Found | Stopped,
) -> None:
    """The answer: the first bad push with who pushed it and what, how its runs and its
    parent's went, how sure, and links; or why the search stopped and where."""
    lines: list[str]
    if isinstance(step, Found):
        bad, good = state.pushes[step.first_bad], state.pushes[step.last_good]
        b_passed, b_failed = state.tallies.get(step.first_bad, [0, 0])
        g_passed, g_failed = state.tallies.get(step.last_good, [0, 0])
        message, repository = await _about(bot, bad)
        who = f" by {bad.owner}" if bad.owner else ""
        what = f": “{message}”" if message else ""
        sure = "sure: every run agreed" if step.sure else _unsure(state, search, step)
        lines = [
            f"found: {bad.name()}{who}{what}",
            f"  on it {_runs(b_passed, b_failed)}; on {good.name()} before it "
            f"{_runs(g_passed, g_failed)}; {sure}",
        ]
        if step.between:
            skipped = ", ".join(state.pushes[p].name() for p in step.between)
            lines.append(f"  or one of {skipped}, where the job could not run")
        lines += _links(bot, state, bad, good, repository)
    else:
        lines = [f"inconclusive: {step.reason}"]
        if step.reason == FAILS_AT_THE_END and state.walked_all:
            lines.append(
                f"  (it searched {len(state.pushes)} pushes: widen it with "
                f"`max {min(len(state.pushes) * 2, 1000)} pushes` or `from REVISION`)"
            )
        elif step.reason == FAILS_AT_THE_END:
            lines.append(f"  ({state.pushes[0].name()} is the oldest push that could be found)")
        elif search.good is not None or search.bad != len(state.pushes) - 1:
            lines.append(f"  stopped where {state.range_line(search)}")
    await _end(bot, replier, record, state, lines, step)


def _unsure(state: SearchState, search: Search, found: Found) -> str:
    """How sure the answer is when runs disagreed, with the numbers it rests on."""
    background = search.background()
    if not background.failed:
        return (
            "less sure: runs disagreed (the job fails only now and then where it is broken), "
            "so pushes were judged by how often it failed"
        )
    chance = search.by_chance(found.first_bad)
    failed = search.tallies[found.first_bad].failed
    said = (
        f"less sure: runs disagreed; the job failed {background.failed} of {background.runs} "
        f"runs on the pushes that pass (an intermittent), so {failed} "
        f"failure{'s' if failed != 1 else ''} on {state.pushes[found.first_bad].name()} would "
        f"come by chance about once in {max(1, round(1 / chance))}"
    )
    if chance > SURE_ENOUGH:
        bad, good = state.pushes[found.first_bad], state.pushes[found.last_good]
        said += (
            f"; to be surer: `bisect {state.label} on {bad.revision[:12]} "
            f"from {good.revision[:12]} x{min(2 * state.copies, MAX_BISECT_COPIES)}`"
        )
    return said


async def _about(bot: Runtime, ref: PushRef) -> tuple[str, str]:
    """The push's tip message (its first line) and its repository, as its parameters say
    (best effort: a line of context; its parameters were read as the pushes were walked)."""
    try:
        parameters = await bot.decisions.parameters(ref.decision)
    except Exception as error:
        log.info("what %s is about is unknown: %s", ref.revision, error)
        return "", ""
    text = str(parameters.get("message") or "").strip()
    message = " ".join(text.splitlines()[0].split())[:120] if text else ""
    return message, str(parameters.get("head_repository") or "")


def _links(
    bot: Runtime, state: SearchState, bad: PushRef, good: PushRef, repository: str
) -> list[str]:
    """Where to read the change and see its jobs: two lines, to fit a page of IRC."""
    read = []
    if repository.startswith("https://"):
        on_github = repository.startswith("https://github.com/")
        path = "commit" if on_github else "rev"  # GitHub's commits, Mercurial's changesets
        read.append(f"the change: {repository.rstrip('/')}/{path}/{bad.revision}")
    treeherder = treeherder_url(bot, state.project, bad.revision, searchStr=state.label)
    if treeherder:
        read.append(f"treeherder: {treeherder}")
    before = group_url(bot, good.decision)
    tasks = f"its tasks: {group_url(bot, bad.decision)} (before it: {before})"
    return [f"  {'; '.join(read)}", f"  {tasks}"] if read else [f"  {tasks}"]


async def _end(
    bot: Runtime,
    replier: Replier,
    record: RequestRecord,
    state: SearchState,
    lines: list[str],
    step: Found | Stopped | None,
) -> None:
    linear = state.copies * (len(state.pushes) - 1)
    rounds = len(state.rounds)
    if state.answer:  # said before a restart cut it short: said again, not added again
        lines = state.answer
    else:
        lines = [
            *lines,
            f"  {rounds} round{'s' if rounds != 1 else ''}, {state.tasks} task"
            f"{'s' if state.tasks != 1 else ''} (a backfill of the {len(state.pushes) - 1} "
            f"pushes x{state.copies}: {linear})",
        ]
        state.answer = lines
        state.lines += lines
        await save(bot, record.id, state)
    await show(bot, replier, record, state, lines)
    await tell_requester(bot, replier, record, lines[0])
    if step is not None:  # a cancelled search is cancelled already
        await bot.store.set_state(record.id, RequestState.FINISHED, error=lines[0])
