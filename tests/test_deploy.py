"""app.json, Procfile and Dockerfile checked against the code, and the Procfile's command run."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.adapters.api import ApiSettings
from bot.adapters.github.app import GitHubSettings
from bot.adapters.irc.settings import IrcSettings
from bot.adapters.matrix.settings import MatrixSettings
from bot.config import KNOWN_SETTINGS, Config
from tests.conftest import ROOT

# Heroku's app.json, from its field reference (devcenter.heroku.com/articles/app-json-schema).
# Objects whose keys Heroku lists in full are closed (additionalProperties: false), so a typo
# ("enviroment", an env var's "default") fails here instead of being ignored by Heroku.
_ENV_VAR = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "properties": {
                "description": {"type": "string"},
                "value": {"type": "string"},
                "required": {"type": "boolean"},
                "generator": {"enum": ["secret"]},
            },
            "additionalProperties": False,
        },
    ]
}
_ENV = {
    "type": "object",
    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
    "additionalProperties": {"$ref": "#/definitions/env_var"},
}
_FORMATION = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "properties": {
            "quantity": {"type": "integer", "minimum": 0},
            "size": {"type": "string", "minLength": 1},
        },
        "additionalProperties": False,
    },
}
_ADDONS = {
    "type": "array",
    "items": {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {
                "type": "object",
                "properties": {
                    "plan": {"type": "string", "minLength": 1},
                    "as": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
                    "options": {"type": "object"},
                },
                "required": ["plan"],
                "additionalProperties": False,
            },
        ]
    },
}
_BUILDPACKS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"url": {"type": "string", "minLength": 1}},
        "required": ["url"],
        "additionalProperties": False,
    },
}
_SCRIPTS = {"type": "object", "additionalProperties": {"type": "string"}}
APP_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Heroku app.json",
    "type": "object",
    "definitions": {"env_var": _ENV_VAR},
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 30},
        "description": {"type": "string"},
        "keywords": {"type": "array", "items": {"type": "string"}},
        "website": {"type": "string", "format": "uri"},
        "repository": {"type": "string", "format": "uri"},
        "logo": {"type": "string", "format": "uri"},
        "success_url": {"type": "string"},
        "scripts": _SCRIPTS,
        "env": _ENV,
        "formation": _FORMATION,
        "image": {"type": "string"},
        "addons": _ADDONS,
        "buildpacks": _BUILDPACKS,
        "environments": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "scripts": _SCRIPTS,
                    "env": _ENV,
                    "formation": _FORMATION,
                    "addons": _ADDONS,
                    "buildpacks": _BUILDPACKS,
                },
                "additionalProperties": False,
            },
        },
        "stack": {"type": "string"},
    },
    "additionalProperties": False,
}

# Variables the bot reads that a deployment does not set in app.json, and why.
PROVIDED_BY_PLATFORM = {
    "PORT": "Heroku sets it on every web dyno",
    "DATABASE_URL": (
        "the heroku-postgresql add-on sets it; Heroku refuses to set an add-on's variable "
        "itself, and a review app would inherit the parent app's database"
    ),
    "DYNO": "Heroku sets it (web.1); the bot names its replica after it",
    "XDG_DATA_HOME": "the operating system's; TASKBOT_DATA_DIR is the bot's own setting",
}
NOT_BOT_SETTINGS = {"DYNO", "XDG_DATA_HOME"}  # read by the bot, but not its configuration
# Settings README.md's Configuration table does not list yet (reported; README is not ours).
README_GAPS: set[str] = set()

# env.get("X"), env["X"], os.environ.get("X"), os.getenv("X"), and helpers given the
# mapping first: _flag(env, "X", ...).
_READS = (
    re.compile(r"\b(?:env|environ)(?:\.get\(|\[)\s*[\"']([A-Z][A-Z0-9_]*)[\"']"),
    re.compile(r"\bgetenv\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']"),
    re.compile(r"\(\s*env\s*,\s*[\"']([A-Z][A-Z0-9_]*)[\"']"),
)


def bot_variables() -> dict[str, list[str]]:
    """Every environment variable the bot's code reads -> the files that read it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in _READS:
            for match in pattern.finditer(text):
                found.setdefault(match.group(1), set()).add(str(path.relative_to(ROOT)))
    for name in KNOWN_SETTINGS:
        found.setdefault(name, set()).add("bot/config.py (KNOWN_SETTINGS)")
    return {k: sorted(v) for k, v in sorted(found.items()) if not k.startswith("TASKBOT_TEST_")}


BOT_VARIABLES = bot_variables()


def app_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))
    return data


def app_env() -> dict[str, dict[str, Any]]:
    return {
        name: spec if isinstance(spec, dict) else {"value": spec}
        for name, spec in app_json()["env"].items()
    }


def procfile() -> dict[str, str]:
    processes = {}
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            assert name.strip() not in processes, f"process {name} declared twice"
            processes[name.strip()] = command.strip()
    return processes


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an exec-form CMD/HEALTHCHECK CMD; a shell form fails the test."""
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), f"expected the exec (JSON array) form, got {arguments!r}"
    assert all(isinstance(item, str) for item in parsed)
    return parsed


# -- app.json --------------------------------------------------------------------------------


def test_app_json_is_valid_against_herokus_schema() -> None:
    jsonschema.Draft7Validator.check_schema(APP_JSON_SCHEMA)
    validator = jsonschema.Draft7Validator(
        APP_JSON_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(app_json())]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "mistake",
    [
        {"enviroment": {}},
        {"env": {"X": {"default": "1"}}},
        {"env": {"X": {"generator": "random"}}},
        {"env": {"X": {"value": 5}}},
        {"formation": {"web": {"quantity": "1"}}},
        {"addons": [{"as": "DATABASE"}]},
        {"buildpacks": ["heroku/python"]},
    ],
)
def test_the_schema_rejects_what_heroku_would_not_understand(mistake: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**app_json(), **mistake}, APP_JSON_SCHEMA)


def test_the_scan_finds_the_settings_of_every_part_of_the_bot() -> None:
    # Guards the regexes: one setting from each reader named in the README.
    for name in (
        "TASKBOT_MAX_TIMES",  # bot/config.py
        "TASKBOT_DATA_DIR",  # bot/embedded.py
        "TASKBOT_API_TOKENS",  # bot/adapters/api.py
        "GITHUB_PRIVATE_KEY",  # bot/adapters/github/app.py
        "IRC_PAGE_LINES",  # bot/adapters/irc/settings.py, through a helper
        "TASKCLUSTER_CERTIFICATE",  # bot/tc/clients.py
        "PORT",  # bot/cli.py
        "DATABASE_URL",
    ):
        assert name in BOT_VARIABLES, name


def test_app_json_env_is_exactly_what_the_bot_reads() -> None:
    declared = set(app_env())
    read = set(BOT_VARIABLES)
    missing = read - declared - set(PROVIDED_BY_PLATFORM)
    assert not missing, f"the bot reads these, app.json does not declare them: {sorted(missing)}"
    unread = declared - read
    assert not unread, f"app.json declares variables the bot never reads: {sorted(unread)}"
    overlap = declared & set(PROVIDED_BY_PLATFORM)
    assert not overlap, f"the platform sets these; app.json must not: {sorted(overlap)}"
    stale = set(PROVIDED_BY_PLATFORM) - read
    assert not stale, f"PROVIDED_BY_PLATFORM names variables the bot no longer reads: {stale}"


def test_every_variable_says_what_it_is_for_and_whether_it_is_required() -> None:
    for name, spec in app_env().items():
        assert spec.get("description", "").strip(), f"{name} has no description"
        assert isinstance(spec.get("required"), bool), f"{name}: say required true or false"


def test_the_webhook_secret_is_generated() -> None:
    assert app_env()["GITHUB_WEBHOOK_SECRET"].get("generator") == "secret"


def test_app_json_defaults_are_the_bots_own() -> None:
    """A `value` in app.json changes nothing: the bot reads it as its own default."""
    values = {name: spec["value"] for name, spec in app_env().items() if "value" in spec}
    assert all(name.startswith(("TASKBOT_", "GITHUB_", "IRC_", "MATRIX_")) for name in values)
    assert Config.from_env(values) == Config.from_env({})
    assert ApiSettings.from_env(values) == ApiSettings.from_env({})
    irc = {"IRC_SERVER": "irc.example.org"}
    assert IrcSettings.from_env({**values, **irc}, nick="taskbot") == IrcSettings.from_env(
        irc, nick="taskbot"
    )
    matrix = {
        "MATRIX_HOMESERVER": "https://matrix.example.org",
        "MATRIX_USER_ID": "@taskbot:example.org",
        "MATRIX_ACCESS_TOKEN": "syt_x",
    }
    assert MatrixSettings.from_env({**values, **matrix}) == MatrixSettings.from_env(matrix)
    github = {"GITHUB_WEBHOOK_SECRET": "s3cret", "GITHUB_TOKEN": "ghs_x"}
    assert GitHubSettings.from_env(
        {**values, **github}, bot_login="taskbot"
    ) == GitHubSettings.from_env(github, bot_login="taskbot")


def test_a_deploy_with_every_optional_field_left_empty_starts() -> None:
    from bot.cli import Startup

    env = {}
    for name, spec in app_env().items():
        if spec.get("generator") == "secret":
            env[name] = "0123456789abcdef" * 4  # what Heroku's generator makes
        elif "value" in spec:
            env[name] = spec["value"]
    Startup.read(Config.from_env(env), env)


def test_the_database_comes_from_the_postgres_add_on() -> None:
    plans = [a if isinstance(a, dict) else {"plan": a} for a in app_json()["addons"]]
    postgres = [a for a in plans if a["plan"].split(":")[0] == "heroku-postgresql"]
    assert len(postgres) == 1, plans
    # The attachment name makes the variable: DATABASE -> DATABASE_URL (the default name).
    assert postgres[0].get("as", "DATABASE") + "_URL" == "DATABASE_URL"


def test_one_web_dyno_built_with_the_python_buildpack() -> None:
    data = app_json()
    assert set(data["formation"]) == set(procfile())
    assert data["formation"]["web"]["quantity"] == 1
    assert [b["url"] for b in data["buildpacks"]] == ["heroku/python"]


def _readme_configuration_names() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("|"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.xfail(strict=False, reason=f"README.md does not list {name} yet"),
        )
        if name in README_GAPS
        else name
        for name in sorted(set(BOT_VARIABLES) - NOT_BOT_SETTINGS)
    ],
)
def test_the_readme_configuration_table_lists(name: str) -> None:
    assert name in _readme_configuration_names()


# -- Procfile, Dockerfile, Python version ----------------------------------------------------


def test_the_procfile_runs_the_bot() -> None:
    assert procfile() == {"web": "python -m bot"}


def test_the_dockerfile_runs_what_the_procfile_runs() -> None:
    commands = [arguments for keyword, arguments in dockerfile() if keyword == "CMD"]
    assert commands, "the Dockerfile has no CMD"
    assert shlex.join(exec_form(commands[-1])) == procfile()["web"]


def test_the_dockerfile_image() -> None:
    instructions = dockerfile()
    keywords = [keyword for keyword, _ in instructions]
    bases = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", bases[-1]), bases
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users, "the bot must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), "the bot must not run as root"
    assert keywords.index("USER") < keywords.index("CMD")
    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert "pip install -c constraints.txt ." in runs
    assert ("EXPOSE", "8080") in instructions
    (healthcheck,) = [arguments for keyword, arguments in instructions if keyword == "HEALTHCHECK"]
    assert "curl" not in healthcheck
    assert "wget" not in healthcheck
    assert "/healthz" in healthcheck


def healthcheck_command() -> list[str]:
    (healthcheck,) = [arguments for keyword, arguments in dockerfile() if keyword == "HEALTHCHECK"]
    command = exec_form(healthcheck[healthcheck.index("CMD ") + len("CMD ") :])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def test_python_version_files_agree() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "requires-python"
    ]
    pinned = (ROOT / ".python-version").read_text(encoding="utf-8").strip()
    minimum = re.search(r">=\s*(\d+\.\d+)", requires)
    assert minimum, requires
    assert pinned == minimum.group(1), "deploy on the oldest Python the project supports"
    (base,) = [arguments for keyword, arguments in dockerfile() if keyword == "FROM"]
    assert base.startswith(f"python:{pinned}-")
    assert not (ROOT / "runtime.txt").exists(), "runtime.txt is deprecated; .python-version wins"


def test_herokus_python_buildpack_finds_the_requirements() -> None:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").split()
    assert "." in lines or "-e ." in lines


# -- python -m bot, started as the Procfile starts it ----------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _healthz(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def test_the_procfile_command_serves_until_sigterm(tmp_path: Path) -> None:
    command = shlex.split(procfile()["web"])
    assert command[:3] == ["python", "-m", "bot"]
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in BOT_VARIABLES and not k.startswith(("TASKBOT_", "GITHUB_", "IRC_"))
    }
    env.update({"PORT": str(port), "TASKBOT_DATA_DIR": str(tmp_path / "data")})
    log = tmp_path / "bot.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, *command[1:]],
            cwd=ROOT,  # a Procfile's commands run at the root of the app
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while _healthz(port) != 200:
            assert process.poll() is None, f"exited {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no 200 from /healthz in 60 s:\n{log.read_text()}"
            time.sleep(0.2)
        # The Dockerfile's HEALTHCHECK says healthy too.
        check = subprocess.run(healthcheck_command(), env=env, capture_output=True, timeout=30)
        assert check.returncode == 0, check.stderr
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert returncode == 0, log.read_text()
    assert _healthz(port) is None
