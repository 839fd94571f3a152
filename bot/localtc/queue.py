"""The Queue's task state machine, in memory: create, schedule, run, resolve, rerun, cancel."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.localtc import validation
from bot.localtc.errors import TaskclusterError, conflict, input_error, not_found
from bot.tctime import format_time, parse_time

EXCHANGE_PREFIX = "exchange/taskcluster-queue/v1/"
UNRESOLVED = ("unscheduled", "pending", "running")
CREATED_SKEW = dt.timedelta(minutes=15)
MAX_DEADLINE = dt.timedelta(days=5)  # the real Queue's default; a deployment may allow more
DEFAULT_LIFETIME = dt.timedelta(days=365)

# publish(exchange, routing key, CC routing keys, message)
Publish = Callable[[str, str, list[str], dict[str, Any]], None]


@dataclass
class Artifact:
    """A stored artifact: its content (served by the local service) and its type."""

    name: str
    content: bytes
    content_type: str
    expires: str
    storage_type: str = "s3"
    url: str | None = None  # for storageType "reference": where the content lives
    # "gzip": uploaded compressed, as workers upload JSON and YAML; served with
    # `Content-Encoding: gzip` whatever the client's Accept-Encoding, as the object service
    # does (its clients "must accept at least identity and gzip").
    content_encoding: str | None = None
    _encoded: bytes | None = None

    def served(self) -> bytes:
        """The bytes on the wire: the content as its encoding stores it."""
        if self.content_encoding != "gzip":
            return self.content
        if self._encoded is None:
            self._encoded = gzip.compress(self.content, compresslevel=6, mtime=0)
        return self._encoded


@dataclass
class TaskRecord:
    task_id: str
    definition: dict[str, Any]
    status: dict[str, Any]
    artifacts: dict[int, dict[str, Artifact]] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return str(self.status["state"])


class Queue:
    """The tasks of one local Taskcluster, with the real Queue's rules and events."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        publish: Publish | None = None,
        max_deadline: dt.timedelta = MAX_DEADLINE,
    ) -> None:
        self.clock = clock
        self.max_deadline = max_deadline
        self.publishing = publish is not None  # messages are built only when someone listens
        self.publish: Publish = publish or (lambda exchange, key, cc, message: None)
        self.tasks: dict[str, TaskRecord] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.dependents: dict[str, set[str]] = {}
        self.resolved_listeners: list[Callable[[TaskRecord], None]] = []

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # --- createTask -----------------------------------------------------------------

    def check_definition(self, task_id: str, definition: Any) -> dict[str, Any]:
        """Schema and task-queue checks; the definition with defaults and a task queue."""
        if not validation.SLUG.match(task_id):
            raise TaskclusterError(
                400, "InputValidationError", f"`{task_id}` is not a valid taskId"
            )
        found = validation.problems(definition)
        if found:
            raise TaskclusterError(
                400, "InputValidationError", "the task definition is invalid: " + "; ".join(found)
            )
        task = validation.with_defaults(definition)
        queue_id = task.get("taskQueueId")
        provisioner, worker_type = task.get("provisionerId"), task.get("workerType")
        if queue_id is not None:
            if (
                provisioner is not None or worker_type is not None
            ) and queue_id != f"{provisioner}/{worker_type}":
                raise input_error(
                    "taskQueueId must equal provisionerId/workerType when both are given"
                )
        elif provisioner is None or worker_type is None:
            raise input_error("a task needs taskQueueId, or both provisionerId and workerType")
        else:
            task["taskQueueId"] = f"{provisioner}/{worker_type}"
        task.setdefault("taskGroupId", task_id)
        return task

    @staticmethod
    def scope_parameters(task: dict[str, Any]) -> dict[str, Any]:
        """What the createTask scope expression is filled from."""
        provisioner, worker_type = task["taskQueueId"].split("/", 1)
        position = validation.PRIORITIES.index(task["priority"])
        return {
            "scopes": task["scopes"],
            "routes": task["routes"],
            "projectId": task["projectId"],
            "schedulerId": task["schedulerId"],
            # a scope for a higher priority also lets one create at a lower one
            "priorities": list(validation.PRIORITIES[: position + 1]),
            "provisionerId": provisioner,
            "workerType": worker_type,
        }

    def create(self, task_id: str, task: dict[str, Any]) -> dict[str, Any]:
        """Dates, task group, idempotency and dependencies, then the task exists."""
        now = self.now()
        created, deadline = parse_time(task["created"]), parse_time(task["deadline"])
        if abs(created - now) > CREATED_SKEW:
            raise input_error("`created` must be within 15 minutes of the current time")
        if deadline < now:
            raise input_error("`deadline` is in the past")
        if deadline > created + self.max_deadline:
            days = self.max_deadline / dt.timedelta(days=1)
            raise input_error(f"`deadline` cannot be more than {days:g} days after `created`")
        expires = parse_time(task["expires"]) if "expires" in task else deadline + DEFAULT_LIFETIME
        if expires < deadline:
            raise input_error("`expires` cannot be before `deadline`")
        task = {
            **task,
            "expires": format_time(expires) if "expires" not in task else task["expires"],
        }
        group = self.groups.get(task["taskGroupId"])
        if group is not None and group["schedulerId"] != task["schedulerId"]:
            raise conflict(
                f"task group {task['taskGroupId']} has schedulerId `{group['schedulerId']}`, "
                f"not `{task['schedulerId']}`"
            )
        existing = self.tasks.get(task_id)
        if existing is not None:
            if existing.definition != task:
                raise conflict(f"task {task_id} already exists with a different definition")
            return self.status_response(existing)
        self._check_dependencies(task_id, task)
        record = TaskRecord(task_id, task, self._new_status(task_id, task))
        self.tasks[task_id] = record
        if group is None:
            self.groups[task["taskGroupId"]] = {
                "schedulerId": task["schedulerId"],
                "expires": task["expires"],
                "taskIds": [],
                "projectId": task["projectId"],
            }
        self.groups[task["taskGroupId"]]["taskIds"].append(task_id)
        for dependency in task["dependencies"]:
            self.dependents.setdefault(dependency, set()).add(task_id)
        self._emit("task-defined", record, None)
        if self._ready(record):
            self._add_run(record, "scheduled")
        return self.status_response(record)

    def _check_dependencies(self, task_id: str, task: dict[str, Any]) -> None:
        """The real Queue's rule: every dependency exists (a task may name itself: it then
        waits for scheduleTask) and, when all do, none expires before this task's deadline."""
        others = [d for d in task["dependencies"] if d != task_id]
        missing = [d for d in others if d not in self.tasks]
        deadline = parse_time(task["deadline"])
        expiring = (
            []
            if missing
            else [d for d in others if parse_time(self.tasks[d].definition["expires"]) < deadline]
        )
        if not missing and not expiring:
            return
        message = ""
        if missing:
            message += "`task.dependencies` references non-existing tasks: \n"
            message += "\n".join(f" * {d}" for d in missing) + "\n"
            message += (
                "All taskIds in `task.dependencies` **must** exist\nbefore the task is created.\n"
            )
        if expiring:
            message += "`task.dependencies` references tasks that expires\n"
            message += "before `task.deadline` this is not allowed, see tasks: \n"
            message += "\n".join(f" * {d}," for d in expiring) + "\n"
            message += "All taskIds in `task.dependencies` **must** have\n"
            message += "`task.expires` greater than the `deadline` for this task.\n"
        raise TaskclusterError(
            400,
            "InputError",
            message,
            dependencies=list(task["dependencies"]),
            missingTaskDependencies=missing,
            expiringTaskDependencies=expiring,
        )

    def _new_status(self, task_id: str, task: dict[str, Any]) -> dict[str, Any]:
        provisioner, worker_type = task["taskQueueId"].split("/", 1)
        return {
            "taskId": task_id,
            "provisionerId": provisioner,
            "workerType": worker_type,
            "taskQueueId": task["taskQueueId"],
            "schedulerId": task["schedulerId"],
            "projectId": task["projectId"],
            "taskGroupId": task["taskGroupId"],
            "deadline": task["deadline"],
            "expires": task["expires"],
            "retriesLeft": task["retries"],
            "state": "unscheduled",
            "runs": [],
        }

    # --- dependencies and runs -------------------------------------------------------

    def _ready(self, record: TaskRecord) -> bool:
        needed = "completed" if record.definition["requires"] == "all-completed" else None
        for dependency in record.definition["dependencies"]:
            if dependency == record.task_id:
                return False  # a self-dependency holds the task until scheduleTask
            state = self.tasks[dependency].state
            if state in UNRESOLVED or (needed and state != needed):
                return False
        return True

    def _add_run(self, record: TaskRecord, reason: str) -> None:
        runs = record.status["runs"]
        runs.append(
            {
                "runId": len(runs),
                "state": "pending",
                "reasonCreated": reason,
                "scheduled": format_time(self.now()),
            }
        )
        record.status["state"] = "pending"
        self._emit("task-pending", record, len(runs) - 1)

    def _resolved(self, record: TaskRecord) -> None:
        for listener in self.resolved_listeners:
            listener(record)
        for dependent_id in sorted(self.dependents.get(record.task_id, ())):
            dependent = self.tasks[dependent_id]
            if dependent.state == "unscheduled" and self._ready(dependent):
                self._add_run(dependent, "scheduled")
        group = self.groups[record.definition["taskGroupId"]]
        if all(self.tasks[t].state not in UNRESOLVED for t in group["taskIds"]):
            self.publish(
                EXCHANGE_PREFIX + "task-group-resolved",
                f"primary.{record.definition['taskGroupId']}.{group['schedulerId']}._",
                [],
                {
                    "taskGroupId": record.definition["taskGroupId"],
                    "schedulerId": group["schedulerId"],
                    "expires": group["expires"],
                    "version": 1,
                },
            )

    def get(self, task_id: str) -> TaskRecord:
        record = self.tasks.get(task_id)
        if record is None:
            raise not_found(f"task {task_id} not found")
        self._check_deadline(record)
        return record

    def _check_deadline(self, record: TaskRecord) -> None:
        if record.state in UNRESOLVED and parse_time(record.definition["deadline"]) <= self.now():
            self._exception(record, "deadline-exceeded")

    def check_deadlines(self) -> None:
        for record in list(self.tasks.values()):
            self._check_deadline(record)

    def _exception(self, record: TaskRecord, reason: str) -> None:
        runs = record.status["runs"]
        if not runs or runs[-1]["state"] not in ("pending", "running"):
            runs.append(
                {
                    "runId": len(runs),
                    "state": "pending",
                    "reasonCreated": "exception",
                    "scheduled": format_time(self.now()),
                }
            )
        run = runs[-1]
        run.update(state="exception", reasonResolved=reason, resolved=format_time(self.now()))
        record.status["state"] = "exception"
        self._emit("task-exception", record, run["runId"])
        self._resolved(record)

    # --- operations --------------------------------------------------------------------

    def status_response(self, record: TaskRecord) -> dict[str, Any]:
        return {"status": copy.deepcopy(record.status)}

    def schedule(self, task_id: str) -> dict[str, Any]:
        record = self.get(task_id)
        if record.state == "unscheduled":
            self._add_run(record, "scheduled")
        elif record.state not in UNRESOLVED:
            raise conflict(f"task {task_id} is resolved; it cannot be scheduled")
        return self.status_response(record)

    def cancel(self, task_id: str) -> dict[str, Any]:
        record = self.get(task_id)
        if record.state in UNRESOLVED:
            self._exception(record, "canceled")
        return self.status_response(record)

    def rerun(self, task_id: str) -> dict[str, Any]:
        record = self.get(task_id)
        if parse_time(record.definition["deadline"]) <= self.now():
            raise conflict(f"task {task_id} is past its deadline")
        if record.state in ("unscheduled", "pending", "running"):
            if record.state == "unscheduled":
                raise conflict(f"task {task_id} is unscheduled; schedule it instead")
            return self.status_response(record)
        self._add_run(record, "rerun")
        return self.status_response(record)

    def claim(self, task_id: str, worker_group: str, worker_id: str) -> int:
        """Start the pending run of a task (what a worker's claim does); its runId."""
        record = self.get(task_id)
        if record.state != "pending":
            raise conflict(f"task {task_id} is {record.state}, not pending")
        run = record.status["runs"][-1]
        now = self.now()
        run.update(
            state="running",
            workerGroup=worker_group,
            workerId=worker_id,
            started=format_time(now),
            takenUntil=format_time(now + dt.timedelta(minutes=20)),
        )
        record.status["state"] = "running"
        self._emit("task-running", record, run["runId"])
        return int(run["runId"])

    def resolve(
        self, task_id: str, run_id: int, outcome: str, reason: str | None = None
    ) -> dict[str, Any]:
        """End a running run as completed, failed or exception."""
        record = self.get(task_id)
        runs = record.status["runs"]
        if run_id >= len(runs) or runs[run_id]["state"] != "running":
            raise conflict(f"run {run_id} of task {task_id} is not running")
        run = runs[run_id]
        if outcome == "completed":
            run.update(state="completed", reasonResolved="completed")
        elif outcome == "failed":
            run.update(state="failed", reasonResolved="failed")
        else:
            run.update(state="exception", reasonResolved=reason or "malformed-payload")
        run["resolved"] = format_time(self.now())
        record.status["state"] = run["state"]
        self._emit(f"task-{run['state']}", record, run_id)
        self._resolved(record)
        return self.status_response(record)

    def list_group(self, group_id: str, continuation: str | None, limit: int) -> dict[str, Any]:
        group = self.groups.get(group_id)
        if group is None:
            raise not_found(f"task group {group_id} not found")
        task_ids = group["taskIds"]
        start = int(continuation) if continuation and continuation.isdigit() else 0
        page = task_ids[start : start + limit]
        response: dict[str, Any] = {
            "taskGroupId": group_id,
            "schedulerId": group["schedulerId"],
            "expires": group["expires"],
            "tasks": [
                {
                    "status": copy.deepcopy(self.get(t).status),
                    "task": copy.deepcopy(self.tasks[t].definition),
                }
                for t in page
            ],
        }
        if start + limit < len(task_ids):
            response["continuationToken"] = str(start + limit)
        return response

    # --- artifacts ------------------------------------------------------------------------

    def put_artifact(self, task_id: str, run_id: int, artifact: Artifact) -> None:
        record = self.get(task_id)
        if run_id >= len(record.status["runs"]):
            raise conflict(f"task {task_id} has no run {run_id}")
        record.artifacts.setdefault(run_id, {})[artifact.name] = artifact

    def artifact(self, task_id: str, run_id: int | None, name: str) -> Artifact:
        record = self.get(task_id)
        runs = record.status["runs"]
        if run_id is None:
            if not runs:
                raise not_found(f"task {task_id} has no runs")
            run_id = len(runs) - 1
        found = record.artifacts.get(run_id, {}).get(name)
        if found is None:
            raise not_found(f"artifact {name} not found on run {run_id} of task {task_id}")
        return found

    # --- events ---------------------------------------------------------------------------

    def _emit(self, kind: str, record: TaskRecord, run_id: int | None) -> None:
        if not self.publishing:
            return
        status = record.status
        run = status["runs"][run_id] if run_id is not None else {}
        parts = [
            "primary",
            record.task_id,
            "_" if run_id is None else str(run_id),
            run.get("workerGroup", "_"),
            run.get("workerId", "_"),
            status["provisionerId"],
            status["workerType"],
            status["schedulerId"],
            status["taskGroupId"],
            "_",
        ]
        message: dict[str, Any] = {"status": copy.deepcopy(status), "version": 1}
        if (
            kind
            in ("task-pending", "task-running", "task-completed", "task-failed", "task-exception")
            and run_id is not None
        ):
            message["runId"] = run_id
        if kind == "task-running":
            message.update(
                workerGroup=run["workerGroup"],
                workerId=run["workerId"],
                takenUntil=run["takenUntil"],
            )
        if kind in (
            "task-defined",
            "task-pending",
            "task-completed",
            "task-failed",
            "task-exception",
        ):
            message["task"] = {"tags": copy.deepcopy(record.definition["tags"])}
        if kind in ("task-completed", "task-failed", "task-exception") and run_id is not None:
            message.update(
                workerGroup=run.get("workerGroup", "_"), workerId=run.get("workerId", "_")
            )
        cc = [f"route.{route}" for route in record.definition["routes"]]
        self.publish(EXCHANGE_PREFIX + kind, ".".join(parts), cc, message)
