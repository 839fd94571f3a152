"""The local Index's listTasks, the GitHub service's builds, a pull request's seeded push,
and the GitHub stand-in's check runs and statuses of Taskcluster's App."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import taskcluster
import taskcluster.aio as tc_aio
import yaml
from aiohttp import web
from gidgethub.aiohttp import GitHubAPI
from taskcluster.exceptions import TaskclusterRestFailure

from bot.localtc import paging
from bot.localtc.errors import TaskclusterError
from bot.localtc.github import Github, sanitized
from bot.localtc.queue import Artifact
from bot.localtc.seed import pull_request_from, seed_push
from bot.localtc.server import ENDPOINTS, LocalTaskcluster
from bot.tc.decision import revision_in
from tests.conftest import ROOT, load_reference_json
from tests.github_standin import (
    TASKCLUSTER_APP_ID,
    GitHubStandIn,
    openapi,
)
from tests.tcfixtures import Running, local_tc, new_id, task_definition, when
from tests.tcschemas import errors

__all__ = ["local_tc"]

LIST_TASKS = "/schemas/index/v1/list-tasks-response.json"
BUILD_LIST = "/schemas/github/v1/build-list.json"


def reference_entries(service: str) -> dict[str, dict[str, Any]]:
    api = load_reference_json("taskcluster", "api-references", service, "v1", "api.json")
    return {entry["name"]: entry for entry in api["entries"]}


def github(running: Running, **extra: Any) -> tc_aio.Github:
    return tc_aio.Github(running.options(**extra), session=running.session)


def insert(tc: LocalTaskcluster, namespace: str, *, expires: str | None = None) -> str:
    task_id = new_id()
    tc.index.insert(namespace, task_id, 0, {}, expires or when(86400))
    return task_id


async def failure(call: Any) -> TaskclusterRestFailure:
    with pytest.raises(TaskclusterRestFailure) as caught:
        await call
    return caught.value


# --- the endpoint table against the reference ----------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [e for e in ENDPOINTS if e.service == "github"] + [e for e in ENDPOINTS if e.query],
    ids=lambda e: f"{e.service}.{e.name}",
)
def test_github_routes_scopes_and_query_options_match_the_reference(endpoint: Any) -> None:
    entry = reference_entries(endpoint.service)[endpoint.name]
    assert (endpoint.method, endpoint.route) == (entry["method"], entry["route"])
    assert endpoint.scopes == entry.get("scopes")
    if endpoint.query is not None:  # the query-string options it takes are the reference's
        assert sorted(endpoint.query) == sorted(entry["query"])


# --- Index listTasks ---------------------------------------------------------------------------


async def test_list_tasks_pages_through_the_tasks_directly_under_a_namespace(
    local_tc: Running,
) -> None:
    tc, index = local_tc.tc, local_tc.index()
    under = {f"proj.a.t{n}": insert(tc, f"proj.a.t{n}") for n in range(5)}
    insert(tc, "proj.a.sub.deeper")  # two levels down: not listed
    insert(tc, "proj.other")  # a sibling namespace's task
    insert(tc, "proj")  # the namespace itself, as a task of the root
    seen: list[dict[str, Any]] = []
    page = await index.listTasks("proj.a", query={"limit": 2})
    pages = 1
    while True:
        assert errors(LIST_TASKS, page) == []
        seen += page["tasks"]
        if "continuationToken" not in page:
            break
        assert len(page["tasks"]) == 2
        page = await index.listTasks(
            "proj.a", query={"limit": 2, "continuationToken": page["continuationToken"]}
        )
        pages += 1
    assert pages == 3
    assert {t["namespace"]: t["taskId"] for t in seen} == under
    assert [t["namespace"] for t in seen] == sorted(under)
    # one level: proj.a.sub is a namespace, not a task; the root lists "proj" only
    assert [t["namespace"] for t in (await index.listTasks("proj.a.sub"))["tasks"]] == [
        "proj.a.sub.deeper"
    ]
    assert [t.namespace for t in tc.index.list_tasks("")] == ["proj"]


async def test_list_tasks_of_an_unknown_namespace_is_an_empty_list(local_tc: Running) -> None:
    insert(local_tc.tc, "proj.a.t0")
    assert await local_tc.index().listTasks("no.such.namespace") == {"tasks": []}


async def test_expired_entries_are_not_listed(local_tc: Running) -> None:
    tc, index = local_tc.tc, local_tc.index()
    lasting = insert(tc, "proj.b.lasting", expires=when(86400))
    insert(tc, "proj.b.brief", expires=when(60))
    assert len((await index.listTasks("proj.b"))["tasks"]) == 2
    local_tc.clock.offset = 120  # the brief entry expired
    listed = (await index.listTasks("proj.b"))["tasks"]
    assert [t["taskId"] for t in listed] == [lasting]
    with pytest.raises(TaskclusterRestFailure):
        await index.findTask("proj.b.brief")


async def test_an_indexed_task_expires_when_its_task_does(local_tc: Running) -> None:
    tc, queue = local_tc.tc, local_tc.queue()
    task_id, expires = new_id(), when(7 * 86400)
    await queue.createTask(task_id, task_definition(routes=["index.proj.c.build"], expires=expires))
    run = tc.queue.claim(task_id, "local", "w")
    tc.queue.put_artifact(task_id, run, Artifact("public/x", b"x", "text/plain", expires))
    await queue.reportCompleted(task_id, str(run))
    (entry,) = (await local_tc.index().listTasks("proj.c"))["tasks"]
    assert (entry["taskId"], entry["expires"]) == (task_id, expires)
    assert entry == {**entry, "namespace": "proj.c.build", "rank": 0, "data": {}}


async def test_list_tasks_serves_at_most_1000_a_page(local_tc: Running) -> None:
    for n in range(1003):
        insert(local_tc.tc, f"many.t{n:04d}")
    page = await local_tc.index().listTasks("many", query={"limit": 5000})
    assert len(page["tasks"]) == 1000
    rest = await local_tc.index().listTasks(
        "many", query={"continuationToken": page["continuationToken"]}
    )
    assert (len(rest["tasks"]), "continuationToken" in rest) == (3, False)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"limit": "ten"}, 'limit="ten" does not match expression: /^[0-9]+$/'),
        ({"limit": "-1"}, 'limit="-1" does not match'),
        ({"limit": "0"}, "must be at least 1"),
        ({"continuationToken": "not-one-of-ours"}, "not a token this service gave"),
        ({"continuationToken": ""}, 'continuationToken="" does not match expression'),
    ],
)
async def test_list_tasks_refuses_bad_query_values(
    local_tc: Running, query: dict[str, str], words: str
) -> None:
    insert(local_tc.tc, "proj.a.t0")
    refused = await failure(local_tc.index().listTasks("proj.a", query=query))
    assert (refused.status_code, refused.body["code"]) == (400, "InvalidRequestArguments")
    assert words in refused.body["message"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/tasks/proj.a?foo=1", "Query-string parameter: foo is not supported!"),
        ("/tasks/proj.a?limit=1&limit=2", "limit must be a string!"),
        ("/tasks/proj..a", "URL parameter 'namespace' given as 'proj..a' must match"),
        ("/tasks/proj.a.", "must match regular expression"),
        ("/tasks/proj.a%2Bb", "given as 'proj.a+b'"),
    ],
)
async def test_arguments_are_checked_before_the_caller_is(
    local_tc: Running, path: str, words: str
) -> None:
    """As the real API library: a bad argument is a 400 even for an anonymous caller, who
    would otherwise be refused the scope."""
    async with local_tc.session.get(f"{local_tc.tc.root_url}/api/index/v1{path}") as response:
        body = await response.json()
    assert (response.status, body["code"]) == (400, "InvalidRequestArguments")
    assert words in body["message"]
    assert set(body["requestInfo"]) == {"method", "params", "payload", "time"}


async def test_list_tasks_needs_its_scope(local_tc: Running) -> None:
    insert(local_tc.tc, "proj.a.t0")
    limited = local_tc.index(authorizedScopes=["index:list-tasks:proj.other"])
    assert await limited.listTasks("proj.other") == {"tasks": []}
    refused = await failure(limited.listTasks("proj.a"))
    assert (refused.status_code, refused.body["code"]) == (403, "InsufficientScopes")
    assert "`index:list-tasks:proj.a`" in refused.body["message"]
    anonymous = await failure(local_tc.index(credentials={}).listTasks("proj.a"))
    assert anonymous.status_code == 403


@pytest.fixture
def taskgraph_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from taskgraph.util import taskcluster as taskgraph_tc

    taskgraph_tc.get_taskcluster_client.cache_clear()
    taskgraph_tc.get_root_url.cache_clear()
    monkeypatch.delenv("TASKCLUSTER_PROXY_URL", raising=False)
    yield
    taskgraph_tc.get_taskcluster_client.cache_clear()
    taskgraph_tc.get_root_url.cache_clear()


async def test_the_sync_client_and_taskgraph_page_with_a_pagination_handler(
    local_tc: Running, monkeypatch: pytest.MonkeyPatch, taskgraph_environment: None
) -> None:
    from taskgraph.util.taskcluster import list_tasks

    tc = local_tc.tc
    # the service lists by name; taskgraph sorts by expiry (here the other way round)
    expected = [insert(tc, f"gecko.v2.try.pushlog-id.7.actions.a{n:04d}") for n in range(1005)]
    for n in range(1005):
        entry = tc.index.entries[f"gecko.v2.try.pushlog-id.7.actions.a{n:04d}"]
        entry.expires = when(3600 + 1005 - n)
    pages: list[int] = []

    def sync_listing() -> list[str]:
        index = taskcluster.Index(local_tc.options())
        found: list[str] = []

        def handler(response: dict[str, Any]) -> None:
            assert errors(LIST_TASKS, response) == []
            pages.append(len(response["tasks"]))
            found.extend(t["taskId"] for t in response["tasks"])

        index.listTasks("gecko.v2.try.pushlog-id.7.actions", paginationHandler=handler)
        return found

    assert await asyncio.to_thread(sync_listing) == expected
    assert pages == [1000, 5]
    monkeypatch.setenv("TASKCLUSTER_ROOT_URL", tc.root_url)
    monkeypatch.setenv("TASKCLUSTER_CLIENT_ID", tc.root_client.client_id)
    monkeypatch.setenv("TASKCLUSTER_ACCESS_TOKEN", tc.root_client.access_token)
    listed = await asyncio.to_thread(list_tasks, "gecko.v2.try.pushlog-id.7.actions")
    assert listed == expected[::-1]


def test_paging_tokens_round_trip_and_refuse_what_they_did_not_issue() -> None:
    rows = list(range(7))
    first, token = paging.paginate(rows, {"limit": "3"})
    assert (first, token is not None) == ([0, 1, 2], True)
    assert paging.decode_token(token) == 3
    assert paging.paginate(rows, {"limit": "3", "continuationToken": token or ""}) == (
        [3, 4, 5],
        paging.encode_token(6),
    )
    assert paging.paginate(rows, {"continuationToken": paging.encode_token(6)}) == ([6], None)
    arabic_one = base64.urlsafe_b64encode("offset:\u0661".encode()).decode()
    for forged in ("MTIz", "b2Zmc2V0Oi0x", "%%%", arabic_one):  # "123", "offset:-1", …
        with pytest.raises(TaskclusterError, match="not a token this service gave"):
            paging.decode_token(forged)


# --- the GitHub service's builds ---------------------------------------------------------------


def add_builds(tc: LocalTaskcluster) -> dict[str, str]:
    """Four builds, oldest first; their taskGroupIds by a short name."""
    groups: dict[str, str] = {}
    for name, org, repo, sha, event in (
        ("push-a", "mozilla", "translations", "a" * 40, "push"),
        ("pr-b", "mozilla", "translations", "b" * 40, "pull_request.opened"),
        ("pr-b-again", "mozilla", "translations", "b" * 40, "pull_request.synchronize"),
        ("other", "mozilla", "other%repo", "a" * 40, "push"),
    ):
        groups[name] = new_id()
        tc.github.add_build(
            organization=org,
            repository=repo,
            sha=sha,
            task_group_id=groups[name],
            state="success",
            installation_id=42,
            event_type=event,
            event_id="Unknown",
            pull_request_number=12 if name.startswith("pr-") else None,
        )
    return groups


async def test_builds_are_filtered_by_organization_repository_and_sha(local_tc: Running) -> None:
    groups = add_builds(local_tc.tc)
    client = github(local_tc)

    async def listed(**query: str) -> list[str]:
        page = await client.builds(query=query)
        assert errors(BUILD_LIST, page) == []
        return [b["taskGroupId"] for b in page["builds"]]

    newest_first = [groups[n] for n in ("other", "pr-b-again", "pr-b", "push-a")]
    assert await listed() == newest_first
    assert await listed(organization="mozilla") == newest_first
    assert await listed(organization="mozilla", repository="translations") == newest_first[1:]
    assert await listed(organization="mozilla", repository="translations", sha="b" * 40) == [
        groups["pr-b-again"],
        groups["pr-b"],
    ]
    assert await listed(organization="mozilla", repository="other%repo", sha="a" * 40) == [
        groups["other"]
    ]
    assert await listed(organization="mozilla", repository="translations", pullRequest="12") == [
        groups["pr-b-again"],
        groups["pr-b"],
    ]
    assert await listed(organization="Mozilla") == []  # exact, as the service's database
    assert await listed(organization="mozilla", repository="translations", pullRequest="0") == []
    assert len(await listed(organization="mozilla", pullRequest="")) == 4  # empty: no filter
    assert await listed(organization="mozilla", repository="translations", sha="c" * 40) == []
    assert await listed(organization="", repository="") == newest_first  # empty: no filter
    everything = (await client.builds())["builds"]
    (push,) = [b for b in everything if b["taskGroupId"] == groups["push-a"]]
    (pull,) = [b for b in everything if b["taskGroupId"] == groups["pr-b"]]
    assert pull["pullRequestNumber"] == 12
    assert set(push) == {
        "organization",
        "repository",
        "sha",
        "state",
        "taskGroupId",
        "eventType",
        "eventId",
        "created",
        "updated",
    }


async def test_builds_page_by_continuation_token(local_tc: Running) -> None:
    groups = add_builds(local_tc.tc)
    client = github(local_tc)
    seen: list[str] = []
    query: dict[str, Any] = {"limit": 3}
    while True:
        page = await client.builds(query=query)
        assert errors(BUILD_LIST, page) == []
        seen += [b["taskGroupId"] for b in page["builds"]]
        if "continuationToken" not in page:
            break
        query = {"limit": 3, "continuationToken": page["continuationToken"]}
    assert seen == [groups[n] for n in ("other", "pr-b-again", "pr-b", "push-a")]


@pytest.mark.parametrize(
    ("query", "code", "words"),
    [
        ({"repository": "translations"}, "InputError", "Must provide `organization`"),
        ({"organization": "mozilla", "sha": "a" * 40}, "InputError", "Must provide `repository`"),
        ({"organization": "mozilla", "pullRequest": "12"}, "InputError", "querying `pullRequest`"),
        ({"organization": "mozilla", "pullRequest": "0"}, "InputError", "querying `pullRequest`"),
        ({"limit": "many"}, "InvalidRequestArguments", 'limit="many" does not match'),
        ({"limit": "0"}, "InvalidRequestArguments", "must be at least 1"),
        ({"organization": "mozilla.org"}, "InvalidRequestArguments", "organization="),
        ({"organization": "m", "repository": "a/b"}, "InvalidRequestArguments", "repository="),
        ({"organization": "m", "repository": "r", "pullRequest": "#1"}, "Invalid", "pullReq"),
        ({"sha": ""}, "InvalidRequestArguments", 'sha="" does not match expression: /./'),
        ({"continuationToken": "abc"}, "InvalidRequestArguments", "not a token this service"),
    ],
)
async def test_builds_refuse_what_the_service_refuses(
    local_tc: Running, query: dict[str, str], code: str, words: str
) -> None:
    add_builds(local_tc.tc)
    refused = await failure(github(local_tc).builds(query=query))
    assert refused.status_code == 400
    assert refused.body["code"].startswith(code)
    assert words in refused.body["message"]


async def test_builds_refuse_an_unknown_query_parameter(local_tc: Running) -> None:
    url = f"{local_tc.tc.root_url}/api/github/v1/builds?owner=mozilla"
    async with local_tc.session.get(url) as response:
        body = await response.json()
    assert (response.status, body["code"]) == (400, "InvalidRequestArguments")
    assert "owner is not supported" in body["message"]


async def test_builds_need_github_list_builds(local_tc: Running) -> None:
    add_builds(local_tc.tc)
    limited = github(local_tc, authorizedScopes=["index:find-task:*", "queue:get-task:*"])
    refused = await failure(limited.builds(query={"organization": "mozilla"}))
    assert (refused.status_code, refused.body["code"]) == (403, "InsufficientScopes")
    assert "`github:list-builds`" in refused.body["message"]
    allowed = github(local_tc, authorizedScopes=["github:list-builds"])
    assert len((await allowed.builds())["builds"]) == 4
    assert (await failure(github(local_tc, credentials={}).builds())).status_code == 403
    assert (await github(local_tc).ping())["alive"] is True


def test_build_records_must_be_ones_the_service_could_hold() -> None:
    service = Github(clock=lambda: 0.0)
    good: dict[str, Any] = {
        "organization": "mozilla",
        "repository": "translations",
        "sha": "c" * 40,
        "task_group_id": new_id(),
        "state": "pending",
        "installation_id": 1,
        "event_type": "push",
        "event_id": "Unknown",
    }
    service.add_build(**good)
    assert service.set_state(good["task_group_id"], "failure").state == "failure"
    for field, value in (
        ("organization", "mozilla.org"),
        ("repository", ""),
        ("sha", "c" * 12),
        ("task_group_id", "not-a-slug"),
        ("state", "running"),
        ("event_id", "1234"),
        ("task_group_id", good["task_group_id"]),  # a group has one build
    ):
        with pytest.raises(ValueError, match="build"):
            service.add_build(**{**good, field: value})
    with pytest.raises(ValueError, match="state"):
        service.set_state(good["task_group_id"], "done")
    assert (sanitized("my.repo"), sanitized("we ird!name")) == ("my%repo", "weirdname")


# --- a pull request's seeded push -------------------------------------------------------------


async def test_a_pull_requests_push_is_found_by_builds_not_by_the_index(
    local_tc: Running,
) -> None:
    tc = local_tc.tc
    push = seed_push(tc, tasks=300, seed=4, pull_request=("octo-org/fast.lane", 17))
    assert push.pull_request == ("octo-org/fast.lane", 17)
    assert (push.project, push.level, push.index_paths()) == ("fast.lane", 1, [])
    assert re.fullmatch(r"[0-9a-f]{40}", push.revision)
    queue = local_tc.queue()
    definition = await queue.task(push.decision_task_id)
    assert definition["taskGroupId"] == push.decision_task_id
    assert not [r for r in definition["routes"] if r.startswith("index.")]
    env = definition["payload"]["env"]
    assert env["FAST_LANE_HEAD_REV"] == push.revision
    assert env["FAST_LANE_HEAD_REPOSITORY"] == "https://github.com/octo-org/fast.lane"
    assert env["FAST_LANE_PULL_REQUEST_NUMBER"] == "17"
    assert revision_in(definition) == push.revision
    assert definition["schedulerId"] == "gecko-level-1"
    # no index path leads to it
    assert all(e.task_id != push.decision_task_id for e in tc.index.entries.values())
    for path in (
        f"gecko.v2.fast.lane.revision.{push.revision}.taskgraph.decision",
        "gecko.v2.fast.lane.latest.taskgraph.decision",
    ):
        assert (await failure(local_tc.index().findTask(path))).status_code == 404
    # parameters.yml says what a taskgraph GitHub decision task writes
    answer = await queue.getLatestArtifact(push.decision_task_id, "public/parameters.yml")
    async with local_tc.session.get(answer["url"]) as response:
        parameters = yaml.safe_load(await response.text())
    assert parameters == {
        **parameters,
        "tasks_for": "github-pull-request",
        "head_rev": push.revision,
        "project": "fast.lane",
        "repository_type": "git",
        "pushlog_id": "0",
        "level": "1",
        "head_repository": "https://github.com/octo-org/fast.lane",
    }
    # the GitHub service's builds do
    page = await github(local_tc).builds(
        query={"organization": "octo-org", "repository": "fast%lane", "sha": push.revision}
    )
    assert errors(BUILD_LIST, page) == []
    (build,) = page["builds"]
    assert build == {
        **build,
        "organization": "octo-org",
        "repository": "fast%lane",
        "sha": push.revision,
        "taskGroupId": push.decision_task_id,
        "eventType": "pull_request.opened",
        "pullRequestNumber": 17,
    }
    assert (push.failed, build["state"]) == ((), "success")
    # a task added to the group later (as the bot adds them) that fails: once the group
    # resolved again, the build is a failure
    added = new_id()
    await queue.createTask(
        added, task_definition(taskGroupId=push.decision_task_id, schedulerId=push.scheduler_id)
    )
    assert tc.github.list_builds()[0].state == "success"
    await queue.reportFailed(added, str(tc.queue.claim(added, "local", "w")))
    assert tc.github.list_builds()[0].state == "failure"
    assert (await github(local_tc).builds(query={"organization": "mozilla"}))["builds"] == []


def test_a_pull_request_push_is_deterministic_and_its_build_follows_the_group() -> None:
    one, two = LocalTaskcluster(), LocalTaskcluster()
    first = seed_push(one, tasks=120, seed=2, pull_request=("o/r", 3), fail_every=10**9)
    again = seed_push(two, tasks=120, seed=2, pull_request=("o/r", 3), fail_every=10**9)
    assert (first.revision, first.decision_task_id) == (again.revision, again.decision_task_id)
    action = "synchronize"
    other = seed_push(two, tasks=120, seed=3, pull_request=("o/r", 4), pull_request_action=action)
    assert other.revision != first.revision
    assert [b.event_type for b in two.github.list_builds(organization="o", repository="r")] == [
        "pull_request.synchronize",
        "pull_request.opened",
    ]
    (build,) = one.github.list_builds()
    assert (build.state, build.event_type) == ("success", "pull_request.opened")
    push = seed_push(one, tasks=120, seed=5)  # an ordinary push is still indexed, no build
    assert push.pull_request is None
    assert len(push.index_paths()) == 3  # revision, latest, pushlog id
    assert len(one.github.builds) == 1


def test_a_build_is_pending_until_its_task_group_resolves() -> None:
    tc = LocalTaskcluster()
    group, second = new_id(), new_id()
    for task_id in (group, second):
        definition = task_definition(taskGroupId=group)
        tc.queue.create(task_id, tc.queue.check_definition(task_id, definition))
    tc.github.add_build(
        organization="o",
        repository="r",
        sha="d" * 40,
        task_group_id=group,
        state="pending",
        installation_id=1,
        event_type="pull_request.opened",
        event_id="Unknown",
    )
    tc.queue.resolve(group, tc.queue.claim(group, "local", "w"), "completed")
    assert tc.github.list_builds()[0].state == "pending"  # one task still runs
    tc.queue.resolve(second, tc.queue.claim(second, "local", "w"), "completed")
    (build,) = tc.github.list_builds()
    assert (build.state, build.updated >= build.created) == ("success", True)


@pytest.mark.parametrize(
    "pull_request",
    [("norepo", 1), ("o/r", 0), ("o/r", -2), ("-o/r", 1), ("o/r/x", 1), ("o/..", 1), ("o/r", True)],
)
def test_a_malformed_pull_request_is_refused(pull_request: Any) -> None:
    with pytest.raises(ValueError, match="not a"):
        seed_push(LocalTaskcluster(), tasks=50, pull_request=pull_request)


def test_a_bad_pull_request_action_is_refused() -> None:
    with pytest.raises(ValueError, match="pull_request_action"):
        seed_push(LocalTaskcluster(), tasks=50, pull_request=("o/r", 1), pull_request_action="x")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("mozilla/translations#12", ("mozilla/translations", 12)), ("a-b/c.d_e#1", ("a-b/c.d_e", 1))],
)
def test_pull_request_from_text(text: str, parsed: tuple[str, int]) -> None:
    assert pull_request_from(text) == parsed


@pytest.mark.parametrize("text", ["mozilla/translations", "m/t#", "m#3", "m/t#x", "m/t/u#2", ""])
def test_pull_request_from_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match="OWNER/REPO#NUMBER"):
        pull_request_from(text)


# --- the command line --------------------------------------------------------------------------


async def test_the_command_seeds_a_pull_requests_push() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "localtc", "--pull-request", "octo/widgets#5", "--tasks=200"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert "indexPaths" not in info
        assert info["pullRequest"] == "octo/widgets#5"
        assert len(info["headSha"]) == 40
        options = {
            "rootUrl": info["rootUrl"],
            "credentials": {"clientId": info["clientId"], "accessToken": info["accessToken"]},
        }
        async with aiohttp.ClientSession() as session:
            page = await tc_aio.Github(options, session=session).builds(
                query={"organization": "octo", "repository": "widgets", "sha": info["headSha"]}
            )
            assert [b["taskGroupId"] for b in page["builds"]] == [info["decisionTaskId"]]
            definition = await tc_aio.Queue(options, session=session).task(info["decisionTaskId"])
            assert revision_in(definition) == info["headSha"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err


@pytest.mark.parametrize("value", ["octo/widgets", "octo/widgets#0", "octo#5"])
def test_the_command_refuses_a_malformed_pull_request(value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "localtc", "--pull-request", value],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2  # argparse's usage error, before anything is served
    assert "argument --pull-request" in done.stderr
    assert done.stdout == ""


# --- the GitHub stand-in: Taskcluster's check runs and statuses --------------------------------


def nullable_to_jsonschema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema with ``nullable`` as JSON Schema (null allowed there)."""
    if isinstance(schema, list):
        return [nullable_to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {k: nullable_to_jsonschema(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable"):
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        if isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


def response_problems(template: str, method: str, status: str, document: Any) -> list[str]:
    import jsonschema

    operation = openapi()["paths"][template][method]
    schema = nullable_to_jsonschema(
        copy.deepcopy(operation["responses"][status]["content"]["application/json"]["schema"])
    )
    validator = jsonschema.Draft4Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[tuple[GitHubStandIn, GitHubAPI, str]]:
    stand_in = GitHubStandIn()
    runner = web.AppRunner(stand_in.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        gh = GitHubAPI(session, "taskbot-tests", oauth_token=stand_in.token, base_url=base)
        try:
            yield stand_in, gh, base
        finally:
            await runner.cleanup()


ROOT_URL = "https://tc.example.com"
CREATE_STATUS = "/repos/{owner}/{repo}/statuses/{sha}"
REPOSITORY = "octo/widgets"


async def test_the_standin_lists_taskcluster_check_runs_for_a_head(
    standin: tuple[GitHubStandIn, GitHubAPI, str],
) -> None:
    stand_in, gh, _ = standin
    head, group = "e" * 40, new_id()
    made = stand_in.add_taskcluster_check_run(
        REPOSITORY, head, root_url=ROOT_URL, task_id=group, name="Decision Task"
    )
    task = new_id()
    stand_in.add_taskcluster_check_run(
        REPOSITORY, head, root_url=ROOT_URL, task_id=task, name="build-linux", status="in_progress"
    )
    stand_in.add_taskcluster_check_run(REPOSITORY, "f" * 40, root_url=ROOT_URL, task_id=new_id())
    stand_in.app_id = "99"  # the bot's own App makes one too
    await gh.post(
        f"/repos/{REPOSITORY}/check-runs",
        data={"name": "taskbot: schedule x", "head_sha": head, "external_id": "r1"},
    )
    listed = await gh.getitem(f"/repos/{REPOSITORY}/commits/{head}/check-runs")
    template = "/repos/{owner}/{repo}/commits/{ref}/check-runs"
    assert response_problems(template, "get", "200", listed) == []
    assert listed["total_count"] == 3
    runs = {r["name"]: r for r in listed["check_runs"]}
    decision = runs["Decision Task"]
    assert decision == made
    assert decision["app"]["slug"] == "taskcluster"
    assert decision["app"]["id"] == TASKCLUSTER_APP_ID
    assert decision["details_url"] == f"{ROOT_URL}/tasks/{group}"
    assert decision["external_id"] == group
    assert (decision["head_sha"], decision["status"], decision["conclusion"]) == (
        head,
        "completed",
        "success",
    )
    assert decision["output"]["title"] == "Taskcluster (pull_request)"
    assert (runs["build-linux"]["status"], runs["build-linux"]["conclusion"]) == (
        "in_progress",
        None,
    )
    assert runs["taskbot: schedule x"]["app"]["id"] == 99
    # filters, and paging with a Link header that getiter follows
    by_app = await gh.getitem(
        f"/repos/{REPOSITORY}/commits/{head}/check-runs?app_id={TASKCLUSTER_APP_ID}"
    )
    assert by_app["total_count"] == 2
    named = await gh.getitem(
        f"/repos/{REPOSITORY}/commits/{head}/check-runs?check_name=build-linux"
    )
    assert [r["external_id"] for r in named["check_runs"]] == [task]
    done = await gh.getitem(f"/repos/{REPOSITORY}/commits/{head}/check-runs?status=completed")
    assert {r["name"] for r in done["check_runs"]} == {"Decision Task"}
    paged = [
        r["id"]
        async for r in gh.getiter(
            f"/repos/{REPOSITORY}/commits/{head}/check-runs?per_page=1", iterable_key="check_runs"
        )
    ]
    assert sorted(paged) == sorted(r["id"] for r in listed["check_runs"])
    # another repository (names are not case-sensitive) or commit has none of them
    upper = await gh.getitem(f"/repos/OCTO/Widgets/commits/{head}/check-runs")
    assert upper["total_count"] == 3
    assert (await gh.getitem(f"/repos/octo/other/commits/{head}/check-runs"))["total_count"] == 0
    assert (await gh.getitem(f"/repos/{REPOSITORY}/commits/{'0' * 40}/check-runs")) == {
        "total_count": 0,
        "check_runs": [],
    }


async def test_the_standin_lists_commit_statuses_newest_first(
    standin: tuple[GitHubStandIn, GitHubAPI, str],
) -> None:
    stand_in, gh, _ = standin
    head, group = "e" * 40, new_id()
    stand_in.add_taskcluster_status(
        REPOSITORY, head, root_url=ROOT_URL, task_group_id=group, state="pending"
    )
    await gh.post(
        f"/repos/{REPOSITORY}/statuses/{head}",
        data={"state": "success", "context": "taskbot/r1", "target_url": "https://x.example/"},
    )
    made = stand_in.add_taskcluster_status(
        REPOSITORY, head, root_url=ROOT_URL, task_group_id=group, state="success"
    )
    stand_in.add_taskcluster_status(REPOSITORY, "f" * 40, root_url=ROOT_URL, task_group_id=group)
    listed = await gh.getitem(f"/repos/{REPOSITORY}/commits/{head}/statuses")
    assert isinstance(listed, list)
    for status in listed:
        assert (
            response_problems("/repos/{owner}/{repo}/statuses/{sha}", "post", "201", status) == []
        )
    assert [s["state"] for s in listed] == ["success", "success", "pending"]
    assert listed[0] == made
    assert made["context"] == "Taskcluster (pull_request)"
    assert made["target_url"] == f"{ROOT_URL}/tasks/groups/{group}"
    assert made["creator"]["login"] == "taskcluster[bot]"
    assert listed[1]["creator"]["login"] == "taskbot[bot]"
    assert listed[1]["context"] == "taskbot/r1"
    paged = [
        s["id"] async for s in gh.getiter(f"/repos/{REPOSITORY}/commits/{head}/statuses?per_page=2")
    ]
    assert paged == [s["id"] for s in listed]
    assert await gh.getitem(f"/repos/{REPOSITORY}/commits/{'0' * 40}/statuses") == []
