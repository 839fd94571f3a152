"""Who the bot is on GitHub: a token, or a GitHub App with installation tokens cached until
they expire."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from gidgethub import apps
from gidgethub.aiohttp import GitHubAPI as AiohttpGitHubAPI

from bot.adapters.github.limits import with_retries
from bot.tctime import parse_time

REFRESH_BEFORE = dt.timedelta(minutes=5)
CALL_TIMEOUT = 30.0  # seconds one call to GitHub may take before it counts as failed


class GitHubAPI(AiohttpGitHubAPI):
    """gidgethub's aiohttp client, with a time limit on each call: a GitHub that hangs
    is retried like one that answers 5xx, instead of holding a delivery for minutes."""

    def __init__(self, *args: Any, timeout: float = CALL_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = timeout

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        async with asyncio.timeout(self.timeout):
            answer: tuple[int, Mapping[str, str], bytes] = await super()._request(
                method, url, headers, body
            )
            return answer


class GitHubAuthError(RuntimeError):
    """The bot cannot act on GitHub for this delivery; the message says why."""


@dataclass
class GitHubAuth:
    """Clients for the GitHub API: one shared with a token, or per App installation."""

    session: aiohttp.ClientSession
    api_url: str
    requester: str
    token: str | None = None
    app_id: str | None = None
    private_key: str | None = None
    timeout: float = CALL_TIMEOUT
    _tokens: dict[int, tuple[str, dt.datetime]] = field(default_factory=dict)

    async def client(self, installation_id: int | None) -> GitHubAPI:
        """A client acting as the installation of the delivery (App), or with the token."""
        if self.app_id and self.private_key:
            if installation_id is None:
                raise GitHubAuthError("the delivery names no App installation")
            return self._api(await self._installation_token(installation_id))
        return self._api(self.token)

    async def client_for_repository(self, repository: str) -> GitHubAPI:
        """A client for ``repository`` when no delivery is at hand (a request resumed after
        a restart): as the App's installation on it, or with the token."""
        if not (self.app_id and self.private_key):
            return self._api(self.token)
        jwt = apps.get_jwt(app_id=self.app_id, private_key=self.private_key)
        api = self._api(None)
        installation = await with_retries(
            lambda: api.getitem(f"/repos/{repository}/installation", jwt=jwt)
        )
        return await self.client(int(installation["id"]))

    def _api(self, token: str | None) -> GitHubAPI:
        return GitHubAPI(
            self.session,
            self.requester,
            oauth_token=token,
            base_url=self.api_url,
            timeout=self.timeout,
        )

    async def _installation_token(self, installation_id: int) -> str:
        kept = self._tokens.get(installation_id)
        now = dt.datetime.now(dt.UTC)
        if kept is not None and kept[1] - now > REFRESH_BEFORE:
            return kept[0]
        assert self.app_id is not None
        assert self.private_key is not None
        app_id, key = self.app_id, self.private_key
        answer = await with_retries(
            lambda: apps.get_installation_access_token(
                self._api(None),
                installation_id=str(installation_id),
                app_id=app_id,
                private_key=key,
            )
        )
        token, expires = str(answer["token"]), parse_time(str(answer["expires_at"]))
        self._tokens[installation_id] = (token, expires)
        return token
