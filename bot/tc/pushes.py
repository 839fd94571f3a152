"""A project's pushes in order: each push's pushlog id from its parameters, and the decision
tasks of the pushes before it from the Index's pushlog-id routes."""

from __future__ import annotations

from dataclasses import dataclass

from taskcluster.exceptions import TaskclusterRestFailure

from bot.tc.decision import DecisionNotFoundError, DecisionReader, ProjectRoutes

# Pushes with no decision task (DONTBUILD, a failed decision) leave holes in the pushlog ids:
# this many missing in a row ends the walk back.
MAX_GAP = 10


@dataclass(frozen=True, slots=True)
class PushInfo:
    """One push: its place in the pushlog, its revision and decision task, who pushed."""

    pushlog_id: int
    revision: str
    decision_task_id: str
    owner: str = ""


class NoPushlogError(LookupError):
    """The push has no place among the project's pushes: no pushlog id, nor (a push to a
    git branch) the branch's head before it (a pull request's push has neither)."""


NO_BASE = ("", "0" * 40)  # GitHub's `before` of a branch's first push is forty zeros


async def push_info(reader: DecisionReader, decision_task_id: str) -> PushInfo:
    """What the push's parameters say of it; ``NoPushlogError`` without a pushlog id (nor,
    for a push to a git branch, the branch's head before it: ``base_rev``)."""
    parameters = await reader.parameters(decision_task_id)
    raw = str(parameters.get("pushlog_id") or "0")
    pushlog_id = int(raw) if raw.isdigit() else 0
    if pushlog_id < 1 and not _after(parameters):
        raise NoPushlogError(f"the push of decision task {decision_task_id} has no pushlog id")
    return PushInfo(
        pushlog_id,
        str(parameters.get("head_rev") or ""),
        decision_task_id,
        str(parameters.get("owner") or ""),
    )


def _after(parameters: dict[str, object]) -> str | None:
    """The branch head a push to a git branch came after (taskgraph's ``base_rev``, the
    push event's ``before``), or None: not such a push (a pull request's base is no push)."""
    if str(parameters.get("tasks_for") or "").endswith("pull-request"):
        return None
    if str(parameters.get("repository_type") or "hg") != "git":
        return None
    base = str(parameters.get("base_rev") or "")
    head = str(parameters.get("head_rev") or "")
    return None if base in NO_BASE or base == head else base


async def decision_at(
    reader: DecisionReader, project: str, routes: ProjectRoutes, pushlog_id: int
) -> str | None:
    """The decision task of ``project``'s push ``pushlog_id``, or None (none indexed)."""
    for template in routes.pushlog_routes:
        path = template.format(
            trust_domain=routes.trust_domain, project=project, pushlog_id=pushlog_id
        )
        try:
            found = await reader.index.findTask(path)
        except TaskclusterRestFailure as error:
            if error.status_code == 404:
                continue
            raise
        return str(found["taskId"])
    return None


@dataclass(frozen=True, slots=True)
class Earlier:
    """Pushes before one, newest first, and where the walk back gave up (the pushlog id
    below ``MAX_GAP`` missing ones in a row), if it did."""

    pushes: list[PushInfo]
    gave_up_at: int | None = None
    stopped_at: str | None = None  # a git branch's earlier head that no decision task ran for


async def earlier_pushes(
    reader: DecisionReader, project: str, routes: ProjectRoutes, start: PushInfo, count: int
) -> Earlier:
    """Up to ``count`` pushes before ``start``, newest first. By pushlog id where the project
    has a pushlog: pushes without a decision task (or whose indexed decision task is another
    push's) are passed over, at most ``MAX_GAP`` in a row. Pushes to a git branch go back
    from head to the head before it (``base_rev``), each found by the Index's revision
    routes; a push with no decision task ends that walk (what came before it is unknown)."""
    if start.pushlog_id < 1:
        return await _earlier_by_revision(reader, project, routes, start, count)
    found: list[PushInfo] = []
    missing = 0
    pushlog_id = start.pushlog_id - 1
    while len(found) < count and pushlog_id >= 1:
        if missing >= MAX_GAP:
            return Earlier(found, pushlog_id + 1)
        decision = await decision_at(reader, project, routes, pushlog_id)
        info = None
        if decision is not None:
            try:
                info = await push_info(reader, decision)
            except NoPushlogError:
                info = None
        if info is None or info.pushlog_id != pushlog_id:
            missing += 1
        else:
            missing = 0
            found.append(info)
        pushlog_id -= 1
    return Earlier(found)


async def _earlier_by_revision(
    reader: DecisionReader, project: str, routes: ProjectRoutes, start: PushInfo, count: int
) -> Earlier:
    found: list[PushInfo] = []
    current = start
    seen = {start.revision}
    while len(found) < count:
        before = _after(await reader.parameters(current.decision_task_id))
        if before is None or before in seen:
            break  # the branch's first push (or a loop the Index should never hold)
        seen.add(before)
        try:
            decision = await reader.find(project, before, routes)
        except DecisionNotFoundError:
            return Earlier(found, stopped_at=before)
        parameters = await reader.parameters(decision)
        current = PushInfo(0, before, decision, str(parameters.get("owner") or ""))
        found.append(current)
    return Earlier(found)
