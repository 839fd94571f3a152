"""Find a push's decision task through the Index and read its artifacts (following the 303)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from taskcluster.exceptions import TaskclusterRestFailure

from bot.graph import GraphCache, TaskGraphIndex, load_label_to_taskid
from bot.tc.retry import backoff, is_transient

log = logging.getLogger(__name__)

# Where Gecko-style decision tasks are indexed; {project}, {revision}, {trust_domain} filled in.
REVISION_ROUTES = ("{trust_domain}.v2.{project}.revision.{revision}.taskgraph.decision",)
LATEST_ROUTES = ("{trust_domain}.v2.{project}.latest.taskgraph.decision",)
KEPT_DEFINITIONS = 256  # decision task definitions kept (a few kB each)
GRAPH_NAMES = ("public/full-task-graph.json", "public/all_tasks.json")

NO_DECISION = (
    "no decision task found for {what}: looked in the index at {paths}. Is it a push to "
    "{project}, and has its decision task finished?"
)


class DecisionNotFoundError(LookupError):
    """No decision task is indexed for the push; the message says where the bot looked."""


class ArtifactError(RuntimeError):
    """An artifact could not be read; the message names the task and artifact."""


class IndexClient(Protocol):
    async def findTask(self, indexPath: str) -> Any: ...  # noqa: N802, N803


class QueueClient(Protocol):
    async def getLatestArtifact(self, taskId: str, name: str) -> Any: ...  # noqa: N802, N803
    async def task(self, taskId: str) -> Any: ...  # noqa: N803


@dataclass(frozen=True, slots=True)
class ProjectRoutes:
    """How one project's decision tasks are indexed."""

    trust_domain: str = "gecko"
    revision_routes: Sequence[str] = REVISION_ROUTES
    latest_routes: Sequence[str] = LATEST_ROUTES


@dataclass
class DecisionReader:
    """Index and Queue clients, the HTTP session for artifact downloads, and a graph cache."""

    index: IndexClient
    queue: QueueClient
    session: aiohttp.ClientSession
    cache: GraphCache
    attempts: int = 5
    fresh_for: float = 30.0
    _label_maps: dict[str, tuple[float, bytes]] = field(default_factory=dict)
    _definitions: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def find(
        self, project: str, revision: str | None, routes: ProjectRoutes = ProjectRoutes()
    ) -> str:
        """The decision taskId of ``project``'s push ``revision`` (None: the latest push)."""
        templates = routes.revision_routes if revision else routes.latest_routes
        paths = [
            t.format(trust_domain=routes.trust_domain, project=project, revision=revision)
            for t in templates
        ]
        for path in paths:
            try:
                found = await self._retrying(self.index.findTask, path)
            except TaskclusterRestFailure as error:
                if error.status_code == 404:
                    continue
                raise
            return str(found["taskId"])
        what = f"{project}@{revision}" if revision else f"the latest push of {project}"
        raise DecisionNotFoundError(
            NO_DECISION.format(what=what, paths=", ".join(f"`{p}`" for p in paths), project=project)
        )

    async def definition(self, decision_task_id: str) -> dict[str, Any]:
        """The decision task's definition, asked of the Queue once (with retries), then kept."""
        kept = self._definitions.get(decision_task_id)
        if kept is None:
            kept = await self._retrying(self.queue.task, decision_task_id)
            if not isinstance(kept, dict):
                raise ArtifactError(f"task {decision_task_id}: the Queue gave no definition")
            self._definitions[decision_task_id] = kept
            while len(self._definitions) > KEPT_DEFINITIONS:
                del self._definitions[next(iter(self._definitions))]  # the oldest first
        return kept

    async def revision_of(self, decision_task_id: str) -> str | None:
        """The revision a decision task ran for, read from its index routes or its
        ``*_HEAD_REV`` environment; None when it says neither (or the Queue cannot tell)."""
        try:
            definition = await self.definition(decision_task_id)
        except Exception as error:
            if not (is_transient(error) or isinstance(error, TaskclusterRestFailure)):
                raise
            log.warning("the revision of decision task %s is unknown: %s", decision_task_id, error)
            return None
        return revision_in(definition)

    async def scheduler_of(self, decision_task_id: str) -> str:
        """The schedulerId new tasks of the push take: their decision task's."""
        return str((await self.definition(decision_task_id)).get("schedulerId", "-"))

    async def artifact(self, task_id: str, name: str) -> bytes:
        """An artifact's bytes: the Queue answers 303 with a URL, which is then fetched."""
        try:
            answer = await self._retrying(self.queue.getLatestArtifact, task_id, name)
        except TaskclusterRestFailure as error:
            raise ArtifactError(f"{name} of task {task_id}: {error.status_code} {error}") from None
        url = answer.get("url") if isinstance(answer, dict) else None
        if not url:
            raise ArtifactError(f"{name} of task {task_id}: the Queue gave no URL")
        for attempt in range(1, self.attempts + 1):
            try:
                async with self.session.get(url) as response:
                    if response.status >= 500 and attempt < self.attempts:
                        await asyncio.sleep(backoff(attempt))
                        continue
                    if response.status != 200:
                        raise ArtifactError(
                            f"{name} of task {task_id}: HTTP {response.status} from {url}"
                        )
                    return await response.read()
            except (TimeoutError, aiohttp.ClientError) as error:
                if attempt == self.attempts:
                    raise ArtifactError(f"{name} of task {task_id}: {error}") from None
                await asyncio.sleep(backoff(attempt))
        raise ArtifactError(f"{name} of task {task_id}: no answer")

    async def graph(self, decision_task_id: str) -> TaskGraphIndex:
        """The push's full task graph, loaded once per decision task (then cached)."""
        cached = self.cache.get(decision_task_id)
        if cached is not None:
            return cached
        last: ArtifactError | None = None
        for name in GRAPH_NAMES:
            try:
                data = await self.artifact(decision_task_id, name)
            except ArtifactError as error:
                last = error
                continue
            index = await asyncio.to_thread(TaskGraphIndex, data, name=name.rsplit("/", 1)[-1])
            self.cache.put(decision_task_id, index)
            return index
        raise last or ArtifactError(f"task {decision_task_id} has no task graph")

    async def label_to_taskid(self, *task_ids: str) -> dict[str, str]:
        """label-to-taskid.json of the decision task, then of later action tasks (later wins).

        Each document is kept for ``fresh_for`` seconds: many commands on one push in a
        short while read it once.
        """
        now = asyncio.get_running_loop().time()
        documents = []
        for task_id in task_ids:
            kept = self._label_maps.get(task_id)
            if kept is None or now - kept[0] > self.fresh_for:
                kept = (now, await self.artifact(task_id, "public/label-to-taskid.json"))
                self._label_maps[task_id] = kept
            documents.append(kept[1])
        return load_label_to_taskid(*documents)

    async def _retrying(self, call: Any, *args: Any) -> Any:
        for attempt in range(1, self.attempts + 1):
            try:
                return await call(*args)
            except Exception as error:
                if not is_transient(error) or attempt == self.attempts:
                    raise
                await asyncio.sleep(backoff(attempt))
        raise AssertionError("unreachable")


REVISION_IN_ROUTE = re.compile(r"\.revision\.([0-9a-f]{40})\.")
HEAD_REV = re.compile(r"[0-9a-f]{40}")


def revision_in(definition: dict[str, Any]) -> str | None:
    """The 40-digit revision a decision task definition names, if any."""
    for route in definition.get("routes") or ():
        match = REVISION_IN_ROUTE.search(str(route))
        if match:
            return match[1]
    env = (definition.get("payload") or {}).get("env") or {}
    for name, value in sorted(env.items()) if isinstance(env, dict) else ():
        if name.endswith("_HEAD_REV") and HEAD_REV.fullmatch(str(value)):
            return str(value)
    return None
