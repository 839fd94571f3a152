"""A local Taskcluster on loopback: the Queue and Index APIs over aiohttp, Hawk-authenticated.

It speaks the real wire protocol (routes, Hawk, scopes, error bodies, 303 artifacts), so
the official ``taskcluster`` client talks to it unchanged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.localtc import paging, validation
from bot.localtc import scopes as scope_rules
from bot.localtc.auth import Authenticator, Caller, Client
from bot.localtc.errors import TaskclusterError, conflict, input_error
from bot.localtc.github import BUILDS_QUERY, Github
from bot.localtc.hooks import Hooks
from bot.localtc.index import Index
from bot.localtc.queue import Artifact, Publish, Queue
from bot.tctime import format_time

ROOT_CLIENT_ID = "static/taskbot/root"
ANONYMOUS_SCOPES = (
    "queue:get-artifact:public/*",
    "queue:get-task:*",
    "queue:status:*",
    "queue:list-task-group:*",
    "index:find-task:*",
)


@dataclass(frozen=True, slots=True)
class Faults:
    """Injected faults for tests and benchmarks, on requests whose path contains ``only``
    (all when empty): a share of 5xx answers, of connections dropped before the request
    is handled, of connections dropped after it was handled (the answer is lost), and a
    delay."""

    error_rate: float = 0.0
    reset_rate: float = 0.0
    lost_reply_rate: float = 0.0
    delay_ms: int = 0
    only: str = ""
    seed: int | None = None


@dataclass
class Context:
    """One API request: its path parameters, query, JSON body and caller."""

    request: web.Request
    params: dict[str, str]
    query: dict[str, str]
    payload: Any
    caller: Caller
    body: bytes


Handler = Callable[["LocalTaskcluster", Context], Awaitable[web.StreamResponse]]
ScopeParams = Callable[["LocalTaskcluster", Context], dict[str, Any]]


@dataclass(frozen=True)
class Endpoint:
    """One API method: service, name, HTTP method, route, scope expression, and handler.

    With ``query``, the query-string parameters the method takes and their patterns: any
    other, or a value its pattern does not match, is refused (400 InvalidRequestArguments)
    before authentication, as the real API library does; ``params`` likewise checks URL
    parameters. Without them (None) the query and URL parameters are not checked.
    """

    service: str
    name: str
    method: str
    route: str
    scopes: scope_rules.Expression | None
    handler: Handler
    scope_params: ScopeParams | None = None
    query: Mapping[str, re.Pattern[str]] | None = None
    params: Mapping[str, re.Pattern[str]] | None = None


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data), content_type="application/json", headers=headers
    )


# --- handlers ----------------------------------------------------------------------------


def _task_params(tc: LocalTaskcluster, ctx: Context) -> dict[str, Any]:
    record = tc.queue.get(ctx.params["taskId"])
    return {
        "taskId": record.task_id,
        "schedulerId": record.definition["schedulerId"],
        "taskGroupId": record.definition["taskGroupId"],
        "projectId": record.definition["projectId"],
    }


def _create_params(tc: LocalTaskcluster, ctx: Context) -> dict[str, Any]:
    task = tc.queue.check_definition(ctx.params["taskId"], ctx.payload)
    ctx.payload = task
    return tc.queue.scope_parameters(task)


async def create_task(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    return _json(tc.queue.create(ctx.params["taskId"], ctx.payload))


async def get_task(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    return _json(tc.queue.get(ctx.params["taskId"]).definition)


async def task_status(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    return _json(tc.queue.status_response(tc.queue.get(ctx.params["taskId"])))


async def schedule_task(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    return _json(tc.queue.schedule(ctx.params["taskId"]))


async def cancel_task(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    return _json(tc.queue.cancel(ctx.params["taskId"]))


async def rerun_task(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    return _json(tc.queue.rerun(ctx.params["taskId"]))


async def list_task_group(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    try:
        limit = max(1, min(1000, int(ctx.query.get("limit", "1000"))))
    except ValueError:
        raise input_error("limit must be a whole number") from None
    return _json(
        tc.queue.list_group(ctx.params["taskGroupId"], ctx.query.get("continuationToken"), limit)
    )


def _artifact_response(
    tc: LocalTaskcluster, artifact: Artifact, task_id: str, run_id: int
) -> web.Response:
    url = artifact.url or f"{tc.root_url}/_artifacts/{task_id}/{run_id}/{artifact.name}"
    return _json(
        {"storageType": artifact.storage_type, "url": url},
        status=303,
        headers={"Location": url, "x-taskcluster-artifact-storage-type": artifact.storage_type},
    )


async def list_artifacts(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    """A run's artifacts (the latest run's without ``runId``), paged as the real Queue
    pages them; a run that does not exist is a 404."""
    task_id = ctx.params["taskId"]
    runs = tc.queue.get(task_id).status["runs"]
    given = ctx.params.get("runId")
    run_id = int(given) if given is not None else len(runs) - 1
    if not 0 <= run_id < len(runs):
        raise TaskclusterError(404, "ResourceNotFound", f"task {task_id} has no run {run_id}")
    stored = list(tc.queue.get(task_id).artifacts.get(run_id, {}).values())
    page, token = paging.paginate(stored, ctx.query)
    body: dict[str, Any] = {
        "artifacts": [
            {
                "storageType": a.storage_type,
                "name": a.name,
                "expires": a.expires,
                "contentType": a.content_type,
            }
            for a in page
        ]
    }
    if token is not None:
        body["continuationToken"] = token
    return _json(body)


def _artifact_params(tc: LocalTaskcluster, ctx: Context) -> dict[str, Any]:
    return {"names": [ctx.params["name"]]}


async def get_latest_artifact(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    task_id, name = ctx.params["taskId"], ctx.params["name"]
    artifact = tc.queue.artifact(task_id, None, name)
    run_id = len(tc.queue.get(task_id).status["runs"]) - 1
    return _artifact_response(tc, artifact, task_id, run_id)


async def get_artifact(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    task_id, name = ctx.params["taskId"], ctx.params["name"]
    run_id = int(ctx.params["runId"])
    return _artifact_response(tc, tc.queue.artifact(task_id, run_id, name), task_id, run_id)


async def report(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    outcome = ctx.request.path.rsplit("/", 1)[-1]
    reason = ctx.payload.get("reason") if isinstance(ctx.payload, dict) else None
    return _json(tc.queue.resolve(ctx.params["taskId"], int(ctx.params["runId"]), outcome, reason))


async def insert_task(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    body = ctx.payload if isinstance(ctx.payload, dict) else {}
    task_id = body.get("taskId")
    if not isinstance(task_id, str) or not isinstance(body.get("expires"), str):
        raise TaskclusterError(
            400, "InputValidationError", "insertTask needs taskId, rank, data and expires"
        )
    entry = tc.index.insert(
        ctx.params["namespace"],
        task_id,
        int(body.get("rank", 0)),
        dict(body.get("data", {})),
        body["expires"],
    )
    return _json(entry.to_json())


async def find_task(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    return _json(tc.index.find(ctx.params["indexPath"]).to_json())


async def list_tasks(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    entries = tc.index.list_tasks(ctx.params["namespace"])
    page, token = paging.paginate(entries, ctx.query)
    body: dict[str, Any] = {"tasks": [entry.to_json() for entry in page]}
    if token is not None:
        body["continuationToken"] = token
    return _json(body)


async def list_builds(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    query = ctx.query
    pull_request = query.get("pullRequest")
    builds = tc.github.list_builds(
        organization=query.get("organization"),
        repository=query.get("repository"),
        sha=query.get("sha"),
        pull_request=int(pull_request) if pull_request else None,
    )
    page, token = paging.paginate(builds, query)
    body: dict[str, Any] = {"builds": [build.to_json() for build in page]}
    if token is not None:
        body["continuationToken"] = token
    return _json(body)


async def find_artifact_from_task(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    entry = tc.index.find(ctx.params["indexPath"])
    url = f"{tc.root_url}/api/queue/v1/task/{entry.task_id}/artifacts/{ctx.params['name']}"
    return web.Response(status=303, headers={"Location": url})


async def trigger_hook(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    payload = {} if ctx.payload is None else ctx.payload
    if not isinstance(payload, dict):  # trigger-hook.json: the payload is an object
        raise TaskclusterError(
            400, "InputValidationError", "the trigger payload must be a JSON object"
        )
    answer = tc.hooks.trigger(
        ctx.params["hookGroupId"], ctx.params["hookId"], payload, ctx.caller.client_id
    )
    return _json(answer)


SCOPE_TEXT = re.compile(r"^[ -~]*$")


def _scopes_problem(scopes: Any) -> str | None:
    """What the Auth schemas' scope list (printable, unique strings) finds wrong, if any."""
    if not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes):
        return "data/scopes must be an array of strings"
    if any(not SCOPE_TEXT.match(x) for x in scopes):
        return 'data/scopes must match pattern "^[ -~]*$"'
    if len(set(scopes)) != len(scopes):
        return "data/scopes must NOT have duplicate items"
    return None


def _invalid(problems: list[str]) -> TaskclusterError:
    return TaskclusterError(
        400, "InputValidationError", "Schema Validation Failed!\n" + "\n".join(problems)
    )


def _scopeset(payload: Any) -> list[str]:
    """The ``scopes`` of a scopeset.json body, refused as the real Auth service refuses."""
    if not isinstance(payload, dict) or set(payload) != {"scopes"}:
        raise _invalid(["data must be an object with exactly the property `scopes`"])
    problem = _scopes_problem(payload["scopes"])
    if problem:
        raise _invalid([problem])
    return list(payload["scopes"])


def _normalized(scopes: set[str]) -> list[str]:
    """Sorted, without scopes a `*` scope of the set already covers (as Auth answers)."""
    stars = [x[:-1] for x in scopes if x.endswith("*")]
    return sorted(x for x in scopes if not any(x != p + "*" and x.startswith(p) for p in stars))


async def expand_scopes(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    scopes = _scopeset(ctx.payload)
    return _json({"scopes": _normalized(scope_rules.expand_roles(scopes, tc.roles))})


async def current_scopes(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    return _json({"scopes": _normalized(set(ctx.caller.scopes))})


def _body_problems(payload: Any, required: tuple[str, ...], allowed: tuple[str, ...]) -> list[str]:
    """create-role-request / create-client-request's rules (draft-06, additionalProperties
    false), as the Auth service's validator words them."""
    if not isinstance(payload, dict):
        return ["data must be object"]
    problems = [f"data must have required property '{k}'" for k in required if k not in payload]
    problems += [
        f"data must NOT have additional properties ('{k}')" for k in payload if k not in allowed
    ]
    description = payload.get("description", "")
    if not isinstance(description, str) or len(description) > 10240:
        problems.append("data/description must be a string of at most 10240 characters")
    problem = _scopes_problem(payload.get("scopes", []))
    return problems + ([problem] if problem else [])


def _checked_body(ctx: Context, required: tuple[str, ...], allowed: tuple[str, ...]) -> Any:
    problems = _body_problems(ctx.payload, required, allowed)
    if problems:
        raise _invalid(problems)
    scopes = ctx.payload.get("scopes", [])
    if any(x.endswith("**") for x in scopes):
        raise input_error("scopes ending in more than one `*` are forbidden")
    return ctx.payload


def _body_scopes(tc: LocalTaskcluster, ctx: Context) -> dict[str, Any]:
    scopes = ctx.payload.get("scopes", []) if isinstance(ctx.payload, dict) else []
    return {"scopes": scopes if isinstance(scopes, list) else []}


async def create_role(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    body = _checked_body(ctx, ("scopes", "description"), ("scopes", "description"))
    role_id = ctx.params["roleId"]
    if role_id in tc.roles:
        raise conflict(f"Role with id `{role_id}` already exists")
    tc.roles[role_id] = list(body["scopes"])
    now = format_time(tc.queue.now())
    expanded = _normalized(scope_rules.expand_roles([f"assume:{role_id}"], tc.roles))
    return _json(
        {
            "roleId": role_id,
            "scopes": list(body["scopes"]),
            "description": body["description"],
            "created": now,
            "lastModified": now,
            "expandedScopes": expanded,
        }
    )


async def create_client(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    allowed = ("expires", "description", "scopes", "deleteOnExpiration")
    body = _checked_body(ctx, ("expires", "description"), allowed)
    if not isinstance(body["expires"], str) or not validation.DATE_TIME.match(body["expires"]):
        raise _invalid(['data/expires must match format "date-time"'])
    client_id = ctx.params["clientId"]
    if client_id in tc.clients:
        raise conflict(f"client with clientId `{client_id}` already exists")
    token = secrets.token_urlsafe(33)[:44]
    scopes = list(body.get("scopes", []))
    tc.clients[client_id] = Client(client_id, token, tuple(scopes))
    now = format_time(tc.queue.now())
    return _json(
        {
            "clientId": client_id,
            "accessToken": token,
            "expires": body["expires"],
            "description": body["description"],
            "created": now,
            "lastModified": now,
            "lastDateUsed": now,
            "lastRotated": now,
            "scopes": scopes,
            "expandedScopes": _normalized(scope_rules.expand_roles(scopes, tc.roles)),
            "disabled": False,
            "deleteOnExpiration": bool(body.get("deleteOnExpiration", False)),
        }
    )


async def ping(tc: LocalTaskcluster, ctx: Context) -> web.StreamResponse:
    return _json({"alive": True, "uptime": 0})


TASK_OWNER = {
    "AnyOf": [
        "queue:{verb}-task:<schedulerId>/<taskGroupId>/<taskId>",
        "queue:{verb}-task-in-project:<projectId>",
        {"AllOf": ["queue:{verb}-task", "assume:scheduler-id:<schedulerId>/<taskGroupId>"]},
    ]
}


def _owner(verb: str) -> scope_rules.Expression:
    expression: scope_rules.Expression = json.loads(json.dumps(TASK_OWNER).replace("{verb}", verb))
    return expression


# The Index's path parameters (``namespace``, ``indexPath``) must be dotted names.
NAMESPACE = re.compile(r"^([a-zA-Z0-9_!~*'()%-]+\.)*[a-zA-Z0-9_!~*'()%-]+$")
GET_ARTIFACT = {"AllOf": [{"each": "queue:get-artifact:<name>", "for": "name", "in": "names"}]}
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("queue", "ping", "get", "/ping", None, ping),
    Endpoint(
        "queue",
        "createTask",
        "put",
        "/task/<taskId>",
        {
            "AllOf": [
                {"each": "<scope>", "for": "scope", "in": "scopes"},
                {"each": "queue:route:<route>", "for": "route", "in": "routes"},
                "queue:create-task:project:<projectId>",
                "queue:scheduler-id:<schedulerId>",
                {
                    "AnyOf": [
                        {
                            "each": "queue:create-task:<priority>:<provisionerId>/<workerType>",
                            "for": "priority",
                            "in": "priorities",
                        }
                    ]
                },
            ]
        },
        create_task,
        _create_params,
    ),
    Endpoint("queue", "task", "get", "/task/<taskId>", "queue:get-task:<taskId>", get_task),
    Endpoint(
        "queue", "status", "get", "/task/<taskId>/status", "queue:status:<taskId>", task_status
    ),
    Endpoint(
        "queue",
        "listTaskGroup",
        "get",
        "/task-group/<taskGroupId>/list",
        "queue:list-task-group:<taskGroupId>",
        list_task_group,
    ),
    Endpoint(
        "queue",
        "scheduleTask",
        "post",
        "/task/<taskId>/schedule",
        _owner("schedule"),
        schedule_task,
        _task_params,
    ),
    Endpoint(
        "queue",
        "rerunTask",
        "post",
        "/task/<taskId>/rerun",
        _owner("rerun"),
        rerun_task,
        _task_params,
    ),
    Endpoint(
        "queue",
        "cancelTask",
        "post",
        "/task/<taskId>/cancel",
        _owner("cancel"),
        cancel_task,
        _task_params,
    ),
    Endpoint(
        "queue",
        "getLatestArtifact",
        "get",
        "/task/<taskId>/artifacts/<name>",
        GET_ARTIFACT,
        get_latest_artifact,
        _artifact_params,
    ),
    Endpoint(
        "queue",
        "listLatestArtifacts",
        "get",
        "/task/<taskId>/artifacts",
        "queue:list-artifacts:<taskId>",
        list_artifacts,
        query=paging.PAGINATE_QUERY,
    ),
    Endpoint(
        "queue",
        "listArtifacts",
        "get",
        "/task/<taskId>/runs/<runId>/artifacts",
        "queue:list-artifacts:<taskId>:<runId>",
        list_artifacts,
        query=paging.PAGINATE_QUERY,
    ),
    Endpoint(
        "queue",
        "getArtifact",
        "get",
        "/task/<taskId>/runs/<runId>/artifacts/<name>",
        GET_ARTIFACT,
        get_artifact,
        _artifact_params,
    ),
    *(
        Endpoint(
            "queue",
            f"report{outcome.capitalize()}",
            "post",
            f"/task/<taskId>/runs/<runId>/{outcome}",
            "queue:resolve-task:<taskId>/<runId>",
            report,
        )
        for outcome in ("completed", "failed", "exception")
    ),
    Endpoint("index", "ping", "get", "/ping", None, ping),
    Endpoint("auth", "ping", "get", "/ping", None, ping),
    Endpoint("auth", "expandScopes", "post", "/scopes/expand", "auth:expand-scopes", expand_scopes),
    Endpoint(
        "auth", "currentScopes", "get", "/scopes/current", "auth:current-scopes", current_scopes
    ),
    Endpoint(
        "auth",
        "createRole",
        "put",
        "/roles/<roleId>",
        {
            "AllOf": [
                "auth:create-role:<roleId>",
                {"each": "<scope>", "for": "scope", "in": "scopes"},
            ]
        },
        create_role,
        _body_scopes,
    ),
    Endpoint(
        "auth",
        "createClient",
        "put",
        "/clients/<clientId>",
        {
            "AllOf": [
                "auth:create-client:<clientId>",
                {"each": "<scope>", "for": "scope", "in": "scopes"},
            ]
        },
        create_client,
        _body_scopes,
    ),
    Endpoint("hooks", "ping", "get", "/ping", None, ping),
    Endpoint(
        "hooks",
        "triggerHook",
        "post",
        "/hooks/<hookGroupId>/<hookId>/trigger",
        "hooks:trigger-hook:<hookGroupId>/<hookId>",
        trigger_hook,
    ),
    Endpoint(
        "index", "findTask", "get", "/task/<indexPath>", "index:find-task:<indexPath>", find_task
    ),
    Endpoint(
        "index",
        "insertTask",
        "put",
        "/task/<namespace>",
        "index:insert-task:<namespace>",
        insert_task,
    ),
    Endpoint(
        "index",
        "findArtifactFromTask",
        "get",
        "/task/<indexPath>/artifacts/<name>",
        "queue:get-artifact:<name>",
        find_artifact_from_task,
    ),
    Endpoint(
        "index",
        "listTasks",
        "get",
        "/tasks/<namespace>",
        "index:list-tasks:<namespace>",
        list_tasks,
        query=paging.PAGINATE_QUERY,
        params={"namespace": NAMESPACE},
    ),
    Endpoint("github", "ping", "get", "/ping", None, ping),
    Endpoint(
        "github",
        "builds",
        "get",
        "/builds",
        "github:list-builds",
        list_builds,
        query={**paging.PAGINATE_QUERY, **BUILDS_QUERY},
    ),
)


def _aiohttp_route(route: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match[1]
        pattern = ".+" if name in ("name", "hookId") else "[^/]+"
        return "{" + f"{name}:{pattern}" + "}"

    return re.sub(r"<([^>]+)>", replace, route)


@dataclass
class LocalTaskcluster:
    """The services, their state and their clients; ``app()`` serves them."""

    root_url: str = ""
    clients: dict[str, Client] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)
    publish: Publish | None = None
    faults: Faults = field(default_factory=Faults)
    # Artifact downloads paced to this many bytes a second (a real network); None: at once.
    artifact_bytes_per_second: float | None = None
    clock: Callable[[], float] | None = None
    max_deadline_days: float = 5.0  # the real Queue's default; Firefox CI allows more

    def __post_init__(self) -> None:
        if ROOT_CLIENT_ID not in self.clients:
            self.clients[ROOT_CLIENT_ID] = Client(ROOT_CLIENT_ID, secrets.token_urlsafe(32), ("*",))
        self.roles.setdefault("anonymous", list(ANONYMOUS_SCOPES))
        clock = self.clock or time.time
        self.queue = Queue(
            publish=self.publish,
            clock=clock,
            max_deadline=dt.timedelta(days=self.max_deadline_days),
        )
        self.index = Index(self.queue)
        self.hooks = Hooks(self.queue)
        self.github = Github(clock=clock, queue=self.queue)
        self.auth = Authenticator(self.clients, self.roles, clock=clock)
        self._random = random.Random(self.faults.seed)
        self.injected = 0  # how many faults were injected

    @property
    def root_client(self) -> Client:
        return self.clients[ROOT_CLIENT_ID]

    def credentials(self) -> dict[str, str]:
        return {
            "clientId": self.root_client.client_id,
            "accessToken": self.root_client.access_token,
        }

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults_middleware])
        for endpoint in ENDPOINTS:
            path = f"/api/{endpoint.service}/v1{_aiohttp_route(endpoint.route)}"
            app.router.add_route(endpoint.method.upper(), path, self._wrap(endpoint))
        app.router.add_get("/_artifacts/{taskId}/{runId}/{name:.+}", self._artifact_content)
        return app

    @web.middleware
    async def _faults_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        faults = self.faults
        if faults.only and faults.only not in request.path:
            response: web.StreamResponse = await handler(request)
            return response
        if faults.delay_ms:
            await asyncio.sleep(faults.delay_ms / 1000)
        roll = self._random.random()
        if roll < faults.reset_rate + faults.error_rate + faults.lost_reply_rate:
            self.injected += 1
        if roll < faults.reset_rate:
            await request.read()
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPServiceUnavailable()
        if roll < faults.reset_rate + faults.error_rate:
            return _json({"code": "InternalServerError", "message": "injected fault"}, status=500)
        result: web.StreamResponse = await handler(request)
        if roll < faults.reset_rate + faults.error_rate + faults.lost_reply_rate:
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPServiceUnavailable()
        return result

    def _wrap(self, endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            payload: Any = None
            try:
                if endpoint.params is not None:
                    paging.check_params(dict(request.match_info), endpoint.params)
                if endpoint.query is not None:
                    paging.check_query(request.query, endpoint.query)
                caller = self.auth.authenticate(
                    request.headers.get("Authorization"),
                    url=str(request.url),
                    method=request.method,
                    content=body,
                    content_type=request.headers.get("Content-Type", ""),
                )
                if body:
                    try:
                        payload = json.loads(body)
                    except ValueError:
                        raise TaskclusterError(
                            400, "MalformedPayload", "the request body is not JSON"
                        ) from None
                ctx = Context(
                    request, dict(request.match_info), dict(request.query), payload, caller, body
                )
                if endpoint.scopes is not None:
                    params = {**ctx.params}
                    if endpoint.scope_params is not None:
                        params.update(endpoint.scope_params(self, ctx))
                    self._authorize(endpoint, params, caller)
                return await endpoint.handler(self, ctx)
            except TaskclusterError as error:
                return self._error(error, request, payload)

        return handle

    def _authorize(self, endpoint: Endpoint, params: dict[str, Any], caller: Caller) -> None:
        assert endpoint.scopes is not None
        needed = scope_rules.instantiate(endpoint.scopes, params)
        unmet = scope_rules.missing(needed, caller.scopes)
        if unmet is not None:
            raise TaskclusterError(
                403,
                "InsufficientScopes",
                f"Client ID {caller.client_id} does not have sufficient scopes and is missing "
                f"the following scopes: {scope_rules.describe(unmet)}. This request requires "
                f"{scope_rules.describe(needed)}.",
                required=needed,
                unsatisfied=unmet,
            )

    def _error(self, error: TaskclusterError, request: web.Request, payload: Any) -> web.Response:
        body = {
            "code": error.code,
            "message": error.message,
            "requestInfo": {
                "method": request.method,
                "params": dict(request.match_info),
                "payload": payload if payload is not None else {},
                "time": format_time(dt.datetime.now(dt.UTC)),
            },
        }
        return _json(body, status=error.status)

    async def _artifact_content(self, request: web.Request) -> web.StreamResponse:
        try:
            artifact = self.queue.artifact(
                request.match_info["taskId"],
                int(request.match_info["runId"]),
                request.match_info["name"],
            )
        except TaskclusterError as error:
            return self._error(error, request, None)
        # The type as uploaded, parameters and all (`text/plain; charset=utf-8`), as S3 serves it.
        headers = {"Content-Type": artifact.content_type}
        if artifact.content_encoding:
            headers["Content-Encoding"] = artifact.content_encoding
        body = artifact.served()
        rate = self.artifact_bytes_per_second
        if not rate:
            return web.Response(body=body, headers=headers)
        # A network of ``rate`` bytes a second: the body goes out paced, a slice at a time.
        response = web.StreamResponse(headers={**headers, "Content-Length": str(len(body))})
        await response.prepare(request)
        started = asyncio.get_running_loop().time()
        for offset in range(0, len(body), PACED_SLICE):
            await response.write(body[offset : offset + PACED_SLICE])
            due = started + (offset + PACED_SLICE) / rate
            await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
        await response.write_eof()
        return response


PACED_SLICE = 64 * 1024


async def serve(tc: LocalTaskcluster, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving on loopback; sets ``tc.root_url`` to where it listens."""
    runner = web.AppRunner(tc.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server: Any = site._server  # the bound port, when 0 asked the system to choose
    bound = server.sockets[0].getsockname()[1]
    tc.root_url = f"http://{host}:{bound}"
    return runner
