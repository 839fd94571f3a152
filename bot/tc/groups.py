"""A task group's tasks as the Queue lists them (``listTaskGroup``), every page of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


class GroupLister(Protocol):
    async def listTaskGroup(self, taskGroupId: str, *, query: dict[str, Any]) -> Any: ...  # noqa: N802, N803


async def group_entries(queue: GroupLister, group: str) -> AsyncIterator[dict[str, Any]]:
    """Each entry (``{"task": …, "status": …}``) of task group ``group``, page after page."""
    query: dict[str, Any] = {}
    while True:
        page = await queue.listTaskGroup(group, query=query)
        for entry in page.get("tasks", []):
            yield entry
        token = page.get("continuationToken")
        if not token:
            return
        query = {"continuationToken": token}
