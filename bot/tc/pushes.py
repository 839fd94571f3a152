"""A project's pushes in order: each push's pushlog id from its parameters, and the decision
tasks of the pushes before it from the Index's pushlog-id routes."""

from __future__ import annotations

from dataclasses import dataclass

from taskcluster.exceptions import TaskclusterRestFailure

from bot.tc.decision import DecisionReader, ProjectRoutes

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
    """The push has no pushlog id (a pull request's push, a project without a pushlog)."""


async def push_info(reader: DecisionReader, decision_task_id: str) -> PushInfo:
    """What the push's parameters say of it; ``NoPushlogError`` without a pushlog id."""
    parameters = await reader.parameters(decision_task_id)
    raw = str(parameters.get("pushlog_id") or "0")
    if not raw.isdigit() or int(raw) < 1:
        raise NoPushlogError(f"the push of decision task {decision_task_id} has no pushlog id")
    return PushInfo(
        int(raw),
        str(parameters.get("head_rev") or ""),
        decision_task_id,
        str(parameters.get("owner") or ""),
    )


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


async def earlier_pushes(
    reader: DecisionReader, project: str, routes: ProjectRoutes, start: PushInfo, count: int
) -> Earlier:
    """Up to ``count`` pushes before ``start``, newest first; pushes without a decision task
    (or whose indexed decision task is another push's) are passed over, at most
    ``MAX_GAP`` in a row."""
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
