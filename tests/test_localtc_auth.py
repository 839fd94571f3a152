"""The local Auth service: roles and clients created as the real one creates them, and the
scopes they hold, expanded."""

from __future__ import annotations

from typing import Any

import pytest
import taskcluster.aio as tc_aio
from taskcluster.exceptions import TaskclusterRestFailure

from tests.tcfixtures import Running, local_tc, when
from tests.tcschemas import validator

__all__ = ["local_tc"]


def auth(running: Running, credentials: dict[str, str] | None = None) -> tc_aio.Auth:
    options: dict[str, Any] = {"rootUrl": running.tc.root_url}
    options["credentials"] = credentials or running.tc.credentials()
    return tc_aio.Auth(options, session=running.session)


async def status_of(call: Any) -> int:
    with pytest.raises(TaskclusterRestFailure) as refused:
        await call
    return int(refused.value.status_code)


async def test_a_role_and_a_client_created_hold_what_they_say(local_tc: Running) -> None:
    root = auth(local_tc)
    role = await root.createRole(
        "project:taskbot:github/sheriff",
        {"description": "a sheriff", "scopes": ["assume:moz-tree:level:3"]},
    )
    await root.createRole(
        "moz-tree:level:3",
        {"description": "level 3", "scopes": ["queue:scheduler-id:gecko-level-3"]},
    )
    validator("/schemas/auth/v1/get-role-response.json#").validate(role)
    client = await root.createClient(
        "project/taskbot",
        {
            "expires": when(86400),
            "description": "the bot",
            "scopes": ["assume:project:taskbot:github/sheriff", "auth:current-scopes"],
        },
    )
    validator("/schemas/auth/v1/create-client-response.json#").validate(client)
    own = await auth(
        local_tc, {"clientId": "project/taskbot", "accessToken": client["accessToken"]}
    ).currentScopes()
    assert "queue:scheduler-id:gecko-level-3" in own["scopes"]
    expanded = await root.expandScopes({"scopes": ["assume:project:taskbot:github/sheriff"]})
    assert "queue:scheduler-id:gecko-level-3" in expanded["scopes"]


async def test_what_the_real_auth_service_refuses_is_refused(local_tc: Running) -> None:
    root = auth(local_tc)
    await root.createRole("project:a", {"description": "", "scopes": ["queue:get-task:*"]})
    assert await status_of(root.createRole("project:a", {"description": "", "scopes": []})) == 409
    assert await status_of(root.createRole("project:b", {"scopes": []})) == 400  # no description
    extra = {"description": "", "scopes": [], "owner": "me"}
    assert await status_of(root.createRole("project:b", extra)) == 400
    twice = {"description": "", "scopes": ["a", "a"]}
    assert await status_of(root.createRole("project:b", twice)) == 400
    stars = {"description": "", "scopes": ["queue:**"]}
    assert await status_of(root.createRole("project:b", stars)) == 400
    bad_date = {"expires": "tomorrow", "description": ""}
    assert await status_of(root.createClient("project/x", bad_date)) == 400
    # a caller may not make a role or client with scopes it lacks, nor without the scope to
    created = await root.createClient(
        "project/small",
        {"expires": when(86400), "description": "", "scopes": ["auth:create-role:project:*"]},
    )
    small = auth(local_tc, {"clientId": "project/small", "accessToken": created["accessToken"]})
    grab = {"description": "", "scopes": ["queue:create-task:*"]}
    assert await status_of(small.createRole("project:mine", grab)) == 403
    assert await status_of(small.createRole("other:role", {"description": "", "scopes": []})) == 403
    await small.createRole("project:mine", {"description": "", "scopes": []})
