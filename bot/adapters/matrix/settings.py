"""Matrix settings from the environment (MATRIX_*), checked at start-up."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.config import env_flag, env_number

EVERYONE = "*"
USER_ID = re.compile(r"^@[^:\s]+:\S+$")
# A room id (``!opaque``, with ``:server`` before room version 12) or an alias (``#name:server``).
ROOM = re.compile(r"^(![^\s:]+(:\S+)?|#[^:\s]+:\S+)$")


class MatrixSettingsError(ValueError):
    """A Matrix setting is missing or malformed; the message names it."""


def _number(env: Mapping[str, str], key: str, default: float, *, at_least: float) -> float:
    return env_number(env, key, default, at_least=at_least, error=MatrixSettingsError)


def _list(env: Mapping[str, str], key: str, default: str = "") -> tuple[str, ...]:
    return tuple(n.strip() for n in env.get(key, default).split(",") if n.strip())


def _users(env: Mapping[str, str], key: str, default: str = "") -> frozenset[str]:
    users = _list(env, key, default)
    bad = [u for u in users if u != EVERYONE and not USER_ID.match(u)]
    if bad:
        raise MatrixSettingsError(
            f"{key}: {bad[0]!r} is not a Matrix user id (like @sheriff:mozilla.org)"
        )
    return frozenset(users)


@dataclass(frozen=True, slots=True)
class MatrixSettings:
    """Which homeserver, as whom, which rooms, who may do what, how to page and retry."""

    homeserver: str
    user_id: str
    access_token: str | None = None
    password: str | None = None
    rooms: tuple[str, ...] = ()
    write_users: frozenset[str] = frozenset()
    read_users: frozenset[str] = frozenset({EVERYONE})
    # Users with at least this power level in a room may write there (50: moderators);
    # None: power levels grant nothing.
    write_power: int | None = 50
    inviters: frozenset[str] = frozenset()  # besides write users, who may invite the bot
    bang_commands: bool = True
    page_lines: int = 30
    max_age: float = 1800.0  # seconds: commands older than this when first seen are not run
    sync_timeout: float = 30.0  # seconds the homeserver may hold a sync open
    reconnect_base: float = 2.0  # seconds; doubles per failed attempt, with jitter
    reconnect_cap: float = 300.0
    rate_limit_retries: int = 8  # M_LIMIT_EXCEEDED answers waited out before giving up

    def __repr__(self) -> str:  # never show the token or the password
        return f"MatrixSettings(homeserver={self.homeserver!r}, user_id={self.user_id!r})"

    @property
    def server_name(self) -> str:
        return self.user_id.split(":", 1)[1]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MatrixSettings | None:
        """None when Matrix is not configured (no MATRIX_HOMESERVER)."""
        homeserver = env.get("MATRIX_HOMESERVER", "").strip().rstrip("/")
        if not homeserver:
            return None
        if not homeserver.startswith(("http://", "https://")):
            raise MatrixSettingsError(
                f"MATRIX_HOMESERVER must be the homeserver's URL (https://...), not {homeserver!r}"
            )
        user_id = env.get("MATRIX_USER_ID", "").strip()
        if not USER_ID.match(user_id):
            raise MatrixSettingsError(
                "MATRIX_USER_ID must be the bot's full Matrix id, like @taskbot:mozilla.org"
            )
        token = env.get("MATRIX_ACCESS_TOKEN") or None
        password = env.get("MATRIX_PASSWORD") or None
        if not token and not password:
            raise MatrixSettingsError("set MATRIX_ACCESS_TOKEN (or MATRIX_PASSWORD) for the bot")
        if token and password:
            raise MatrixSettingsError("set MATRIX_ACCESS_TOKEN or MATRIX_PASSWORD, not both")
        rooms = _list(env, "MATRIX_ROOMS")
        bad = [r for r in rooms if not ROOM.match(r)]
        if bad:
            raise MatrixSettingsError(
                f"MATRIX_ROOMS: {bad[0]!r} is not a room id (!id) or alias (#name:server)"
            )
        power_raw = env.get("MATRIX_WRITE_POWER", "").strip().lower()
        write_power: int | None = 50
        if power_raw in ("none", "off"):
            write_power = None
        elif power_raw:
            write_power = int(_number(env, "MATRIX_WRITE_POWER", 50, at_least=1))
        try:
            bang = env_flag(env, "MATRIX_BANG_COMMANDS", True)
        except ValueError as error:
            raise MatrixSettingsError(str(error)) from None
        write_users = _users(env, "MATRIX_WRITE_USERS")
        if EVERYONE in write_users:
            raise MatrixSettingsError(
                "MATRIX_WRITE_USERS lists user ids; `*` would let anyone on any homeserver "
                "schedule tasks"
            )
        return cls(
            homeserver=homeserver,
            user_id=user_id,
            access_token=token,
            password=password,
            rooms=rooms,
            write_users=write_users,
            read_users=_users(env, "MATRIX_READ_USERS", EVERYONE),
            write_power=write_power,
            inviters=_users(env, "MATRIX_INVITERS"),
            bang_commands=bang,
            page_lines=int(_number(env, "MATRIX_PAGE_LINES", 30, at_least=2)),
            max_age=_number(env, "MATRIX_MAX_AGE", 1800.0, at_least=0),
        )
