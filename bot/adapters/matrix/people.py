"""Who is who on Matrix: user ids as the homeserver vouches for them, and what each may do
(listed users, or a room power level), with the reason when they may not."""

from __future__ import annotations

from dataclasses import dataclass

from bot.adapters.matrix.settings import EVERYONE, MatrixSettings
from bot.core.access import Level
from bot.core.request import Origin

# Matrix's tiers as levels, as on IRC: readers may do what read or triage allows (the command
# table and projects' `permissions` say what each command needs), writers anything.
READ = Level.TRIAGE
WRITE = Level.ADMIN

NOT_ALLOWED = "{user} may {have} here; `{verb}` needs {need} access: {how}"
HOW_WRITE = "a user listed in MATRIX_WRITE_USERS{power}"
POWER = " or a power level of at least {level} in this room (yours is {yours})"
NO_POWER = " (power levels count only in the rooms the bot was configured for)"
HOW_READ = "a user listed in MATRIX_READ_USERS"


@dataclass(frozen=True, slots=True)
class MatrixOrigin(Origin):
    """Who said it on Matrix and where: the sender's user id, the room, the event (and the
    thread it is in), and the sender's power level in the room then."""

    user_id: str = ""
    room_id: str = ""
    event_id: str = ""
    thread_root: str | None = None
    power: int | None = None  # None: power levels do not count in this room


def level_of(settings: MatrixSettings, user_id: str, power: int | None) -> Level:
    """A sender's level in a room: write if listed or powerful enough (where power counts),
    else read if readers are everyone or they are listed, else none."""
    if user_id in settings.write_users:
        return WRITE
    if settings.write_power is not None and power is not None and power >= settings.write_power:
        return WRITE
    if EVERYONE in settings.read_users or user_id in settings.read_users:
        return READ
    return Level.NONE


def refusal(settings: MatrixSettings, origin: MatrixOrigin, verb: str, need: Level) -> str:
    """Why the sender may not ``verb``, naming what would let them."""
    have = level_of(settings, origin.user_id, origin.power)
    have_words = {WRITE: "write", READ: "read"}.get(have, "do nothing")
    if need > READ:
        if settings.write_power is None:
            power = ""
        elif origin.power is None:
            power = NO_POWER
        else:
            power = POWER.format(level=settings.write_power, yours=origin.power)
        return NOT_ALLOWED.format(
            user=origin.user_id,
            have=have_words,
            verb=verb,
            need="write",
            how=HOW_WRITE.format(power=power),
        )
    return NOT_ALLOWED.format(
        user=origin.user_id, have=have_words, verb=verb, need="read", how=HOW_READ
    )


def may_invite(settings: MatrixSettings, user_id: str) -> bool:
    """Whether an invitation from ``user_id`` is accepted: writers and listed inviters."""
    return user_id in settings.write_users or user_id in settings.inviters
