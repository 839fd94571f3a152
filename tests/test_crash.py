"""The bot killed with SIGKILL mid-submission, then restarted: exactly the planned tasks exist."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import taskcluster

from bot.localtc.process import local_taskcluster
from bot.localtc.synthetic import generate
from bot.store import SqliteStore
from tests.conftest import ROOT

NEW_TASKS = 200


def group_task_ids(queue: taskcluster.Queue, group: str) -> list[str]:
    ids: list[str] = []
    query: dict[str, Any] = {}
    while True:
        page = queue.listTaskGroup(group, query=query)
        ids += [t["status"]["taskId"] for t in page["tasks"]]
        if "continuationToken" not in page:
            return ids
        query = {"continuationToken": page["continuationToken"]}


async def test_sigkill_mid_submission_then_restart(tmp_path: Path) -> None:
    with local_taskcluster(
        "--seed-push", "--tasks", "3000", "--worker", "--delay-ms", "250"
    ) as server:
        info = server.info
        queue = taskcluster.Queue(server.options(maxRetries=0))
        group = info["decisionTaskId"]
        before = set(group_task_ids(queue, group))
        push = generate(3000, seed=1)  # the same push the server seeded
        labels = [
            label
            for label in push.graph
            if label.startswith("test-") and label not in push.label_to_taskid
        ][:NEW_TASKS]
        (tmp_path / "commands.txt").write_text("schedule " + " ".join(labels) + "\n")
        (tmp_path / "nothing.txt").write_text("")
        env = {
            **os.environ,
            **server.environment(),
            "TASKBOT_DATA_DIR": str(tmp_path),
            "TASKBOT_PROJECT": info["project"],
            "TASKBOT_CONFIRM_THRESHOLD": "1000",
        }
        bot = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "--script",
                str(tmp_path / "commands.txt"),
                "--wait",
                "120",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        created: set[str] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            created = set(group_task_ids(queue, group)) - before
            if len(created) >= 30:
                break
            time.sleep(0.05)
        bot.send_signal(signal.SIGKILL)
        bot.wait(timeout=10)
        interrupted = set(group_task_ids(queue, group)) - before
        assert 30 <= len(interrupted) < NEW_TASKS, len(interrupted)

        store = SqliteStore(tmp_path / "taskbot.sqlite3")
        (request,) = await store.requests_in("submitting")
        await store.close()

        restarted = subprocess.run(
            [
                sys.executable,
                "-m",
                "bot",
                "--script",
                str(tmp_path / "nothing.txt"),
                "--wait",
                "120",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert restarted.returncode == 0, restarted.stderr
        assert f"resumed {request.id}" in restarted.stdout
        assert f"[{request.id}] finished:" in restarted.stdout

        store = SqliteStore(tmp_path / "taskbot.sqlite3")
        planned = {t.task_id for t in await store.plan(request.id)}
        record = await store.request(request.id)
        await store.close()
        assert record is not None
        assert record.state == "finished"
        after = group_task_ids(queue, group)
        assert len(after) == len(set(after))  # no duplicates
        assert set(after) - before == planned
        assert len(planned) == NEW_TASKS
