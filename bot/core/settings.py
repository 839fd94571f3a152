"""The bot's settings and each project's: how pushes are found and jobs are scheduled."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.access import Level
from bot.tc.decision import ProjectRoutes
from grammar import Limits

BISECT_PUSHES = 32  # pushes a culprit search spans unless its command says `max P pushes`
BISECT_TASKS = 150  # tasks a culprit search may create in all before it stops
DEFAULT_POLL_INTERVAL = 5.0  # seconds between task-state polls when Pulse is not configured


class Mode(StrEnum):
    """How a project's jobs are created in Taskcluster."""

    DIRECT = "direct"  # the bot calls createTask with the planned definitions
    ACTION = "action"  # the push's in-tree add-new-jobs action (its hook) creates them
    AUTO = "auto"  # direct when the bot's scopes cover the plan, else the push's action


@dataclass(frozen=True, slots=True)
class ProjectSettings:
    """One project: how its pushes are found and how its jobs are scheduled."""

    name: str
    routes: ProjectRoutes = field(default_factory=ProjectRoutes)
    mode: Mode = Mode.DIRECT
    treeherder_url: str | None = None
    repositories: tuple[
        str, ...
    ] = ()  # GitHub repositories (owner/name) whose PRs are this project
    irc_channels: tuple[str, ...] = ()  # IRC channels whose commands mean this project
    matrix_rooms: tuple[str, ...] = ()  # Matrix rooms (ids or aliases) of this project
    permissions: dict[str, str] = field(default_factory=dict)  # verb -> level name (GitHub's)
    # GitHub teams ("org/team-slug") whose members may run these verbs whatever their
    # permission on the repository (sheriffs retriggering on any project's pull requests).
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_new_tasks: int | None = None  # overrides the bot-wide caps for this project
    confirm_threshold: int | None = None
    # Projects whose places (repositories, channels) may change things here too ("*": any);
    # by default a place mapped to another project may only read.
    allow_from: tuple[str, ...] = ()
    # The deployment's longest task deadline, in days, when tasks must fit it (the Queue's
    # default is 5); unset, deadlines stay as the graph resolves them.
    max_deadline_days: int | None = None
    # Taskcluster roles the requesters act as, by source ("*": every other source):
    # "login-identity:github/{actor}".
    # A request then does no more in Taskcluster than its requester's role may (the bot's
    # own scopes the ceiling); a source without one acts with the bot's scopes.
    requester_roles: dict[str, str] = field(default_factory=dict)
    # A culprit search (`bisect`): the pushes it spans by default, the tasks it may create.
    bisect_pushes: int = BISECT_PUSHES
    bisect_tasks: int = BISECT_TASKS

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(self.mode))

    def admits(self, project: str) -> bool:
        """Whether the places of ``project`` may change things in this one."""
        return project == self.name or project in self.allow_from or "*" in self.allow_from

    def need(self, verb: str, default: Level) -> Level:
        """The level ``verb`` needs here: the project's own setting, else ``default``; never
        less than read (someone with no access may do nothing)."""
        own = self.permissions.get(verb)
        return max(Level.named(own) if own else default, Level.READ)


@dataclass(frozen=True, slots=True)
class Settings:
    """The lifecycle's limits and defaults."""

    name: str = "taskbot"
    limits: Limits = field(default_factory=Limits)
    max_new_tasks: int = 500
    confirm_threshold: int = 50
    confirm_minutes: int = 30
    shortlist_limit: int = 50
    max_commands: int = 10  # commands run from one message; the rest are answered in a line
    rate_per_minute: int = 30  # commands one person may run in a minute, per source
    default_project: str = "autoland"
    projects: dict[str, ProjectSettings] = field(default_factory=dict)
    amqp_url: str | None = None
    poll_interval: float = DEFAULT_POLL_INTERVAL
    edit_interval: float = 2.0  # seconds between two edits of one status card
    keep_days: float = 30.0  # processed deliveries are forgotten after this many days

    def project(self, name: str | None) -> ProjectSettings:
        name = name or self.default_project
        return self.projects.get(name) or ProjectSettings(name)
