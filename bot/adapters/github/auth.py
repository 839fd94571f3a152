"""Who the bot is on GitHub: a token, or a GitHub App with installation tokens cached until
they expire."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import aiohttp
from gidgethub import apps
from gidgethub.aiohttp import GitHubAPI

from bot.tctime import parse_time

REFRESH_BEFORE = dt.timedelta(minutes=5)


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
        installation = await self._api(None).getitem(f"/repos/{repository}/installation", jwt=jwt)
        return await self.client(int(installation["id"]))

    def _api(self, token: str | None) -> GitHubAPI:
        return GitHubAPI(self.session, self.requester, oauth_token=token, base_url=self.api_url)

    async def _installation_token(self, installation_id: int) -> str:
        kept = self._tokens.get(installation_id)
        now = dt.datetime.now(dt.UTC)
        if kept is not None and kept[1] - now > REFRESH_BEFORE:
            return kept[0]
        assert self.app_id is not None
        assert self.private_key is not None
        answer = await apps.get_installation_access_token(
            self._api(None),
            installation_id=str(installation_id),
            app_id=self.app_id,
            private_key=self.private_key,
        )
        token, expires = str(answer["token"]), parse_time(str(answer["expires_at"]))
        self._tokens[installation_id] = (token, expires)
        return token
