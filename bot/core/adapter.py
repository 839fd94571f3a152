"""The one interface a chat platform implements to plug into the core."""

from __future__ import annotations

from collections.abc import Callable

from bot.core.access import Level
from bot.core.replies import Replier
from bot.core.request import Request, ReviewedCode
from bot.store import RequestRecord
from grammar import Triggers

REFUSED = "{actor} has {have} access here; `{verb}` needs {need}."
NO_FORKS = (
    "{place} runs code from a fork, and nobody here can vouch for it: `{verb}` is not run on "
    "code under review from a fork."
)


class Adapter:
    """A place people talk to the bot: how commands are recognised in its messages, who its
    people are (a level each), how to reach a request's place again after a restart, and how
    it expands a short revision. Subclass it and override what differs from the defaults,
    then register it once with the bot: ``bot.register(adapter)``. Every default refuses
    rather than allows: a person has no level, and a fork's code is not run."""

    source: str = ""  # its name in requests and the store: github, irc, http, ...
    rate_limited: bool = True  # its people's commands count against TASKBOT_RATE_PER_MINUTE

    def triggers(self, request: Request, names: tuple[str, ...]) -> Triggers:
        """How a message here addresses the bot. By default, ``@name`` or ``name:`` at the
        start of a line, and every line of a private message (``request.direct``)."""
        return Triggers(names=names, mention=True, address=True, direct=request.direct)

    async def level_of(self, request: Request) -> Level:
        """What the person who sent ``request`` may do here. By default nothing: an
        adapter says who its people are."""
        return Level.NONE

    async def grants(self, request: Request, verb: str) -> bool:
        """Whether the person may run ``verb`` whatever their level (a GitHub team the
        project grants it to). By default no one is."""
        return False

    async def refusal(self, request: Request, verb: str, need: Level, have: Level) -> str:
        """Why ``have`` is not enough for ``verb``, which needs ``need``: the reply's reason."""
        return REFUSED.format(actor=request.actor, have=have.label, verb=verb, need=need.label)

    async def untrusted(
        self, request: Request, verb: str, have: Level, need: Callable[[str], Level]
    ) -> str | None:
        """For a command that runs the push's code: why it must wait, or None. By default a
        fork's code under review (``ReviewedCode``) is never run; an adapter that can tell a
        reviewed head (GitHub's `approve`) says when it may be. ``need(verb)`` is the level
        any verb needs."""
        origin = request.origin
        if isinstance(origin, ReviewedCode) and origin.fork:
            return NO_FORKS.format(place=request.place, verb=verb)
        return None

    async def may_see(self, request: Request, record: RequestRecord) -> bool:
        """Whether the person who sent ``request`` may see ``record`` (`status`). By default
        the requests of this place, and their own requests made through this adapter."""
        if record.source != request.source:
            return False
        return record.place == request.place or record.actor == request.actor

    def shared(self, request: Request) -> bool:
        """Whether the place is shared by many (a channel, a pull request): `status` there
        lists the place's requests rather than the person's own."""
        return False

    def private(self, record: RequestRecord) -> bool:
        """Whether a request was asked for in private (a direct message): never listed to
        others."""
        return False

    def failed_here(self, error: BaseException) -> bool:
        """Whether ``error`` is this place failing (a reply it could not take, after its
        own retries): the message is then handled again later, from the first command not
        yet answered, instead of being answered with an error it could not take either."""
        return False

    async def replier_for(self, record: RequestRecord) -> Replier | None:
        """Where a request taken up again after a restart reports; None: the default place."""
        return None

    async def expand_revision(self, request: Request, prefix: str) -> str | None:
        """The full revision a short one names where ``request`` came from (a commit of its
        repository), or None."""
        return None

    async def task_groups(self, request: Request, revision: str) -> list[str]:
        """Task groups the place's CI links for ``revision`` (a pull request's checks made
        by Taskcluster), newest first; how a push the Index does not hold is found."""
        return []
