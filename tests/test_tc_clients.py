"""Taskcluster settings come from the standard variables and never show the secret."""

from __future__ import annotations

import aiohttp
import pytest

from bot.tc.clients import TaskclusterSettings, TaskclusterSettingsError, make_clients
from tests.tcfixtures import Running, local_tc, new_id, task_definition

__all__ = ["local_tc"]


def test_settings_from_the_environment() -> None:
    settings = TaskclusterSettings.from_env(
        {
            "TASKCLUSTER_ROOT_URL": "https://tc.example.com/",
            "TASKCLUSTER_CLIENT_ID": "project/taskbot",
            "TASKCLUSTER_ACCESS_TOKEN": "very-secret",
        }
    )
    assert settings.root_url == "https://tc.example.com"
    assert settings.options()["credentials"] == {
        "clientId": "project/taskbot",
        "accessToken": "very-secret",
    }
    assert "very-secret" not in repr(settings)
    assert (
        "credentials"
        not in TaskclusterSettings.from_env({"TASKCLUSTER_ROOT_URL": "https://x"}).options()
    )


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "TASKCLUSTER_ROOT_URL"),
        ({"TASKCLUSTER_ROOT_URL": "tc.example.com"}, "TASKCLUSTER_ROOT_URL"),
        ({"TASKCLUSTER_ROOT_URL": "https://x", "TASKCLUSTER_CLIENT_ID": "a"}, "or neither"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(TaskclusterSettingsError, match=words):
        TaskclusterSettings.from_env(env)


async def test_clients_reach_the_local_taskcluster(local_tc: Running) -> None:
    credentials = local_tc.tc.credentials()
    settings = TaskclusterSettings.from_env(
        {
            "TASKCLUSTER_ROOT_URL": local_tc.tc.root_url,
            "TASKCLUSTER_CLIENT_ID": credentials["clientId"],
            "TASKCLUSTER_ACCESS_TOKEN": credentials["accessToken"],
        }
    )
    async with aiohttp.ClientSession() as session:
        clients = make_clients(settings, session)
        task_id = new_id()
        await clients.queue.createTask(task_id, task_definition())
        assert (await clients.queue.status(task_id))["status"]["state"] == "pending"
