"""Pulse messages through the real RabbitMQ on 127.0.0.1:5672, and the polling fallback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiohttp
import aiormq
import pytest
import pytest_asyncio
import taskcluster.aio as tc_aio

from bot.localtc.events import AmqpPublisher
from bot.localtc.server import LocalTaskcluster, serve
from bot.tc.tracking import TaskUpdate, Tracker, group_binding
from tests.conftest import keep_secret
from tests.tcfixtures import Running, local_tc, new_id, task_definition
from tests.tcschemas import errors

__all__ = ["local_tc"]

AMQP_URL = os.environ.get("TASKBOT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"


@pytest_asyncio.fixture
async def broker() -> AsyncIterator[str]:
    try:
        connection = await asyncio.wait_for(aio_pika.connect(AMQP_URL), timeout=5)
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"RabbitMQ must be running for CI at {AMQP_URL}: {error}")
        pytest.skip(f"no RabbitMQ at {AMQP_URL} ({error}); CI runs this for real")
    await connection.close()
    yield AMQP_URL


async def collect(updates: AsyncIterator[TaskUpdate], into: list[TaskUpdate]) -> None:
    async for update in updates:
        into.append(update)


async def listening(tracker: Tracker, seen: list[TaskUpdate]) -> asyncio.Task[None]:
    """Follow the tracker's updates into ``seen``, once it listens on Pulse."""
    watching = asyncio.create_task(collect(tracker.updates(), seen))
    for _ in range(100):
        if tracker.source == "pulse":
            break
        await asyncio.sleep(0.05)
    assert tracker.source == "pulse"
    return watching


async def test_messages_reach_rabbitmq_with_real_routing_keys(broker: str) -> None:
    publisher = AmqpPublisher(broker)
    await publisher.start()
    tc = LocalTaskcluster(publish=publisher.publish)
    runner = await serve(tc)
    connection = await aio_pika.connect(broker)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "exchange/taskcluster-queue/v1/task-completed",
            aio_pika.ExchangeType.TOPIC,
            durable=True,
        )
        task_id = new_id()
        by_task = await channel.declare_queue(exclusive=True)
        await by_task.bind(exchange, routing_key=f"primary.{task_id}.#")
        by_route = await channel.declare_queue(exclusive=True)
        route = f"index.project.test.{task_id}"
        await by_route.bind(exchange, routing_key=f"route.{route}")
        tc.queue.create(
            task_id, tc.queue.check_definition(task_id, task_definition(routes=[route]))
        )
        run = tc.queue.claim(task_id, "local-group", "worker-7")
        tc.queue.resolve(task_id, run, "completed")
        received: list[aio_pika.abc.AbstractIncomingMessage] = []
        for queue in (by_task, by_route):
            message = await queue.get(timeout=10, fail=False)
            for _ in range(50):
                if message is not None:
                    break
                await asyncio.sleep(0.1)
                message = await queue.get(timeout=10, fail=False)
            assert message is not None
            await message.ack()
            received.append(message)
        for message in received:
            assert message.routing_key == (
                f"primary.{task_id}.0.local-group.worker-7.proj-test.linux.-.{task_id}._"
            )
            body: dict[str, Any] = json.loads(message.body)
            assert errors("/schemas/queue/v1/task-completed-message.json", body) == []
            assert body["status"]["state"] == "completed"
        assert received[1].headers.get("CC") == [f"route.{route}"]
    finally:
        await connection.close()
        await publisher.stop()
        await runner.cleanup()


@dataclass
class Followed:
    """A task group resolved on a local Taskcluster publishing to RabbitMQ, as a tracker
    following it over Pulse saw it."""

    group: str
    tracker: Tracker
    seen: list[TaskUpdate]


async def follow_over_pulse(broker: str, amqp_url: str, outcomes: list[str]) -> Followed:
    """A task group of one task per outcome, resolved so, followed by a tracker on
    ``amqp_url`` (its messages published on ``broker`` by the local Queue)."""
    publisher = AmqpPublisher(broker)  # the Queue, which owns its exchanges
    await publisher.start()
    tc = LocalTaskcluster(publish=publisher.publish)
    runner = await serve(tc)
    try:
        group = new_id()
        ids = [group, *(new_id() for _ in outcomes[1:])]
        for task_id in ids:
            tc.queue.create(
                task_id, tc.queue.check_definition(task_id, task_definition(taskGroupId=group))
            )
        async with aiohttp.ClientSession() as session:
            queue = tc_aio.Queue(
                {"rootUrl": tc.root_url, "credentials": tc.credentials()}, session=session
            )
            tracker = Tracker(queue, group, set(ids), amqp_url=amqp_url, poll_interval=60)
            seen: list[TaskUpdate] = []
            watching = await listening(tracker, seen)
            for task_id, outcome in zip(ids, outcomes, strict=True):
                run = tc.queue.claim(task_id, "g", "w")
                tc.queue.resolve(task_id, run, outcome)
            await asyncio.wait_for(watching, timeout=20)
        return Followed(group, tracker, seen)
    finally:
        await publisher.stop()
        await runner.cleanup()


async def test_tracker_follows_a_task_group_over_pulse(broker: str) -> None:
    followed = await follow_over_pulse(broker, broker, ["completed", "failed", "completed"])
    tracker, seen, group = followed.tracker, followed.seen, followed.group
    assert tracker.is_finished()
    assert tracker.summary() == {"completed": 2, "failed": 1}
    finals = [u for u in seen if u.state in ("completed", "failed")]
    assert {u.source for u in finals} == {"pulse"}
    assert group_binding(group).split(".")[8] == group


async def test_polling_when_the_broker_is_unreachable(local_tc: Running) -> None:
    tc = local_tc.tc
    group = new_id()
    ids = [group, new_id()]
    for task_id in ids:
        await local_tc.queue().createTask(task_id, task_definition(taskGroupId=group))
    tracker = Tracker(local_tc.queue(), group, set(ids), amqp_url=UNREACHABLE, poll_interval=0.05)
    seen: list[TaskUpdate] = []
    watching = asyncio.create_task(collect(tracker.updates(), seen))
    await asyncio.sleep(0.3)
    for task_id in ids:
        run = tc.queue.claim(task_id, "g", "w")
        tc.queue.resolve(task_id, run, "completed")
    await asyncio.wait_for(watching, timeout=20)
    assert tracker.summary() == {"completed": 2}
    assert {u.source for u in seen} == {"poll"}
    assert [u.state for u in seen if u.task_id == ids[0]] == ["pending", "completed"]


async def test_a_quiet_pulse_is_checked_against_the_queue(broker: str) -> None:
    """Messages that never come (here: the tasks are of another group than the one bound)
    delay the report by the resync interval, never stall it."""
    publisher = AmqpPublisher(broker)
    await publisher.start()
    tc = LocalTaskcluster(publish=publisher.publish)
    runner = await serve(tc)
    try:
        ids = [new_id(), new_id()]
        for task_id in ids:
            tc.queue.create(task_id, tc.queue.check_definition(task_id, task_definition()))
        async with aiohttp.ClientSession() as session:
            queue = tc_aio.Queue(
                {"rootUrl": tc.root_url, "credentials": tc.credentials()}, session=session
            )
            tracker = Tracker(
                queue, new_id(), set(ids), amqp_url=broker, poll_interval=60, resync_interval=0.2
            )
            seen: list[TaskUpdate] = []
            watching = await listening(tracker, seen)
            for task_id in ids:
                tc.queue.resolve(task_id, tc.queue.claim(task_id, "g", "w"), "completed")
            await asyncio.wait_for(watching, timeout=10)
        assert tracker.summary() == {"completed": 2}
        assert {u.source for u in seen if u.state == "completed"} == {"poll"}
    finally:
        await publisher.stop()
        await runner.cleanup()


PULSE_USER = "taskbot-pulse-test"
PULSE_PASSWORD = keep_secret("pulse-test-password-0123")


@pytest.fixture
def pulse_user(broker: str) -> str:
    """A RabbitMQ user with Pulse's permissions: configure and write only its own queues and
    exchanges, read those and the Taskcluster exchanges. Its AMQP URL."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("rabbitmqctl must be available in CI to make a Pulse-like user")
        pytest.skip("no rabbitmqctl here to make a Pulse-like user; CI runs this for real")
    own = f"^(queue|exchange)/{PULSE_USER}/.*"
    reads = f"^(queue/{PULSE_USER}/.*|exchange/{PULSE_USER}/.*|exchange/taskcluster-.*)"
    subprocess.run([rabbitmqctl, "delete_user", PULSE_USER], capture_output=True, check=False)
    for command in (
        ["add_user", PULSE_USER, PULSE_PASSWORD],
        ["set_permissions", "-p", "/", PULSE_USER, own, own, reads],
    ):
        subprocess.run([rabbitmqctl, *command], capture_output=True, check=True, timeout=60)
    host = broker.split("@", 1)[1]
    return f"amqp://{PULSE_USER}:{PULSE_PASSWORD}@{host}"


async def test_a_pulse_user_follows_tasks_by_message(broker: str, pulse_user: str) -> None:
    """As deployed: the bot's user may declare only `queue/<user>/...`, and binds to the
    Queue's exchanges without declaring them; it follows the tasks by message, not by its
    polling fallback."""
    followed = await follow_over_pulse(broker, pulse_user, ["completed", "completed"])
    assert followed.tracker.summary() == {"completed": 2}
    assert {u.source for u in followed.seen if u.state == "completed"} == {"pulse"}
    # What the user may not do, it could not have done: declare a queue of its own name.
    connection = await aio_pika.connect(pulse_user)
    try:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await channel.declare_queue("taskbot-unprefixed", exclusive=True)
    finally:
        await connection.close()
