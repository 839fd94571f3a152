"""The local Taskcluster through the official ``taskcluster.aio`` client, on loopback."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import time

import aiohttp
import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterAuthFailure, TaskclusterRestFailure

from bot.localtc.auth import Client
from bot.localtc.errors import TaskclusterError
from bot.localtc.queue import Artifact
from bot.localtc.server import LocalTaskcluster
from bot.tctime import format_time
from tests.tcfixtures import Running, local_tc, new_id, task_definition, when

__all__ = ["local_tc"]


async def test_create_task_is_idempotent(local_tc: Running) -> None:
    queue = local_tc.queue()
    task_id = new_id()
    definition = task_definition()
    first = await queue.createTask(task_id, definition)
    again = await queue.createTask(task_id, definition)
    assert first == again
    assert first["status"]["state"] == "pending"
    with pytest.raises(TaskclusterRestFailure) as caught:
        await queue.createTask(task_id, {**definition, "priority": "high"})
    assert caught.value.status_code == 409
    assert caught.value.body["code"] == "RequestConflict"
    assert len(local_tc.tc.queue.tasks) == 1


async def test_schema_defaults_are_applied(local_tc: Running) -> None:
    queue = local_tc.queue()
    task_id = new_id()
    await queue.createTask(task_id, task_definition())
    stored = await queue.task(task_id)
    assert {
        k: stored[k] for k in ("priority", "requires", "retries", "schedulerId", "projectId")
    } == {
        "priority": "lowest",
        "requires": "all-completed",
        "retries": 5,
        "schedulerId": "-",
        "projectId": "none",
    }
    assert (stored["routes"], stored["scopes"], stored["dependencies"]) == ([], [], [])
    assert stored["taskQueueId"] == "proj-test/linux"
    assert stored["taskGroupId"] == task_id


async def test_dependencies_all_completed_and_all_resolved(local_tc: Running) -> None:
    queue, state = local_tc.queue(), local_tc.tc.queue
    a, b, c, d = new_id(), new_id(), new_id(), new_id()
    await queue.createTask(a, task_definition())
    await queue.createTask(b, task_definition(dependencies=[a]))
    await queue.createTask(c, task_definition(dependencies=[a], requires="all-resolved"))
    await queue.createTask(d, task_definition(dependencies=[a, b]))
    assert [(await queue.status(t))["status"]["state"] for t in (a, b, c, d)] == [
        "pending",
        "unscheduled",
        "unscheduled",
        "unscheduled",
    ]
    run = state.claim(a, "local", "worker-1")
    await queue.reportFailed(a, str(run))
    # a failed: all-resolved goes ahead, all-completed waits (until its deadline)
    assert (await queue.status(b))["status"]["state"] == "unscheduled"
    assert (await queue.status(c))["status"]["state"] == "pending"
    local_tc.clock.offset = 3601
    status = (await queue.status(b))["status"]
    assert status["state"] == "exception"
    assert status["runs"][-1]["reasonResolved"] == "deadline-exceeded"


async def test_completion_schedules_dependents(local_tc: Running) -> None:
    queue, state = local_tc.queue(), local_tc.tc.queue
    a, b = new_id(), new_id()
    await queue.createTask(a, task_definition())
    await queue.createTask(b, task_definition(dependencies=[a]))
    run = state.claim(a, "local", "worker-1")
    done = await queue.reportCompleted(a, str(run))
    assert done["status"]["runs"][0]["state"] == "completed"
    assert (await queue.status(b))["status"]["state"] == "pending"


async def test_missing_dependency_is_an_input_error(local_tc: Running) -> None:
    missing = new_id()
    with pytest.raises(TaskclusterRestFailure) as caught:
        await local_tc.queue().createTask(new_id(), task_definition(dependencies=[missing]))
    assert caught.value.status_code == 400
    assert caught.value.body["code"] == "InputError"
    assert missing in caught.value.body["message"]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"created": when(-1200)}, "within 15 minutes"),
        ({"deadline": when(6 * 86400)}, "5 days"),
        ({"deadline": when(-10)}, "in the past"),
        ({"expires": when(60)}, "`expires` cannot be before `deadline`"),
        ({"taskQueueId": "other/queue"}, "taskQueueId must equal provisionerId/workerType"),
    ],
)
async def test_date_and_queue_rules(local_tc: Running, fields: dict[str, str], words: str) -> None:
    with pytest.raises(TaskclusterRestFailure) as caught:
        await local_tc.queue().createTask(new_id(), task_definition(**fields))
    assert caught.value.status_code == 400
    assert caught.value.body["code"] == "InputError"
    assert words in caught.value.body["message"]


async def test_schema_violations_are_input_validation_errors(local_tc: Running) -> None:
    with pytest.raises(TaskclusterRestFailure) as caught:
        await local_tc.queue().createTask(new_id(), task_definition(priority="urgent", retries=99))
    body = caught.value.body
    assert (caught.value.status_code, body["code"]) == (400, "InputValidationError")
    assert "`priority`" in body["message"]
    assert "`retries`" in body["message"]
    assert set(body["requestInfo"]) == {"method", "params", "payload", "time"}
    assert body["requestInfo"]["method"] == "PUT"


async def test_task_group_scheduler_conflict(local_tc: Running) -> None:
    queue = local_tc.queue()
    group = new_id()
    await queue.createTask(group, task_definition(taskGroupId=group, schedulerId="one"))
    with pytest.raises(TaskclusterRestFailure) as caught:
        await queue.createTask(new_id(), task_definition(taskGroupId=group, schedulerId="two"))
    assert caught.value.status_code == 409


async def test_insufficient_scopes_name_what_is_missing(local_tc: Running) -> None:
    limited = local_tc.queue(
        authorizedScopes=[
            "queue:create-task:project:none",
            "queue:scheduler-id:-",
            "queue:create-task:low:proj-test/linux",
        ]
    )
    # a "low" scope also creates "lowest" tasks
    await limited.createTask(new_id(), task_definition())
    with pytest.raises(TaskclusterRestFailure) as caught:
        await limited.createTask(
            new_id(), task_definition(routes=["index.gecko.latest"], priority="high")
        )
    assert caught.value.status_code == 403
    body = caught.value.body
    assert body["code"] == "InsufficientScopes"
    assert "`queue:route:index.gecko.latest`" in body["message"]
    assert "`queue:create-task:high:proj-test/linux`" in body["message"]


async def test_bad_signature_unknown_client_and_expired_certificate(local_tc: Running) -> None:
    tc = local_tc.tc
    wrong = local_tc.queue(
        credentials={"clientId": tc.root_client.client_id, "accessToken": "x" * 44}
    )
    with pytest.raises(TaskclusterAuthFailure) as caught:
        await wrong.status(new_id())
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "AuthenticationFailed"
    assert tc.root_client.access_token not in str(caught.value.body)
    stranger = local_tc.queue(credentials={"clientId": "nobody", "accessToken": "x"})
    with pytest.raises(TaskclusterAuthFailure, match="unknown clientId"):
        await stranger.status(new_id())
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    expired = taskcluster.createTemporaryCredentials(
        tc.root_client.client_id,
        tc.root_client.access_token,
        now - dt.timedelta(hours=3),
        now - dt.timedelta(hours=2),
        ["queue:status:*"],
    )
    with pytest.raises(TaskclusterAuthFailure, match="expired"):
        await local_tc.queue(credentials=expired).status(new_id())


async def test_temporary_credentials_carry_their_scopes(local_tc: Running) -> None:
    tc = local_tc.tc
    task_id = new_id()
    await local_tc.queue().createTask(task_id, task_definition())
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    temporary = taskcluster.createTemporaryCredentials(
        tc.root_client.client_id,
        tc.root_client.access_token,
        now - dt.timedelta(minutes=5),
        now + dt.timedelta(hours=1),
        ["queue:status:*"],
        name="taskbot-temporary",
    )
    queue = local_tc.queue(credentials=temporary)
    assert (await queue.status(task_id))["status"]["state"] == "pending"
    with pytest.raises(TaskclusterRestFailure) as caught:
        await queue.cancelTask(task_id)
    assert caught.value.status_code == 403
    assert "taskbot-temporary" in caught.value.body["message"]


async def test_roles_are_assumed(local_tc: Running) -> None:
    tc = local_tc.tc
    tc.clients["project/bot"] = Client("project/bot", "secret-token", ("assume:project:bot",))
    tc.roles["project:*"] = ["queue:status:*", "queue:cancel-task:*"]
    task_id = new_id()
    await local_tc.queue().createTask(task_id, task_definition())
    bot = local_tc.queue(credentials={"clientId": "project/bot", "accessToken": "secret-token"})
    assert (await bot.cancelTask(task_id))["status"]["state"] == "exception"


async def test_anonymous_reads_but_cannot_create(local_tc: Running) -> None:
    task_id = new_id()
    await local_tc.queue().createTask(task_id, task_definition())
    anonymous = local_tc.queue(credentials={})
    assert (await anonymous.status(task_id))["status"]["state"] == "pending"
    with pytest.raises(TaskclusterRestFailure) as caught:
        await anonymous.createTask(new_id(), task_definition())
    assert caught.value.status_code == 403


async def test_artifacts_answer_303_with_a_url(local_tc: Running) -> None:
    tc, queue = local_tc.tc, local_tc.queue()
    task_id = new_id()
    await queue.createTask(task_id, task_definition())
    run = tc.queue.claim(task_id, "local", "w")
    tc.queue.put_artifact(
        task_id, run, Artifact("public/graph.json", b'{"a": 1}', "application/json", when(86400))
    )
    tc.queue.put_artifact(
        task_id, run, Artifact("private/secret.txt", b"s3cret", "text/plain", when(86400))
    )
    answer = await queue.getLatestArtifact(task_id, "public/graph.json")
    assert answer["storageType"] == "s3"
    async with local_tc.session.get(answer["url"]) as response:
        assert await response.json() == {"a": 1}
    raw_url = f"{tc.root_url}/api/queue/v1/task/{task_id}/artifacts/public/graph.json"
    async with local_tc.session.get(raw_url, allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == answer["url"]
    async with aiohttp.ClientSession() as anonymous:  # follows the redirect, no credentials
        async with anonymous.get(raw_url) as response:
            assert await response.read() == b'{"a": 1}'
        async with anonymous.get(
            raw_url.replace("public/graph.json", "private/secret.txt")
        ) as response:
            assert response.status == 403
    assert (await queue.getArtifact(task_id, "0", "private/secret.txt"))["url"].endswith(
        "secret.txt"
    )


async def test_json_a_worker_uploaded_gzipped_is_served_gzipped_to_any_client(
    local_tc: Running,
) -> None:
    """As the object service: `Content-Encoding: gzip` even to a client that asked for
    identity (its clients "must accept at least identity and gzip")."""
    tc, queue = local_tc.tc, local_tc.queue()
    task_id = new_id()
    await queue.createTask(task_id, task_definition())
    run = tc.queue.claim(task_id, "local", "w")
    content = b'{"a": [' + b", ".join(b"1" for _ in range(5000)) + b"]}"
    stored = Artifact("public/a.json", content, "application/json", when(86400), "s3", None, "gzip")
    tc.queue.put_artifact(task_id, run, stored)
    url = (await queue.getLatestArtifact(task_id, "public/a.json"))["url"]
    async with (
        aiohttp.ClientSession(auto_decompress=False) as raw,
        raw.get(url, headers={"Accept-Encoding": "identity"}) as response,
    ):
        assert response.headers["Content-Encoding"] == "gzip"
        wire = await response.read()
    assert wire[:2] == b"\x1f\x8b"
    assert len(wire) < len(content) / 10
    assert gzip.decompress(wire) == content
    async with local_tc.session.get(url) as response:  # aiohttp decodes it
        assert await response.read() == content


async def test_artifact_downloads_can_be_paced_like_a_network(local_tc: Running) -> None:
    tc, queue = local_tc.tc, local_tc.queue()
    task_id = new_id()
    await queue.createTask(task_id, task_definition())
    run = tc.queue.claim(task_id, "local", "w")
    content = os.urandom(300_000)
    tc.queue.put_artifact(
        task_id, run, Artifact("public/blob.bin", content, "application/octet-stream", when(86400))
    )
    url = (await queue.getLatestArtifact(task_id, "public/blob.bin"))["url"]
    tc.artifact_bytes_per_second = 1_000_000
    started = time.monotonic()
    async with local_tc.session.get(url) as response:
        assert response.headers["Content-Length"] == str(len(content))
        assert await response.read() == content
    assert time.monotonic() - started >= 0.2  # 0.3 s at 1 MB/s
    tc.artifact_bytes_per_second = None


async def test_list_task_group_pages(local_tc: Running) -> None:
    queue = local_tc.queue()
    group = new_id()
    ids = [group] + [new_id() for _ in range(4)]
    for task_id in ids:
        await queue.createTask(task_id, task_definition(taskGroupId=group))
    page = await queue.listTaskGroup(group, query={"limit": 2})
    seen = [t["status"]["taskId"] for t in page["tasks"]]
    while "continuationToken" in page:
        page = await queue.listTaskGroup(
            group, query={"limit": 2, "continuationToken": page["continuationToken"]}
        )
        seen += [t["status"]["taskId"] for t in page["tasks"]]
    assert seen == ids


async def test_cancel_rerun_and_schedule(local_tc: Running) -> None:
    queue, state = local_tc.queue(), local_tc.tc.queue
    a, b = new_id(), new_id()
    await queue.createTask(a, task_definition())
    cancelled = await queue.cancelTask(a)
    assert cancelled["status"]["runs"][-1]["reasonResolved"] == "canceled"
    rerun = await queue.rerunTask(a)
    assert rerun["status"]["runs"][-1] == {
        **rerun["status"]["runs"][-1],
        "state": "pending",
        "reasonCreated": "rerun",
    }
    await queue.createTask(b, task_definition(dependencies=[a]))
    assert (await queue.scheduleTask(b))["status"]["state"] == "pending"
    run = state.claim(b, "local", "w")
    assert run == 0


async def test_index_on_completion_and_find_artifact(local_tc: Running) -> None:
    tc, queue, index = local_tc.tc, local_tc.queue(), local_tc.index()
    task_id = new_id()
    namespace = "gecko.v2.try.revision.abc123.taskgraph.decision"
    await queue.createTask(task_id, task_definition(routes=[f"index.{namespace}"]))
    with pytest.raises(TaskclusterRestFailure) as caught:
        await index.findTask(namespace)
    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "ResourceNotFound"
    run = tc.queue.claim(task_id, "local", "w")
    tc.queue.put_artifact(
        task_id, run, Artifact("public/x.json", b"[]", "application/json", when(86400))
    )
    await queue.reportCompleted(task_id, str(run))
    found = await index.findTask(namespace)
    assert found["taskId"] == task_id
    url = f"{tc.root_url}/api/index/v1/task/{namespace}/artifacts/public/x.json"
    async with local_tc.session.get(url) as response:  # index → queue → content
        assert await response.read() == b"[]"
    inserted = await index.insertTask(
        "project.other", {"taskId": task_id, "rank": 3, "data": {"k": 1}, "expires": when(86400)}
    )
    assert inserted["rank"] == 3


def test_the_longest_deadline_is_the_deployments() -> None:
    """The real Queue's default refuses deadlines past 5 days; Firefox CI allows more."""
    for days, accepted in ((5.0, False), (90.0, True)):
        tc = LocalTaskcluster(max_deadline_days=days)
        task_id = new_id()
        definition = task_definition(deadline=format_time(tc.queue.now() + dt.timedelta(days=60)))
        if accepted:
            tc.queue.create(task_id, tc.queue.check_definition(task_id, definition))
            assert task_id in tc.queue.tasks
            continue
        with pytest.raises(TaskclusterError, match="cannot be more than 5 days"):
            tc.queue.create(task_id, tc.queue.check_definition(task_id, definition))
