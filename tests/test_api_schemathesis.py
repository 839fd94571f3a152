"""Schemathesis against the served OpenAPI description: generated requests for every
operation, valid and invalid, must never get a 5xx and must match the description."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from bot.adapters.api import ApiAdapter, ApiSettings, ApiToken
from bot.adapters.http import make_app
from bot.embedded import embedded
from bot.store import SqliteStore

TOKEN = "schemathesis-write-token-0123456789"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def schemathesis_cli() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if found is None:
        message = "schemathesis is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


async def test_generated_requests_never_fail_the_server(tmp_path: Path) -> None:
    cli = schemathesis_cli()
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=600, worker_seconds=0.05) as env:
        env.bot.settings = replace(env.bot.settings, poll_interval=0.05)
        api = ApiAdapter(env.bot, ApiSettings({TOKEN: ApiToken("fuzzer", "write")}))
        runner = web.AppRunner(make_app(env.bot, [api.install]), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            process = await asyncio.create_subprocess_exec(
                cli,
                "run",
                f"http://127.0.0.1:{port}/api/v1/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                "40",
                "--seed",
                "20261128",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--request-timeout",
                "30",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
                cwd=tmp_path,  # its example database and reports stay out of the checkout
            )
            output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
        finally:
            await runner.cleanup()
    await store.close()
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    found = re.search(r"(\d+) generated, (\d+) passed", report)
    assert found, report[-3000:]
    assert int(found[1]) == int(found[2]) >= 200  # every generated case passed every check
