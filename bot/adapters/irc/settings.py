"""IRC settings from the environment (IRC_*), checked at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.adapters.irc.accounts import AccountLists
from bot.config import env_flag, env_number


class IrcSettingsError(ValueError):
    """An IRC setting is missing or malformed; the message names it."""


def _flag(env: Mapping[str, str], key: str, default: bool) -> bool:
    try:
        return env_flag(env, key, default)
    except ValueError as error:
        raise IrcSettingsError(str(error)) from None


def _number(env: Mapping[str, str], key: str, default: float, *, at_least: float) -> float:
    return env_number(env, key, default, at_least=at_least, error=IrcSettingsError)


def _names(env: Mapping[str, str], key: str, default: str = "") -> tuple[str, ...]:
    return tuple(n.strip() for n in env.get(key, default).split(",") if n.strip())


@dataclass(frozen=True, slots=True)
class IrcSettings:
    """Where to connect, as whom, which channels, who may do what, how fast to speak."""

    server: str
    port: int = 6667
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str | None = None  # a private network's CA, instead of the system's
    nick: str = "taskbot"
    channels: tuple[str, ...] = ()
    sasl_username: str | None = None
    sasl_password: str | None = None
    # Without its own login, the bot runs no write command (defaults on with SASL set).
    sasl_required: bool = False
    server_password: str | None = None
    accounts: AccountLists = field(default_factory=AccountLists)
    bang_commands: bool = True
    burst: int = 4
    lines_per_second: float = 1.0
    page_lines: int = 5
    reconnect_base: float = 2.0  # seconds; doubles per failed attempt, with jitter
    reconnect_cap: float = 300.0

    def __repr__(self) -> str:  # never show the passwords
        return f"IrcSettings(server={self.server!r}, port={self.port}, nick={self.nick!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, nick: str) -> IrcSettings | None:
        """None when IRC is not configured (no IRC_SERVER)."""
        server = env.get("IRC_SERVER", "").strip()
        if not server:
            return None
        tls = _flag(env, "IRC_TLS", False)
        port = int(_number(env, "IRC_PORT", 6697 if tls else 6667, at_least=1))
        channels = _names(env, "IRC_CHANNELS")
        bad = [c for c in channels if not c.startswith(("#", "&"))]
        if bad:
            raise IrcSettingsError(f"IRC_CHANNELS: {bad[0]!r} is not a channel (start it with #)")
        username = env.get("IRC_SASL_USERNAME") or None
        password = env.get("IRC_SASL_PASSWORD") or None
        if bool(username) != bool(password):
            raise IrcSettingsError("set both IRC_SASL_USERNAME and IRC_SASL_PASSWORD, or neither")
        return cls(
            server=server,
            port=port,
            tls=tls,
            tls_verify=_flag(env, "IRC_TLS_VERIFY", True),
            tls_ca_file=env.get("IRC_TLS_CA_FILE") or None,
            nick=env.get("IRC_NICK", "").strip() or nick,
            channels=channels,
            sasl_username=username,
            sasl_password=password,
            sasl_required=_flag(env, "IRC_SASL_REQUIRED", bool(username)),
            server_password=env.get("IRC_SERVER_PASSWORD") or None,
            accounts=AccountLists.of(
                _names(env, "IRC_WRITE_ACCOUNTS"), _names(env, "IRC_READ_ACCOUNTS", "*")
            ),
            bang_commands=_flag(env, "IRC_BANG_COMMANDS", True),
            burst=int(_number(env, "IRC_BURST", 4, at_least=1)),
            lines_per_second=_number(env, "IRC_LINES_PER_SECOND", 1.0, at_least=0.1),
            page_lines=int(_number(env, "IRC_PAGE_LINES", 5, at_least=2)),
        )
