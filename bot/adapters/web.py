"""The web pages: Treeherder's "Add new jobs" picker and a requests dashboard, on the JSON API."""

from __future__ import annotations

import html
import re
from pathlib import Path
from string import Template

from aiohttp import web

from bot.core.runtime import Runtime

STATIC_DIR = Path(__file__).with_name("web_static")
STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\.(css|js)")
CONTENT_TYPES = {"css": "text/css", "js": "text/javascript"}

# The pages run no inline script or style and load nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

CURRENT = ' aria-current="page"'

LAYOUT = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/taskbot.css">
<script type="module" src="/static/$script"></script>
</head>
<body>
<header class="top">
  <span class="brand">$name</span>
  <nav aria-label="Pages">
    <a href="/"$picker_current>Add new jobs</a>
    <a href="/requests"$requests_current>Requests</a>
  </nav>
</header>
$main
</body>
</html>
""")

PICKER = Template("""<main class="picker">
<h1>Add new jobs</h1>
<form id="push-form" class="toolbar" action="/" method="get">
  <label>Project
    <select id="project" name="project">
      <option value="$project" selected>$project</option>
    </select>
  </label>
  <label>Revision
    <input id="revision" name="revision" value="$revision" size="14" spellcheck="false"
           autocomplete="off" aria-describedby="revision-help">
  </label>
  <span id="revision-help" class="hint">7–40 hex digits, or latest</span>
  <button type="submit">Load jobs</button>
</form>
<div class="toolbar">
  <label>Search
    <input id="search" name="q" type="search" value="$query" size="28" spellcheck="false"
           autocomplete="off" placeholder="mochitest !asan" aria-describedby="search-help">
  </label>
  <span id="search-help" class="hint">fzf-style: words, !not, ^start, end$$</span>
  <label>Platform
    <input id="platform" name="platform" value="$platform" size="18" spellcheck="false"
           autocomplete="off" placeholder="linux64/debug">
  </label>
  <p id="count" class="count" role="status" aria-live="polite">Loading jobs…</p>
</div>
<div class="layout">
  <section class="jobs" aria-labelledby="jobs-title">
    <h2 id="jobs-title" class="visually-hidden">Runnable jobs</h2>
    <p class="legend" aria-hidden="true">
      <span class="job">bc1</span> can run
      <span class="job ran">bc2</span> already ran on this push
      <span class="job selected">bc3</span> selected
    </p>
    <div id="grid-error" class="error" role="alert" hidden></div>
    <div id="grid" class="grid" aria-busy="true"></div>
  </section>
  <aside class="side">
    <section class="selection" aria-labelledby="selection-title">
      <h2 id="selection-title">Selected jobs: <span id="selected-count">0</span></h2>
      <p id="selected-empty" class="hint">Click a job symbol to select it.</p>
      <ul id="selected-list" class="selected-list"></ul>
      <form id="token-form" class="token">
        <input type="text" name="username" value="taskbot-api" autocomplete="username" hidden>
        <label for="token">API token</label>
        <input id="token" type="password" autocomplete="current-password" spellcheck="false"
               aria-describedby="token-help">
        <button id="forget-token" type="button">Forget</button>
        <p id="token-help" class="hint">Kept in this browser only; sent as a bearer token.</p>
      </form>
      <div class="actions">
        <button id="preview" type="button" disabled aria-describedby="actions-help">
          Preview (dry run)</button>
        <button id="schedule" type="button" class="primary" disabled
                aria-describedby="actions-help">Schedule</button>
        <button id="backfill" type="button" disabled aria-describedby="actions-help"
                title="Run the selected jobs on the pushes before this one">Backfill</button>
        <label class="depth">on
          <input id="depth" type="number" min="1" max="25" value="5" size="3"
                 aria-describedby="actions-help"> pushes before</label>
        <button id="clear" type="button" disabled>Clear selection</button>
      </div>
      <p id="actions-help" class="hint" aria-live="polite"></p>
    </section>
    <section id="result" class="result" aria-labelledby="result-title" aria-live="polite">
      <h2 id="result-title">Result</h2>
      <div id="result-error" class="error" role="alert" hidden></div>
      <p id="result-empty" class="hint">The bot's answer appears here.</p>
      <pre id="result-text" hidden></pre>
      <div id="result-extra"></div>
    </section>
  </aside>
</div>
</main>""")

REQUESTS = Template("""<main class="requests">
<h1>Requests</h1>
<p class="hint"><span id="updated">Loading…</span>
  <span id="status" role="status" aria-live="polite"></span></p>
<div id="error" class="error" role="alert" hidden></div>
<table id="requests" class="table">
  <caption class="visually-hidden">Recent requests, newest first; select one to see its
    tasks</caption>
  <thead>
    <tr><th scope="col">Request</th><th scope="col">Who</th><th scope="col">What</th>
      <th scope="col">State</th><th scope="col">Tasks</th><th scope="col">Created</th></tr>
  </thead>
  <tbody></tbody>
</table>
<section id="detail" class="detail" aria-labelledby="detail-title" hidden>
  <h2 id="detail-title">Request</h2>
  <p id="detail-summary" aria-live="polite"></p>
  <p id="detail-command" class="command"></p>
  <p id="detail-links"></p>
  <table id="tasks" class="table">
    <caption class="visually-hidden">Tasks of the request</caption>
    <thead>
      <tr><th scope="col">Label</th><th scope="col">State</th><th scope="col">Requested</th>
        <th scope="col">Task</th></tr>
    </thead>
    <tbody></tbody>
  </table>
</section>
</main>""")


def _fill(template: Template, **values: str) -> str:
    """``template`` with every value HTML-escaped."""
    return template.substitute({k: html.escape(v, quote=True) for k, v in values.items()})


class WebAdapter:
    """Serves the picker (/), the requests dashboard (/requests) and their static files; the
    pages call the JSON API (bot.adapters.api) from the browser."""

    def __init__(self, bot: Runtime) -> None:
        self.bot = bot

    def install(self, app: web.Application) -> None:
        app.router.add_get("/", self.picker)
        app.router.add_get("/requests", self.requests)
        app.router.add_get("/static/{name}", self.static)

    def _page(self, title: str, script: str, main: str, current: str) -> web.Response:
        """The layout around ``main`` (HTML built by _fill); ``current`` is the page's path."""
        settings = self.bot.settings
        escaped = {
            "title": f"{title} · {settings.name}",
            "name": settings.name,
            "script": script,
        }
        page = LAYOUT.substitute(
            {k: html.escape(v, quote=True) for k, v in escaped.items()},
            main=main,
            picker_current=CURRENT if current == "/" else "",
            requests_current=CURRENT if current == "/requests" else "",
        )
        return web.Response(
            text=page, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS
        )

    async def picker(self, request: web.Request) -> web.Response:
        query = request.query
        main = _fill(
            PICKER,
            project=query.get("project", "").strip() or self.bot.settings.default_project,
            revision=query.get("revision", "").strip() or "latest",
            query=query.get("q", ""),
            platform=query.get("platform", ""),
        )
        return self._page("Add new jobs", "picker.js", main, "/")

    async def requests(self, request: web.Request) -> web.Response:
        return self._page("Requests", "requests.js", _fill(REQUESTS), "/requests")

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        found = STATIC_NAME.fullmatch(name)
        path = STATIC_DIR / name
        if not found or not path.is_file():
            raise web.HTTPNotFound(text=f"no static file {name[:60]}")
        return web.FileResponse(
            path,
            headers={
                "Content-Type": CONTENT_TYPES[found[1]],
                "Cache-Control": "no-cache",  # revalidated (ETag) so a deploy shows at once
                "X-Content-Type-Options": "nosniff",
            },
        )
