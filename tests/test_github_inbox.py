"""The GitHub inbox under load: deliveries kept before they are acknowledged, processed as
they come; a plain comment never waits behind a slow command; the commands of one pull
request run in the order they were written."""

from __future__ import annotations

import asyncio
import json

from bot.localtc.server import Faults
from tests.test_github_flow import World, unscheduled_test, world
from tests.test_github_hardening import Served, comment, served

__all__ = ["served", "world"]


async def processed(world: World, delivery: str) -> bool:
    async with world.env.store.transaction() as db:
        rows = await db.fetch("SELECT processed_at FROM inbox WHERE delivery_id = ?", delivery)
    return bool(rows and rows[0]["processed_at"])


def said(body: str, comment_id: int) -> bytes:
    data = comment(body)
    data["comment"]["id"] = comment_id
    return json.dumps(data).encode()


async def test_a_plain_comment_is_not_held_up_by_a_slow_command_on_its_pull_request(
    served: Served,
) -> None:
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    world.env.tc.faults = Faults(delay_ms=1500, only="/api/queue/v1/task/")  # slow createTask
    label = unscheduled_test(world)
    assert await served.post(said(f"@taskbot schedule {label}", 1), delivery="d-slow") == 202
    for _ in range(100):  # the command is under way
        if any(t for t in world.env.tc.queue.tasks.values()) and not await processed(
            world, "d-slow"
        ):
            break
        await asyncio.sleep(0.02)
    assert await served.post(said("Thanks, looks good.", 2), delivery="d-plain") == 202
    for _ in range(50):
        if await processed(world, "d-plain"):
            break
        await asyncio.sleep(0.02)
    assert await processed(world, "d-plain")
    assert not await processed(world, "d-slow")  # still creating its task
    world.env.tc.faults = Faults()
    await served.drain()
    assert await processed(world, "d-slow")


async def test_the_commands_of_one_pull_request_run_in_the_order_they_were_written(
    served: Served,
) -> None:
    world = served.world
    world.github.permissions[(world.repository, "codertocat")] = "write"
    world.env.tc.faults = Faults(delay_ms=300, only="/api/queue/v1/task/")
    labels = [unscheduled_test(world, skip=n) for n in range(3)]
    # Delivery ids sort the other way round: the order is the order they came in.
    for n, (label, delivery) in enumerate(zip(labels, ["d-c", "d-b", "d-a"], strict=True)):
        assert await served.post(said(f"@taskbot schedule {label}", 10 + n), delivery=delivery)
    await served.drain()
    created = [t.definition["metadata"]["name"] for t in world.env.tc.queue.tasks.values()]
    assert [label for label in created if label in labels] == labels


async def test_a_burst_is_kept_whole_and_each_delivery_once(served: Served) -> None:
    """Fifty deliveries at once, each sent twice (GitHub redelivers): all kept, each
    accepted once and answered "already received" the second time."""
    bodies = {f"burst-{n}": said(f"Comment {n}", 100 + n) for n in range(50)}
    sent = list(bodies.items()) * 2
    statuses = await asyncio.gather(
        *(served.post(body, delivery=delivery) for delivery, body in sent)
    )
    by_delivery: dict[str, list[int]] = {}
    for (delivery, _), status in zip(sent, statuses, strict=True):
        by_delivery.setdefault(delivery, []).append(status)
    assert all(sorted(s) == [200, 202] for s in by_delivery.values()), by_delivery
    await served.drain()
    assert all([await processed(served.world, d) for d in bodies])
