"""``action``: trigger any of a push's in-tree actions by name, its input checked first."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from taskcluster.exceptions import TaskclusterRestFailure

from bot.acting import ScopesUnknownError, acting_for, preflight
from bot.action_mode import (
    TriggerUnknownError,
    action_row,
    fire,
    follow_action,
    prepare_action,
    push_actions,
)
from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.graph import ResolveError, Resolver
from bot.graph.materialize import task_label
from bot.reporting import group_url, task_url
from bot.scheduling import find_decision, find_push, named_project
from bot.store import RequestState
from bot.submission import UNKNOWN
from bot.tc.actions import ActionError, has_action
from bot.tc.scopes import trigger_hook_needs
from grammar import Action, Backfill, Revision
from grammar.errors import nearest

NO_SUCH_TASK = "There is no task `{task}` in the Queue (tasks expire)."
UNKNOWN_PROJECT = (
    "The project of task `{task}`'s push cannot be told (its decision task has no readable "
    "parameters), so no action is run on it from here."
)
TASK_NAMES_ITS_PUSH = "A taskId names its push already: leave out `on {revision}`."
NO_ACTION = "{what} has no action `{name}`{guess}; `actions{on}` lists those it has."
GUESS = " (did you mean `{name}`?)"
ONE_JOB = "`{job}` names {count} jobs of {push} ({some}): an action acts on one; name it exactly."
NOT_RUN = (
    "`{label}` has no task on {push} (it was not run there), so the action has none to act "
    "on: `schedule {label}` first, or name a taskId."
)
NOT_YOURS = "The push's `{name}` action is {perm} (`actionPerm`): {reason}"
WHICH_PUSH = (
    "Which push? `{name}` acts on a whole push, so name it: `action {name} on "
    "{project}@REVISION` (or `on {project}@latest`)."
)
TIMES_CAP = "`{name}` with times={times}: one request runs a job at most {limit} times here."
ACTION_TOO_BIG = (
    "`{name}` with that input would make about {count} tasks, more than {threshold}, and an "
    "action cannot wait for `confirm`: ask for fewer (or `schedule` them, which can wait)."
)
PREVIEW = (
    "[preview] the push's `{name}` action{on} would be triggered: hook `{hook}`, input "
    "{input}. (dry run: nothing was triggered)"
)
TRIGGERED = (
    "[{request}] {headline}\n  via the push's {name} action: {link}\n  task group: {group}\n"
    "  (what it creates is reported here once the action task has run)"
)
ALREADY = "[{request}] was handled already: {state}."
NOT_TRIGGERED = "[{request}] the push's {name} action was not run: {error}"
# An actionPerm other than these asks more than write access to the project (Gecko's
# release promotion, for one): the project's maintainers' and admins' only.
GENERIC_PERMISSIONS = (None, "generic")
PROJECT = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.-]+)?")


@dataclass(frozen=True, slots=True)
class Target:
    """What an action acts on: a push (its project, revision and decision task) and maybe
    one of its tasks, with that task's tags (which decide the actions that apply)."""

    project: str
    revision: str | None
    decision_task_id: str
    task_id: str | None = None
    label: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        push = f"{self.project}@{self.revision[:12]}" if self.revision else self.project
        if self.task_id is None:
            return push
        return f"task `{self.task_id}` ({self.label}) of {push}"


async def action(ctx: Context, cmd: Action) -> None:
    """action NAME [on TASKID|JOB] [on REVISION] [key=value ...|{json}] [--dry-run]
    Triggers one of the push's in-tree actions by name (`actions` lists them), on the push
    or on one of its tasks, its input checked against the action's schema first; what the
    action task creates is reported and followed like any request. `--notify`: you are
    told when it ends (`help notify`)."""
    target = await _target(ctx, cmd)
    if target is not None:
        await run_push_action(ctx, target, cmd.name, json.loads(cmd.input), command=cmd)


async def _target(ctx: Context, cmd: Action) -> Target | None:
    if cmd.task is not None:
        if cmd.revision is not None:
            await ctx.refuse(TASK_NAMES_ITS_PUSH.format(revision=cmd.revision.canonical()))
            return None
        return await task_target(ctx, cmd.task.text)
    if cmd.job is not None and cmd.revision is None and _is_project(ctx, cmd.job.canonical()):
        # `on autoland`: the project's latest push, as `actions on autoland` reads it
        return await _target(
            ctx, replace(cmd, job=None, revision=Revision(None, cmd.job.canonical()))
        )
    if cmd.job is not None:
        push = await find_push(ctx, cmd.revision)
        if push is None:
            return None
        resolver = Resolver(push.graph, (), shortlist_limit=ctx.bot.settings.shortlist_limit)
        try:
            labels = (await asyncio.to_thread(resolver.resolve, [cmd.job])).labels
        except ResolveError as error:
            word = cmd.job.canonical()
            if cmd.revision is None and await _has_pushes(ctx, word):  # `on PROJECT`
                return await _target(ctx, replace(cmd, job=None, revision=Revision(None, word)))
            await ctx.refuse(str(error))
            return None
        if len(labels) != 1:
            some = ", ".join(f"`{label}`" for label in labels[:3]) + (
                ", …" if len(labels) > 3 else ""
            )
            await ctx.refuse(
                ONE_JOB.format(
                    job=cmd.job.canonical(), count=len(labels), push=push.describe(), some=some
                )
            )
            return None
        task_id = push.existing.get(labels[0])
        if task_id is None:
            await ctx.refuse(NOT_RUN.format(label=labels[0], push=push.describe()))
            return None
        return await task_target(ctx, task_id)
    if cmd.revision is None and ctx.request.revision is None:
        # an action on a whole push (cancel-all, for one) is never aimed at one by default
        await ctx.refuse(WHICH_PUSH.format(name=cmd.name, project=named_project(ctx, None)))
        return None
    decision = await find_decision(ctx, cmd.revision)
    if decision is None:
        return None
    revision = decision.revision
    if revision is None:
        revision = await ctx.bot.decisions.revision_of(decision.decision_task_id)
    return Target(decision.project, revision, decision.decision_task_id)


async def _has_pushes(ctx: Context, word: str) -> bool:
    """Whether ``word`` (no job of the push) is a project the Index knows a push of."""
    if not PROJECT.fullmatch(word):
        return False
    try:
        await ctx.bot.decisions.find(word, None, ctx.bot.settings.project(word).routes)
    except Exception:  # not found, or the Index cannot say: it stays a job that is not there
        return False
    return True


def _is_project(ctx: Context, word: str) -> bool:
    settings = ctx.bot.settings
    return word in settings.projects or word in (settings.default_project, ctx.request.project)


async def task_target(ctx: Context, task_id: str) -> Target | None:
    """The task ``task_id`` and its push, or None after saying why not."""
    bot = ctx.bot
    try:
        definition: dict[str, Any] = await bot.clients.queue.task(task_id)
    except TaskclusterRestFailure as error:
        if error.status_code != 404:
            raise
        await ctx.refuse(NO_SUCH_TASK.format(task=task_id))
        return None
    group = str(definition.get("taskGroupId", ""))
    parameters = await bot.decisions.parameters(group) if group else {}
    project = str(parameters.get("project") or "")
    if not project:
        await ctx.refuse(UNKNOWN_PROJECT.format(task=task_id))
        return None
    raw_tags = definition.get("tags") or {}
    tags = {str(k): str(v) for k, v in raw_tags.items()} if isinstance(raw_tags, dict) else {}
    revision = str(parameters.get("head_rev") or "") or None
    return Target(project, revision, group, task_id, task_label(definition) or task_id, tags)


async def run_push_action(
    ctx: Context, target: Target, name: str, given: Any, *, command: Action | Backfill
) -> str | None:
    """Check, authorize and trigger the push's action ``name`` on ``target``; the action
    task is then followed to what it creates. The request id, if one was made."""
    bot = ctx.bot
    try:
        actions = await push_actions(bot, target.decision_task_id)
    except ActionError as error:
        await ctx.refuse(f"{target.describe()}: {error}.")
        return None
    if not has_action(actions, name):
        names = [str(a.get("name")) for a in actions.get("actions") or [] if isinstance(a, dict)]
        guess = nearest(name, names)
        await ctx.refuse(
            NO_ACTION.format(
                what=f"The push of {target.describe()}" if target.task_id else target.describe(),
                name=name,
                guess=GUESS.format(name=guess) if guess else "",
                on=f" on {target.task_id}" if target.task_id else "",
            )
        )
        return None
    try:
        rendered = await prepare_action(
            bot,
            target.decision_task_id,
            name,
            given,
            task_id=target.task_id,
            task_tags=target.tags if target.task_id else None,
            actions=actions,
        )
    except ActionError as error:
        await ctx.refuse(f"{str(error)[:1].upper()}{str(error)[1:]}.")
        return None
    # The action's own permission, in the project of the push it acts on.
    verb = ctx.commands.get("action") if ctx.commands is not None else None
    if verb is not None and ctx.authorize is not None:
        above = Level.NONE if rendered.permission in GENERIC_PERMISSIONS else Level.ADMIN
        reason = await ctx.authorize(verb, target.project, above)
        if reason is not None:
            perm = rendered.permission or "generic"
            await ctx.refuse(NOT_YOURS.format(name=name, perm=f"`{perm}`", reason=reason))
            return None
    too_much = _too_much(ctx, target.project, name, given)
    if too_much is not None:
        await ctx.refuse(too_much)
        return None
    on = f" on {target.describe()}"
    if command.dry_run:
        hook = f"{rendered.hook_group_id}/{rendered.hook_id}"
        shown = json.dumps(given, sort_keys=True)
        await ctx.reply(PREVIEW.format(name=name, on=on, hook=hook, input=f"`{shown[:300]}`"))
        return None
    return await _trigger(ctx, target, rendered, given, command)


def _too_much(ctx: Context, project: str, name: str, given: Any) -> str | None:
    """Why the action's input asks for more than one request may make here (the bot's own
    `xN` limit, its task cap and its confirmation threshold, which an action cannot wait
    for), as far as its input tells: jobs named × ``times`` × ``depth``; or None."""
    if not isinstance(given, dict):
        return None
    settings = ctx.bot.settings
    numbers = {k: given.get(k, 1) for k in ("times", "depth")}
    numbers = {
        k: v if isinstance(v, int) and not isinstance(v, bool) else 1 for k, v in numbers.items()
    }
    if numbers["times"] > settings.limits.max_times:
        return TIMES_CAP.format(name=name, times=numbers["times"], limit=settings.limits.max_times)
    tasks, requests = given.get("tasks"), given.get("requests")
    jobs = len(tasks) if isinstance(tasks, list) else 0
    for part in requests if isinstance(requests, list) else []:
        if isinstance(part, dict) and isinstance(part.get("tasks"), list):
            part_times = part.get("times", 1) if isinstance(part.get("times"), int) else 1
            jobs += len(part["tasks"]) * max(1, part_times)
    count = max(1, jobs) * numbers["times"] * numbers["depth"] + ctx.budget.tasks
    chosen = settings.project(project)
    threshold = chosen.confirm_threshold or settings.confirm_threshold
    if count > threshold:
        return ACTION_TOO_BIG.format(name=name, count=count, threshold=threshold)
    ctx.budget.tasks = count
    return None


async def _trigger(
    ctx: Context, target: Target, rendered: Any, given: Any, command: Action | Backfill
) -> str | None:
    bot, request = ctx.bot, ctx.request
    name = rendered.name
    request_id = await bot.request_id_for(request, ctx.key)
    ctx.made.append(request_id)
    async with bot.exclusive(request_id):
        earlier = await bot.store.request(request_id)
        if earlier is not None:
            # The same command again (a redelivery): a hook run has no key, so never twice.
            await ctx.reply(ALREADY.format(request=request_id, state=earlier.state.words))
            return request_id
        await bot.store.add_request(
            request_id,
            source=request.source,
            actor=request.actor,
            place=request.place,
            text=ctx.line,
            command=command.canonical(),
            project=target.project,
            revision=target.revision,
            decision_task_id=target.decision_task_id,
        )
        await bot.store.set_state(request_id, RequestState.TRIGGERING)
        group = target.decision_task_id
        try:
            acting = await acting_for(bot, request.source, request.actor, target.project)
            problem = await preflight(
                bot, acting, trigger_hook_needs(rendered.hook_group_id, rendered.hook_id)
            )
            if problem:
                raise ActionError(problem)
            action_task = await fire(bot, group, rendered, acting.clients.hooks)
        except TriggerUnknownError as error:
            said = UNKNOWN.format(
                request=request_id, name=name, error=error, group=group_url(bot, group)
            )
            await bot.store.set_state(request_id, RequestState.FAILED, error=said)
            await ctx.refuse(said)
            return request_id
        except (ActionError, TaskclusterRestFailure, ScopesUnknownError) as error:
            said = NOT_TRIGGERED.format(request=request_id, name=name, error=error)
            await bot.store.set_state(request_id, RequestState.FAILED, error=said)
            await ctx.refuse(said)
            return request_id
        except BaseException as error:
            # nothing was run that is known of: failed, and the dispatcher says so
            await bot.store.set_state(request_id, RequestState.FAILED, error=f"not run: {error}")
            raise
        await bot.store.replace_plan(
            request_id,
            [action_row(name, action_task, given, generic=True)],
            state=RequestState.ACTION_RUNNING,
        )
        await bot.store.audit(
            actor=request.actor,
            source=request.source,
            place=request.place,
            action="trigger-action",
            request_id=request_id,
            detail={
                "action": name,
                "hook": f"{rendered.hook_group_id}/{rendered.hook_id}",
                "action_task": action_task,
                "task": target.task_id,
            },
        )
        shown = json.dumps(given, sort_keys=True)[:300].replace("`", "'") if given else ""
        asked = (
            f"action {name}"
            if isinstance(command, Action)
            else replace(command, revision=None).canonical()
        )
        headline = f"{asked} on {target.describe()}" + (f" `{shown}`" if shown else "")
        body = TRIGGERED.format(
            request=request_id,
            headline=headline,
            name=name,
            link=task_url(bot, action_task),
            group=group_url(bot, group),
        )
        reference = await ctx.reply(body)
        await bot.store.save_reply(request_id, "chat", request.place, body, reference)
        bot.spawn(follow_action(bot, ctx.replier, request_id))
    return request_id


COMMAND = Command(
    "action",
    action,
    Level.WRITE,
    gated=True,
    examples=(
        "action confirm-failures on fuCPrKG2T62-4YH1tWYa7Q",
        "action backfill mochitest-1 depth=3 times=2",
        "action cancel-all on autoland@latest",
    ),
)
