"""A local stand-in for the GitHub REST endpoints the bot uses, on loopback, for tests.

Paths, methods, status codes and the fields the bot reads follow GitHub's OpenAPI
description in ../shared/reference/github/rest-api-subset.openapi.json.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import jwt
from aiohttp import web

from tests.conftest import keep_secret, load_reference_json

# GitHub refuses a comment body longer than this (422, "body is too long").
MAX_COMMENT = 65536
# List endpoints: 30 items a page unless ``per_page`` (at most 100) says otherwise.
PER_PAGE, MAX_PER_PAGE = 30, 100
# Taskcluster's GitHub App, as its check runs and statuses show it.
TASKCLUSTER_APP_ID = 7008
TASKCLUSTER_APP_SLUG = "taskcluster"
TASKCLUSTER_BOT = "taskcluster[bot]"
TASKCLUSTER_CONTEXT = "Taskcluster ({event})"  # the service's status context, per event type
# What the stand-in says the bot's own App and bot user are.
BOT_APP_SLUG = "taskbot"
BOT_LOGIN = "taskbot[bot]"


@dataclass
class Fault:
    """Answer the next ``count`` calls whose method and path match with ``status`` (after
    ``delay`` seconds; a delay longer than the client's timeout is a timeout), once
    ``after`` such calls went through."""

    method: str
    path: str  # a regular expression, searched in the path
    status: int = 502
    count: int = 1
    delay: float = 0.0
    after: int = 0
    hits: int = 0
    passed: int = 0

    def matches(self, request: web.Request) -> bool:
        if request.method != self.method or re.search(self.path, request.path) is None:
            return False
        if self.passed < self.after:
            self.passed += 1
            return False
        return self.hits < self.count


@dataclass
class GitHubStandIn:
    """Repositories' comments, reactions, permissions and pull-request heads."""

    token: str = field(default_factory=lambda: keep_secret("ghs_test_installation_token"))
    permissions: dict[tuple[str, str], str] = field(default_factory=dict)
    heads: dict[tuple[str, int], str] = field(default_factory=dict)
    commits: dict[str, set[str]] = field(default_factory=dict)  # repository -> full SHAs
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)  # commit statuses, in order
    # (org, team slug) -> {login: "active" or "pending"}
    teams: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # (repository, number) -> (the fork holding the head, the author); else the base, octocat
    forks: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    reactions: list[tuple[int, str]] = field(default_factory=list)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    app_id: str | None = None  # with a public key, the stand-in issues installation tokens
    app_public_key: Any = None
    token_lifetime: dt.timedelta = dt.timedelta(hours=1)
    issued: list[tuple[int, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1000))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get(
            "/repos/{owner}/{repo}/collaborators/{user}/permission", self._permission
        )
        app.router.add_post("/repos/{owner}/{repo}/issues/{number}/comments", self._comment)
        app.router.add_get("/repos/{owner}/{repo}/issues/{number}/comments", self._comments)
        app.router.add_patch("/repos/{owner}/{repo}/issues/comments/{id}", self._edit)
        app.router.add_post("/repos/{owner}/{repo}/issues/comments/{id}/reactions", self._react)
        app.router.add_post("/repos/{owner}/{repo}/pulls/comments/{id}/reactions", self._react)
        app.router.add_get("/repos/{owner}/{repo}/pulls/{number}", self._pull)
        app.router.add_get("/repos/{owner}/{repo}/commits/{ref}", self._commit)
        app.router.add_post("/repos/{owner}/{repo}/check-runs", self._create_check_run)
        app.router.add_patch("/repos/{owner}/{repo}/check-runs/{id}", self._update_check_run)
        app.router.add_get("/repos/{owner}/{repo}/commits/{ref}/check-runs", self._check_runs)
        app.router.add_get("/repos/{owner}/{repo}/commits/{ref}/statuses", self._statuses)
        app.router.add_post("/repos/{owner}/{repo}/statuses/{sha}", self._create_status)
        app.router.add_get(
            "/orgs/{org}/teams/{team_slug}/memberships/{username}", self._team_membership
        )
        app.router.add_post("/app/installations/{id}/access_tokens", self._installation_token)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, body))
        for fault in self.faults:
            if fault.matches(request):
                fault.hits += 1
                await asyncio.sleep(fault.delay)
                return web.json_response({"message": "Server Error"}, status=fault.status)
        if request.path.startswith("/app/"):
            return await self._as_app(request, handler)
        valid = {self.token, *(token for _, token in self.issued)}
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or credential not in valid:
            return web.json_response({"message": "Bad credentials"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _as_app(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """App endpoints take the App's JWT (RS256, signed with its private key); HTTP
        authentication schemes are case-insensitive (gidgethub sends ``bearer``)."""
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        try:
            claims = jwt.decode(credential, self.app_public_key, algorithms=["RS256"])
        except (jwt.PyJWTError, ValueError, TypeError):
            return web.json_response(
                {"message": "A JSON web token could not be decoded"}, status=401
            )
        if scheme.lower() != "bearer" or str(claims.get("iss")) != str(self.app_id):
            return web.json_response(
                {"message": "'Issuer' claim ('iss') must be the App's id"}, status=401
            )
        response: web.StreamResponse = await handler(request)
        return response

    async def _installation_token(self, request: web.Request) -> web.Response:
        installation = int(request.match_info["id"])
        token = f"ghs_installation_{installation}_{len(self.issued)}"
        self.issued.append((installation, token))
        expires = dt.datetime.now(dt.UTC) + self.token_lifetime
        expires_at = expires.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
        return web.json_response({"token": token, "expires_at": expires_at}, status=201)

    async def _permission(self, request: web.Request) -> web.Response:
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        user = request.match_info["user"]
        level = _folded(self.permissions, repository, user.lower()) or "read"
        return web.json_response({"permission": level, "role_name": level, "user": {"login": user}})

    async def _team_membership(self, request: web.Request) -> web.Response:
        org, slug = request.match_info["org"], request.match_info["team_slug"]
        user = request.match_info["username"]
        members = {k.lower(): v for k, v in self.teams.get((org, slug), {}).items()}
        state = members.get(user.lower())
        if state is None:  # GitHub: "404 if user has no team membership"
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response(
            {
                "url": f"https://api.github.com/teams/1/memberships/{user}",
                "role": "member",
                "state": state,
            }
        )

    async def _comment(self, request: web.Request) -> web.Response:
        body = await request.json()
        if len(body["body"]) > MAX_COMMENT:
            return too_long()
        comment_id = next(self._ids)
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        comment = {
            "id": comment_id,
            "body": body["body"],
            "html_url": f"https://github.example/{repository}/issues/{request.match_info['number']}#issuecomment-{comment_id}",
            "user": {"login": "taskbot[bot]", "type": "Bot"},
            "issue_number": int(request.match_info["number"]),
            "edits": 0,
        }
        self.comments[comment_id] = comment
        return web.json_response(comment, status=201)

    async def _comments(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        found = [c for c in self.comments.values() if c["issue_number"] == number]
        return web.json_response(found)

    async def _edit(self, request: web.Request) -> web.Response:
        comment = self.comments.get(int(request.match_info["id"]))
        if comment is None:
            return web.json_response({"message": "Not Found"}, status=404)
        body = (await request.json())["body"]
        if len(body) > MAX_COMMENT:
            return too_long()
        comment["body"] = body
        comment["edits"] += 1
        return web.json_response(comment)

    async def _react(self, request: web.Request) -> web.Response:
        content = (await request.json())["content"]
        self.reactions.append((int(request.match_info["id"]), content))
        return web.json_response({"id": next(self._ids), "content": content}, status=201)

    async def _commit(self, request: web.Request) -> web.Response:
        """A commit by SHA or unique prefix; GitHub answers 422 for an unknown or ambiguous
        hash, 404 for a repository it does not know."""
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        if repository not in self.commits:
            return web.json_response({"message": "Not Found"}, status=404)
        ref = request.match_info["ref"].lower()
        known = self.commits[repository] | {
            sha for (repo, _), sha in self.heads.items() if repo == repository
        }
        found = [sha for sha in known if sha.startswith(ref)]
        if len(found) != 1:
            message = f"No commit found for SHA: {ref}"
            return web.json_response({"message": message}, status=422)
        return web.json_response(
            {
                "sha": found[0],
                "url": f"https://api.github.com/repos/{repository}/commits/{found[0]}",
            }
        )

    async def _create_check_run(self, request: web.Request) -> web.Response:
        body = await request.json()
        problem = invalid_body("post", "/repos/{owner}/{repo}/check-runs", body)
        if problem:
            return web.json_response({"message": problem}, status=422)
        run_id = next(self._ids)
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        run = {
            "id": run_id,
            "repository": repository,
            "status": "queued",
            "conclusion": None,
            "external_id": "",
            "started_at": _now(),  # GitHub's default: when the run is made
            "updates": [],
            **body,
        }
        if self.app_id:  # GitHub stamps a run with the App that made it
            run["app"] = {"id": int(self.app_id)}
        self.check_runs[run_id] = run
        return web.json_response(run, status=201)

    async def _create_status(self, request: web.Request) -> web.Response:
        body = await request.json()
        problem = invalid_body("post", "/repos/{owner}/{repo}/statuses/{sha}", body)
        if problem:
            return web.json_response({"message": problem}, status=422)
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        sha, context = request.match_info["sha"], body.get("context", "default")
        if len(body.get("description") or "") > 140:
            return web.json_response({"message": "description is too long"}, status=422)
        same = [
            s
            for s in self.statuses
            if (s["repository"], s["sha"], s["context"]) == (repository, sha, context)
        ]
        if len(same) >= 1000:  # GitHub's documented limit per commit and context
            return web.json_response(
                {"message": "This SHA and context has reached the maximum number of statuses."},
                status=422,
            )
        status = {
            "id": next(self._ids),
            "repository": repository,
            "sha": sha,
            **body,
            "context": context,
            "created_at": _now(),
        }
        self.statuses.append(status)
        return web.json_response(status, status=201)

    async def _update_check_run(self, request: web.Request) -> web.Response:
        run = self.check_runs.get(int(request.match_info["id"]))
        if run is None:
            return web.json_response({"message": "Not Found"}, status=404)
        body = await request.json()
        problem = invalid_body("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}", body)
        if problem:
            return web.json_response({"message": problem}, status=422)
        run["updates"].append(body)
        run.update(body)
        return web.json_response(run)

    async def _check_runs(self, request: web.Request) -> web.Response:
        """``checks/list-for-ref``: a commit's check runs (by full SHA), filtered by
        ``app_id``, ``check_name`` and ``status``, a page at a time (``per_page``, ``page``,
        with a ``Link`` header to the next), each as GitHub's ``CheckRun`` shows it."""
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        ref = request.match_info["ref"]
        runs = [
            r
            for r in self.check_runs.values()
            if r["repository"].lower() == repository.lower() and r["head_sha"] == ref
        ]
        query = request.query
        app_id = query.get("app_id")
        if app_id is not None:
            runs = [r for r in runs if str((r.get("app") or {}).get("id")) == app_id]
        if "check_name" in query:
            runs = [r for r in runs if r.get("name") == query["check_name"]]
        if "status" in query:
            runs = [r for r in runs if r.get("status") == query["status"]]
        page, link = _paged(request, runs)
        return web.json_response(
            {"total_count": len(runs), "check_runs": [_check_run_view(r) for r in page]},
            headers=link,
        )

    async def _statuses(self, request: web.Request) -> web.Response:
        """``repos/list-commit-statuses-for-ref``: a commit's statuses (by full SHA), newest
        first, a page at a time, each as GitHub's ``Status`` shows it (the shape of
        ``repos/create-commit-status``'s answer; this operation is not in the subset)."""
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        ref = request.match_info["ref"]
        found = [
            s
            for s in reversed(self.statuses)
            if s["repository"].lower() == repository.lower() and s["sha"] == ref
        ]
        page, link = _paged(request, found)
        return web.json_response([_status_view(s) for s in page], headers=link)

    def add_taskcluster_check_run(
        self,
        repository: str,
        sha: str,
        *,
        root_url: str,
        task_id: str,
        name: str = "Decision Task",
        description: str = "The decision task",
        status: str = "completed",
        conclusion: str | None = "success",
        event: str = "pull_request",
    ) -> dict[str, Any]:
        """A check run as Taskcluster's GitHub service makes one for each task of a task
        group it created (``reporting: checks-v1``): named after the task, ``external_id``
        the taskId, ``details_url`` the task's page ``<rootUrl>/tasks/<taskId>`` (a decision
        task's taskId is its task group's id), made by the ``taskcluster`` App."""
        details = f"{root_url.rstrip('/')}/tasks/{task_id}"
        logs = f"{root_url.rstrip('/')}/tasks/{task_id}/runs/0/logs/live/public/logs/live.log"
        run_id = next(self._ids)
        run = {
            "id": run_id,
            "repository": repository,
            "head_sha": sha,
            "name": name,
            "external_id": task_id,
            "details_url": details,
            "status": status,
            "conclusion": conclusion if status == "completed" else None,
            "started_at": _now(),
            "completed_at": _now() if status == "completed" else None,
            "output": {
                "title": TASKCLUSTER_CONTEXT.format(event=event),
                "summary": description,
                "text": (
                    f"[View task in Taskcluster]({details})\n[View logs in Taskcluster]({logs})\n"
                ),
            },
            "app": _taskcluster_app(),
            "updates": [],
        }
        self.check_runs[run_id] = run
        return _check_run_view(run)

    def add_taskcluster_status(
        self,
        repository: str,
        sha: str,
        *,
        root_url: str,
        task_group_id: str,
        state: str = "success",
        event: str = "pull_request",
    ) -> dict[str, Any]:
        """A commit status as Taskcluster's GitHub service posts one for a task group it
        created (the legacy ``statuses`` reporting): context ``Taskcluster (<event>)``,
        ``target_url`` the group's page ``<rootUrl>/tasks/groups/<taskGroupId>``, made by
        the ``taskcluster[bot]`` user."""
        status = {
            "id": next(self._ids),
            "repository": repository,
            "sha": sha,
            "state": state,
            "target_url": f"{root_url.rstrip('/')}/tasks/groups/{task_group_id}",
            "description": f"TaskGroup: {state}",
            "context": TASKCLUSTER_CONTEXT.format(event=event),
            "created_at": _now(),
            "creator": _user(TASKCLUSTER_BOT, 41898282, "Bot"),
        }
        self.statuses.append(status)
        return _status_view(status)

    async def _pull(self, request: web.Request) -> web.Response:
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        number = int(request.match_info["number"])
        sha = _folded(self.heads, repository, number)
        if sha is None:
            return web.json_response({"message": "Not Found"}, status=404)
        fork, author = self.forks.get((repository, number), (repository, "octocat"))
        return web.json_response(
            {
                "number": number,
                "user": {"login": author, "type": "User"},
                "head": {"sha": sha, "repo": {"full_name": fork}},
                "base": {"repo": {"full_name": repository}},
            }
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _paged(
    request: web.Request, items: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The page ``per_page`` and ``page`` ask for, and a ``Link`` header when one follows."""

    def number(name: str, default: int) -> int:
        text = request.query.get(name, "")
        return int(text) if text.isdigit() and int(text) > 0 else default

    per_page = min(number("per_page", PER_PAGE), MAX_PER_PAGE)
    page = number("page", 1)
    start = (page - 1) * per_page
    headers: dict[str, str] = {}
    if len(items) > start + per_page:
        last = -(-len(items) // per_page)
        links = [
            f'<{request.url.update_query(page=str(n))}>; rel="{rel}"'
            for n, rel in ((page + 1, "next"), (last, "last"))
        ]
        headers["Link"] = ", ".join(links)
    return items[start : start + per_page], headers


def _user(login: str, user_id: int, kind: str = "User") -> dict[str, Any]:
    """A ``simple-user`` as GitHub's API shows one."""
    api = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": f"U_{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind,
        "site_admin": False,
    }


def _taskcluster_app() -> dict[str, Any]:
    return {"id": TASKCLUSTER_APP_ID, "slug": TASKCLUSTER_APP_SLUG, "name": "Taskcluster"}


def _app_view(app: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored run's App (``{"id": ...}`` at least) as GitHub's ``integration``."""
    if app is None:
        return None
    slug = str(app.get("slug") or BOT_APP_SLUG)
    return {
        "id": app["id"],
        "slug": slug,
        "node_id": f"A_{app['id']}",
        "client_id": f"Iv1.{app['id']:016x}",
        "owner": _user(slug, 1000000 + int(app["id"]), "Organization"),
        "name": str(app.get("name") or slug),
        "description": None,
        "external_url": f"https://github.com/apps/{slug}",
        "html_url": f"https://github.com/apps/{slug}",
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z",
        "permissions": {"checks": "write", "statuses": "write", "metadata": "read"},
        "events": ["check_run", "check_suite", "pull_request", "push"],
    }


def _check_run_view(run: dict[str, Any]) -> dict[str, Any]:
    """A stored check run as ``checks/list-for-ref`` lists it (``CheckRun``)."""
    repository, run_id = run["repository"], run["id"]
    api = f"https://api.github.com/repos/{repository}/check-runs/{run_id}"
    output = run.get("output") or {}
    app = run.get("app")
    suite_key = f"{repository.lower()}@{run['head_sha']}:{(app or {}).get('id')}"
    suite = 500000 + zlib.crc32(suite_key.encode()) % 100000  # one suite per commit and App
    return {
        "id": run_id,
        "node_id": f"CR_{run_id}",
        "head_sha": run["head_sha"],
        "external_id": run.get("external_id"),
        "url": api,
        "html_url": f"https://github.com/{repository}/runs/{run_id}",
        "details_url": run.get("details_url"),
        "status": run.get("status", "queued"),
        "conclusion": run.get("conclusion"),
        "started_at": run.get("started_at"),
        "completed_at": run.get("completed_at"),
        "output": {
            "title": output.get("title"),
            "summary": output.get("summary"),
            "text": output.get("text"),
            "annotations_count": len(output.get("annotations") or []),
            "annotations_url": f"{api}/annotations",
        },
        "name": run["name"],
        "check_suite": {"id": suite},
        "app": _app_view(app),
        "pull_requests": [],
    }


def _status_view(status: dict[str, Any]) -> dict[str, Any]:
    """A stored commit status as GitHub shows one (``status``)."""
    repository, sha = status["repository"], status["sha"]
    creator = status.get("creator") or _user(BOT_LOGIN, 2000001, "Bot")
    return {
        "url": f"https://api.github.com/repos/{repository}/statuses/{sha}",
        "avatar_url": creator["avatar_url"],
        "id": status["id"],
        "node_id": f"SC_{status['id']}",
        "state": status["state"],
        "description": status.get("description"),
        "target_url": status.get("target_url"),
        "context": status["context"],
        "created_at": status["created_at"],
        "updated_at": status["created_at"],
        "creator": creator,
    }


def _folded(mapping: dict[tuple[str, Any], Any], repository: str, key: Any) -> Any:
    """``mapping[(repository, key)]``, the repository's name in any case (as GitHub's URLs)."""
    wanted = repository.lower()
    return next((v for (r, k), v in mapping.items() if r.lower() == wanted and k == key), None)


def too_long() -> web.Response:
    """GitHub's answer to a comment body over its limit."""
    return web.json_response(
        {
            "message": "Validation Failed",
            "errors": [
                {
                    "resource": "IssueComment",
                    "code": "custom",
                    "field": "body",
                    "message": f"body is too long (maximum is {MAX_COMMENT} characters)",
                }
            ],
        },
        status=422,
    )


@functools.cache
def openapi() -> dict[str, Any]:
    spec: dict[str, Any] = load_reference_json("github", "rest-api-subset.openapi.json")
    return spec


def invalid_body(method: str, template: str, body: Any) -> str | None:
    """Why ``body`` is not what GitHub's OpenAPI description takes there, if it is not."""
    operation = openapi()["paths"][template][method]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    error = jsonschema.exceptions.best_match(jsonschema.Draft4Validator(schema).iter_errors(body))
    return None if error is None else f"Invalid request: {error.message}"


def operations() -> list[tuple[str, re.Pattern[str], list[str]]]:
    spec = load_reference_json("github", "rest-api-subset.openapi.json")
    found = []
    for template, methods in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        for method, operation in methods.items():
            if method not in ("get", "post", "patch", "put", "delete"):
                continue
            body = (
                (operation.get("requestBody") or {}).get("content", {}).get("application/json", {})
            )
            required = list((body.get("schema") or {}).get("required", []))
            found.append((method.upper(), pattern, required))
    return found


def assert_calls_match_openapi(calls: list[tuple[str, str, Any]]) -> None:
    known = operations()
    assert calls
    for method, path, body in calls:
        matches = [
            required for m, pattern, required in known if m == method and pattern.match(path)
        ]
        assert matches, f"{method} {path} is not an operation of GitHub's REST API subset"
        for name in matches[0]:
            assert isinstance(body, dict), f"{method} {path} sends no JSON body"
            assert name in body, f"{method} {path} lacks required `{name}`"
