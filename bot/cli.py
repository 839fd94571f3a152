"""Command-line interface: ``python -m bot`` (console chat), ``parse``, ``plan``, ``localtc``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import deliveries_cli, plan_cli
from bot.adapters import console
from bot.adapters.admin import admin_token
from bot.adapters.api import ApiSettings
from bot.adapters.front_process import Fronted
from bot.adapters.github.app import GitHubSettings
from bot.adapters.github.events import SOURCE
from bot.adapters.irc.settings import IrcSettings
from bot.adapters.matrix.settings import MatrixSettings
from bot.config import Config, ConfigError
from bot.core.settings import DEFAULT_POLL_INTERVAL, ProjectSettings, Settings
from bot.localtc import main as localtc_main
from bot.projects import load_projects_file
from bot.service import Bot
from grammar import Limits, parse_message

EXIT_PARSE_ERROR = 2
EXIT_CONFIG_ERROR = 78  # EX_CONFIG
NO_REPOSITORIES = (
    "GitHub is configured (GITHUB_WEBHOOK_SECRET with its credentials) but no project lists "
    "a repository, so the bot would serve none: add `repositories: [owner/name]` to a project "
    "in the projects file (TASKBOT_CONFIG)."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="action")
    parse = sub.add_parser("parse", help="print how the bot reads a command, then exit")
    parse.add_argument("--json", action="store_true", help="print JSON (see the README)")
    parse.add_argument("text", nargs="+", help="the command text; several lines allowed")
    plan = sub.add_parser("plan", help="resolve a command against a task graph, print the plan")
    plan_cli.add_arguments(plan)
    local = sub.add_parser("localtc", help="run a local Taskcluster (Queue, Index) until stopped")
    localtc_main.add_arguments(local)
    sub.add_parser("console", help="chat with the bot in this terminal (the default)")
    parked = sub.add_parser(
        "deliveries", help="list, retry or drop the deliveries the bot gave up on"
    )
    deliveries_cli.add_arguments(parked)
    parser.add_argument(
        "--script",
        metavar="FILE",
        help="run the commands in FILE (- for standard input), wait for their tasks, exit",
    )
    parser.add_argument("--wait", type=float, default=120.0, help="with --script: seconds to wait")
    parser.add_argument("--tasks", type=int, default=3000, help="size of the embedded demo push")
    return parser


def parse_cli(text: str, *, name: str, limits: Limits, as_json: bool) -> tuple[str, str, int]:
    """Parse ``text``; return (stdout, stderr, exit code)."""
    results = parse_message(text, console.console_triggers(name), limits=limits)
    out: list[str] = []
    err: list[str] = []
    for parsed in results:
        if parsed.error is not None:
            err.append(parsed.error.render())
        elif not as_json:
            assert parsed.command is not None
            out.append(parsed.command.canonical())
    if as_json:
        payload = [
            {"error": p.error.to_json()} if p.error else p.command.to_json()  # type: ignore[union-attr]
            for p in results
        ]
        out = [json.dumps(payload, indent=2, sort_keys=True)]
    if not results:
        err.append("no command found in the text.")
    failed = not results or any(p.error for p in results)
    return "\n".join(out), "\n".join(err), EXIT_PARSE_ERROR if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = Config.from_env(os.environ)
        startup = Startup.read(config, os.environ)
    except (ConfigError, ValueError) as error:
        print(f"taskbot: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.action == "parse":
        stdout, stderr, code = parse_cli(
            " ".join(args.text), name=config.name, limits=config.limits, as_json=args.json
        )
        if stdout:
            print(stdout)
        if stderr:
            print(stderr, file=sys.stderr)
        return code
    if args.action == "localtc":
        return localtc_main.main(args)
    if args.action == "deliveries":
        from bot.embedded import data_dir

        text, code = asyncio.run(
            deliveries_cli.run(args, config, str(data_dir() / "taskbot.sqlite3"))
        )
        print(text, file=sys.stdout if code == 0 else sys.stderr)
        return code
    if args.action == "plan":
        outcome = plan_cli.run(args, config.limits)
        if outcome.stdout:
            print(outcome.stdout)
        if outcome.stderr:
            print(outcome.stderr, file=sys.stderr)
        return outcome.code
    return asyncio.run(run_console(args, startup))


@dataclass(frozen=True)
class Startup:
    """Everything read once at start-up: the settings, the projects file, GitHub's settings."""

    config: Config
    default_project: str | None = None
    projects: Mapping[str, ProjectSettings] = field(default_factory=dict)
    github: GitHubSettings | None = None
    irc: IrcSettings | None = None
    matrix: MatrixSettings | None = None
    api: ApiSettings = field(default_factory=ApiSettings)
    admin_token: str | None = None

    @classmethod
    def read(cls, config: Config, env: Mapping[str, str]) -> Startup:
        """Raises ConfigError or ValueError naming the setting that is wrong."""
        default: str | None = None
        projects: Mapping[str, ProjectSettings] = {}
        if config.projects_file:
            default, projects = load_projects_file(config.projects_file)
        github = GitHubSettings.from_env(env, bot_login=config.name)
        if github is not None and not any(p.repositories for p in projects.values()):
            raise ConfigError(NO_REPOSITORIES)
        irc = IrcSettings.from_env(env, nick=config.name)
        matrix = MatrixSettings.from_env(env)
        admin = admin_token(env.get("TASKBOT_ADMIN_TOKEN"))
        return cls(
            config,
            default,
            projects,
            github,
            irc,
            matrix,
            ApiSettings.from_env(env),
            admin,
        )

    def bot_settings(self, project: str, *, poll_interval: float) -> Settings:
        config = self.config
        projects = {project: ProjectSettings(project), **self.projects}
        return Settings(
            name=config.name,
            limits=config.limits,
            max_new_tasks=config.max_new_tasks,
            confirm_threshold=config.confirm_threshold,
            max_commands=config.max_commands,
            rate_per_minute=config.rate_per_minute,
            keep_days=float(config.keep_days),
            default_project=self.default_project or project,
            projects=projects,
            amqp_url=config.amqp_url,
            poll_interval=poll_interval,
        )


def listen_host(env: Mapping[str, str]) -> str:
    """Where the server listens: HOST if set; every interface on a platform that gives the
    port (PORT: Heroku, Docker run by a PaaS); else this machine alone."""
    return env.get("HOST") or ("0.0.0.0" if env.get("PORT") else "127.0.0.1")


async def run_console(args: argparse.Namespace, startup: Startup) -> int:
    """On TASKCLUSTER_ROOT_URL when it is set; else the embedded default (a local
    Taskcluster with a seeded push). Requests caught mid-submit are resumed first."""
    if os.environ.get("TASKCLUSTER_ROOT_URL"):
        return await _on_taskcluster(args, startup)
    from bot.embedded import data_dir, embedded
    from bot.store import open_store

    # DATABASE_URL is the store here too (else the SQLite file of the data directory).
    store = await open_store(startup.config.database_url, data_dir() / "taskbot.sqlite3")
    try:
        async with embedded(store=store, tasks=args.tasks) as env:
            # The demo's simulated worker is fast: poll it often so the chat feels live.
            env.bot.settings = startup.bot_settings(env.push.project, poll_interval=0.5)
            greeting = console.GREETING.format(
                project=env.push.project, revision=env.push.revision[:12]
            )
            return await _converse(args, env.bot, greeting, startup)
    finally:
        await store.close()


async def _on_taskcluster(args: argparse.Namespace, startup: Startup) -> int:
    import aiohttp

    from bot.embedded import data_dir
    from bot.store import open_store
    from bot.tc.clients import TaskclusterSettings, TaskclusterSettingsError, make_clients

    try:
        tc_settings = TaskclusterSettings.from_env(os.environ)
    except TaskclusterSettingsError as error:
        print(f"taskbot: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    config = startup.config
    store = await open_store(config.database_url, data_dir() / "taskbot.sqlite3")
    async with aiohttp.ClientSession() as session:
        settings = startup.bot_settings(config.project, poll_interval=DEFAULT_POLL_INTERVAL)
        bot = Bot(settings, store, make_clients(tc_settings, session))
        bot.lease_seconds = float(config.lease_seconds)
        bot.register(console.ConsoleAdapter())
        try:
            greeting = f"taskbot console on {tc_settings.root_url}"
            return await _converse(args, bot, greeting, startup)
        finally:
            await bot.stop()
            await store.close()


@contextlib.asynccontextmanager
async def github_installers(
    bot: Bot, settings: GitHubSettings | None
) -> AsyncIterator[tuple[list[Any], list[Fronted]]]:
    """The GitHub adapter's routes when GITHUB_WEBHOOK_SECRET is set, and its webhook for
    the front process to receive."""
    if settings is None:
        yield [], []
        return
    import aiohttp

    from bot.adapters.github.app import GitHubAdapter

    async with aiohttp.ClientSession() as session:
        adapter = GitHubAdapter(bot, settings, settings.auth(session))
        webhook = Fronted("bot.adapters.github.webhook:receiver_from_env", SOURCE, adapter.wake)
        yield [adapter.install], [webhook]


@contextlib.asynccontextmanager
async def irc_connection(bot: Bot, settings: IrcSettings | None) -> AsyncIterator[None]:
    """Connected to IRC (and kept connected) while inside, when IRC_SERVER is set."""
    if settings is None:
        yield
        return
    from bot.adapters.irc.adapter import IrcAdapter

    adapter = IrcAdapter(bot, settings)
    await adapter.start()
    try:
        yield
    finally:
        await adapter.stop()


@contextlib.asynccontextmanager
async def matrix_connection(bot: Bot, settings: MatrixSettings | None) -> AsyncIterator[None]:
    """Logged in to a Matrix homeserver (and kept synced) while inside, when
    MATRIX_HOMESERVER is set."""
    if settings is None:
        yield
        return
    from bot.adapters.matrix.adapter import MatrixAdapter

    adapter = MatrixAdapter(bot, settings)
    await adapter.start()
    try:
        yield
    finally:
        await adapter.stop()


async def _converse(args: argparse.Namespace, bot: Bot, greeting: str, startup: Startup) -> int:
    async with irc_connection(bot, startup.irc), matrix_connection(bot, startup.matrix):
        return await _chat_or_serve(args, bot, greeting, startup)


async def _chat_or_serve(
    args: argparse.Namespace, bot: Bot, greeting: str, startup: Startup
) -> int:
    replier = console.ConsoleReplier(sys.stdout)
    resumed = await bot.resume(replier)
    if resumed:
        print(f"taskbot> resumed {', '.join(resumed)}")
    if args.script is not None:
        lines = (
            console.stdin_lines()
            if args.script == "-"
            else Path(args.script).read_text(encoding="utf-8").splitlines()
        )
        await console.chat(bot, lines, sys.stdout, prompt=False, wait=args.wait)
        return 0
    if not sys.stdin.isatty():
        # Procfile, Docker, systemd: no terminal, so run as a server until stopped.
        from bot import logs
        from bot.adapters.http import DEFAULT_PORT, serve_until_stopped

        logs.configure(json_lines=True)
        port = int(os.environ.get("PORT", DEFAULT_PORT))
        from bot.adapters.api import ApiAdapter
        from bot.adapters.web import WebAdapter

        async with github_installers(bot, startup.github) as (installers, fronted):
            api = ApiAdapter(bot, startup.api)
            # Requests another replica left behind when it died are taken over here.
            sweeper = asyncio.create_task(bot.keep_resuming(replier))
            try:
                web = WebAdapter(bot)
                served = [*installers, api.install, web.install]
                if startup.admin_token:
                    from bot.adapters.admin import AdminEndpoints

                    served.append(AdminEndpoints(bot, startup.admin_token).install)
                await serve_until_stopped(
                    bot, port, host=listen_host(os.environ), installers=served, fronted=fronted
                )
            finally:
                sweeper.cancel()
        return 0
    print(greeting)
    await console.chat(bot, console.stdin_lines(), sys.stdout, prompt=True, wait=5.0)
    return 0
