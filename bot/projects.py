"""The optional YAML file of projects (TASKBOT_CONFIG): how each project's pushes are found
and scheduled. Unknown or invalid keys stop start-up with the key's path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.config import ConfigError
from bot.service import ProjectSettings
from bot.tc.decision import LATEST_ROUTES, REVISION_ROUTES, ProjectRoutes

TOP_KEYS = {"default_project", "projects"}
PROJECT_KEYS = {"trust_domain", "mode", "treeherder_url", "revision_routes", "latest_routes"}
MODES = ("direct", "action")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of index route templates")
    return tuple(value)


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
        )
        projects[str(name)] = ProjectSettings(str(name), routes, mode, treeherder)
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
