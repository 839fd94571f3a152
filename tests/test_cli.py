"""``python -m bot parse`` and the console, run as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import ROOT


def run_bot(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_parse_json_prints_the_documented_fields() -> None:
    done = run_bot("parse", "--json", "schedule M(bc3) on autoland@abc123f for linux64/debug x2")
    assert done.returncode == 0, done.stderr
    (command,) = json.loads(done.stdout)
    assert command["verb"] == "schedule"
    assert command["selectors"] == [
        {"kind": "symbol", "text": "M(bc3)", "group": "M", "symbol": "bc3"}
    ]
    assert (command["revision"], command["project"]) == ("abc123f", "autoland")
    assert command["filters"] == [{"platform": "linux64", "build_type": "debug"}]
    assert (command["times"], command["dry_run"]) == (2, False)


def test_parse_json_of_try_syntax() -> None:
    done = run_bot("parse", "--json", "try: -b do -p linux64 -u mochitest-1[linux64] --rebuild 2")
    assert done.returncode == 0, done.stderr
    (command,) = json.loads(done.stdout)
    options = command["try_options"]
    assert options["build_types"] == ["debug", "opt"]
    assert options["platforms"] == ["linux64"]
    assert options["unittests"] == [
        {"name": "mochitest-1", "suite": "mochitest", "chunk": 1, "platforms": ["linux64"]}
    ]
    assert options["talos"] == "none"
    assert options["rebuild"] == 2


def test_parse_prints_canonical_text_for_several_commands() -> None:
    done = run_bot("parse", "@taskbot sched a-1 X2\ntaskbot: rt failed")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["schedule a-1 X2", "retrigger failed"]


def test_parse_error_exits_2_with_the_user_message() -> None:
    done = run_bot("parse", "shedule mochitest-1")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "line 1, column 1: `shedule` is not a command; the commands are `schedule`, "
        "`retrigger`, `rerun`, `cancel`, `status`, `pushes`, `push`, `actions`, `action`, "
        "`backfill`, `bisect`, `jobs`, `confirm`, `help`, `try`, `approve` or `more`.",
        "  shedule mochitest-1",
        "  ^^^^^^^",
        "Try: schedule mochitest-1",
    ]
    assert "Traceback" not in done.stderr


def test_parse_error_as_json() -> None:
    done = run_bot("parse", "--json", "schedule a-1 x0")
    assert done.returncode == 2
    (entry,) = json.loads(done.stdout)
    assert entry["error"]["column"] == 14
    assert entry["error"]["offending"] == "x0"


def test_cap_from_the_environment() -> None:
    done = run_bot("parse", "schedule a-1 x30", env={"TASKBOT_MAX_TIMES": "30"})
    assert done.returncode == 0, done.stderr
    done = run_bot("parse", "schedule a-1 x31", env={"TASKBOT_MAX_TIMES": "30"})
    assert done.returncode == 2
    assert "at most 30" in done.stderr


def test_a_github_token_without_a_webhook_secret_stops_start_up() -> None:
    done = run_bot("parse", "status", env={"GITHUB_TOKEN": "ghs_x"})
    assert done.returncode == 78
    assert "GITHUB_WEBHOOK_SECRET" in done.stderr
    assert "ghs_x" not in done.stderr


def test_a_bad_setting_stops_start_up_naming_the_key() -> None:
    done = run_bot("parse", "status", env={"TASKBOT_MAX_TIME": "3"})
    assert done.returncode == 78
    assert "TASKBOT_MAX_TIME" in done.stderr


def test_github_with_no_repository_listed_stops_start_up(tmp_path: Path) -> None:
    """Serving GitHub with no repository mapped would serve none (or, before, schedule every
    stranger's repository on the default project): start-up stops, naming the setting."""
    github = {"GITHUB_WEBHOOK_SECRET": "s3cret", "GITHUB_TOKEN": "ghs_x"}
    done = run_bot("parse", "status", env=github)
    assert done.returncode == 78
    assert "no project lists a repository" in done.stderr
    assert "TASKBOT_CONFIG" in done.stderr
    projects = tmp_path / "projects.yml"
    projects.write_text("projects:\n  autoland:\n    repositories: [octo/served]\n")
    assert (
        run_bot("parse", "status", env={**github, "TASKBOT_CONFIG": str(projects)}).returncode == 0
    )


def test_without_a_terminal_it_serves_until_stopped(tmp_path: Path) -> None:
    import hashlib
    import hmac
    import signal
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    projects = tmp_path / "projects.yml"
    projects.write_text("projects:\n  autoland:\n    repositories: [octo/served]\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "--tasks", "600"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PORT": str(port),
            "TASKBOT_DATA_DIR": str(tmp_path),
            "GITHUB_WEBHOOK_SECRET": "s3cret",
            "GITHUB_TOKEN": "ghs_unused",
            "TASKBOT_CONFIG": str(projects),
        },
    )
    try:
        assert process.stdout is not None
        assert "serving on" in process.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert json.loads(response.read())["ok"] is True
        # the GitHub webhook is served when its secret is configured
        body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "d1",
        }
        unsigned = urllib.request.Request(
            f"http://127.0.0.1:{port}/github/webhook", data=body, headers=headers
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(unsigned, timeout=10)
        assert refused.value.code == 401
        digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        signed = urllib.request.Request(
            f"http://127.0.0.1:{port}/github/webhook",
            data=body,
            headers={**headers, "X-Hub-Signature-256": f"sha256={digest}"},
        )
        with urllib.request.urlopen(signed, timeout=10) as response:
            assert json.loads(response.read()) == {"msg": "pong"}
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    assert process.returncode == 0


def test_script_from_stdin_schedules_on_the_embedded_default(tmp_path: Path) -> None:
    done = run_bot(
        "--script",
        "-",
        "--tasks",
        "800",
        "--wait",
        "60",
        stdin="help schedule\nshedule x\n"
        "schedule \"'xpcshell 'linux1804-64-shippable-qr/opt\" x2\n",
        env={"TASKBOT_DATA_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "schedule JOBS [on REVISION]" in out
    assert "`shedule` is not a command" in out
    assert "new task" in out
    assert "finished:" in out
    assert (tmp_path / "taskbot.sqlite3").exists()


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "status", "r7f3a"]) == 0
    assert capsys.readouterr().out == "status r7f3a\n"
    assert main(["parse", "confirm"]) == 2


def test_operators_list_retry_and_drop_parked_deliveries(tmp_path: Path) -> None:
    import asyncio

    from bot.store import SqliteStore

    async def parked() -> None:
        store = SqliteStore(tmp_path / "taskbot.sqlite3")
        await store.migrate()
        for delivery in ("d-1", "d-2"):
            await store.keep_delivery("github", delivery, "issue_comment", "{}")
            await store.claim_deliveries("github", "me")
            await store.delivery_failed("github", delivery, "me", "GitHub answered 503", retry_in=0)
            await store.park_delivery("github", delivery)
        await store.close()

    asyncio.run(parked())
    env = {"TASKBOT_DATA_DIR": str(tmp_path)}
    listed = run_bot("deliveries", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("2 parked github deliveries:")
    assert "d-1  issue_comment" in listed.stdout
    assert "after 1 tries: GitHub answered 503" in listed.stdout
    retried = run_bot("deliveries", "retry", "d-1", "d-9", env=env)
    assert retried.returncode == 1
    assert "d-1: retried" in retried.stderr
    assert "d-9: no parked github delivery has this id" in retried.stderr
    assert run_bot("deliveries", "drop", "d-2", env=env).stdout == "d-2: dropped\n"
    assert run_bot("deliveries", "list", env=env).stdout == "no parked github deliveries\n"


def test_database_url_is_the_store_of_the_embedded_default_too(tmp_path: Path) -> None:
    """DATABASE_URL used to be read only with TASKCLUSTER_ROOT_URL: the embedded default
    kept its requests in a SQLite file instead, silently."""
    import asyncio

    from tests.test_store import POSTGRES_URL, empty_schema

    async def requests_in_postgres() -> list[str]:
        async with empty_schema() as (admin, schema):
            script = tmp_path / "commands.txt"
            script.write_text("jobs xpcshell\nschedule X(X1) --dry-run\n")
            done = await asyncio.to_thread(
                run_bot,
                "--tasks",
                "600",
                "--script",
                str(script),
                "--wait",
                "30",
                env={
                    "DATABASE_URL": f"{POSTGRES_URL}?search_path={schema}",
                    "TASKBOT_DATA_DIR": str(tmp_path / "data"),
                },
            )
            assert done.returncode == 0, done.stderr
            rows = await admin.fetch(f"SELECT command FROM {schema}.requests")
            return [str(row["command"]) for row in rows]

    assert asyncio.run(requests_in_postgres()) == ["schedule X(X1) --dry-run"]
    assert not (tmp_path / "data" / "taskbot.sqlite3").exists()
