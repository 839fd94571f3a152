"""The YAML file of projects: read once, and a wrong key stops start-up naming its path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.projects import load_projects
from tests.conftest import ROOT

GOOD = """
default_project: mozilla-central
projects:
  mozilla-central:
    trust_domain: gecko
    mode: action
    treeherder_url: https://treeherder.example.com
    repositories: [mozilla/gecko-dev]
    irc_channels: ["#sheriffs"]
    permissions: {schedule: write, status: read}
    teams: {mozilla/sheriffs: [retrigger, cancel]}
    max_new_tasks: 200
    confirm_threshold: 20
    bisect_pushes: 64
    bisect_tasks: 90
  translations:
    trust_domain: translations
    revision_routes: ["{trust_domain}.v2.{project}.revision.{revision}.taskgraph.decision-run"]
"""


def test_projects_are_read() -> None:
    default, projects = load_projects(GOOD)
    assert default == "mozilla-central"
    central = projects["mozilla-central"]
    assert (central.mode, central.treeherder_url, central.routes.trust_domain) == (
        "action",
        "https://treeherder.example.com",
        "gecko",
    )
    assert central.repositories == ("mozilla/gecko-dev",)
    assert central.irc_channels == ("#sheriffs",)
    assert central.permissions == {"schedule": "write", "status": "read"}
    assert central.teams == {"mozilla/sheriffs": ("retrigger", "cancel")}
    assert (central.max_new_tasks, central.confirm_threshold) == (200, 20)
    assert (central.bisect_pushes, central.bisect_tasks) == (64, 90)
    translations = projects["translations"]
    assert translations.mode == "direct"
    assert (translations.bisect_pushes, translations.bisect_tasks) == (32, 150)
    assert translations.routes.revision_routes == (
        "{trust_domain}.v2.{project}.revision.{revision}.taskgraph.decision-run",
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "projects:\n  autoland:\n    mod: action\n",
            "projects.autoland.mod is not a project setting",
        ),
        (
            "projects:\n  autoland:\n    mode: fast\n",
            "projects.autoland.mode must be one of direct, action",
        ),
        ("project: {}\n", "unknown key `project`"),
        ("default_project: x\nprojects: {}\n", "default_project `x` is not among the projects"),
        (
            "projects:\n  a:\n    revision_routes: nope\n",
            "projects.a.revision_routes must be a list",
        ),
        ("projects: [\n", "not valid YAML"),
        (
            "projects:\n  a:\n    permissions: {shedule: write}\n",
            "projects.a.permissions.shedule is not a command",
        ),
        ("projects:\n  a:\n    permissions: {schedule: god}\n", "must be one of read, triage"),
        ("projects:\n  a:\n    repositories: [gecko]\n", "like \\[owner/repo\\]"),
        ("projects:\n  a:\n    max_new_tasks: 0\n", "at least 1"),
        ("projects:\n  a:\n    teams: {sheriffs: [retrigger]}\n", "must be a team as org/"),
        ("projects:\n  a:\n    teams: {m/s: retrigger}\n", "projects.a.teams.m/s must be a list"),
        ("projects:\n  a:\n    teams: {m/s: [retrigga]}\n", "'retrigga' is not a command"),
        ("projects:\n  a:\n    teams: [m/s]\n", "must map GitHub teams"),
    ],
)
def test_bad_files_name_the_key(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_projects(text)


def test_a_bad_file_stops_start_up(tmp_path: Path) -> None:
    config = tmp_path / "taskbot.yml"
    config.write_text("projects:\n  autoland:\n    mod: action\n")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "parse", "status"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TASKBOT_CONFIG": str(config)},
    )
    assert done.returncode == 78
    assert "projects.autoland.mod is not a project setting" in done.stderr


def test_allow_from_names_projects() -> None:
    _, projects = load_projects(
        "projects:\n  autoland:\n    allow_from: [sandbox]\n  sandbox: {}\n  try:\n"
        "    allow_from: ['*']\n"
    )
    assert projects["autoland"].admits("sandbox")
    assert not projects["sandbox"].admits("autoland")
    assert projects["try"].admits("anything")
    with pytest.raises(ConfigError, match="allow_from names `nowhere`"):
        load_projects("projects:\n  autoland:\n    allow_from: [nowhere]\n")
