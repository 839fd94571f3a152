"""Find a push's decision task through the Index and read its artifacts (following the 303)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import queue
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import aiohttp
import yaml
from taskcluster.exceptions import TaskclusterRestFailure

from bot.graph import GraphCache, GraphError, TaskGraphIndex, load_label_to_taskid
from bot.graph.stream import GraphStream
from bot.memory import give_back
from bot.metrics import GRAPH_CACHE_BYTES, GRAPH_CACHE_HITS, GRAPH_LOADS
from bot.tc.retry import backoff, is_transient
from bot.tctime import parse_time

log = logging.getLogger(__name__)
T = TypeVar("T")

# Where Gecko-style decision tasks are indexed; {project}, {revision}, {trust_domain} filled in.
REVISION_ROUTES = ("{trust_domain}.v2.{project}.revision.{revision}.taskgraph.decision",)
LATEST_ROUTES = ("{trust_domain}.v2.{project}.latest.taskgraph.decision",)
# Where a push's decision task is indexed by its pushlog id (Gecko's decision tasks carry it).
PUSHLOG_ROUTES = ("{trust_domain}.v2.{project}.pushlog-id.{pushlog_id}.decision",)
# Where action and cron tasks that added to a push are indexed (taskgraph's
# fetch_graph_and_labels reads the same three): {pushlog_id} and {head_rev} come from the
# decision task's parameters.yml.
ACTION_NAMESPACES = (
    "{trust_domain}.v2.{project}.pushlog-id.{pushlog_id}.actions",
    "{trust_domain}.v2.{project}.revision.{head_rev}.actions",
)
CRON_NAMESPACES = ("{trust_domain}.v2.{project}.revision.{head_rev}.cron",)
KEPT_DEFINITIONS = 256  # decision task definitions kept (a few kB each)
FETCHES_AT_ONCE = 16  # label-to-taskid documents of action and cron tasks read at a time
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
    async def listTasks(self, namespace: str, *, query: dict[str, Any]) -> Any: ...  # noqa: N802


class GithubServiceClient(Protocol):
    async def builds(self, *, query: dict[str, Any]) -> Any: ...


class QueueClient(Protocol):
    async def status(self, taskId: str) -> Any: ...  # noqa: N803
    async def getLatestArtifact(self, taskId: str, name: str) -> Any: ...  # noqa: N802, N803
    async def task(self, taskId: str) -> Any: ...  # noqa: N803


@dataclass(frozen=True, slots=True)
class ProjectRoutes:
    """How one project's decision tasks are indexed."""

    trust_domain: str = "gecko"
    revision_routes: Sequence[str] = REVISION_ROUTES
    latest_routes: Sequence[str] = LATEST_ROUTES
    pushlog_routes: Sequence[str] = PUSHLOG_ROUTES
    action_namespaces: Sequence[str] = ACTION_NAMESPACES
    cron_namespaces: Sequence[str] = CRON_NAMESPACES


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
    _merged: dict[str, tuple[float, dict[str, str]]] = field(default_factory=dict)
    _parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    _definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _packing: set[asyncio.Task[None]] = field(default_factory=set)

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

    async def built_for(
        self, github: GithubServiceClient, repositories: Sequence[str], sha: str
    ) -> list[str]:
        """Task groups Taskcluster's GitHub service created for commit ``sha`` of the
        repositories (``owner/name``), newest first: where a pull request's decision task
        is, since it has no index route. A service that cannot say gives none."""
        builds: list[dict[str, Any]] = []
        for repository in repositories:
            organization, _, name = repository.partition("/")
            # the service stores names with `.` as `%` (its keys cannot hold a dot)
            query: dict[str, Any] = {
                "organization": organization.replace(".", "%"),
                "repository": name.replace(".", "%"),
                "sha": sha,
            }
            while True:
                try:
                    page = await self._retrying(_builds_page, github, query)
                except Exception as error:  # refused or unreachable: the checks may say
                    if not (is_transient(error) or isinstance(error, TaskclusterRestFailure)):
                        raise
                    log.warning("the GitHub service's builds of %s: %s", repository, error)
                    break
                builds += [b for b in page.get("builds", []) if isinstance(b, dict)]
                token = page.get("continuationToken")
                if not token:
                    break
                query = {**query, "continuationToken": token}
        builds.sort(key=lambda b: str(b.get("created") or ""), reverse=True)
        return list(dict.fromkeys(str(b["taskGroupId"]) for b in builds if b.get("taskGroupId")))

    async def decision_of_group(
        self, group: str, revision: str, repositories: Sequence[str] = ()
    ) -> str | None:
        """The decision task of task group ``group`` (taskgraph's rule: the group is named
        after it), if it is a decision task of ``revision`` and, when ``repositories`` are
        given, of one of them (a link on a pull request may name any task); else None."""
        try:
            definition = await self.definition(group)
        except TaskclusterRestFailure as error:
            if error.status_code in (400, 404):
                return None
            raise
        if definition.get("taskGroupId") != group or revision_in(definition) != revision:
            return None
        if repositories and not any(_names_repository(definition, r) for r in repositories):
            return None
        return group

    async def indexed_copies(
        self, candidates: dict[str, list[str]], *, usable_until: dt.datetime
    ) -> dict[str, str]:
        """For jobs with ``index-search`` paths, a task indexed at one of them (the first
        path that has one) that did not fail and lasts until ``usable_until``: taskgraph's
        optimizer reuses such a task instead of building the job again."""
        found: dict[str, str] = {}
        for label, paths in candidates.items():
            for path in paths:
                try:
                    task_id = str((await self._retrying(self.index.findTask, path))["taskId"])
                    status = (await self._retrying(self.queue.status, task_id))["status"]
                except TaskclusterRestFailure as error:
                    if error.status_code == 404:
                        continue
                    raise
                if status.get("state") in ("failed", "exception"):
                    continue
                if parse_time(str(status.get("expires"))) < usable_until:
                    continue
                found[label] = task_id
                break
        return found

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

    async def artifact(self, task_id: str, name: str, *, limit: int | None = None) -> bytes:
        """An artifact's bytes: the Queue answers 303 with a URL, which is then fetched;
        one longer than ``limit`` bytes is refused without reading it all."""

        async def read(response: aiohttp.ClientResponse) -> bytes:
            if limit is None:
                return await response.read()
            return await _at_most(response, limit, f"{name} of task {task_id}")

        return await self._download(task_id, name, read)

    async def _download(
        self,
        task_id: str,
        name: str,
        consume: Callable[[aiohttp.ClientResponse], Awaitable[T]],
    ) -> T:
        """What ``consume`` makes of the artifact's response (a body ``Content-Encoding:
        gzip`` arrives decoded, as Taskcluster's object service asks of clients); a 5xx, a
        dropped connection or a timeout starts the download again, a few times."""
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
                    return await consume(response)
            except (TimeoutError, aiohttp.ClientError) as error:
                if attempt == self.attempts:
                    raise ArtifactError(f"{name} of task {task_id}: {error}") from None
                await asyncio.sleep(backoff(attempt))
        raise ArtifactError(f"{name} of task {task_id}: no answer")

    async def graph(self, decision_task_id: str) -> TaskGraphIndex:
        """The push's full task graph, loaded once per decision task (then cached), decoded
        while it downloads."""
        cached = self.cache.get(decision_task_id)
        if cached is not None:
            GRAPH_CACHE_HITS.inc()
            return cached
        last: ArtifactError | None = None
        for name in GRAPH_NAMES:
            short = name.rsplit("/", 1)[-1]

            async def index_it(
                response: aiohttp.ClientResponse, short: str = short
            ) -> TaskGraphIndex:
                return await index_as_it_arrives(response, short)

            try:
                index = await self._download(decision_task_id, name, index_it)
            except ArtifactError as error:
                last = error
                continue
            GRAPH_LOADS.inc()
            self.cache.put(decision_task_id, index)
            GRAPH_CACHE_BYTES.set(self.cache.used)
            self._pack_soon(index)
            return index
        raise last or ArtifactError(f"task {decision_task_id} has no task graph")

    def _pack_soon(self, index: TaskGraphIndex) -> None:
        """Pack the graph's bodies in a thread, after the command that loaded it has its
        graph: kept, it then holds a tenth of its document (``TaskGraphIndex.pack``)."""

        def done(task: asyncio.Task[None]) -> None:
            self._packing.discard(task)
            GRAPH_CACHE_BYTES.set(self.cache.used)
            if not task.cancelled() and task.exception() is not None:
                log.warning("packing a task graph failed: %s", task.exception())

        def pack() -> None:
            index.pack()
            give_back()  # the document's memory, to the system

        task = asyncio.get_running_loop().create_task(asyncio.to_thread(pack))
        self._packing.add(task)
        task.add_done_callback(done)

    async def label_to_taskid(self, *task_ids: str) -> dict[str, str]:
        """label-to-taskid.json of each task in order (a later one wins for a label).

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

    async def parameters(self, decision_task_id: str) -> dict[str, Any]:
        """The push's parameters.yml ({} when it has none or it cannot be read)."""
        kept = self._parameters.get(decision_task_id)
        if kept is None:
            try:
                text = await self.artifact(decision_task_id, "public/parameters.yml")
                loaded = yaml.safe_load(text)
            except (ArtifactError, yaml.YAMLError) as error:
                log.warning("parameters of %s unreadable: %s", decision_task_id, error)
                loaded = None
            kept = loaded if isinstance(loaded, dict) else {}
            if not kept:
                return kept  # not kept: the decision task may upload them yet
            while len(self._parameters) >= KEPT_DEFINITIONS:
                del self._parameters[next(iter(self._parameters))]
            self._parameters[decision_task_id] = kept
        return kept

    async def merged_labels(
        self, decision_task_id: str, project: str, routes: ProjectRoutes = ProjectRoutes()
    ) -> dict[str, str]:
        """What the push has built, label by label, as taskgraph's fetch_graph_and_labels
        merges it: the decision task's label-to-taskid, then those of the action tasks and
        cron tasks indexed for the push (oldest first, a later one winning). Kept for
        ``fresh_for`` seconds; then the Index is asked again for new action tasks."""
        now = asyncio.get_running_loop().time()
        kept = self._merged.get(decision_task_id)
        if kept is not None and now - kept[0] <= self.fresh_for:
            return kept[1]
        merged = await self.label_to_taskid(decision_task_id)
        parameters = await self.parameters(decision_task_id)
        values = {
            "trust_domain": routes.trust_domain,
            "project": parameters.get("project") or project,
            "pushlog_id": parameters.get("pushlog_id"),
            "head_rev": parameters.get("head_rev"),
        }
        later: list[str] = []
        for templates in (routes.action_namespaces, routes.cron_namespaces):
            entries: dict[str, str] = {}
            for template in templates:
                needed = [k for k in ("pushlog_id", "head_rev") if "{" + k + "}" in template]
                if any(values[k] in (None, "") for k in needed):
                    continue
                for entry in await self._indexed(template.format(**values)):
                    entries.setdefault(str(entry["taskId"]), str(entry.get("expires", "")))
            later += sorted(entries, key=lambda task_id: (entries[task_id], task_id))
        tasks = list(dict.fromkeys(t for t in later if t != decision_task_id))
        gate = asyncio.Semaphore(FETCHES_AT_ONCE)

        async def labels_of(task_id: str) -> dict[str, str]:
            async with gate:
                try:
                    return await self.label_to_taskid(task_id)
                except (ArtifactError, GraphError) as error:
                    # an action still running, one that wrote none (cancel), or a bad one
                    log.info("no label-to-taskid of %s: %s", task_id, error)
                    return {}

        # fetched together, applied oldest first (a later one wins for a label)
        for labels in await asyncio.gather(*(labels_of(t) for t in tasks)):
            merged.update(labels)
        self._merged[decision_task_id] = (now, merged)
        while len(self._merged) > KEPT_DEFINITIONS:
            del self._merged[next(iter(self._merged))]
        return merged

    def forget_labels(self, decision_task_id: str) -> None:
        """The push changed (the bot's own action added to it): read it afresh next time."""
        self._merged.pop(decision_task_id, None)

    async def _indexed(self, namespace: str) -> list[dict[str, Any]]:
        """Every task indexed directly under ``namespace`` (all pages)."""
        found: list[dict[str, Any]] = []
        query: dict[str, Any] = {}
        while True:
            try:
                page = await self._retrying(self._list_page, namespace, query)
            except TaskclusterRestFailure as error:
                if error.status_code == 404:
                    return found
                if error.status_code in (401, 403):
                    # not the bot's to list (no index:list-tasks): the decision's labels
                    # stand alone, as before merged labels; said once a while in the log
                    log.warning("cannot list %s (%s): earlier actions not merged", namespace, error)
                    return found
                raise
            found += [t for t in page.get("tasks", []) if isinstance(t, dict) and "taskId" in t]
            token = page.get("continuationToken")
            if not token:
                return found
            query = {"continuationToken": token}

    async def _list_page(self, namespace: str, query: dict[str, Any]) -> Any:
        return await self.index.listTasks(namespace, query=query)

    async def _retrying(self, call: Any, *args: Any) -> Any:
        for attempt in range(1, self.attempts + 1):
            try:
                return await call(*args)
            except Exception as error:
                if not is_transient(error) or attempt == self.attempts:
                    raise
                await asyncio.sleep(backoff(attempt))
        raise AssertionError("unreachable")


_DONE, _ABANDONED = b"", None  # what the feeding thread is told after the last chunk


async def index_as_it_arrives(response: aiohttp.ClientResponse, name: str) -> TaskGraphIndex:
    """The graph in ``response``, decoded in a thread batch by batch as its bytes arrive
    (``GraphStream``), so that indexing ends soon after the download does."""
    stream = GraphStream(name)
    chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def feed() -> TaskGraphIndex | None:
        while (chunk := chunks.get()) != _DONE:
            if chunk is _ABANDONED:
                return None
            stream.feed(chunk)
        return stream.finish()

    fed = asyncio.ensure_future(asyncio.to_thread(feed))
    try:
        async for chunk in response.content.iter_any():
            if fed.done():  # it failed (not a graph): no use reading on
                break
            chunks.put(chunk)
    except BaseException:
        chunks.put(_ABANDONED)
        raise
    chunks.put(_DONE)
    index = await fed
    assert index is not None
    return index


async def _at_most(response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """The whole body, refused (unread beyond the limit) when longer than ``limit`` bytes."""
    too_big = ArtifactError(f"{what} is larger than {limit:,} bytes")
    if (response.content_length or 0) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def _builds_page(github: GithubServiceClient, query: dict[str, Any]) -> Any:
    return await github.builds(query=query)


def _names_repository(definition: dict[str, Any], repository: str) -> bool:
    """Whether a decision task says it ran for GitHub repository ``owner/name``: as its
    head or its base (a fork's pull request: the head is the fork), or in its
    ``metadata.source``."""
    env = (definition.get("payload") or {}).get("env") or {}
    places = [
        str(v)
        for k, v in (env.items() if isinstance(env, dict) else ())
        if str(k).endswith(("_HEAD_REPOSITORY", "_BASE_REPOSITORY"))
    ]
    places.append(str((definition.get("metadata") or {}).get("source") or ""))
    return any(github_repository(place) == repository.lower() for place in places)


def github_repository(url: str) -> str | None:
    """``owner/name`` (lower case) of a github.com URL, else None."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("https", "http") or parsed.hostname not in (
        "github.com",
        "www.github.com",
    ):
        return None
    parts = [p for p in parsed.path.split("/") if p]
    if len(parts) < 2:
        return None
    return f"{parts[0]}/{parts[1].removesuffix('.git')}".lower()


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
