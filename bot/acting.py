"""Whom a request acts for in Taskcluster: the requester's role where the project maps one
(then every write carries that role's scopes as ``authorizedScopes``, the bot's own the
ceiling), and the check, before anything is created, that the scopes a plan needs are held."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.runtime import Runtime
from bot.tc.clients import Clients
from bot.tc.credentials import ScopesUnknownError, within
from bot.tc.scopes import Need, describe, lacking

# What an actor (a GitHub login, an IRC account, an API token's or signed sender's name)
# may hold to be put in a role name: printable, no space, and no `*` (which scopes read as
# a wildcard: `assume:…/*` would be every requester's role at once).
ROLE_SAFE = re.compile(r"[!-)+-~]{1,100}")
EVERY_OTHER_SOURCE = "*"  # a requester_roles key: the template for sources not named
BOT_LACKS = (
    "nothing was created: the bot's Taskcluster client lacks {count} scope{s} this needs:\n"
    "{missing}\nA deployment admin can grant them to it, or the project can use "
    "`mode: action` (the push's own actions create the jobs)."
)
ROLE_LACKS = (
    "nothing was created: {who} acts in Taskcluster as `{role}`, which lacks {count} "
    "scope{s} this needs:\n{missing}"
)


@dataclass(frozen=True, slots=True)
class Acting:
    """Who a request's Taskcluster calls are made for, and with which clients."""

    who: str  # source:actor
    role: str | None  # the Taskcluster role the requester acts as; None: the bot's own
    clients: Clients
    scopes: tuple[str, ...] | None  # what the role may use through the bot; None: no role


async def acting_for(bot: Runtime, source: str, actor: str, project: str | None) -> Acting:
    """The requester's role and clients; ScopesUnknownError when a role is mapped but what
    it holds cannot be told (never the bot's scopes in its place)."""
    who = f"{source}:{actor}"
    roles = bot.settings.project(project).requester_roles
    template = roles.get(source, roles.get(EVERY_OTHER_SOURCE))
    if template is None:
        return Acting(who, None, bot.clients, None)
    if not ROLE_SAFE.fullmatch(actor):
        # `*` would make the role a wildcard over everyone's
        raise ScopesUnknownError(
            f"`{actor[:40]}` cannot be part of a Taskcluster role name, so what {who[:60]} "
            "may do cannot be told"
        )
    role = template.format(actor=actor)
    held = await bot.scopes.of_role(role)
    own = await bot.scopes.own()
    if own is None:
        raise ScopesUnknownError(
            "the bot may not ask its own scopes (it needs `auth:current-scopes`), so what "
            f"role `{role}` may do through it cannot be told"
        )
    usable = within(held, own)
    return Acting(who, role, bot.clients.restricted(usable), tuple(usable))


async def preflight(bot: Runtime, acting: Acting, needs: Iterable[Need]) -> str | None:
    """Why the scopes ``needs`` are not all held (by the bot's client, then by the
    requester's role), or None; nothing may be created when it says why."""
    needed = list(needs)
    own = await bot.scopes.own()
    if own is not None:
        missing = lacking(needed, own)
        if missing:
            return BOT_LACKS.format(count=len(missing), s=_s(missing), missing=describe(missing))
    if acting.scopes is not None:
        missing = lacking(needed, acting.scopes)
        if missing:
            return ROLE_LACKS.format(
                who=acting.who,
                role=acting.role,
                count=len(missing),
                s=_s(missing),
                missing=describe(missing),
            )
    return None


def _s(items: list[Need]) -> str:
    return "" if len(items) == 1 else "s"


__all__ = ["Acting", "ScopesUnknownError", "acting_for", "preflight"]
