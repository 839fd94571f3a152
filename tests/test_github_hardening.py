"""The GitHub adapter under hostile input, faults and restarts, on real payloads from
../shared/reference/github and the GitHub stand-in: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.adapters.admin import AdminEndpoints
from bot.adapters.github import limits
from bot.adapters.github.app import GitHubAdapter, GitHubSettings
from bot.adapters.github.client import GitHubReplier
from bot.adapters.http import make_app
from bot.core.settings import ProjectSettings
from bot.graph.materialize import task_label
from bot.logs import JsonFormatter
from bot.metrics import exposition
from tests.conftest import load_reference_json
from tests.github_standin import Fault
from tests.test_github_events import SECRET, signed
from tests.test_github_flow import World, unscheduled_test, world

__all__ = ["world"]


@dataclass
class Served:
    """The bot serving GitHub's webhook, and the world it acts on."""

    world: World
    adapter: GitHubAdapter
    client: TestClient[web.Request, web.Application]

    async def post(
        self, body: bytes, event: str = "issue_comment", delivery: str = "d-1", **headers: str
    ) -> int:
        sent = {**signed(body, event), "X-GitHub-Delivery": delivery, **headers}
        response = await self.client.post("/github/webhook", data=body, headers=sent)
        return response.status

    async def drain(self) -> None:
        """Until every kept delivery is processed and the bot's background work is done."""
        for _ in range(400):
            await self.adapter.process_pending()
            pending = await self.world.env.store.unprocessed("github")
            if not pending and await self.world.env.bot.idle(0.01):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("deliveries still pending")


@pytest_asyncio.fixture
async def served(world: World) -> AsyncIterator[Served]:
    adapter = GitHubAdapter(world.env.bot, GitHubSettings(SECRET, world.github.token), world.auth)
    app = make_app(world.env.bot, [adapter.install])
    async with TestClient(TestServer(app)) as client:
        yield Served(world, adapter, client)


def comment(body: str, *, name: str = "issue_comment.created.0.json") -> dict[str, Any]:
    """A real comment delivery on the world's pull request, saying ``body``."""
    data = copy.deepcopy(load_reference_json("github", "webhook-examples", name))
    data["comment"]["body"] = body
    data["issue"]["pull_request"] = {"url": "x"}
    return data


def created(world: World, label: str) -> int:
    """How many tasks of ``label`` the local Taskcluster has."""
    tasks = world.env.tc.queue.tasks.values()
    return sum(1 for t in tasks if task_label(t.definition) == label)


async def kept(world: World) -> list[str]:
    """The deliveries the bot kept (processed or not)."""
    async with world.env.store.transaction() as db:
        rows = await db.fetch("SELECT delivery_id FROM inbox ORDER BY received_at, delivery_id")
    return [str(row["delivery_id"]) for row in rows]


def bodies(world: World) -> list[str]:
    return [str(c["body"]) for c in world.github.comments.values()]


# --- at the door ---------------------------------------------------------------------------------


async def test_a_form_encoded_delivery_is_taken_like_json(served: Served) -> None:
    """GitHub's default content type for repository webhooks: the JSON in a `payload` field,
    signed as sent."""
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    label = unscheduled_test(world)
    form = urllib.parse.urlencode({"payload": json.dumps(comment(f"@taskbot schedule {label}"))})
    status = await served.post(
        form.encode(), **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 202
    await served.drain()
    assert any(f"{label}:" in body for body in bodies(world)), bodies(world)


async def test_a_signed_body_that_is_not_a_json_object_is_refused(served: Served) -> None:
    for n, raw in enumerate([b"[1,2,3]", b"null", b'"text"', b"42", b"{", b"payload=x"]):
        assert await served.post(raw, delivery=f"odd-{n}") == 400, raw
    form = urllib.parse.urlencode({"other": "{}"}).encode()
    assert (
        await served.post(
            form, delivery="odd-form", **{"Content-Type": "application/x-www-form-urlencoded"}
        )
        == 400
    )
    assert await kept(served.world) == []


async def test_deliveries_up_to_githubs_25_mb_are_taken_and_larger_refused(
    served: Served,
) -> None:
    big = comment("a long comment with no command\n" + "x" * (3 * 2**20))
    assert await served.post(json.dumps(big).encode(), delivery="big") == 202
    too_big = b'{"padding": "' + b"x" * (25 * 2**20) + b'"}'
    assert await served.post(too_big, delivery="too-big") == 413
    assert await kept(served.world) == ["big"]


# --- only configured repositories ----------------------------------------------------------------


async def test_a_repository_no_project_lists_schedules_nothing_and_is_told_once(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone may install a public App on their own repository: its comments must not
    schedule on the default project."""
    world = served.world
    stranger = "mallory/own-repo"
    world.github.permissions[(stranger, "codertocat")] = "admin"
    before = len(world.env.tc.queue.tasks)
    for n in range(3):
        data = comment(f"@taskbot schedule {unscheduled_test(world)}")
        data["repository"]["full_name"] = stranger
        assert await served.post(json.dumps(data).encode(), delivery=f"stranger-{n}") == 202
    # A repository that differs only in case is the same repository to GitHub: served.
    world.github.permissions[(world.repository.upper(), "codertocat")] = "write"
    data = comment(f"@taskbot schedule {unscheduled_test(world)}")
    data["repository"]["full_name"] = world.repository.upper()
    assert await served.post(json.dumps(data).encode(), delivery="same-repo") == 202
    await served.drain()
    told = [c for c in world.github.comments.values() if "not a repository" in str(c["body"])]
    assert [c["body"] for c in told] == [
        f"{stranger} is not a repository this bot serves, so it does nothing here. Its "
        "operators list the repositories it serves under a project's `repositories` "
        "(TASKBOT_CONFIG)."
    ]
    assert len(world.env.tc.queue.tasks) == before + 1  # the served repository's one job
    assert all(r.place != f"{stranger}#2" for r in await world.env.store.recent_requests())
    assert sum("listed by no project" in m for m in caplog.messages) == 3


# --- nothing lost --------------------------------------------------------------------------------


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub's 5xx are retried after milliseconds instead of seconds."""
    monkeypatch.setattr(limits, "BACKOFF", 0.001)


async def schedule_comment(served: Served, delivery: str, *, skip: int = 0) -> str:
    """A writer's schedule comment, delivered; the label it asks for."""
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    label = unscheduled_test(world, skip=skip)
    raw = json.dumps(comment(f"@taskbot schedule {label}")).encode()
    assert await served.post(raw, delivery=delivery) == 202
    return label


@pytest.mark.usefixtures("quick_retries")
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/collaborators/.*/permission$"),  # who may do what
        ("GET", "/pulls/\\d+$"),  # the pull request's head
        ("POST", "/reactions$"),  # the 👀
        ("POST", "/issues/\\d+/comments$"),  # the card
    ],
)
async def test_a_passing_github_error_loses_nothing(served: Served, method: str, path: str) -> None:
    world = served.world
    world.github.faults.append(Fault(method, path, status=502, count=2))
    label = await schedule_comment(served, "flaky")
    await served.drain()
    assert world.github.faults[0].hits == 2
    cards = [b for b in bodies(world) if f"{label}:" in b]
    assert len(cards) == 1, bodies(world)
    assert created(world, label) == 1


@pytest.mark.usefixtures("quick_retries")
async def test_a_github_that_hangs_is_a_failure_retried(served: Served) -> None:
    world = served.world
    world.auth.timeout = 0.3
    world.github.faults.append(Fault("GET", "/pulls/\\d+$", status=200, count=1, delay=1.0))
    label = await schedule_comment(served, "hangs")
    await served.drain()
    assert [b for b in bodies(world) if f"{label}:" in b]


@pytest.mark.usefixtures("quick_retries")
async def test_a_delivery_github_keeps_failing_is_parked_told_and_retried_by_an_operator(
    served: Served,
) -> None:
    world, store = served.world, served.world.env.store
    served.adapter.retry_delays = (0.0, 0.0)
    down = Fault("GET", "/collaborators/", status=503, count=10**6)
    world.github.faults.append(down)
    before = len(world.env.tc.queue.tasks)
    label = await schedule_comment(served, "doomed")
    await served.drain()
    (parked,) = await store.parked_deliveries()
    assert (parked["delivery_id"], parked["attempts"], parked["last_error"]) == (
        "doomed",
        3,
        "GitHub answered 503",
    )
    told = [b for b in bodies(world) if "could not handle" in b]
    assert told == [
        "@Codertocat I could not handle the command in your comment after 3 tries (GitHub "
        "answered 503), so nothing was scheduled. Please try again in a while; if it keeps "
        "failing, the bot's operators can retry it (GitHub delivery `doomed`)."
    ]
    assert len(world.env.tc.queue.tasks) == before
    metrics = exposition().decode()
    assert 'taskbot_deliveries_parked_total{source="github"}' in metrics
    # GitHub is back; the operator retries it: it is handled, once.
    world.github.faults.remove(down)
    assert await store.retry_delivery("github", "doomed")
    assert not await store.retry_delivery("github", "doomed")  # not parked any more
    await served.drain()
    assert [b for b in bodies(world) if f"{label}:" in b]
    assert await store.parked_deliveries() == []
    assert len(world.env.tc.queue.tasks) == before + 1


async def park(world: World, delivery: str) -> None:
    """A delivery kept, tried and given up on, as the adapter leaves one."""
    store = world.env.store
    await store.keep_delivery("github", delivery, "issue_comment", json.dumps(comment("x")))
    (row,) = [
        r for r in await store.claim_deliveries("github", "me") if r["delivery_id"] == delivery
    ]
    assert row["delivery_id"] == delivery
    await store.delivery_failed("github", delivery, "me", "GitHub answered 502", retry_in=0)
    await store.park_delivery("github", delivery)


async def test_operators_list_retry_and_drop_parked_deliveries_over_http(world: World) -> None:
    token = "an-admin-token-of-some-length"
    app = web.Application()
    AdminEndpoints(world.env.bot, token).install(app)
    await park(world, "p-1")
    await park(world, "p-2")
    admin = {"Authorization": f"Bearer {token}"}
    async with TestClient(TestServer(app)) as client:
        for headers in ({}, {"Authorization": "Bearer not-the-admin-token"}):
            assert (await client.get("/admin/deliveries", headers=headers)).status == 401
        listed = await (await client.get("/admin/deliveries", headers=admin)).json()
        assert [(p["delivery_id"], p["attempts"], p["last_error"]) for p in listed["parked"]] == [
            ("p-1", 1, "GitHub answered 502"),
            ("p-2", 1, "GitHub answered 502"),
        ]
        assert "payload" not in listed["parked"][0]
        retried = await client.post("/admin/deliveries/github/p-1/retry", headers=admin)
        assert (retried.status, await retried.json()) == (200, {"retried": "p-1"})
        dropped = await client.delete("/admin/deliveries/github/p-2", headers=admin)
        assert (dropped.status, await dropped.json()) == (200, {"dropped": "p-2"})
        again = await client.delete("/admin/deliveries/github/p-2", headers=admin)
        assert again.status == 404
        assert (await (await client.get("/admin/deliveries", headers=admin)).json()) == {
            "parked": []
        }
    assert [r["delivery_id"] for r in await world.env.store.unprocessed("github")] == ["p-1"]


# --- truthful reactions --------------------------------------------------------------------------


async def test_a_rocket_only_when_every_command_of_the_comment_succeeded(served: Served) -> None:
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    label = unscheduled_test(world)
    cases = {
        "no-job": "@taskbot schedule no-such-job-anywhere",
        "no-request": "@taskbot status r0000000",
        "one-bad": f"@taskbot schedule {label} --dry-run\n@taskbot confirm r00000000",
        "all-good": f"@taskbot jobs xpcshell\n@taskbot schedule {label} --dry-run",
    }
    ids: dict[str, int] = {}
    for n, (name, text) in enumerate(cases.items()):
        data = comment(text)
        data["comment"]["id"] = ids[name] = 5000 + n
        assert await served.post(json.dumps(data).encode(), delivery=name) == 202
    await served.drain()
    final = {
        name: [r for i, r in world.github.reactions if i == cid][-1] for name, cid in ids.items()
    }
    assert final == {
        "no-job": "confused",
        "no-request": "confused",
        "one-bad": "confused",
        "all-good": "rocket",
    }


# --- limits a public repository needs ------------------------------------------------------------


def replies_to(world: World) -> list[str]:
    return [b for b in bodies(world) if not b.startswith("taskbot")]


async def test_a_thousand_commands_in_a_comment_run_ten_and_say_so(served: Served) -> None:
    world = served.world
    text = "\n".join("@taskbot jobs xpcshell" for _ in range(1000))
    assert await served.post(json.dumps(comment(text)).encode(), delivery="thousand") == 202
    await served.drain()
    said = bodies(world)
    assert len(said) == 11, len(said)
    assert said[0] == (
        "Only the first 10 commands of a message are run; the other 990 were not: send them "
        "again in another message."
    )
    assert all(re.match(r"\d+ jobs? on ", b) for b in said[1:])


async def test_one_person_flooding_gets_one_warning_a_minute(served: Served) -> None:
    world = served.world
    world.env.bot.settings = replace(world.env.bot.settings, rate_per_minute=25)
    text = "\n".join("@taskbot jobs xpcshell" for _ in range(10))
    for n in range(5):
        data = comment(text)
        data["comment"]["id"] = 7000 + n
        assert await served.post(json.dumps(data).encode(), delivery=f"flood-{n}") == 202
        await served.drain()
    said = bodies(world)
    warnings = [b for b in said if b.startswith("You sent more than")]
    assert warnings == [
        "You sent more than 25 commands in a minute, so the rest of this message was not run: "
        "wait a minute, then send it again."
    ]
    assert len(said) == 25 + 1
    # Someone else is not held back by it.
    other = comment("@taskbot jobs xpcshell")
    other["comment"]["user"]["login"] = "hubot-friend"
    assert await served.post(json.dumps(other).encode(), delivery="other") == 202
    await served.drain()
    assert len(bodies(world)) == 27


async def test_the_threshold_and_the_cap_are_for_the_whole_comment(served: Served) -> None:
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    project = world.env.push.project
    world.env.bot.settings = replace(
        world.env.bot.settings,
        projects={
            project: ProjectSettings(
                project,
                repositories=(world.repository,),
                confirm_threshold=2,
                max_new_tasks=3,
            )
        },
    )
    labels = [unscheduled_test(world, skip=n) for n in range(4)]
    text = "\n".join(f"@taskbot schedule {label}" for label in labels)
    before = len(world.env.tc.queue.tasks)
    assert await served.post(json.dumps(comment(text)).encode(), delivery="lines") == 202
    await served.drain()
    said = bodies(world)
    held = [b for b in said if "— held:" in b]
    assert len(held) == 1
    first_line = held[0].splitlines()[0]
    assert first_line.endswith(
        "— held: that is more than 2 tasks, besides the 2 of the commands before it in this "
        "message. To go ahead: `confirm "
        + re.findall(r"`confirm (r[0-9a-f]+)`", first_line)[0]
        + "` within 30 minutes."
    )
    refused = [b for b in said if b.startswith("That would create")]
    assert refused == [
        "That would create 1 task, besides the 3 of the commands before it in this message; "
        "one message may create at most 3. Narrow it with `for PLATFORM`, fewer jobs, or a "
        "smaller `xN`."
    ]
    assert len(world.env.tc.queue.tasks) == before + 2


async def test_five_thousand_unknown_jobs_neither_block_the_bot_nor_break_the_reply(
    served: Served,
) -> None:
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    names = " ".join(f"no-such-job-{n}" for n in range(5000))
    raw = json.dumps(comment(f"@taskbot schedule {names}")).encode()
    assert await served.post(raw, delivery="huge") == 202
    worst_health = worst_ack = 0.0
    loop = asyncio.get_running_loop()
    for n in range(400):
        if not await world.env.store.unprocessed("github") and world.github.comments:
            break
        started = loop.time()
        assert (await served.client.get("/healthz")).status == 200
        worst_health = max(worst_health, loop.time() - started)
        started = loop.time()
        other = json.dumps(comment("no command here")).encode()
        assert await served.post(other, delivery=f"other-{n}") == 202
        worst_ack = max(worst_ack, loop.time() - started)
        await asyncio.sleep(0.02)
    await served.drain()
    (reply,) = [b for b in bodies(world) if "no-such-job-0" in b]
    print(
        f"\n5,000 unknown jobs: reply {len(reply):,} characters, worst /healthz "
        f"{worst_health * 1000:.0f} ms, worst webhook ack {worst_ack * 1000:.0f} ms"
    )
    assert len(reply) < 4000
    assert "… and 4,995 more that match no job as asked: `no-such-job-5`" in reply
    assert "and 4,975 more." in reply
    assert worst_health < 1.0
    assert worst_ack < 1.0


async def test_a_reply_longer_than_github_takes_is_cut_with_a_note(world: World) -> None:
    """GitHub refuses comment bodies over 65,536 characters (the stand-in too, with 422)."""
    replier = GitHubReplier(world.gh, world.repository, world.number)
    long = "[r1234abcd] a long card\n" + "\n".join(
        f"  line {n:06d} " + "x" * 60 for n in range(3000)
    )
    reference = await replier.post(long)
    body = str(world.github.comments[int(reference)]["body"])
    assert len(body) <= 65536
    assert body.startswith("[r1234abcd] a long card\n  line 000000")
    cut = re.search(r"… and ([\d,]+) more lines, cut to fit GitHub's limit", body)
    assert cut, body[-300:]
    shown = body.count("  line ")
    assert shown + int(cut[1].replace(",", "")) == 3000
    assert body.endswith("<!-- taskbot:request:r1234abcd -->")  # the card is found again
    await replier.edit(reference, long + "\nmore")
    assert len(str(world.github.comments[int(reference)]["body"])) <= 65536


async def test_a_status_card_is_edited_at_most_every_couple_of_seconds(served: Served) -> None:
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    labels = [unscheduled_test(world, skip=n) for n in range(12)]
    text = "@taskbot schedule " + " ".join(labels)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await served.post(json.dumps(comment(text)).encode(), delivery="burst") == 202
    await served.drain()
    took = loop.time() - started
    (card,) = [c for c in world.github.comments.values() if "task group:" in str(c["body"])]
    assert "**finished: " in str(card["body"])
    # One edit per finished task before; now one per 2 s at most, and the final one.
    assert card["edits"] <= took / 2 + 2, (card["edits"], took)


# --- exactly once per comment --------------------------------------------------------------------


async def test_one_comment_in_two_deliveries_schedules_once(served: Served) -> None:
    """A comment can come twice under two delivery ids (an App and a repository webhook on
    the same repository, a redelivery): its commands run once."""
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    label = unscheduled_test(world)
    raw = json.dumps(comment(f"@taskbot schedule {label}\n@taskbot jobs xpcshell")).encode()
    assert await served.post(raw, delivery="app") == 202
    await served.drain()
    said = len(world.github.comments)
    assert await served.post(raw, delivery="repository-webhook") == 202
    await served.drain()
    assert created(world, label) == 1
    assert len(world.github.comments) == said == 2


@pytest.mark.usefixtures("quick_retries")
async def test_after_a_failure_midway_it_carries_on_at_the_first_unanswered_command(
    served: Served,
) -> None:
    world = served.world
    served.adapter.retry_delays = (0.0,)
    world.github.permissions[(world.repository, "codertocat")] = "write"
    # The second reply cannot be posted, however often it is tried: the delivery fails.
    world.github.faults.append(Fault("POST", "/issues/\\d+/comments$", 502, count=6, after=1))
    text = "\n".join(f"@taskbot jobs {word}" for word in ("xpcshell", "mochitest", "reftest"))
    assert await served.post(json.dumps(comment(text)).encode(), delivery="midway") == 202
    await served.drain()
    said = bodies(world)
    # One answer each, in order: the first is not answered twice, and the second is the
    # answer, not an apology the same GitHub would not have taken either.
    assert len(said) == 3, said
    assert all(re.match(r"\d+ jobs? on ", b) for b in said), said
    assert (await kept(world)) == ["midway"]
    assert [f.hits for f in world.github.faults] == [6]


async def test_a_replica_restarted_under_its_name_takes_its_deliveries_back_at_once(
    world: World,
) -> None:
    store = world.env.store
    await store.keep_delivery("github", "held", "issue_comment", "{}")
    assert [r["delivery_id"] for r in await store.claim_deliveries("github", "web.1")] == ["held"]
    assert await store.claim_deliveries("github", "web.2") == []  # another's, still held
    again = await store.claim_deliveries("github", "web.1")  # the same, after a restart
    assert [r["delivery_id"] for r in again] == ["held"]


# --- hygiene ------------------------------------------------------------------------------------


async def test_control_characters_are_neither_parsed_nor_echoed(served: Served) -> None:
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    text = "@taskbot jobs xpc\x00shell\ud800\x1b[31m\n@taskbot schedule \x07no-such-job\x7f"
    assert await served.post(json.dumps(comment(text)).encode(), delivery="ctrl") == 202
    await served.drain()
    said = bodies(world)
    assert len(said) == 2
    assert re.match(r"\d+ jobs? on ", said[0]), said[0]  # `xpcshell` once the NUL is gone
    assert "`no-such-job` matches no job" in said[1]
    for body in said:
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]", body), body


async def test_each_handled_command_is_one_info_line(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    caplog.set_level(logging.INFO, logger="bot.service")
    text = f"@taskbot schedule {unscheduled_test(world)}\n@taskbot status r00000000"
    assert await served.post(json.dumps(comment(text)).encode(), delivery="logged") == 202
    await served.drain()
    lines = [r for r in caplog.records if r.name == "bot.service" and r.levelno == logging.INFO]
    handled = [json.loads(JsonFormatter().format(r)) for r in lines if hasattr(r, "fields")]
    assert [(h["verb"], h["outcome"], h["actor"], h["delivery"]) for h in handled] == [
        ("schedule", "ok", "Codertocat", "logged"),
        ("status", "refused", "Codertocat", "logged"),
    ]
    assert len(handled[0]["requests"]) == 1
    assert handled[0]["message"] == "github schedule from Codertocat: ok"
    assert all(h["seconds"] >= 0 for h in handled)


# --- status in its place -------------------------------------------------------------------------


async def say_on(served: Served, text: str, number: int, delivery: str) -> str:
    """``text`` commented on pull request ``number`` of the world's repository; the reply."""
    world = served.world
    world.github.heads[(world.repository, number)] = world.env.push.revision
    data = comment(text)
    data["issue"]["number"] = number
    data["comment"]["id"] = abs(hash(delivery)) % 10**9
    before = set(world.github.comments)
    assert await served.post(json.dumps(data).encode(), delivery=delivery) == 202
    await served.drain()
    new = [c for i, c in world.github.comments.items() if i not in before]
    return str(new[0]["body"]) if new else ""


async def test_status_covers_its_pull_request_and_what_its_reader_may_read(
    served: Served,
) -> None:
    world = served.world
    store = world.env.store
    world.github.permissions[(world.repository, "codertocat")] = "write"
    first = await say_on(served, f"@taskbot schedule {unscheduled_test(world)}", 1, "s-1")
    second = await say_on(served, f"@taskbot schedule {unscheduled_test(world, skip=1)}", 2, "s-2")
    one, two = (re.findall(r"\[(r[0-9a-f]+)\]", body)[0] for body in (first, second))
    here = await say_on(served, "@taskbot status", 1, "s-3")
    assert f"[{one}]" in here
    assert f"[{two}]" not in here
    assert f"[{two}]" in await say_on(served, f"@taskbot status {two}", 1, "s-4")  # same repo
    # A request on a repository the reader may not read is not shown to them.
    await store.add_request(
        "r5ec2e7aaaa",
        source="github",
        actor="someone",
        place="octo/secret#3",
        text="schedule x",
        command="schedule x",
        project=world.env.push.project,
        revision=world.env.push.revision,
    )
    world.github.permissions[("octo/secret", "codertocat")] = "none"
    hidden = await say_on(served, "@taskbot status r5ec2e7aaaa", 1, "s-5")
    assert hidden.startswith("r5ec2e7aaaa was asked for somewhere you cannot see from here")
    for_push = await say_on(served, f"@taskbot status {world.env.push.revision[:9]}", 1, "s-6")
    assert f"[{one}]" in for_push
    assert f"[{two}]" in for_push
    assert "r5ec2e7aaaa" not in for_push
    project = world.env.push.project
    assert f"[{one}]" in await say_on(served, "@taskbot status latest", 1, "s-7")
    assert f"[{one}]" in await say_on(served, f"@taskbot status {project}@latest", 1, "s-8")
    short = f"{project}@{world.env.push.revision[:12]}"
    assert f"[{two}]" in await say_on(served, f"@taskbot status {short}", 1, "s-9")


# --- the figures -------------------------------------------------------------------------------


@pytest.mark.usefixtures("quick_retries")
async def test_a_rough_day_loses_nothing_and_does_nothing_twice(served: Served) -> None:
    """Forty schedule comments, each delivered twice under two delivery ids and once more
    redelivered, while GitHub answers 502 now and then and the worker is restarted: every
    command answered once, every job created once."""
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    world.env.bot.settings = replace(world.env.bot.settings, rate_per_minute=1000)  # a busy day
    served.adapter.retry_delays = (0.0, 0.0, 0.0)
    world.github.faults += [
        Fault("POST", "/issues/\\d+/comments$", 502, count=4, after=7),
        Fault("GET", "/collaborators/", 503, count=3, after=11),
        Fault("GET", "/pulls/\\d+$", 502, count=2, after=23),
        Fault("POST", "/reactions$", 502, count=5, after=30),
    ]
    labels = [unscheduled_test(world, skip=n) for n in range(40)]
    sent = 0
    loop = asyncio.get_running_loop()
    worst_health = 0.0
    for n, label in enumerate(labels):
        data = comment(f"@taskbot schedule {label}")
        data["comment"]["id"] = 90_000 + n
        raw = json.dumps(data).encode()
        for delivery in (f"app-{n}", f"hook-{n}"):
            assert await served.post(raw, delivery=delivery) == 202
            sent += 1
        if n % 10 == 9:  # the worker dies with work in hand; a new one takes it back
            await served.adapter._stop(served.client.app)
            await served.adapter._start(served.client.app)
        started = loop.time()
        assert (await served.client.get("/healthz")).status == 200
        worst_health = max(worst_health, loop.time() - started)
    await served.drain()
    for n in range(0, 40, 8):  # GitHub's "Redeliver" of a few, after the fact
        data = comment(f"@taskbot schedule {labels[n]}")
        data["comment"]["id"] = 90_000 + n
        assert await served.post(json.dumps(data).encode(), delivery=f"app-{n}") == 200
        sent += 1
    await served.drain()
    cards = {label: [b for b in bodies(world) if f"{label}:" in b] for label in labels}
    lost = [label for label, found in cards.items() if not found]
    twice = [label for label, found in cards.items() if len(found) > 1]
    duplicates = [label for label in labels if created(world, label) > 1]
    largest = max(len(b) for b in bodies(world))
    print(
        f"\nrough day: {sent} deliveries of {len(labels)} commands; lost {len(lost)}, "
        f"answered twice {len(twice)}, tasks created twice {len(duplicates)}; worst /healthz "
        f"{worst_health * 1000:.0f} ms; largest reply {largest:,} characters; "
        f"GitHub faults injected {sum(f.hits for f in world.github.faults)}"
    )
    assert lost == []
    assert twice == []
    assert duplicates == []
    assert all(created(world, label) == 1 for label in labels)
    assert await world.env.store.parked_deliveries() == []
