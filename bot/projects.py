"""The optional YAML file of projects (TASKBOT_CONFIG): how each project's pushes are found
and scheduled. Unknown or invalid keys stop start-up with the key's path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.config import ConfigError
from bot.core.access import Level
from bot.core.settings import BISECT_PUSHES, BISECT_TASKS, Mode, ProjectSettings
from bot.tc.decision import LATEST_ROUTES, PUSHLOG_ROUTES, REVISION_ROUTES, ProjectRoutes
from grammar.vocabulary import VERBS

TOP_KEYS = {"default_project", "projects"}
PROJECT_KEYS = {
    "trust_domain",
    "mode",
    "treeherder_url",
    "revision_routes",
    "latest_routes",
    "pushlog_routes",
    "repositories",
    "irc_channels",
    "matrix_rooms",
    "permissions",
    "teams",
    "allow_from",
    "max_deadline_days",
    "max_new_tasks",
    "confirm_threshold",
    "bisect_pushes",
    "bisect_tasks",
    "requester_roles",
}
MODES = tuple(mode.value for mode in Mode)
# The levels a project may ask of a command (GitHub's repository roles, lowest first).
PERMISSION_LEVELS = tuple(level.label for level in Level if level > Level.NONE)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of index route templates")
    return tuple(value)


def _names(value: Any, where: str, mark: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and mark in v for v in value):
        example = "owner/repo" if mark == "/" else "#channel"
        raise ConfigError(f"{where} must be a list like [{example}]")
    return tuple(value)


def _matrix_rooms(value: Any, where: str) -> tuple[str, ...]:
    """Room ids (``!opaque``, ``!opaque:server`` before room version 12) or aliases
    (``#name:server``)."""
    if not isinstance(value, list) or not all(
        isinstance(v, str)
        and not any(c.isspace() for c in v)
        and ((v[:1] == "!" and len(v) > 1) or (v[:1] == "#" and ":" in v[2:]))
        for v in value
    ):
        raise ConfigError(f'{where} must be a list like ["#sheriffs:mozilla.org"]')
    return tuple(value)


def _permissions(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must map commands to permission levels")
    for verb, level in value.items():
        if verb not in VERBS:
            raise ConfigError(f"{where}.{verb} is not a command; commands: {', '.join(VERBS)}")
        if level not in PERMISSION_LEVELS:
            raise ConfigError(f"{where}.{verb} must be one of {', '.join(PERMISSION_LEVELS)}")
    return {str(k): str(v) for k, v in value.items()}


def _requester_roles(value: Any, where: str) -> dict[str, str]:
    """Source (github, irc, http, console, ...) to a Taskcluster role template naming the
    requester with ``{actor}``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must map sources to role templates")
    for source, template in value.items():
        if not isinstance(template, str) or not template.strip():
            raise ConfigError(
                f"{where}.{source} must be a role, e.g. login-identity:github/{{actor}}"
            )
        try:
            template.format(actor="someone")
        except (KeyError, IndexError, ValueError):
            raise ConfigError(
                f"{where}.{source}: `{template}` may use only {{actor}} (the requester)"
            ) from None
        if "{actor}" not in template or "*" in template:
            # without the requester everyone is one role; a `*` makes `assume:` a
            # wildcard over many roles
            raise ConfigError(
                f"{where}.{source}: `{template}` must name the requester with {{actor}} "
                "and hold no `*`"
            )
    return {str(k): str(v) for k, v in value.items()}


def _teams(value: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must map GitHub teams (org/team-slug) to lists of commands")
    teams: dict[str, tuple[str, ...]] = {}
    for team, verbs in value.items():
        org, _, slug = str(team).partition("/")
        if not org or not slug or "/" in slug:
            raise ConfigError(f"{where}: `{team}` must be a team as org/team-slug")
        if not isinstance(verbs, list) or not verbs:
            raise ConfigError(f"{where}.{team} must be a list of commands, e.g. [retrigger]")
        for verb in verbs:
            if verb not in VERBS:
                raise ConfigError(
                    f"{where}.{team}: {verb!r} is not a command; commands: {', '.join(VERBS)}"
                )
        teams[str(team)] = tuple(str(v) for v in verbs)
    return teams


def _allow_from(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f'{where} must be a list of project names (or ["*"])')
    return tuple(value)


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where} must be a whole number of at least 1")
    return value


def load_projects(
    text: str, *, source: str = "TASKBOT_CONFIG"
) -> tuple[str | None, dict[str, ProjectSettings]]:
    """(default project, settings by project) from the YAML text."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{source} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping with `projects`")
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(
                f"{source}: unknown key `{key}`; known: {', '.join(sorted(TOP_KEYS))}"
            )
    projects: dict[str, ProjectSettings] = {}
    raw = data.get("projects") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: `projects` must map project names to settings")
    for name, settings in raw.items():
        where = f"{source}: projects.{name}"
        settings = settings or {}
        if not isinstance(settings, dict):
            raise ConfigError(f"{where} must be a mapping")
        for key in settings:
            if key not in PROJECT_KEYS:
                known = ", ".join(sorted(PROJECT_KEYS))
                raise ConfigError(f"{where}.{key} is not a project setting; known: {known}")
        mode = settings.get("mode", "direct")
        if mode not in MODES:
            raise ConfigError(f"{where}.mode must be one of {', '.join(MODES)}, not {mode!r}")
        treeherder = settings.get("treeherder_url")
        if treeherder is not None and not str(treeherder).startswith(("http://", "https://")):
            raise ConfigError(f"{where}.treeherder_url must be an http(s) URL")
        routes = ProjectRoutes(
            trust_domain=str(settings.get("trust_domain", "gecko")),
            revision_routes=_strings(settings["revision_routes"], f"{where}.revision_routes")
            if "revision_routes" in settings
            else REVISION_ROUTES,
            latest_routes=_strings(settings["latest_routes"], f"{where}.latest_routes")
            if "latest_routes" in settings
            else LATEST_ROUTES,
            pushlog_routes=_strings(settings["pushlog_routes"], f"{where}.pushlog_routes")
            if "pushlog_routes" in settings
            else PUSHLOG_ROUTES,
        )
        projects[str(name)] = ProjectSettings(
            str(name),
            routes,
            Mode(mode),
            treeherder,
            repositories=_names(settings.get("repositories", []), f"{where}.repositories", "/"),
            irc_channels=_names(settings.get("irc_channels", []), f"{where}.irc_channels", "#"),
            matrix_rooms=_matrix_rooms(settings.get("matrix_rooms", []), f"{where}.matrix_rooms"),
            permissions=_permissions(settings.get("permissions", {}), f"{where}.permissions"),
            teams=_teams(settings.get("teams", {}), f"{where}.teams"),
            allow_from=_allow_from(settings.get("allow_from", []), f"{where}.allow_from"),
            max_deadline_days=_count(
                settings.get("max_deadline_days"), f"{where}.max_deadline_days"
            ),
            max_new_tasks=_count(settings.get("max_new_tasks"), f"{where}.max_new_tasks"),
            confirm_threshold=_count(
                settings.get("confirm_threshold"), f"{where}.confirm_threshold"
            ),
            requester_roles=_requester_roles(
                settings.get("requester_roles", {}), f"{where}.requester_roles"
            ),
            bisect_pushes=_count(settings.get("bisect_pushes"), f"{where}.bisect_pushes")
            or BISECT_PUSHES,
            bisect_tasks=_count(settings.get("bisect_tasks"), f"{where}.bisect_tasks")
            or BISECT_TASKS,
        )
    for name, project in projects.items():
        unknown = [p for p in project.allow_from if p != "*" and p not in projects]
        if unknown:
            raise ConfigError(
                f"{source}: projects.{name}.allow_from names `{unknown[0]}`, which is not a "
                'project here (or use "*" for any)'
            )
    default = data.get("default_project")
    if default is not None and default not in projects:
        raise ConfigError(f"{source}: default_project `{default}` is not among the projects")
    return default, projects


def load_projects_file(path: str) -> tuple[str | None, dict[str, ProjectSettings]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"TASKBOT_CONFIG {path}: {error.strerror}") from None
    return load_projects(text, source=f"TASKBOT_CONFIG {path}")
