// The requests dashboard: recent requests refreshed every two seconds; selecting one shows
// its tasks, their states and links, refreshed with it.

import { TOKEN_KEY, api, el, link, showError, timeElement } from "./common.js";

const REFRESH_MS = 2000;
const LIMIT = 20;
const STATE_NAMES = {
  awaiting_confirmation: "awaiting confirmation",
};

const byId = (id) => document.getElementById(id);
const ui = {
  status: byId("status"),
  updated: byId("updated"),
  error: byId("error"),
  rows: byId("requests").tBodies[0],
  detail: byId("detail"),
  detailTitle: byId("detail-title"),
  detailSummary: byId("detail-summary"),
  detailCommand: byId("detail-command"),
  detailLinks: byId("detail-links"),
  tasks: byId("tasks").tBodies[0],
};

const state = {
  rows: new Map(), // request id -> its <tr>
  states: new Map(), // request id -> its state at the last refresh, to announce changes
  selected: new URLSearchParams(window.location.search).get("id"),
  timer: 0,
};

/** A class name for a state: letters and underscores only. */
const stateClass = (name) => `state-${String(name).replace(/[^a-z_]/g, "")}`;

function badge(value) {
  const name = String(value ?? "unknown");
  return el("span", { class: `state ${stateClass(name)}` }, STATE_NAMES[name] ?? name);
}

/** "3 tasks: 1 completed, 2 pending", with a chip per state. */
function taskCounts(request) {
  const counts = request.counts && typeof request.counts === "object" ? request.counts : {};
  const total = Number(request.taskCount) || 0;
  const chips = Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, n]) => el("span", { class: `chip ${stateClass(name)}` }, `${n} ${name}`));
  return el("span", { class: "counts" }, `${total} ${total === 1 ? "task" : "tasks"}`, ...chips);
}

function place(request) {
  const revision = request.revision ? request.revision.slice(0, 12) : "latest";
  return request.project ? `${request.project}@${revision}` : "";
}

function fillRow(row, request) {
  const selected = request.id === state.selected;
  row.classList.toggle("selected", selected);
  if (selected) row.setAttribute("aria-current", "true");
  else row.removeAttribute("aria-current");
  const open = el(
    "button",
    {
      type: "button",
      class: "linklike",
      "aria-expanded": String(selected),
      "aria-controls": "detail",
    },
    request.id,
  );
  const cells = [
    el("th", { scope: "row" }, open),
    el(
      "td",
      {},
      request.actor ?? "",
      el("span", { class: "hint" }, ` via ${request.source ?? "?"}`),
    ),
    el(
      "td",
      { class: "command" },
      el("code", { title: request.command ?? "" }, request.command ?? ""),
      // The command names its push when it says `on PROJECT@REV`; else say where it ran.
      String(request.command ?? "").includes(`${request.project}@`)
        ? null
        : el("span", { class: "hint" }, ` ${place(request)}`),
    ),
    el("td", {}, badge(request.state)),
    el("td", {}, taskCounts(request)),
    el("td", {}, timeElement(request.createdAt)),
  ];
  const focused = row.contains(document.activeElement);
  row.replaceChildren(...cells);
  if (focused) open.focus();
}

function renderRequests(requests) {
  const seen = new Set();
  requests.forEach((request, index) => {
    if (typeof request?.id !== "string") return;
    seen.add(request.id);
    let row = state.rows.get(request.id);
    if (!row) {
      row = el("tr", { dataset: { id: request.id } });
      state.rows.set(request.id, row);
    }
    fillRow(row, request);
    // Moves only the rows out of place (new ones on top), so focus stays where it is.
    const there = ui.rows.children[index];
    if (there !== row) ui.rows.insertBefore(row, there ?? null);
  });
  for (const [id, row] of state.rows) {
    if (!seen.has(id)) {
      row.remove();
      state.rows.delete(id);
    }
  }
  announce(requests);
}

/** Says in the live region which requests changed state since the last refresh. */
function announce(requests) {
  const first = state.states.size === 0;
  const changes = [];
  for (const request of requests) {
    const before = state.states.get(request.id);
    const now = STATE_NAMES[request.state] ?? request.state;
    if (!first && before !== now) changes.push(`${request.id} ${now}`);
    state.states.set(request.id, now);
  }
  if (changes.length) ui.status.textContent = `Now: ${changes.join(", ")}`;
}

function renderDetail(request) {
  ui.detail.hidden = false;
  ui.detailTitle.textContent = `Request ${request.id}`;
  ui.detailSummary.replaceChildren(
    badge(request.state),
    ` by ${request.actor ?? "?"} on ${place(request)}, `,
    taskCounts(request),
  );
  if (request.error) {
    ui.detailSummary.append(el("span", { class: "error-text" }, ` ${request.error}`));
  }
  ui.detailCommand.replaceChildren(el("code", {}, request.command ?? ""));
  const links = request.links && typeof request.links === "object" ? request.links : {};
  const items = [];
  if (links.taskGroup) items.push(link(links.taskGroup, "Task group"));
  if (links.treeherder) items.push(link(links.treeherder, "Treeherder"));
  ui.detailLinks.replaceChildren(...items.flatMap((item, i) => (i ? [" · ", item] : [item])));
  const tasks = Array.isArray(request.tasks) ? request.tasks : [];
  ui.tasks.replaceChildren(
    ...tasks.map((task) =>
      el(
        "tr",
        { dataset: { label: task.label ?? "" } },
        el("td", {}, el("code", {}, task.label ?? "")),
        el("td", {}, badge(task.state)),
        el("td", {}, task.requested ? "yes" : "dependency"),
        el("td", {}, task.url ? link(task.url, task.taskId ?? "task") : (task.taskId ?? "")),
      ),
    ),
  );
  if (!tasks.length) {
    ui.tasks.replaceChildren(el("tr", {}, el("td", { colspan: "4", class: "hint" }, "No tasks.")));
  }
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    const token = window.localStorage.getItem(TOKEN_KEY) || "";
    const data = await api(`/api/v1/requests?limit=${LIMIT}`, { token });
    renderRequests(Array.isArray(data.requests) ? data.requests : []);
    if (state.selected) {
      try {
        renderDetail(
          await api(`/api/v1/requests/${encodeURIComponent(state.selected)}`, { token }),
        );
      } catch (error) {
        ui.detail.hidden = false;
        ui.detailTitle.textContent = `Request ${state.selected}`;
        ui.detailSummary.textContent = error.describe ? error.describe() : String(error);
        ui.detailCommand.replaceChildren();
        ui.detailLinks.replaceChildren();
        ui.tasks.replaceChildren();
      }
    }
    showError(ui.error, "");
    const count = Array.isArray(data.requests) ? data.requests.length : 0;
    ui.updated.textContent = count
      ? `The ${count} most recent requests, updated ${new Date().toLocaleTimeString()}.`
      : "No requests yet.";
  } catch (error) {
    const why = error.describe ? error.describe() : String(error);
    showError(ui.error, `Could not load the requests: ${why}`);
  } finally {
    state.timer = setTimeout(refresh, REFRESH_MS);
  }
}

function select(id) {
  state.selected = id;
  const params = new URLSearchParams(window.location.search);
  params.set("id", id);
  history.replaceState(null, "", `${window.location.pathname}?${params}`);
  for (const [rowId, row] of state.rows) {
    row.classList.toggle("selected", rowId === id);
    if (rowId === id) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
  refresh();
}

ui.rows.addEventListener("click", (event) => {
  if (event.target.closest("a")) return;
  const row = event.target.closest("tr[data-id]");
  if (row) select(row.dataset.id);
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});

refresh();
