"""Settings come from the environment once, and a wrong one names itself."""

from __future__ import annotations

import pytest

from bot.config import Config, ConfigError


def test_defaults() -> None:
    config = Config.from_env({"PATH": "/bin", "HOME": "/root"})
    assert config == Config(name="taskbot", max_times=20)
    assert config.limits.max_times == 20


def test_values() -> None:
    config = Config.from_env({"TASKBOT_NAME": "tcbot", "TASKBOT_MAX_TIMES": "5"})
    assert (config.name, config.max_times) == ("tcbot", 5)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"TASKBOT_MAXTIMES": "5"}, "unknown setting TASKBOT_MAXTIMES"),
        ({"TASKBOT_MAX_TIMES": "many"}, "TASKBOT_MAX_TIMES must be a whole number"),
        ({"TASKBOT_MAX_TIMES": "0"}, "TASKBOT_MAX_TIMES must be at least 1"),
        ({"TASKBOT_NAME": "task bot"}, "TASKBOT_NAME must be"),
    ],
)
def test_errors_name_the_setting(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Config.from_env(env)
