"""The web pages in a real browser (Debian's Chromium, headless, driven by Playwright) on the
embedded local Taskcluster: pick jobs on the seeded push, preview and schedule them, follow
the request until it finishes. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from aiohttp import web

from bot.adapters.api import ApiAdapter, ApiSettings, ApiToken
from bot.adapters.http import make_app
from bot.adapters.web import WebAdapter
from bot.embedded import DEMO_FAILURES, Embedded, embedded
from bot.store import SqliteStore

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "secret-token"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
TIMEOUT_MS = 15_000
WORKER_SECONDS = 2.0  # long enough to see the request running before it finishes
COUNT = re.compile(r"(\d+) of (\d+) jobs shown")


def missing_prerequisite() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (scripts/install-browser installs Debian's chromium)"
    if importlib.util.find_spec("playwright") is None:
        return (
            "the playwright package is missing (.venv/bin/pip install playwright; the browser "
            "itself comes from scripts/install-browser)"
        )
    return None


@dataclass
class Site:
    env: Embedded
    url: str
    page: Page
    problems: list[str] = field(default_factory=list)  # script errors seen in the page

    def console(self, kind: str, text: str) -> None:
        # The browser logs each 4xx answer; the tests ask for some on purpose.
        if kind == "error" and not text.startswith("Failed to load resource"):
            self.problems.append(f"console: {text}")

    async def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=False)
        print(f"screenshot: {path}")

    def runnable_tests(self, *, ran: bool) -> list[str]:
        """Test labels of the seeded push that already ran on it (or did not)."""
        done = self.env.push.push.label_to_taskid
        return [
            label
            for label in self.env.push.push.graph
            if label.startswith("test-") and (label in done) == ran
        ]


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    missing = missing_prerequisite()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests must run in CI: {missing}")
        pytest.skip(missing)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture
async def site(tmp_path: Path, browser: Browser) -> AsyncIterator[Site]:
    store = SqliteStore(tmp_path / "store.sqlite3")
    async with embedded(store=store, tasks=1500, worker_seconds=WORKER_SECONDS) as env:
        env.bot.settings = replace(env.bot.settings, poll_interval=0.1)
        api = ApiAdapter(
            env.bot, ApiSettings(tokens={TOKEN: ApiToken(actor="alice", level="write")})
        )
        runner = web.AppRunner(make_app(env.bot, [api.install, WebAdapter(env.bot).install]))
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        host, port = runner.addresses[0][:2]
        context = await browser.new_context(viewport={"width": 1440, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        running = Site(env, f"http://{host}:{port}", page)
        page.on("pageerror", lambda error: running.problems.append(f"page error: {error}"))
        page.on("dialog", lambda dialog: running.problems.append(f"dialog: {dialog.message}"))
        page.on("console", lambda message: running.console(message.type, message.text))
        try:
            yield running
        finally:
            await context.close()
            await runner.cleanup()
    await store.close()
    assert not running.problems


async def shown_count(page: Page) -> tuple[int, int]:
    text = await page.locator("#count").inner_text()
    found = COUNT.search(text)
    assert found, text
    return int(found[1]), int(found[2])


async def test_pick_preview_schedule_and_follow_until_finished(site: Site) -> None:
    from playwright.async_api import expect

    page, env = site.page, site.env
    await page.goto(f"{site.url}/")

    # The grid: every runnable job of the push, a row per platform and collection.
    await expect(page.locator("#count")).to_have_text(COUNT)
    shown, total = await shown_count(page)
    assert shown == await page.locator("#grid button.job").count()
    assert 0 < shown <= total == len(env.push.push.graph)
    ran = site.runnable_tests(ran=True)[0]
    await expect(page.locator(f'#grid button.job.ran[title="{ran}"]')).to_have_count(1)
    await expect(page.get_by_role("group", name="linux1804-64-qr debug")).to_have_count(1)
    await site.shot("01-grid")

    # Searching narrows the grid; the query goes to the server.
    await page.get_by_label("Search").fill("mochitest-browser-chrome !asan !tsan !ccov")
    await expect(page.locator("#count")).not_to_have_text(f"{shown} of {total} jobs shown")
    narrowed, _ = await shown_count(page)
    assert 0 < narrowed < shown
    titles = await page.locator("#grid button.job").evaluate_all("b => b.map(x => x.title)")
    assert all("mochitest-browser-chrome" in t and "asan" not in t for t in titles)

    # Two jobs that did not run yet (nor fail on the demo worker).
    fresh = set(site.runnable_tests(ran=False))
    picked = [
        t
        for t in titles
        if t in fresh and not any(fnmatch.fnmatchcase(t, r.pattern) for r in DEMO_FAILURES)
    ][:2]
    assert len(picked) == 2
    for label in picked:
        button = page.locator(f'#grid button.job[title="{label}"]')
        await expect(button).not_to_have_class(re.compile(r"\bran\b"))
        await button.click()
        await expect(button).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#selected-count")).to_have_text("2")
    await expect(page.locator("#selected-list code")).to_have_text(picked)

    # Without a token the page only reads.
    preview = page.get_by_role("button", name="Preview (dry run)")
    schedule = page.get_by_role("button", name="Schedule", exact=True)
    await expect(preview).to_be_disabled()
    await expect(schedule).to_be_disabled()
    await expect(page.locator("#actions-help")).to_contain_text("Read-only")
    await site.shot("02-selected-read-only")

    await page.get_by_label("API token").fill(TOKEN)
    await expect(preview).to_be_enabled()
    assert await page.evaluate("localStorage.getItem('taskbot.apiToken')") == TOKEN

    # Preview: the plan, nothing created.
    before = len(env.tc.queue.tasks)
    await preview.click()
    result = page.locator("#result-text")
    await expect(result).to_contain_text("(dry run: nothing was scheduled)")
    await expect(result).to_contain_text(re.compile(r"2 new tasks \(2 requested, \d+ dependenc"))
    for label in picked:
        await expect(result).to_contain_text(label)
    assert len(env.tc.queue.tasks) == before
    await site.shot("03-preview")

    # Schedule: a request id, and the selection is done with.
    await schedule.click()
    await expect(result).to_have_text(re.compile(r"^\[r[0-9a-f]+\] schedule "))
    rid = re.match(r"\[(r[0-9a-f]+)\]", await result.inner_text())
    assert rid
    request_id = rid[1]
    assert len(env.tc.queue.tasks) > before
    await expect(page.locator("#selected-count")).to_have_text("0")
    await site.shot("04-scheduled")

    # The dashboard: the request, live until it finishes.
    await page.get_by_role("link", name=f"Follow {request_id}").click()
    await expect(page).to_have_url(re.compile(rf"/requests\?id={request_id}$"))
    row = page.locator(f'#requests tr[data-id="{request_id}"]')
    await expect(row).to_contain_text("alice")
    state = row.locator(".state")
    first_seen = await state.inner_text()
    assert first_seen in ("submitting", "submitted"), first_seen
    await expect(page.locator("#tasks tbody tr")).to_have_count(2)
    await site.shot("05-requests-running")
    await expect(state).to_have_text("finished", timeout=WORKER_SECONDS * 1000 + TIMEOUT_MS)
    await expect(page.locator("#status")).to_contain_text(f"{request_id} finished")
    await expect(page.locator("#tasks tbody .state")).to_have_text(["completed", "completed"])
    await expect(row.locator(".counts")).to_contain_text("2 completed")
    await expect(page.locator("#detail-links a", has_text="Task group")).to_have_count(1)
    await site.shot("06-requests-finished")
    record = await env.store.request(request_id)
    assert record is not None
    assert record.state == "finished"


async def test_a_wrong_token_is_refused_and_names_are_text(site: Site) -> None:
    from playwright.async_api import expect

    page, env = site.page, site.env
    await page.goto(f"{site.url}/")
    label = site.runnable_tests(ran=False)[0]
    await page.get_by_label("Search").fill(label)
    button = page.locator(f'#grid button.job[title="{label}"]')
    await button.click()
    await page.get_by_label("API token").fill("not-the-token")
    before = len(env.tc.queue.tasks)
    await page.get_by_role("button", name="Schedule", exact=True).click()
    error = page.locator("#result-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("HTTP 401")
    await expect(error).to_contain_text("bearer token")
    assert len(env.tc.queue.tasks) == before
    await site.shot("07-wrong-token")

    # What the URL carries is shown as text: no markup, no script.
    hostile = '"><img src=x onerror=alert(1)>'
    await page.goto(f"{site.url}/?project={hostile}&revision=latest")
    await expect(page.locator("#project")).to_have_value(hostile)
    await expect(page.locator("#grid-error")).to_contain_text("not a project name")
    await expect(page.locator("img")).to_have_count(0)
    await site.shot("08-bad-project")


async def test_backfill_the_picked_job_on_the_pushes_before(site: Site) -> None:
    from playwright.async_api import expect

    from bot.localtc.chain import Breakage, seed_chain

    env = site.env
    broken = "test-linux1804-64-shippable-qr/opt-xpcshell-spi-nw-1"
    chain = seed_chain(
        env.tc, 5, tasks=300, project="mozilla-central", breakage=Breakage((broken,), break_at=3)
    )
    assert env.worker is not None
    env.worker.decide = chain.outcome
    page = site.page
    await page.goto(f"{site.url}/?project=mozilla-central&revision=latest")
    job = page.locator(f'#grid button.job[title="{broken}"]')
    await job.click()
    await expect(job).to_have_attribute("aria-pressed", "true")
    backfill = page.get_by_role("button", name="Backfill")
    await expect(backfill).to_be_disabled()  # no token: the page only reads
    await page.get_by_label("API token").fill(TOKEN)
    await page.locator("#depth").fill("3")
    before = len(env.tc.queue.tasks)
    await backfill.click()
    result = page.locator("#result-text")
    await expect(result).to_contain_text("on the 3 pushes before it")
    for push in chain.pushes[1:4]:
        await expect(result).to_contain_text(push.revision[:12])
    assert len(env.tc.queue.tasks) == before + 3
    await site.shot("07-backfill")
