"""The Taskcluster GitHub service's builds: the task groups it created per repository and commit.

Taskcluster's GitHub integration records a *build* for each decision task it creates from
a GitHub event (push, pull request, release): the organization and repository (with ``.``
written ``%``, as the real service sanitizes them), the commit, the task group, the event,
and a state following the group's outcome. A pull request's decision task has no Index
route, so ``builds`` (``GET /api/github/v1/builds``) is how one is found from a commit.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bot.localtc.errors import input_error
from bot.localtc.queue import UNRESOLVED, Queue, TaskRecord
from bot.tctime import format_time

# build-list.json: organization and repository names, and the query patterns of ``builds``.
NAME = re.compile(r"^([a-zA-Z0-9-_%]*)$")
SLUG = re.compile(r"^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$")
EVENT_ID = re.compile(
    r"^[a-zA-Z0-9]{8}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{12}$"
)
STATES = ("pending", "success", "error", "failure", "cancelled")
BUILDS_QUERY: dict[str, re.Pattern[str]] = {
    "organization": NAME,
    "repository": NAME,
    "sha": re.compile(r"."),
    "pullRequest": re.compile(r"^([0-9]*)$"),
}


def sanitized(name: str) -> str:
    """A GitHub owner or repository name as the service stores it: characters other than
    letters, digits, ``-``, ``_`` and ``.`` dropped, and ``.`` written ``%``."""
    return re.sub(r"[^a-zA-Z0-9_.-]", "", name).replace(".", "%")


@dataclass(frozen=True, slots=True)
class Build:
    """One build record, with the fields of build-list.json (and the installation)."""

    organization: str
    repository: str
    sha: str
    task_group_id: str
    state: str
    created: str
    updated: str
    installation_id: int
    event_type: str
    event_id: str
    pull_request_number: int | None = None

    def to_json(self) -> dict[str, Any]:
        """As ``builds`` lists it: the installation is not shown, a pull request's number
        only when there is one."""
        shown: dict[str, Any] = {
            "organization": self.organization,
            "repository": self.repository,
            "sha": self.sha,
            "state": self.state,
            "taskGroupId": self.task_group_id,
            "eventType": self.event_type,
            "eventId": self.event_id,
            "created": self.created,
            "updated": self.updated,
        }
        if self.pull_request_number:
            shown["pullRequestNumber"] = self.pull_request_number
        return shown


def _problem(build: Build) -> str | None:
    """Why a record could not be one of the real service's (build-list.json), if so."""
    for field, value in (("organization", build.organization), ("repository", build.repository)):
        if not 1 <= len(value) <= 100 or not NAME.match(value):
            return f"{field} {value!r} must be 1 to 100 of [a-zA-Z0-9-_%] (see sanitized())"
    if len(build.sha) != 40:
        return f"sha {build.sha!r} must be 40 characters long"
    if not SLUG.match(build.task_group_id):
        return f"taskGroupId {build.task_group_id!r} is not a slugid"
    if build.state not in STATES:
        return f"state {build.state!r} must be one of {', '.join(STATES)}"
    if build.event_id != "Unknown" and not EVENT_ID.match(build.event_id):
        return f"eventId {build.event_id!r} must be a GitHub delivery GUID or 'Unknown'"
    if not build.event_type:
        return "eventType must not be empty"
    return None


class Github:
    """The builds the GitHub service knows, newest first when listed.

    With a ``queue``, a build follows its task group as the real service's does on the
    Queue's task-group-resolved message: once every task of the group is resolved, success
    if all completed, else failure.
    """

    def __init__(self, clock: Callable[[], float], queue: Queue | None = None) -> None:
        self.clock = clock
        self.queue = queue
        self.builds: list[Build] = []
        if queue is not None:
            queue.resolved_listeners.append(self._on_resolved)

    def now(self) -> str:
        return format_time(dt.datetime.fromtimestamp(self.clock(), dt.UTC))

    def add_build(
        self,
        *,
        organization: str,
        repository: str,
        sha: str,
        task_group_id: str,
        state: str,
        installation_id: int,
        event_type: str,
        event_id: str,
        pull_request_number: int | None = None,
    ) -> Build:
        """Record a build (as when the service created a decision task); refuses a record
        the real service could not hold (ValueError), and a second one of a task group."""
        now = self.now()
        build = Build(
            organization=organization,
            repository=repository,
            sha=sha,
            task_group_id=task_group_id,
            state=state,
            created=now,
            updated=now,
            installation_id=installation_id,
            event_type=event_type,
            event_id=event_id,
            pull_request_number=pull_request_number,
        )
        problem = _problem(build)
        if problem is not None:
            raise ValueError(f"not a build the GitHub service could record: {problem}")
        if any(b.task_group_id == task_group_id for b in self.builds):
            raise ValueError(f"task group {task_group_id} already has a build")
        self.builds.append(build)
        return build

    def set_state(self, task_group_id: str, state: str) -> Build:
        """A build's new state (as when its task group resolved), updated now."""
        if state not in STATES:
            raise ValueError(f"state {state!r} must be one of {', '.join(STATES)}")
        for n, build in enumerate(self.builds):
            if build.task_group_id == task_group_id:
                self.builds[n] = replace(build, state=state, updated=self.now())
                return self.builds[n]
        raise KeyError(task_group_id)

    def _on_resolved(self, record: TaskRecord) -> None:
        assert self.queue is not None
        group_id = record.definition["taskGroupId"]
        if not any(b.task_group_id == group_id for b in self.builds):
            return
        tasks = self.queue.tasks
        task_ids = self.queue.groups[group_id]["taskIds"]
        # the newest tasks are the likeliest unresolved: look at them first
        if any(tasks[t].state in UNRESOLVED for t in reversed(task_ids)):
            return
        completed = all(tasks[t].state == "completed" for t in task_ids)
        self.set_state(group_id, "success" if completed else "failure")

    def list_builds(
        self,
        *,
        organization: str | None = None,
        repository: str | None = None,
        sha: str | None = None,
        pull_request: int | None = None,
    ) -> list[Build]:
        """The builds matching every filter given (exact, case-sensitive), newest first.

        As the real service: a repository needs an organization, and a sha or a pull
        request needs a repository (``400 InputError`` otherwise); an empty filter is no
        filter (``pull_request`` None is none; 0 is one, which no build matches).
        """
        if repository and not organization:
            raise input_error("Must provide `organization` if querying `repository`")
        if sha and not repository:
            raise input_error("Must provide `repository` if querying `sha`")
        if pull_request is not None and not repository:
            raise input_error("Must provide `repository` if querying `pullRequest`")
        found = [
            build
            for build in self.builds
            if (not organization or build.organization == organization)
            and (not repository or build.repository == repository)
            and (not sha or build.sha == sha)
            and (pull_request is None or build.pull_request_number == pull_request)
        ]
        # Newest first; of builds made the same instant, the later recorded first.
        order = {id(build): n for n, build in enumerate(self.builds)}
        return sorted(found, key=lambda b: (b.created, order[id(b)]), reverse=True)
