"""Scopes follow the person: what a plan needs is checked before anything is created, and a
requester mapped to a Taskcluster role can do no more than that role."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import slugid
from taskcluster.exceptions import TaskclusterRestFailure

from bot.acting import acting_for
from bot.core.settings import ProjectSettings
from bot.embedded import Embedded, embedded
from bot.graph import Materializer, TaskGraphIndex, plan
from bot.localtc import scopes as queue_rules
from bot.localtc import validation
from bot.localtc.auth import Client
from bot.localtc.queue import Queue
from bot.localtc.server import ENDPOINTS, Faults
from bot.store import RequestState, SqliteStore
from bot.tc.clients import TaskclusterSettings, make_clients
from bot.tc.scopes import Need, create_task_needs, describe, lacking
from tests.conftest import REFERENCE, load_reference_json
from tests.test_console_e2e import request_id, say

CREATE_TASK = next(e for e in ENDPOINTS if e.service == "queue" and e.name == "createTask")


def queue_expression(definition: dict[str, Any]) -> Any:
    """The Queue's own createTask scope expression for ``definition`` (defaults applied)."""
    task = {**validation.DEFAULTS, **definition}
    if "taskQueueId" not in task:
        task["taskQueueId"] = f"{task['provisionerId']}/{task['workerType']}"
    return queue_rules.instantiate(CREATE_TASK.scopes, Queue.scope_parameters(task))


def firsts(needs: list[Need]) -> list[str]:
    return [n.any_of[0] for n in needs]


def test_the_needs_are_exactly_what_the_queue_asks_of_real_gecko_tasks() -> None:
    """On 91 real Gecko task definitions: every need met satisfies the Queue's expression,
    and any one missing does not."""
    definitions = load_reference_json("taskgraph", "gecko-autoland-task-definitions-2019.json")
    assert len(definitions) == 91
    for definition in definitions.values():
        expression = queue_expression(definition)
        needs = list(dict.fromkeys(create_task_needs(definition)))
        assert queue_rules.evaluate(expression, firsts(needs))
        for left_out in needs:
            others = [n for n in needs if n != left_out]
            assert not queue_rules.evaluate(expression, firsts(others)), left_out
        # a higher priority's scope covers a lower priority (the Queue's fallback)
        queue_need = needs[-1]
        assert queue_need.any_of[-1].startswith("queue:create-task:highest:")
        assert queue_rules.evaluate(expression, [*firsts(needs[:-1]), queue_need.any_of[-1]])


def test_hundreds_of_missing_scopes_are_said_in_a_few_lines() -> None:
    data = (REFERENCE / "taskgraph" / "translations-full-task-graph.json").read_bytes()
    graph = TaskGraphIndex(data)
    wanted = [label for label in graph.labels if label.startswith("train-")][:40]
    result = plan(graph, wanted, {}, request_id="r1")
    materializer = Materializer(
        graph,
        decision_task_id=slugid.nice(),
        scheduler_id="translations-level-3",
        root_url="https://tc.example.com",
    )
    import datetime as dt

    tasks = materializer.definitions(result, dt.datetime.now(dt.UTC))
    missing = lacking((n for t in tasks for n in create_task_needs(t.definition)), [])
    assert len(missing) > 100
    said = describe(missing)
    assert len(said.splitlines()) <= 12, said
    assert "queue:route:" in said
    assert " more" in said


@pytest_asyncio.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=1500, worker_seconds=0.05) as running:
        running.bot.settings = replace(running.bot.settings, poll_interval=0.05)
        yield running
    await store.close()


def new_test(env: Embedded, skip: int = 0) -> str:
    ran = env.push.push.label_to_taskid
    return [x for x in env.push.push.graph if x.startswith("test-") and x not in ran][skip]


def use_client(env: Embedded, client_id: str, scopes: list[str]) -> None:
    token = f"{client_id.replace('/', '-')}-token-" + "0" * 16
    env.tc.clients[client_id] = Client(client_id, token, tuple(scopes))
    settings = TaskclusterSettings(env.tc.root_url, client_id, token)
    env.bot.clients = make_clients(settings, env.bot.clients.session)


async def needs_of(env: Embedded, label: str) -> list[Need]:
    """What scheduling ``label`` needs: planned as the bot plans it, with a dry run."""
    rid = request_id(await say(env, f"schedule {label} --dry-run"))
    planned = await env.store.plan(rid)
    return list(dict.fromkeys(n for t in planned for n in create_task_needs(t.definition)))


READS = [
    "queue:get-artifact:public/*",
    "queue:get-task:*",
    "queue:status:*",
    "queue:list-task-group:*",
    "index:find-task:*",
    "index:list-tasks:*",
    "auth:current-scopes",
    "auth:expand-scopes",
]


async def test_a_client_lacking_one_route_scope_creates_nothing_and_names_it(
    env: Embedded,
) -> None:
    label = new_test(env)
    needs = await needs_of(env, label)
    route = next(n.any_of[0] for n in needs if n.any_of[0].startswith("queue:route:index."))
    use_client(env, "project/taskbot", [*READS, *(s for s in firsts(needs) if s != route)])
    before = len(env.tc.queue.tasks)
    output = await say(env, f"schedule {label}")
    assert "nothing was created: the bot's Taskcluster client lacks 1 scope this needs" in output
    assert f"queue:route: `{route}`" in output, output
    assert len(env.tc.queue.tasks) == before
    record = await env.store.request(request_id(output))
    assert record is not None
    assert record.state == RequestState.FAILED


def map_people(env: Embedded, mode: str = "direct") -> None:
    project = env.push.project
    env.bot.settings = replace(
        env.bot.settings,
        projects={
            project: ProjectSettings(
                project,
                mode=mode,
                requester_roles={"console": "project:taskbot:console/{actor}"},
            )
        },
    )


async def test_a_sheriff_and_a_contributor_ask_the_same_the_role_decides(env: Embedded) -> None:
    label = new_test(env)
    needs = await needs_of(env, label)
    level3 = firsts(needs)
    level1 = [s for s in level3 if not s.startswith("queue:scheduler-id:")]
    level1 += ["queue:scheduler-id:gecko-level-1"]
    env.tc.roles.update(
        {
            "project:taskbot:console/sheriff": ["assume:moz-tree:level:3"],
            "moz-tree:level:3": level3,
            "project:taskbot:console/contributor": ["assume:moz-tree:level:1"],
            "moz-tree:level:1": level1,
        }
    )
    map_people(env)
    before = len(env.tc.queue.tasks)
    refused = await say(env, f"schedule {label}", actor="contributor")
    assert "console:contributor acts in Taskcluster as `project:taskbot:console/contributor`" in (
        refused
    ), refused
    assert "`queue:scheduler-id:gecko-level-3`" in refused
    assert len(env.tc.queue.tasks) == before  # nothing partial
    done = await say(env, f"schedule {label}", actor="sheriff")
    assert "finished: 1 ok" in done, done
    (task,) = [t for t in await env.store.plan(request_id(done)) if t.label == label]
    extra = env.tc.queue.tasks[task.task_id].definition["extra"]["taskbot"]
    assert extra["requestedBy"] == "console:sheriff"


async def test_taskcluster_itself_holds_a_request_to_its_requester_role(env: Embedded) -> None:
    """The requester's clients carry the role's scopes as authorizedScopes: even a call
    the bot's own scopes would allow is refused by the Queue."""
    env.tc.roles["project:taskbot:console/contributor"] = ["queue:get-task:*"]
    map_people(env)
    acting = await acting_for(env.bot, "console", "contributor", env.push.project)
    assert acting.role == "project:taskbot:console/contributor"
    # what the role expands to (itself included), as the Auth service says it
    assert set(acting.scopes or ()) == {
        "assume:project:taskbot:console/contributor",
        "queue:get-task:*",
    }
    definition = env.tc.queue.tasks[env.push.decision_task_id].definition
    with pytest.raises(TaskclusterRestFailure) as refused:
        await acting.clients.queue.createTask(slugid.nice(), {**definition, "routes": []})
    assert refused.value.status_code == 403
    # the bot's own client (root) could have
    assert (await env.bot.clients.queue.task(env.push.decision_task_id))["taskGroupId"]


async def test_auto_mode_uses_the_action_when_the_role_may_not_create_directly(
    env: Embedded,
) -> None:
    env.tc.roles.update(
        {
            "project:taskbot:console/contributor": [
                "hooks:trigger-hook:project-gecko/in-tree-action-3-*"
            ]
        }
    )
    map_people(env, mode="auto")
    output = await say(env, f"schedule {new_test(env)}", actor="contributor")
    assert "via the push's add-new-jobs action" in output, output
    assert "finished: 1 ok" in output, output
    # and a role that may trigger nothing is told so, nothing run
    env.tc.roles["project:taskbot:console/stranger"] = ["queue:get-task:*"]
    hooks_before = sum(len(h.fired) for h in env.tc.hooks.hooks.values())
    output = await say(env, f"schedule {new_test(env, 1)}", actor="stranger")
    assert "hooks:trigger-hook:project-gecko/in-tree-action-3-generic/" in output, output
    assert "acts in Taskcluster as `project:taskbot:console/stranger`" in output
    assert sum(len(h.fired) for h in env.tc.hooks.hooks.values()) == hooks_before


async def test_a_mapped_role_the_bot_cannot_expand_schedules_nothing(env: Embedded) -> None:
    """Never the bot's scopes in a person's place: a role that cannot be looked up stops
    the request."""
    label = new_test(env)
    needs = await needs_of(env, label)
    use_client(env, "project/taskbot", [*READS[:-1], *firsts(needs)])  # no auth:expand-scopes
    map_people(env)
    before = len(env.tc.queue.tasks)
    output = await say(env, f"schedule {label}", actor="sheriff")
    assert "would not expand role `project:taskbot:console/sheriff`" in output, output
    assert len(env.tc.queue.tasks) == before


def test_requester_roles_are_read_from_the_projects_file() -> None:
    from bot.projects import ConfigError, load_projects

    _, projects = load_projects(
        json.dumps(
            {"projects": {"try": {"requester_roles": {"github": "login-identity:github/{actor}"}}}}
        )
    )
    assert projects["try"].requester_roles == {"github": "login-identity:github/{actor}"}
    with pytest.raises(ConfigError, match="may use only"):
        load_projects(json.dumps({"projects": {"try": {"requester_roles": {"irc": "x/{nick}"}}}}))


@pytest.mark.parametrize("actor", ["*", "alice*", "two words", "tab\there"])
async def test_an_actor_that_would_change_the_role_name_acts_as_nobody(
    env: Embedded, actor: str
) -> None:
    """`*` in a role name would make `assume:` a wildcard over everyone's role."""
    env.tc.roles["project:taskbot:console/alice"] = ["*"]
    map_people(env)
    before = len(env.tc.queue.tasks)
    output = await say(env, f"schedule {new_test(env)}", actor=actor)
    assert "cannot be part of a Taskcluster role name" in output, output
    assert len(env.tc.queue.tasks) == before


async def test_an_actor_naming_another_role_literally_gets_only_that_role(env: Embedded) -> None:
    """`:` and `/` are literal in a role name: `bob:admin` is the role ending in that, not
    bob's or admin's, and holds nothing here."""
    env.tc.roles["project:taskbot:console/bob"] = ["*"]
    map_people(env)
    output = await say(env, f"schedule {new_test(env)}", actor="bob:admin")
    assert "acts in Taskcluster as `project:taskbot:console/bob:admin`, which lacks" in output


async def test_auth_not_answering_fails_the_request_and_nothing_is_created_later(
    env: Embedded,
) -> None:
    """Auth answers 500 during the pre-flight: the request fails (never left submitting
    for a later sweep to create after the person asked again)."""
    import io

    from bot.adapters.console import ConsoleReplier

    map_people(env)
    env.tc.roles["project:taskbot:console/sheriff"] = ["*"]
    env.tc.faults = Faults(error_rate=1.0, only="/api/auth/")
    label = new_test(env)
    output = await say(env, f"schedule {label}")
    assert "Taskcluster did not answer" in output, output
    (record,) = [
        r for r in await env.store.recent_requests(limit=5) if r.command and label in r.command
    ]
    assert record.state == RequestState.FAILED
    env.tc.faults = Faults()
    before = len(env.tc.queue.tasks)
    env.bot.lease_seconds = 0.0
    assert await env.bot.resume(ConsoleReplier(io.StringIO())) == []
    assert len(env.tc.queue.tasks) == before


def test_a_role_template_must_name_the_requester_and_hold_no_wildcard() -> None:
    from bot.projects import ConfigError, load_projects

    for template in ("project:taskbot:console/*", "everyone", "project:{actor}*"):
        text = json.dumps({"projects": {"try": {"requester_roles": {"github": template}}}})
        with pytest.raises(ConfigError, match="must name the requester"):
            load_projects(text)


async def test_a_catch_all_role_leaves_no_source_acting_with_the_bot_scopes(env: Embedded) -> None:
    project = env.push.project
    env.bot.settings = replace(
        env.bot.settings,
        projects={
            project: ProjectSettings(
                project,
                requester_roles={"github": "login-identity:github/{actor}", "*": "p:any/{actor}"},
            )
        },
    )
    before = len(env.tc.queue.tasks)
    output = await say(env, f"schedule {new_test(env)}", actor="sheriff")
    assert "acts in Taskcluster as `p:any/sheriff`, which lacks" in output, output
    assert len(env.tc.queue.tasks) == before
