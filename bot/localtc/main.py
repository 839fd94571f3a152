"""``python -m bot localtc``: run the local Taskcluster until stopped, printing how to reach it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys

from bot.localtc.chain import Breakage, Chain, seed_chain
from bot.localtc.events import AmqpPublisher
from bot.localtc.seed import pull_request_from, register_action_hooks, seed_push
from bot.localtc.server import Faults, LocalTaskcluster, serve
from bot.localtc.worker import Rule, SimulatedWorker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)"
    )
    parser.add_argument(
        "--seed-push", action="store_true", help="create a realistic push to try the bot on"
    )
    parser.add_argument(
        "--seed-pushes",
        type=int,
        metavar="N",
        help="seed N consecutive pushes of the project instead of one (pushlog ids 1 to N, "
        "the last one latest); with --fail, the matching jobs fail on them",
    )
    parser.add_argument(
        "--break-at",
        type=int,
        metavar="K",
        help="with --seed-pushes and --fail: the jobs fail from push K on (1 is the oldest), "
        "and pass before it",
    )
    parser.add_argument(
        "--flaky",
        type=float,
        default=0.0,
        metavar="P",
        help="with --break-at: before the break the jobs fail with probability P",
    )
    parser.add_argument(
        "--tasks", type=int, default=3000, help="size of the seeded push's task graph"
    )
    parser.add_argument("--project", default="autoland", help="project of the seeded push")
    parser.add_argument(
        "--pull-request",
        type=_pull_request,
        metavar="OWNER/REPO#N",
        help="seed a GitHub pull request's push instead (implies --seed-push; its project is "
        "the repository's name): its decision task has no Index route, the GitHub service's "
        "builds list it",
    )
    parser.add_argument(
        "--worker", action="store_true", help="run a simulated worker: pending tasks complete"
    )
    parser.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="GLOB",
        help="with --worker, tasks whose label matches GLOB fail (repeatable)",
    )
    parser.add_argument(
        "--amqp-url", help="publish Pulse messages to this RabbitMQ (default: none)"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of Queue calls answered 500"
    )
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every Queue call this long")
    parser.add_argument(
        "--artifact-mbps",
        type=float,
        default=None,
        help="serve artifact downloads at this many megabytes a second, like a real network "
        "(default: as fast as loopback)",
    )
    parser.add_argument(
        "--max-deadline-days",
        type=float,
        default=5.0,
        help="the Queue's longest task deadline (the real Queue's default: 5)",
    )


def _pull_request(text: str) -> tuple[str, int]:
    try:
        return pull_request_from(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments together, or None."""
    if args.seed_pushes is not None:
        if args.seed_pushes < 1:
            return "--seed-pushes needs at least 1 push"
        if args.pull_request is not None:
            return "--seed-pushes and --pull-request seed different things: choose one"
    elif args.break_at is not None or args.flaky:
        return "--break-at and --flaky describe a chain of pushes: add --seed-pushes N"
    if args.break_at is not None and not args.fail:
        return "--break-at needs --fail GLOB: which jobs break"
    count = args.seed_pushes
    if args.break_at is not None and count is not None and not 1 <= args.break_at <= count:
        return f"--break-at must be a push from 1 to {count}"
    if not 0.0 <= args.flaky <= 1.0:
        return "--flaky is a probability, from 0 to 1"
    if args.flaky and args.break_at is None:
        return "--flaky says how often the jobs fail before the break: add --break-at K"
    if args.tasks < 1:
        return "--tasks needs at least 1 task"
    if args.artifact_mbps is not None and args.artifact_mbps <= 0:
        return "--artifact-mbps is a rate above 0 megabytes a second"
    if not PROJECT.fullmatch(args.project):
        return f"--project must be a project name (letters, digits, - and _), not {args.project!r}"
    return None


async def run(args: argparse.Namespace) -> int:
    publisher = AmqpPublisher(args.amqp_url) if args.amqp_url else None
    if publisher is not None:
        await publisher.start()
    tc = LocalTaskcluster(
        publish=publisher.publish if publisher else None,
        faults=Faults(error_rate=args.fault_rate, delay_ms=args.delay_ms, only="/api/queue/"),
        max_deadline_days=args.max_deadline_days,
        artifact_bytes_per_second=args.artifact_mbps * 1e6 if args.artifact_mbps else None,
    )
    runner = await serve(tc, port=args.port)
    info: dict[str, object] = {"rootUrl": tc.root_url, **tc.credentials()}
    chain: Chain | None = None
    if args.pull_request is not None:
        push = seed_push(tc, tasks=args.tasks, pull_request=args.pull_request)
        register_action_hooks(tc, push)
        repository, number = args.pull_request
        info.update(
            project=push.project,
            pullRequest=f"{repository}#{number}",
            headSha=push.revision,
            decisionTaskId=push.decision_task_id,
        )
    elif args.seed_pushes is not None:
        chain = seed_chain(
            tc,
            args.seed_pushes,
            tasks=args.tasks,
            project=args.project,
            breakage=Breakage(tuple(args.fail), args.break_at, args.flaky),
        )
        latest = chain.pushes[-1]
        info.update(
            project=latest.project,
            revision=latest.revision,
            decisionTaskId=latest.decision_task_id,
            indexPaths=latest.index_paths(),
            pushes=[
                {
                    "revision": push.revision,
                    "decisionTaskId": push.decision_task_id,
                    "pushlogId": push.pushlog_id,
                }
                for push in chain.pushes
            ],
        )
    elif args.seed_push:
        push = seed_push(tc, tasks=args.tasks, project=args.project)
        register_action_hooks(tc, push)
        info.update(
            project=push.project,
            revision=push.revision,
            decisionTaskId=push.decision_task_id,
            indexPaths=push.index_paths(),
        )
    print(json.dumps(info), flush=True)
    stopped = asyncio.Event()
    background = []
    if args.worker:
        worker = SimulatedWorker(
            tc.queue,
            rules=[Rule(glob, "failed") for glob in args.fail],
            services=tc,
            decide=chain.outcome if chain is not None else None,
        )
        background.append(asyncio.create_task(worker.run(stopped)))
    loop = asyncio.get_running_loop()
    for name in ("SIGINT", "SIGTERM"):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(getattr(signal, name), stopped.set)
    try:
        while not stopped.is_set():
            tc.queue.check_deadlines()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # wait_for could swallow a cancel
                    await stopped.wait()
    finally:
        stopped.set()
        await asyncio.gather(*background)
        await runner.cleanup()
        if publisher is not None:
            await publisher.stop()
    print("local Taskcluster stopped", file=sys.stderr)
    return 0


def main(args: argparse.Namespace) -> int:
    wrong = check_arguments(args)
    if wrong is not None:
        print(f"localtc: {wrong}", file=sys.stderr)
        return 2
    return asyncio.run(run(args))
