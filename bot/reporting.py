"""A request's status card, kept current as its tasks finish, and its progress beside the chat
where the place can show it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from itertools import dropwhile
from typing import Any
from urllib.parse import quote

from bot.core.replies import EditsInPlace, FindsCard, Notifies, Replier, ShowsProgress
from bot.core.request import Progress
from bot.core.runtime import Runtime
from bot.metrics import ERRORS
from bot.store import PlannedTask, RequestRecord, RequestState
from bot.tc.errorsummary import MAX_BYTES, first_errors, summary_names
from bot.tc.tracking import TasksLostError, Tracker
from grammar import ParseError, parse_command

log = logging.getLogger(__name__)
SHOWN = 15  # jobs listed in a card or a preview; the rest are counted


def task_url(ctx_bot: Runtime, task_id: str) -> str:
    return f"{ctx_bot.clients.queue.options['rootUrl']}/tasks/{task_id}"


def group_url(ctx_bot: Runtime, group_id: str) -> str:
    return f"{ctx_bot.clients.queue.options['rootUrl']}/tasks/groups/{group_id}"


def treeherder_url(
    bot: Runtime, project: str | None, revision: str | None, **query: str
) -> str | None:
    """Treeherder's jobs of a push, narrowed by ``query`` (``searchStr``: a job;
    ``selectedTaskRun``: a task's run); None where the project names no Treeherder."""
    treeherder = bot.settings.project(project).treeherder_url
    if not treeherder or not revision:
        return None
    narrowed = "".join(f"&{key}={quote(value, safe='')}" for key, value in query.items())
    return f"{treeherder.rstrip('/')}/jobs?repo={project}&revision={revision}{narrowed}"


def task_group_of(record: RequestRecord, stored: Iterable[PlannedTask]) -> str:
    """The request's task group (its push's decision task); a request recorded before the
    group was stored with it finds it in its planned tasks."""
    if record.decision_task_id:
        return record.decision_task_id
    return next((str(t.definition["taskGroupId"]) for t in stored), "")


def revision_of_task(definition: dict[str, Any]) -> str:
    """The revision of the push the bot made a task for (as it noted in ``extra``), or ""."""
    noted = (definition.get("extra") or {}).get("taskbot") or {}
    return str(noted.get("revision") or "") if isinstance(noted, dict) else ""


def push_of_task(definition: dict[str, Any]) -> str:
    """How a request's line names a task's push: its revision, short, else its task group."""
    return revision_of_task(definition)[:12] or str(definition.get("taskGroupId") or "?")


def groups_of(stored: Iterable[PlannedTask]) -> list[str]:
    """The task groups (pushes) of a request's tasks, in plan order."""
    found = (str(t.definition.get("taskGroupId") or "") for t in stored)
    return [group for group in dict.fromkeys(found) if group]


def by_push(record: RequestRecord, stored: Iterable[PlannedTask]) -> bool:
    """Whether the request's tasks are on pushes other than its own (a backfill)."""
    own = record.decision_task_id
    return any(group != own for group in groups_of(stored)) if own else False


async def post_card(
    bot: Runtime,
    replier: Replier,
    record: RequestRecord,
    stored: list[PlannedTask],
    header: str | None = None,
    *,
    resumed: bool = False,
) -> dict[str, Any]:
    """The status card: what was asked, where the tasks are. Posted once; an attempt that
    carries on after a crash brings the card it finds up to date instead."""
    request_id = record.id
    group = task_group_of(record, stored)
    lines = [header or f"[{request_id}] {record.command}", f"  task group: {group_url(bot, group)}"]
    wanted = requested_tasks(stored)
    several = by_push(record, stored)
    jobs = {t.label for t in wanted}
    # Treeherder shows the request's job alone (its filter box) when it asked for one
    query = {"searchStr": jobs.pop()} if len(jobs) == 1 else {}
    treeherder = None if several else treeherder_url(bot, record.project, record.revision, **query)
    if treeherder:
        lines.append(f"  treeherder: {treeherder}")
    for task in wanted[:SHOWN]:
        where = f"{push_of_task(task.definition)} " if several else ""
        lines.append(f"  {where}{task.label}: {task_url(bot, task.task_id)}")
    if len(wanted) > SHOWN:
        lines.append(f"  … and {len(wanted) - SHOWN} more")
    body = "\n".join(lines)
    earlier = await bot.store.reply(request_id, "chat", record.place)
    reference = str(earlier["reference"]) if earlier and earlier["reference"] else None
    if reference is None and resumed and isinstance(replier, FindsCard):
        reference = await replier.find_card(request_id)  # posted, then the poster died
    if isinstance(replier, EditsInPlace) and reference is not None:
        # an earlier attempt posted the card before it stopped: bring that one up to date
        await replier.edit(reference, body)
    else:
        reference = await replier.post(body)
    await bot.store.save_reply(request_id, "chat", record.place, body, reference)
    await report_progress(bot, replier, record, body, f"{len(stored)} tasks submitted")
    return {"body": body, "reference": reference}


async def card_again(
    bot: Runtime, replier: Replier, record: RequestRecord, header: str | None
) -> None:
    """Answer a repeated command whose request is submitted: with its card. Where replies
    are edited in place and this process follows the request, the card is current already;
    posting it again would set it back (a finished card to a fresh one)."""
    if isinstance(replier, EditsInPlace) and record.id in bot.following:
        return
    await post_card(bot, replier, record, await bot.store.plan(record.id), header, resumed=True)


async def report_progress(
    bot: Runtime,
    replier: Replier,
    record: RequestRecord,
    text: str,
    title: str,
    *,
    finished: bool = False,
    failed: int = 0,
) -> None:
    """Show where the request stands beside the chat, where the replier can (a GitHub check
    run). Best effort: the status card has said it already, so a failure is only logged."""
    if not isinstance(replier, ShowsProgress) or not record.revision:
        return
    earlier = await bot.store.reply(record.id, "check", record.place)
    reference = str(earlier["reference"]) if earlier and earlier["reference"] else None
    progress = Progress(
        record.id,
        record.revision,
        f"[{record.id}] {record.command or record.text}",
        title,
        text,
        group_url(bot, record.decision_task_id or ""),
        finished=finished,
        failed=failed,
    )
    try:
        reference = await replier.show_progress(reference, progress)
    except Exception as error:
        ERRORS.labels(record.source).inc()
        log.warning("the check run of %s could not be updated: %s", record.id, error)
        return
    if reference is not None:
        await bot.store.save_reply(record.id, "check", record.place, title, reference)


def requested_tasks(stored: list[PlannedTask]) -> list[PlannedTask]:
    """The tasks people asked for, not their dependencies (a requested job may also be a
    dependency of another: a build and its tests). Plans stored before the store kept the
    flag: every task nothing else in the plan depends on, plus copies."""
    if any(t.requested for t in stored):
        return [t for t in stored if t.requested]
    depended = {d for t in stored for d in t.definition.get("dependencies", [])}
    return [t for t in stored if t.task_id not in depended or t.copy > 0]


@dataclass(frozen=True, slots=True)
class Wishes:
    """How the requester asked to hear of the request: told when it ends (``--notify``),
    or only then (``--quiet``)."""

    notify: bool = False
    quiet: bool = False


def wishes_of(record: RequestRecord) -> Wishes:
    """The ``--notify``/``--quiet`` of the request's command (as the store keeps it)."""
    try:
        command = parse_command(record.command or "")
    except ParseError:
        return Wishes()
    return Wishes(bool(getattr(command, "notify", False)), bool(getattr(command, "quiet", False)))


async def tell_requester(bot: Runtime, replier: Replier, record: RequestRecord, text: str) -> None:
    """Tell the requester the request ended, when they asked to be told (``--notify``):
    a private message or a mention where the place has one, else a reply. Best effort."""
    if not wishes_of(record).notify:
        return
    said = f"[{record.id}] {record.command}: {text}"
    try:
        if isinstance(replier, Notifies):
            await replier.notify(record.actor, said)
        else:
            await replier.post(said)
    except Exception as error:
        log.warning("could not tell %s that %s ended: %s", record.actor, record.id, error)


async def track(bot: Runtime, replier: Replier, request_id: str) -> None:
    """Follow the request's tasks; the store keeps every state. Where replies can be edited
    (GitHub) the status card is edited in place; elsewhere (console, IRC) a line is sent
    as each task finishes. A summary ends it either way. Once per process at a time."""
    if request_id in bot.following:
        return
    bot.following.add(request_id)
    try:
        await _follow(bot, replier, request_id)
    finally:
        bot.following.discard(request_id)


async def _follow(bot: Runtime, replier: Replier, request_id: str) -> None:
    record = await bot.store.request(request_id)
    assert record is not None
    stored = {t.task_id: t for t in await bot.store.plan(request_id)}
    card = await bot.store.reply(request_id, "chat", record.place)
    in_place = replier if isinstance(replier, EditsInPlace) else None
    if in_place is not None and card is None:  # the replica that submitted it died before the card
        card = await post_card(bot, replier, record, list(stored.values()), resumed=True)
    tracker = Tracker(
        bot.clients.queue,
        task_group_of(record, stored.values()),
        set(stored),
        amqp_url=bot.settings.amqp_url,
        poll_interval=bot.settings.poll_interval,
        other_groups=tuple(groups_of(stored.values())),
    )
    several = by_push(record, stored.values())
    quiet = wishes_of(record).quiet  # only the final state is posted
    shown = said_quarter = 0
    said_at = asyncio.get_running_loop().time()

    async def show(body: str, title: str) -> None:
        assert in_place is not None
        assert card is not None
        await in_place.edit(card["reference"], body)
        await report_progress(bot, replier, record, body, title)

    edits = Coalesced(show, bot.settings.edit_interval)
    try:
        async with (
            bot.renewing(request_id) as lost,
            contextlib.aclosing(tracker.updates()) as updates,
            contextlib.aclosing(edits),
        ):
            async for update in updates:
                if lost.is_set():
                    log.warning("another replica follows %s now; this one stops", request_id)
                    return
                await bot.store.set_task_state(update.task_id, update.state)
                if update.state not in ("completed", "failed", "exception"):
                    continue
                counts = tracker.summary()
                # A task run again (a retry) is not done any more; the count shown never
                # goes back all the same.
                done = shown = max(shown, sum(counts[s] for s in FINISHED))
                if quiet:
                    continue
                if in_place is not None:
                    assert card is not None
                    title = f"{done}/{len(stored)} done: {_counts(counts)}"
                    body = render_card(
                        bot, card["body"], stored, tracker.states, title, by_push=several
                    )
                    edits.update(body, title)
                    continue
                # A line-based chat gets a line at each quarter, after a quiet while, and
                # for each failure (named): not one per finished task.
                task = stored[update.task_id]
                line = f"[{request_id}] {done}/{len(stored)} done: {_counts(counts)}"
                quarter = done * 4 // len(stored)
                now = asyncio.get_running_loop().time()
                if update.state != "completed":
                    where = f" on {push_of_task(task.definition)}" if several else ""
                    line += f": {task.label}{where} {update.state} {task_url(bot, update.task_id)}"
                elif quarter == said_quarter and now - said_at < LINE_EVERY:
                    continue
                said_quarter, said_at = quarter, now
                await replier.post(line)
    except TasksLostError as gone:
        await _lost(bot, replier, record, gone)
        return
    except Exception:
        log.exception("tracking %s failed", request_id)
        return
    if lost.is_set():
        return
    counts = tracker.summary()
    summary = f"finished: {_counts(counts)}"
    # The final reply goes first and the state after it: a replica that dies in between
    # leaves the request open, and whoever takes it over sends the summary again.
    try:
        ending = await ending_of(bot, record, stored, tracker.states)
        if in_place is not None:
            assert card is not None
            body = render_card(bot, card["body"], stored, tracker.states, summary, by_push=several)
            body += "".join(f"\n- {line}" for line in ending.markdown())
            await bot.store.save_reply(request_id, "chat", record.place, body, None)
            await in_place.edit(card["reference"], body)
            failed = counts["failed"] + counts["exception"]
            await report_progress(bot, replier, record, body, summary, finished=True, failed=failed)
        else:
            lines = [f"[{request_id}] {summary}", *(f"  {line}" for line in ending.plain())]
            await replier.post("\n".join(lines))
    except Exception:
        # The summary is in the store; the reply is what failed: finish anyway.
        log.exception("the final reply of %s could not be sent", request_id)
    if not lost.is_set():
        await tell_requester(bot, replier, record, summary)
        await bot.store.set_state(request_id, RequestState.FINISHED)


FINISHED = ("completed", "failed", "exception")
FAILURES_SHOWN = 5  # failed jobs named, with their links, in a request's final reply
LOG = "public/logs/live_backing.log"
MORE_FAILED = "… and {count} more failed"


@dataclass(frozen=True, slots=True)
class Failure:
    """A job of a request that failed, and where a sheriff looks at it."""

    label: str
    state: str  # failed, exception, or cancelled
    task: str
    log: str | None  # None: the run never started, so it has none
    treeherder: str | None
    errors: tuple[str, ...] = ()  # the first lines of its error summary, where it has one

    def plain(self) -> str:
        found = f"{self.label} {self.state}: {self.task}"
        found += f" log: {self.log}" if self.log else ""
        found += f" treeherder: {self.treeherder}" if self.treeherder else ""
        return found + "".join(f"\n    {line}" for line in self.errors)

    def markdown(self) -> str:
        links = [f"[task]({self.task})"] + ([f"[log]({self.log})"] if self.log else [])
        if self.treeherder:
            links.append(f"[Treeherder]({self.treeherder})")
        found = f"**{self.label}** {self.state}: " + " · ".join(links)
        return found + "".join(f"\n  `{line}`" for line in self.errors)


async def failures_of(
    bot: Runtime, record: RequestRecord, stored: dict[str, PlannedTask], states: dict[str, str]
) -> tuple[list[Failure], int]:
    """The request's failed jobs (those asked for first), at most ``FAILURES_SHOWN``, each
    with its task, its log and its Treeherder job (the run that failed); and how many more
    failed."""
    failed = [t for t in stored.values() if states.get(t.task_id) in ("failed", "exception")]
    failed.sort(key=lambda t: (not t.requested, t.position))
    root = bot.clients.queue.options["rootUrl"].rstrip("/")
    several = by_push(record, stored.values())
    found: list[Failure] = []
    summaries: list[tuple[int, str, int]] = []  # (failure, task, run) with an error summary
    for task in failed[:FAILURES_SHOWN]:
        run, state, started = 0, states[task.task_id], True
        with contextlib.suppress(Exception):  # the links still help without the run's number
            runs = (await bot.clients.queue.status(task.task_id))["status"]["runs"]
            if runs:
                run, started = int(runs[-1]["runId"]), "started" in runs[-1]
                if runs[-1].get("reasonResolved") == "canceled":
                    state = "cancelled"
        revision = revision_of_task(task.definition) or record.revision
        jobs = treeherder_url(
            bot, record.project, revision, selectedTaskRun=f"{task.task_id}.{run}"
        )
        if started and states[task.task_id] == "failed":
            summaries.append((len(found), task.task_id, run))
        found.append(
            Failure(
                f"{task.label} on {push_of_task(task.definition)}" if several else task.label,
                state,
                task_url(bot, task.task_id),
                f"{root}/api/queue/v1/task/{task.task_id}/runs/{run}/artifacts/{LOG}"
                if started
                else None,
                jobs,
            )
        )
    # read all at once: the reply waits for the slowest only
    read = await asyncio.gather(*(error_lines(bot, task, run) for _, task, run in summaries))
    for (n, _, _), errors in zip(summaries, read, strict=True):
        found[n] = replace(found[n], errors=tuple(errors))
    return found, len(failed) - len(found)


@dataclass(frozen=True, slots=True)
class Ending:
    """What a finished request's reply says under its summary: a line per push of a request
    on several (a backfill), its failed jobs with their links, and how many more failed."""

    pushes: tuple[str, ...]
    failures: tuple[Failure, ...]
    unnamed: int

    def plain(self) -> list[str]:
        return [*self.pushes, *(f.plain() for f in self.failures), *self._more()]

    def markdown(self) -> list[str]:
        return [*self.pushes, *(f.markdown() for f in self.failures), *self._more()]

    def _more(self) -> list[str]:
        return [MORE_FAILED.format(count=self.unnamed)] if self.unnamed else []


async def ending_of(
    bot: Runtime, record: RequestRecord, stored: dict[str, PlannedTask], states: dict[str, str]
) -> Ending:
    """The request's ending as its tasks' ``states`` tell it (the final reply, ``status``)."""
    failures, unnamed = await failures_of(bot, record, stored, states)
    several = by_push(record, stored.values())
    pushes = push_results(stored, states) if several else []
    return Ending(tuple(pushes), tuple(failures), unnamed)


ERROR_SUMMARY_SECONDS = 5.0  # a failed task's error summary is read this long at most


async def error_lines(bot: Runtime, task_id: str, run: int) -> list[str]:
    """The first lines of the run's error summary, if it uploaded one; [] when it did not,
    or when it cannot be read (the links are there all the same)."""
    try:
        # a slow Queue (retrying 5xx, a lost reply) must not hold up the final reply
        async with asyncio.timeout(ERROR_SUMMARY_SECONDS):
            listed = await bot.clients.queue.listArtifacts(task_id, str(run))
            names = summary_names(list(listed.get("artifacts") or []))
            if not names:
                return []
            data = await bot.decisions.artifact(task_id, names[0], limit=MAX_BYTES)
        return first_errors(data)
    except Exception as error:
        log.info("the error summary of %s run %s is unread: %s", task_id, run, error)
        return []


LINE_EVERY = 10.0  # seconds: a line-based chat hears of a request's progress at most this often
LOST = (
    "[{request}] lost: the Taskcluster it was scheduled on no longer knows its {count} "
    "unfinished task{s} (was it reset?), so nothing more will be reported. Ask again if the "
    "jobs are still wanted."
)


async def _lost(
    bot: Runtime, replier: Replier, record: RequestRecord, gone: TasksLostError
) -> None:
    """Tasks the Queue forgot: said once, and the request ends (a restart does not follow
    it again)."""
    log.warning("request %s: %s; it ends as lost", record.id, gone)
    await bot.store.set_state(record.id, RequestState.LOST, error=str(gone))
    text = LOST.format(request=record.id, count=gone.count, s="" if gone.count == 1 else "s")
    try:
        await replier.post(text)
    except Exception as error:
        log.warning("could not say %s was lost: %s", record.id, error)
    await tell_requester(bot, replier, record, "lost (the Queue forgot its tasks)")


class Coalesced:
    """Edits of one status card, at most one every ``interval`` seconds: the newest body
    waits for its turn (a burst of finished tasks is one edit, not fifty). Whoever uses it
    writes the final state itself, after ``aclose``."""

    def __init__(self, write: Callable[[str, str], Awaitable[None]], interval: float) -> None:
        self.write = write
        self.interval = interval
        self.latest: tuple[str, str] | None = None
        self.last = -interval
        self.pending: asyncio.Task[None] | None = None

    def update(self, body: str, title: str) -> None:
        self.latest = (body, title)
        if self.pending is None:
            wait = max(0.0, self.last + self.interval - asyncio.get_running_loop().time())
            self.pending = asyncio.create_task(self._flush(wait))

    async def _flush(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self.pending = None
        if self.latest is None:
            return
        body, title = self.latest
        self.latest = None
        self.last = asyncio.get_running_loop().time()
        try:
            await self.write(body, title)
        except Exception as error:
            log.warning("a status card could not be brought up to date: %s", error)

    async def aclose(self) -> None:
        """Drop what has not been written yet: the final state follows."""
        if self.pending is not None:
            self.pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pending
            self.pending = None


def render_card(
    bot: Runtime,
    header: str,
    stored: dict[str, PlannedTask],
    states: dict[str, str],
    summary: str,
    *,
    by_push: bool = False,
) -> str:
    """The status card: what was asked, a table of the requested jobs (and their pushes,
    for a request on several), and where it stands."""
    if by_push:
        lines = [header, "", "| push | job | state |", "| --- | --- | --- |"]
    else:
        lines = [header, "", "| job | state |", "| --- | --- |"]
    for task in requested_tasks(list(stored.values()))[:SHOWN]:
        state = states.get(task.task_id, "pending")
        job = f"[{task.label}]({task_url(bot, task.task_id)})"
        where = f"{push_of_task(task.definition)} | " if by_push else ""
        lines.append(f"| {where}{job} | {state} |")
    lines += ["", f"**{summary}**"]
    return "\n".join(lines)


def push_results(stored: dict[str, PlannedTask], states: dict[str, str]) -> list[str]:
    """A line per push of a request on several (a backfill), in plan order: how its
    requested jobs ended, so where a job started failing shows at a glance; for several
    jobs, their lines under each job's label."""
    by_job: dict[str, dict[str, Counter[str]]] = {}
    for task in requested_tasks(list(stored.values())):
        pushes = by_job.setdefault(task.label, {})
        pushes.setdefault(push_of_task(task.definition), Counter())[
            states.get(task.task_id, "pending")
        ] += 1
    if len(by_job) == 1:
        return _job_lines(next(iter(by_job.values())))
    return [
        line
        for job, pushes in by_job.items()
        for line in [f"{job}:", *(f"  {each}" for each in _job_lines(pushes))]
    ]


def _job_lines(counts: dict[str, Counter[str]]) -> list[str]:
    """One job's line per push, newest first, and where it broke when that is clear."""
    lines = []
    for push, count in counts.items():
        bad = count["failed"] + count["exception"]
        verdict = "fails" if bad == sum(count.values()) else "mixed" if bad else "passes"
        if count["pending"] or count["running"] or count["unscheduled"]:
            verdict = "unfinished"
        lines.append(f"{push}: {_counts(count)} ({verdict})")
    verdicts = [line.rsplit("(", 1)[1].rstrip(")") for line in lines]
    newest_failing = len(verdicts) - len(list(dropwhile(lambda v: v != "passes", verdicts)))
    clean = all(v == "fails" for v in verdicts[:newest_failing]) and all(
        v == "passes" for v in verdicts[newest_failing:]
    )
    if clean and 0 < newest_failing < len(verdicts):
        pushes = list(counts)
        broken, fine = pushes[newest_failing - 1], pushes[newest_failing]
        # a push between them may have been skipped (no decision task, no such job)
        lines.append(f"it broke after {fine} (passes) and by {broken} (fails)")
    return lines


def _counts(counts: Counter[str]) -> str:
    parts = [f"{counts['completed']} ok"]
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    if counts["exception"]:
        parts.append(f"{counts['exception']} exception")
    return ", ".join(parts)
