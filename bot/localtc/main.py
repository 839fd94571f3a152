"""``python -m bot localtc``: run the local Taskcluster until stopped, printing how to reach it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from bot.localtc.seed import seed_push
from bot.localtc.server import LocalTaskcluster, serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)"
    )
    parser.add_argument(
        "--seed-push", action="store_true", help="create a realistic push to try the bot on"
    )
    parser.add_argument(
        "--tasks", type=int, default=3000, help="size of the seeded push's task graph"
    )
    parser.add_argument("--project", default="autoland", help="project of the seeded push")


async def run(args: argparse.Namespace) -> int:
    tc = LocalTaskcluster()
    runner = await serve(tc, port=args.port)
    info: dict[str, object] = {"rootUrl": tc.root_url, **tc.credentials()}
    if args.seed_push:
        push = seed_push(tc, tasks=args.tasks, project=args.project)
        info.update(
            project=push.project,
            revision=push.revision,
            decisionTaskId=push.decision_task_id,
            indexPaths=push.index_paths(),
        )
    print(json.dumps(info), flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for name in ("SIGINT", "SIGTERM"):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(getattr(signal, name), stopped.set)
    try:
        while not stopped.is_set():
            tc.queue.check_deadlines()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopped.wait(), timeout=1.0)
    finally:
        await runner.cleanup()
    print("local Taskcluster stopped", file=sys.stderr)
    return 0


def main(args: argparse.Namespace) -> int:
    return asyncio.run(run(args))
