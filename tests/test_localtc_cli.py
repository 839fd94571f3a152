"""``python -m bot localtc`` prints how to reach it, serves the real protocol, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import aiohttp
import taskcluster.aio as tc_aio

from tests.conftest import ROOT
from tests.tcfixtures import new_id, task_definition


async def test_localtc_command_serves_a_seeded_push() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "localtc",
            "--seed-push",
            "--tasks",
            "800",
            "--worker",
            "--fail",
            "*-doomed",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["rootUrl"].startswith("http://127.0.0.1:")
        assert info["clientId"]
        assert info["accessToken"]
        options = {
            "rootUrl": info["rootUrl"],
            "credentials": {"clientId": info["clientId"], "accessToken": info["accessToken"]},
        }
        async with aiohttp.ClientSession() as session:
            index = tc_aio.Index(options, session=session)
            found = await index.findTask(info["indexPaths"][0])
            assert found["taskId"] == info["decisionTaskId"]
            queue = tc_aio.Queue(options, session=session)
            status = await queue.status(info["decisionTaskId"])
            assert status["status"]["state"] == "completed"
            # the simulated worker runs new tasks: by default they complete, --fail globs fail
            outcomes = {}
            for label in ("fine", "test-doomed"):
                task_id = new_id()
                await queue.createTask(task_id, task_definition(tags={"label": label}))
                outcomes[label] = task_id
            states: dict[str, str] = {}
            for _ in range(100):
                states = {
                    label: (await queue.status(t))["status"]["state"]
                    for label, t in outcomes.items()
                }
                if set(states.values()) <= {"completed", "failed"}:
                    break
                await asyncio.sleep(0.1)
            assert states == {"fine": "completed", "test-doomed": "failed"}
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "local Taskcluster stopped" in err
