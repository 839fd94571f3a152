"""The JSON API on the embedded local Taskcluster: runnable jobs in Treeherder's format,
commands with tokens or signed bodies, requests and their tasks, the OpenAPI description."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.adapters.api import ApiAdapter, ApiSettings, ApiSettingsError, ApiToken
from bot.adapters.http import make_app
from bot.core.access import Level
from bot.core.commands import Command, Context
from bot.embedded import Embedded, embedded
from bot.graph import TaskGraphIndex
from bot.localtc.server import Faults
from bot.store import SqliteStore
from tests.conftest import keep_secret, reference_path

WRITER = keep_secret("w" * 8 + "-writer-token-0123")
READER = keep_secret("r" * 8 + "-reader-token-0123")
SECRET = keep_secret("a-shared-secret-for-signed-bodies")


@dataclass
class Api:
    env: Embedded
    client: TestClient[web.Request, web.Application]

    def unscheduled_test(self, skip: int = 0) -> str:
        ran = self.env.push.push.label_to_taskid
        labels = [x for x in self.env.push.push.graph if x.startswith("test-") and x not in ran]
        return labels[skip]


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=1500, worker_seconds=0.05) as env:
        env.bot.settings = replace(env.bot.settings, poll_interval=0.05)
        settings = ApiSettings(
            {WRITER: ApiToken("alice", "write"), READER: ApiToken("dashboard", "read")}, SECRET
        )
        app = make_app(env.bot, [ApiAdapter(env.bot, settings).install])
        async with TestClient(TestServer(app)) as client:
            yield Api(env, client)
    await store.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def command(api: Api, text: str, token: str = WRITER, **headers: str) -> dict[str, object]:
    response = await api.client.post(
        "/api/v1/commands", json={"text": text}, headers={**bearer(token), **headers}
    )
    assert response.status == 200, await response.text()
    body: dict[str, object] = await response.json()
    return body


def test_runnable_jobs_are_the_tasks_treeherder_fields_of_the_real_graph() -> None:
    """Every task of a real taskgraph full-task-graph.json, against its own JSON."""
    raw = reference_path("taskgraph", "translations-full-task-graph.json").read_bytes()
    graph = TaskGraphIndex(raw)
    tasks = json.loads(raw)
    shown = 0
    for label, node in tasks.items():
        treeherder = node["task"].get("extra", {}).get("treeherder")
        job = graph.runnable_job(label)
        if not treeherder or "symbol" not in treeherder:
            assert job is None, label
            continue
        shown += 1
        expected = {"symbol": treeherder["symbol"]}
        expected.update(
            {
                k: treeherder[k]
                for k in ("groupName", "groupSymbol", "collection")
                if k in treeherder
            }
        )
        if treeherder.get("machine", {}).get("platform"):
            expected["platform"] = treeherder["machine"]["platform"]
        assert job == expected, label
    assert shown >= 10  # most of this graph's tasks have no Treeherder entry


async def test_runnable_jobs_of_a_push_with_search_and_filters(api: Api) -> None:
    push = api.env.push
    url = f"/api/v1/projects/{push.project}/pushes/{push.revision}/runnable-jobs"
    response = await api.client.get(url)
    assert response.status == 200
    body = await response.json()
    assert (body["project"], body["revision"], body["decisionTaskId"]) == (
        push.project,
        push.revision,
        push.decision_task_id,
    )
    graph = push.push.graph
    assert body["total"] == len(graph)
    assert body["count"] == len(body["jobs"]) == len(graph)  # every synthetic task has a symbol
    ran = push.push.label_to_taskid
    for label, job in body["jobs"].items():
        treeherder = graph[label]["task"]["extra"]["treeherder"]
        assert job["symbol"] == treeherder["symbol"]
        assert job["platform"] == treeherder["machine"]["platform"]
        assert job["collection"] == treeherder["collection"]
        assert job["alreadyRan"] == (label in ran)
    searched = await (await api.client.get(url, params={"q": "mochitest !asan"})).json()
    assert 0 < searched["count"] < body["count"]
    assert all("mochitest" in label and "asan" not in label for label in searched["jobs"])
    debug = await (await api.client.get(url, params={"platform": "debug"})).json()
    assert 0 < debug["count"] < body["count"]
    assert all(job["collection"] == {"debug": True} for job in debug["jobs"].values())
    latest = await api.client.get(
        f"/api/v1/projects/{push.project}/pushes/latest/runnable-jobs", params={"q": "xpcshell"}
    )
    latest_body = await latest.json()
    assert latest_body["decisionTaskId"] == push.decision_task_id
    # `latest` is answered with the revision it stands for, read from the decision task.
    assert (latest_body["revision"], latest_body["latest"]) == (push.revision, True)
    assert (body["revision"], body["latest"]) == (push.revision, False)
    short = await api.client.get(
        f"/api/v1/projects/{push.project}/pushes/{push.revision[:7].upper()}/runnable-jobs"
    )
    assert (await short.json())["revision"] == push.revision  # expanded, as in chat
    unknown = await api.client.get(f"/api/v1/projects/{push.project}/pushes/0123abc/runnable-jobs")
    assert unknown.status == 404
    assert "`0123abc` is no push of" in (await unknown.json())["error"]
    nothing = await (await api.client.get(url, params={"q": "no-such-job-anywhere"})).json()
    assert nothing["count"] == 0
    assert "no-such-job-anywhere" in nothing["note"]


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("autoland/pushes/xyz", {}, 400, "not a revision"),
        ("autoland/pushes/abc12", {}, 400, "not a revision"),
        ("autoland/pushes/" + "0" * 40, {}, 404, "no decision task found"),
        ("no-such-project/pushes/latest", {}, 404, "no decision task found"),
        ("autoland/pushes/latest", {"platform": "linux64/dbg"}, 400, "not a build type"),
    ],
)
async def test_runnable_jobs_errors_say_what_is_wrong(
    api: Api, path: str, params: dict[str, str], status: int, words: str
) -> None:
    response = await api.client.get(f"/api/v1/projects/{path}/runnable-jobs", params=params)
    assert response.status == status
    assert words in (await response.json())["error"]


async def test_commands_need_a_token_and_writes_a_write_token(api: Api) -> None:
    queue = api.env.tc.queue.tasks
    before = len(queue)
    label = api.unscheduled_test()
    anonymous = await api.client.post("/api/v1/commands", json={"text": f"schedule {label}"})
    assert anonymous.status == 401
    assert "Bearer" in (await anonymous.json())["error"]
    wrong = await api.client.post(
        "/api/v1/commands", json={"text": "status"}, headers=bearer("not-a-token-at-all")
    )
    assert wrong.status == 401
    read_only = await command(api, f"schedule {label}", token=READER)
    assert read_only["replies"] == [
        "You may not `schedule` here: the token of dashboard may read only; `schedule` needs "
        "a token with write access (TASKBOT_API_TOKENS)."
    ]
    jobs = await command(api, "jobs xpcshell", token=READER)
    assert "xpcshell" in str(jobs["replies"])
    preview = await command(api, f"schedule {label} --dry-run")
    assert "1 new task" in str(preview["replies"])
    assert len(queue) == before
    done = await command(api, f"schedule {label}", **{"Idempotency-Key": "k-1"})
    (request_id,) = done["requestIds"]  # type: ignore[misc]
    assert str(done["replies"]).startswith(f"['[{request_id}]")
    assert await api.env.bot.idle(30)
    again = await command(api, f"schedule {label}", **{"Idempotency-Key": "k-1"})
    assert again == {
        "replies": [f"[{request_id}] was handled already: finished."],
        "requestIds": [request_id],
    }
    assert len(queue) == before + 1
    detail = await (
        await api.client.get(f"/api/v1/requests/{request_id}", headers=bearer(READER))
    ).json()
    assert detail["state"] == "finished"
    assert detail["actor"] == "alice"
    assert [(t["label"], t["state"], t["requested"]) for t in detail["tasks"]] == [
        (label, "completed", True)
    ]
    assert detail["tasks"][0]["url"].endswith(f"/tasks/{detail['tasks'][0]['taskId']}")
    listed = await (
        await api.client.get("/api/v1/requests", params={"limit": "5"}, headers=bearer(READER))
    ).json()
    assert listed["requests"][0]["id"] == request_id
    assert listed["requests"][0]["counts"] == {"completed": 1}


def signed_call(body: bytes, actor: str, *, at: float | None = None) -> dict[str, str]:
    """The headers of a call signed as other chat systems' outgoing webhooks sign it."""
    stamp = str(int(time.time() if at is None else at))
    signed = f"{stamp}\n{actor}\n".encode() + body
    digest = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Taskbot-Signature-256": f"sha256={digest}",
        "X-Taskbot-Timestamp": stamp,
        "X-Taskbot-Actor": actor,
    }


async def test_a_signed_body_acts_for_the_named_sender(api: Api) -> None:
    body = json.dumps({"text": "status"}).encode()
    headers = signed_call(body, "mattermost:aryx")
    response = await api.client.post("/api/v1/commands", data=body, headers=headers)
    assert response.status == 200
    assert (await response.json())["replies"] == ["No requests yet."]
    tampered = body.replace(b"status", b"cancel all")
    response = await api.client.post("/api/v1/commands", data=tampered, headers=headers)
    assert response.status == 401
    assert "does not match" in (await response.json())["error"]
    unnamed = {k: v for k, v in headers.items() if k != "X-Taskbot-Actor"}
    response = await api.client.post("/api/v1/commands", data=body, headers=unnamed)
    assert response.status == 401


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"not json", 400, "must be JSON"),
        (b'["schedule x"]', 400, '"text"'),
        (b'{"text": ""}', 400, '"text"'),
        (b'{"text": "status", "project": 3}', 400, '"project"'),
        (json.dumps({"text": "status\n" * 30}).encode(), 400, "at most 20"),
        (json.dumps({"text": "x" * 70_000}).encode(), 413, "at most"),
    ],
)
async def test_malformed_command_bodies(api: Api, data: bytes, status: int, words: str) -> None:
    response = await api.client.post(
        "/api/v1/commands",
        data=data,
        headers={**bearer(WRITER), "Content-Type": "application/json"},
    )
    assert response.status == status
    assert words in (await response.json())["error"]


async def test_unknown_request_and_bad_limits(api: Api) -> None:
    assert (await api.client.get("/api/v1/requests/r0000", headers=bearer(READER))).status == 404
    for limit in ("0", "201", "many"):
        response = await api.client.get(
            "/api/v1/requests", params={"limit": limit}, headers=bearer(READER)
        )
        assert response.status == 400
    projects = await (await api.client.get("/api/v1/projects")).json()
    assert api.env.push.project in projects["projects"]


def test_token_settings_from_the_environment() -> None:
    settings = ApiSettings.from_env(
        {
            "TASKBOT_API_TOKENS": f"alice:write:{WRITER}, dash:read:{READER}",
            "TASKBOT_API_SECRET": SECRET,
        }
    )
    assert settings.tokens[WRITER] == ApiToken("alice", "write")
    assert settings.tokens[READER] == ApiToken("dash", "read")
    assert WRITER not in repr(settings)
    assert SECRET not in repr(settings)
    for env in (
        {"TASKBOT_API_TOKENS": "alice:admin:" + "x" * 20},
        {"TASKBOT_API_TOKENS": "alice:write:short"},
        {"TASKBOT_API_SECRET": "short"},
    ):
        with pytest.raises(ApiSettingsError):
            ApiSettings.from_env(env)


async def test_a_command_that_fails_on_the_bots_side_is_a_503_and_a_retry_carries_it_out(
    api: Api,
) -> None:
    """Taskcluster down: the caller sees a 503 with the bot's explanation (not a 200 it would
    take as done); the same call retried with its Idempotency-Key, once Taskcluster is back,
    schedules the job, once."""
    queue = api.env.tc.queue.tasks
    before = len(queue)
    label = api.unscheduled_test(skip=3)
    api.env.bot.decisions.attempts = 2
    api.env.tc.faults = Faults(error_rate=1.0, only="/api/index/")
    call = {
        "json": {"text": f"schedule {label}"},
        "headers": {**bearer(WRITER), "Idempotency-Key": "k-down"},
    }
    failed = await api.client.post("/api/v1/commands", **call)  # type: ignore[arg-type]
    assert failed.status == 503
    assert failed.headers["Retry-After"] == "1"
    body = await failed.json()
    assert "Taskcluster did not answer" in body["replies"][0]
    assert "Traceback" not in str(body)
    assert len(queue) == before
    api.env.tc.faults = Faults()
    retried = await api.client.post("/api/v1/commands", **call)  # type: ignore[arg-type]
    assert retried.status == 200, await retried.text()
    (request_id,) = (await retried.json())["requestIds"]
    assert await api.env.bot.idle(30)
    assert len(queue) == before + 1
    again = await api.client.post("/api/v1/commands", **call)  # type: ignore[arg-type]
    assert (await again.json())["requestIds"] == [request_id]
    assert len(queue) == before + 1


async def test_a_read_token_is_refused_every_write_command_even_a_new_one(api: Api) -> None:
    """The API keeps no list of its own: what a command needs comes from the command table,
    so a write command added to it is refused to a read token like the others."""
    bot = api.env.bot
    before = len(api.env.tc.queue.tasks)
    # (`approve` is about code under review: not offered over the API at all.)
    writes = [c for c in bot.commands if c.level > Level.TRIAGE and c.about is None]
    assert {c.verb for c in writes} >= {"schedule", "retrigger", "cancel", "confirm", "try"}
    for each in writes:
        answer = await command(api, each.examples[0], token=READER)
        assert answer["replies"] == [
            f"You may not `{each.verb}` here: the token of dashboard may read only; "
            f"`{each.verb}` needs a token with write access (TASKBOT_API_TOKENS)."
        ], each.verb
    ran: list[str] = []

    async def page_for_writers(ctx: Context, cmd: object) -> None:
        """more
        The next page, for writers only (a command the API has never heard of)."""
        ran.append(ctx.request.actor)
        await ctx.reply("the next page")

    bot.commands = bot.commands.with_commands(Command("more", page_for_writers, Level.WRITE))
    refused = await command(api, "more", token=READER)
    assert refused["replies"] == [
        "You may not `more` here: the token of dashboard may read only; `more` needs a token "
        "with write access (TASKBOT_API_TOKENS)."
    ]
    allowed = await command(api, "more", token=WRITER)
    assert allowed["replies"] == ["the next page"]
    assert ran == ["alice"]
    assert len(api.env.tc.queue.tasks) == before
