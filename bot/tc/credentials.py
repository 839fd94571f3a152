"""What Taskcluster credentials hold: the bot's own scopes and a role's, asked of the Auth
service and kept a minute; and the scopes a role may use through the bot's client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from taskcluster.exceptions import TaskclusterRestFailure

from bot.tc.scopes import satisfies

log = logging.getLogger(__name__)
FRESH_FOR = 60.0  # seconds a scope set is kept: one Auth call per minute, not per task


class AuthClient(Protocol):
    async def currentScopes(self) -> Any: ...  # noqa: N802
    async def expandScopes(self, payload: dict[str, Any]) -> Any: ...  # noqa: N802


class ScopesUnknownError(LookupError):
    """The Auth service would not say what a role holds; the message says why."""


class ScopeBook:
    """The bot's own scopes (``currentScopes``) and those of roles (``expandScopes`` of
    ``assume:<role>``), each asked once a minute at most."""

    def __init__(self, auth: AuthClient, fresh_for: float = FRESH_FOR) -> None:
        self.auth = auth
        self.fresh_for = fresh_for
        self._kept: dict[str, tuple[float, list[str] | None]] = {}

    async def own(self) -> list[str] | None:
        """The bot client's scopes; None when the Auth service will not say (no
        ``auth:current-scopes``): then the Queue alone judges each call."""
        return await self._kept_or(" own", self._ask_own)

    async def of_role(self, role: str) -> list[str]:
        """Every scope ``role`` holds, its roles expanded."""
        scopes = await self._kept_or(role, lambda: self._ask_role(role))
        if scopes is None:
            raise ScopesUnknownError(
                f"the Auth service would not expand role `{role}` for the bot (it needs "
                "`auth:expand-scopes`), so what it may do cannot be told"
            )
        return scopes

    async def _kept_or(self, key: str, ask: Any) -> list[str] | None:
        now = asyncio.get_running_loop().time()
        kept = self._kept.get(key)
        if kept is None or now - kept[0] > self.fresh_for:
            kept = (now, await ask())
            self._kept[key] = kept
        return kept[1]

    async def _ask_own(self) -> list[str] | None:
        try:
            answer = await self.auth.currentScopes()
        except TaskclusterRestFailure as error:
            if error.status_code in (401, 403):
                log.warning("the bot may not ask its own scopes (%s): no pre-flight check", error)
                return None
            raise
        return [str(s) for s in answer.get("scopes", [])]

    async def _ask_role(self, role: str) -> list[str] | None:
        try:
            answer = await self.auth.expandScopes({"scopes": [f"assume:{role}"]})
        except TaskclusterRestFailure as error:
            if error.status_code in (401, 403):
                return None
            raise
        return [str(s) for s in answer.get("scopes", [])]


def within(scopes: Sequence[str], ceiling: Sequence[str]) -> list[str]:
    """The part of ``scopes`` that ``ceiling`` also holds, as scopes: what a role may use
    through a client holding ``ceiling`` (its ``authorizedScopes``; Taskcluster refuses
    authorized scopes the client itself lacks)."""
    kept: list[str] = []
    for scope in scopes:
        if satisfies(ceiling, scope):
            kept.append(scope)
        elif scope.endswith("*"):
            kept += [c for c in ceiling if c.startswith(scope[:-1])]
    return sorted(set(kept))
