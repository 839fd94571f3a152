"""Who is who on IRC: services accounts as the server reports them, and the permission check
that goes by account, never by nick."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from irc.strings import lower as irc_lower

from bot.core.access import Level
from bot.core.request import Origin

EVERYONE = "*"
# IRC's tiers as levels: read accounts may do what read or triage allows (the command table
# and projects' `permissions` say what each command needs), write accounts anything.
TIERS = {"none": Level.NONE, "read": Level.TRIAGE, "write": Level.ADMIN}

UNIDENTIFIED = (
    "{nick} is not logged in to a services account, and `{verb}` needs an account with "
    "{need} access: identify to NickServ (or log in with SASL) and ask again."
)
IMPERSONATING = (
    "the nick {nick} is {state}, not the account {nick}; access goes by account, not by "
    "nick: log in as {nick} to `{verb}`."
)
NOT_LISTED = (
    "the account {account} has {have} access here; `{verb}` needs {need} "
    "(the operators list accounts in {setting})."
)
NO_ACCOUNTS = (
    "this IRC server does not tell me who is logged in (no account-tag, extended-join or "
    "WHOX), so `{verb}` cannot be allowed from IRC."
)


def no_account(value: str | None) -> bool:
    """IRCv3 writes "no account" as ``*`` (extended-join, account-notify) or ``0`` (WHOX)."""
    return value in (None, "", "*", "0")


@dataclass
class Accounts:
    """The account of each nick the bot shares a channel with, kept current from JOIN
    (extended-join), ACCOUNT (account-notify), NICK, QUIT and WHOX replies."""

    _by_nick: dict[str, str | None] = field(default_factory=dict)

    def seen(self, nick: str, account: str | None) -> None:
        self._by_nick[irc_lower(nick)] = None if no_account(account) else account

    def renamed(self, old: str, new: str) -> None:
        self._by_nick[irc_lower(new)] = self._by_nick.pop(irc_lower(old), None)

    def gone(self, nick: str) -> None:
        self._by_nick.pop(irc_lower(nick), None)

    def known(self, nick: str) -> bool:
        return irc_lower(nick) in self._by_nick

    def account(self, nick: str) -> str | None:
        return self._by_nick.get(irc_lower(nick))

    def clear(self) -> None:
        self._by_nick.clear()


@dataclass(frozen=True, slots=True)
class AccountLists:
    """Accounts allowed each level; ``*`` in the read list lets anyone read."""

    write: frozenset[str] = frozenset()
    read: frozenset[str] = frozenset({EVERYONE})

    @classmethod
    def of(cls, write: Collection[str], read: Collection[str]) -> AccountLists:
        return cls(
            frozenset(irc_lower(a) for a in write if a),
            frozenset(EVERYONE if a == EVERYONE else irc_lower(a) for a in read if a),
        )

    def level(self, account: str | None) -> str:
        if account is not None and irc_lower(account) in self.write:
            return "write"
        if EVERYONE in self.read or (account is not None and irc_lower(account) in self.read):
            return "read"
        return "none"

    def is_listed(self, name: str) -> bool:
        folded = irc_lower(name)
        return folded in self.write or folded in self.read


@dataclass(frozen=True, slots=True)
class IrcOrigin(Origin):
    """Who said it on IRC: the nick, the services account the server reported (None: not
    logged in), whether the server reports accounts at all, and the channel (or none)."""

    nick: str = ""
    account: str | None = None
    accounts_known: bool = True
    channel: str = ""


def account_level(lists: AccountLists, origin: IrcOrigin) -> Level:
    """The level of the account behind a message: by account, never by nick."""
    return TIERS[lists.level(origin.account if origin.accounts_known else None)]


def refusal(lists: AccountLists, origin: IrcOrigin, verb: str, need: Level) -> str:
    """Why the account behind a message may not ``verb``, in IRC's words."""
    tier = "read" if need <= TIERS["read"] else "write"
    nick, account = origin.nick, origin.account
    if not origin.accounts_known and tier != "read":
        return NO_ACCOUNTS.format(verb=verb)
    if (account is None or irc_lower(account) != irc_lower(nick)) and lists.is_listed(nick):
        state = f"logged in as {account}" if account else "not logged in"
        return IMPERSONATING.format(nick=nick, state=state, verb=verb)
    if account is None:
        return UNIDENTIFIED.format(nick=nick, verb=verb, need=tier)
    setting = "IRC_WRITE_ACCOUNTS" if tier == "write" else "IRC_READ_ACCOUNTS"
    have = lists.level(account)
    return NOT_LISTED.format(account=account, have=have, verb=verb, need=tier, setting=setting)
