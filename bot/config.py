"""The bot's settings, read once at start-up from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from grammar import Limits

PREFIX = "TASKBOT_"
DEFAULT_NAME = "taskbot"
DEFAULT_MAX_TIMES = 20
KNOWN_SETTINGS = (
    "TASKBOT_NAME",
    "TASKBOT_MAX_TIMES",
    "TASKBOT_MAX_NEW_TASKS",
    "TASKBOT_CONFIRM_THRESHOLD",
    "TASKBOT_MAX_COMMANDS",
    "TASKBOT_RATE_PER_MINUTE",
    "TASKBOT_KEEP_DAYS",
    "TASKBOT_PROJECT",
    "TASKBOT_AMQP_URL",
    "TASKBOT_CONFIG",
    "TASKBOT_DATA_DIR",  # read by bot.embedded.data_dir
    "TASKBOT_API_TOKENS",  # read by bot.adapters.api.ApiSettings
    "TASKBOT_API_SECRET",
    "TASKBOT_PUBLIC_READS",  # read by bot.adapters.api.ApiSettings
    "TASKBOT_ADMIN_TOKEN",  # read by bot.adapters.admin.admin_token
    "TASKBOT_INSTANCE",  # read by bot.core.runtime.default_instance
    "TASKBOT_LEASE_SECONDS",
    "TASKBOT_WEBHOOK_PROCESS",  # read by bot.adapters.front_process.wanted
    "TASKBOT_TEST_AMQP_URL",  # tests only
    "TASKBOT_TEST_DATABASE_URL",  # tests only
)


class ConfigError(ValueError):
    """A setting is unknown or has a value the bot cannot use; the message names it."""


def _positive_int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{key} must be at least 1, not {value}")
    return value


@dataclass(frozen=True, slots=True)
class Config:
    """Typed settings; see the configuration reference in the README."""

    name: str = DEFAULT_NAME
    max_times: int = DEFAULT_MAX_TIMES
    max_new_tasks: int = 500
    confirm_threshold: int = 50
    max_commands: int = 10
    rate_per_minute: int = 30
    keep_days: int = 30
    project: str = "autoland"
    amqp_url: str | None = None
    database_url: str | None = None
    projects_file: str | None = None
    lease_seconds: int = 120

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read ``TASKBOT_*`` variables; an unknown one stops start-up with its name."""
        unknown = sorted(k for k in env if k.startswith(PREFIX) and k not in KNOWN_SETTINGS)
        if unknown:
            known = ", ".join(KNOWN_SETTINGS)
            raise ConfigError(f"unknown setting {unknown[0]}; the known ones are {known}")
        name = env.get("TASKBOT_NAME", "").strip() or DEFAULT_NAME
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"TASKBOT_NAME must be letters, digits, - or _, not {name!r}")
        return cls(
            name=name,
            max_times=_positive_int(env, "TASKBOT_MAX_TIMES", DEFAULT_MAX_TIMES),
            max_new_tasks=_positive_int(env, "TASKBOT_MAX_NEW_TASKS", 500),
            confirm_threshold=_positive_int(env, "TASKBOT_CONFIRM_THRESHOLD", 50),
            max_commands=_positive_int(env, "TASKBOT_MAX_COMMANDS", 10),
            rate_per_minute=_positive_int(env, "TASKBOT_RATE_PER_MINUTE", 30),
            keep_days=_positive_int(env, "TASKBOT_KEEP_DAYS", 30),
            project=env.get("TASKBOT_PROJECT", "").strip() or "autoland",
            amqp_url=env.get("TASKBOT_AMQP_URL") or None,
            database_url=env.get("DATABASE_URL") or None,
            projects_file=env.get("TASKBOT_CONFIG") or None,
            lease_seconds=_positive_int(env, "TASKBOT_LEASE_SECONDS", 120),
        )

    @property
    def limits(self) -> Limits:
        return Limits(max_times=self.max_times)


def env_flag(env: Mapping[str, str], key: str, default: bool) -> bool:
    """A true/false setting (1/0, yes/no, on/off too); ``ValueError`` naming it otherwise."""
    raw = env.get(key, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{key} must be true or false, not {raw!r}")


def env_number(
    env: Mapping[str, str],
    key: str,
    default: float,
    *,
    at_least: float,
    error: type[ValueError] = ValueError,
) -> float:
    """A number setting of at least ``at_least``; ``error`` naming it otherwise."""
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise error(f"{key} must be a number, not {raw!r}") from None
    if value < at_least:
        raise error(f"{key} must be at least {at_least:g}, not {raw}")
    return value
