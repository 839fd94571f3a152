"""Taskcluster settings from the environment and the async clients built from them, in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import taskcluster.aio as tc_aio


class TaskclusterSettingsError(ValueError):
    """A Taskcluster setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class TaskclusterSettings:
    """Where Taskcluster is and who the bot is there (the standard TASKCLUSTER_* variables)."""

    root_url: str
    client_id: str | None = None
    access_token: str | None = None
    certificate: str | None = None

    def __repr__(self) -> str:  # never show the accessToken
        return f"TaskclusterSettings(root_url={self.root_url!r}, client_id={self.client_id!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TaskclusterSettings:
        root_url = env.get("TASKCLUSTER_ROOT_URL", "").rstrip("/")
        if not root_url.startswith(("http://", "https://")):
            raise TaskclusterSettingsError(
                "TASKCLUSTER_ROOT_URL must be the deployment's URL, e.g. https://firefox-ci-tc.services.mozilla.com"
            )
        client_id = env.get("TASKCLUSTER_CLIENT_ID") or None
        access_token = env.get("TASKCLUSTER_ACCESS_TOKEN") or None
        if bool(client_id) != bool(access_token):
            raise TaskclusterSettingsError(
                "set both TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN, or neither"
            )
        return cls(root_url, client_id, access_token, env.get("TASKCLUSTER_CERTIFICATE") or None)

    def options(self, **extra: Any) -> dict[str, Any]:
        options: dict[str, Any] = {"rootUrl": self.root_url, **extra}
        if self.client_id and self.access_token:
            credentials = {"clientId": self.client_id, "accessToken": self.access_token}
            if self.certificate:
                credentials["certificate"] = self.certificate
            options["credentials"] = credentials
        return options


@dataclass(frozen=True, slots=True)
class Clients:
    """The async Queue, Index, Hooks, Auth and GitHub-service clients sharing one session."""

    queue: tc_aio.Queue
    index: tc_aio.Index
    hooks: tc_aio.Hooks
    session: aiohttp.ClientSession
    auth: tc_aio.Auth
    github: tc_aio.Github

    def restricted(self, scopes: Sequence[str]) -> Clients:
        """The same clients sending ``authorizedScopes``: Taskcluster lets their calls use
        these scopes only (which the client's own must cover)."""
        options = {**self.queue.options, "authorizedScopes": list(scopes)}
        return Clients(
            tc_aio.Queue(options, session=self.session),
            tc_aio.Index(options, session=self.session),
            tc_aio.Hooks(once(options), session=self.session),
            self.session,
            tc_aio.Auth(options, session=self.session),
            tc_aio.Github(options, session=self.session),
        )


def make_clients(
    settings: TaskclusterSettings, session: aiohttp.ClientSession, *, max_retries: int = 2
) -> Clients:
    """Clients that retry a little themselves; callers retry transient faults beyond that."""
    options = settings.options(maxRetries=max_retries)
    return Clients(
        tc_aio.Queue(options, session=session),
        tc_aio.Index(options, session=session),
        tc_aio.Hooks(once(options), session=session),
        session,
        tc_aio.Auth(options, session=session),
        tc_aio.Github(options, session=session),
    )


def once(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for a client whose calls are never repeated by the client library: a hook
    run has no key, so a retry after a lost answer (a reset, a timeout, a 5xx sent after the
    hook ran) would run the action a second time. The caller says the outcome is unknown."""
    return {**options, "maxRetries": 0}
