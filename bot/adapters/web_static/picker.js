// The "Add new jobs" picker: the runnable jobs of a push as Treeherder's symbol grid, a
// selection, and Preview / Schedule through the bot's commands endpoint.

import { ApiError, TOKEN_KEY, api, el, naturalCompare, showError } from "./common.js";

const DEBOUNCE_MS = 250;
const COLLECTION_ORDER = ["opt", "debug"]; // then the others, alphabetically
const NO_PLATFORM = "(no platform)";

const byId = (id) => document.getElementById(id);
const ui = {
  form: byId("push-form"),
  project: byId("project"),
  revision: byId("revision"),
  search: byId("search"),
  platform: byId("platform"),
  count: byId("count"),
  grid: byId("grid"),
  gridError: byId("grid-error"),
  selectedCount: byId("selected-count"),
  selectedEmpty: byId("selected-empty"),
  selectedList: byId("selected-list"),
  tokenForm: byId("token-form"),
  token: byId("token"),
  forgetToken: byId("forget-token"),
  preview: byId("preview"),
  schedule: byId("schedule"),
  backfill: byId("backfill"),
  depth: byId("depth"),
  clear: byId("clear"),
  actionsHelp: byId("actions-help"),
  resultTitle: byId("result-title"),
  resultError: byId("result-error"),
  resultEmpty: byId("result-empty"),
  resultText: byId("result-text"),
  resultExtra: byId("result-extra"),
};

const state = {
  loaded: null, // {project, revision} of the jobs in the grid
  buttons: new Map(), // label -> its button in the grid
  selected: new Map(), // label -> job, kept while the search changes
  busy: false,
  loading: null, // AbortController of the jobs request in flight
};

// --- the grid ------------------------------------------------------------------------------

function collectionName(job) {
  const collection = job.collection || {};
  const names = Object.keys(collection).filter((name) => collection[name]);
  return names.sort(collectionCompare).join(" ");
}

function collectionCompare(a, b) {
  const rank = (name) => {
    const index = COLLECTION_ORDER.indexOf(name);
    return index < 0 ? COLLECTION_ORDER.length : index;
  };
  return rank(a) - rank(b) || naturalCompare(a, b);
}

function groupOf(job) {
  const symbol = job.groupSymbol;
  return symbol && symbol !== "?" ? symbol : null;
}

/** Rows of the grid, one per platform and collection, sorted as Treeherder lists them. */
function rowsOf(jobs) {
  const rows = new Map();
  for (const [label, job] of Object.entries(jobs)) {
    const platform = job.platform || NO_PLATFORM;
    const collection = collectionName(job);
    const key = `${platform}\u0000${collection}`;
    let row = rows.get(key);
    if (!row) {
      row = { platform, collection, single: [], groups: new Map() };
      rows.set(key, row);
    }
    const group = groupOf(job);
    if (group === null) {
      row.single.push([label, job]);
    } else {
      if (!row.groups.has(group)) row.groups.set(group, { name: job.groupName || group, jobs: [] });
      row.groups.get(group).jobs.push([label, job]);
    }
  }
  const bySymbol = ([labelA, a], [labelB, b]) =>
    naturalCompare(a.symbol, b.symbol) || naturalCompare(labelA, labelB);
  const sorted = [...rows.values()].sort(
    (a, b) =>
      naturalCompare(a.platform, b.platform) ||
      collectionCompare(a.collection, b.collection) ||
      naturalCompare(a.collection, b.collection),
  );
  for (const row of sorted) {
    row.single.sort(bySymbol);
    for (const group of row.groups.values()) group.jobs.sort(bySymbol);
    row.groups = [...row.groups.entries()].sort(([a], [b]) => naturalCompare(a, b));
  }
  return sorted;
}

function jobButton(label, job) {
  const ran = Boolean(job.alreadyRan);
  const button = el(
    "button",
    {
      type: "button",
      class: ran ? "job ran" : "job",
      title: label,
      "aria-label": ran ? `${job.symbol} ${label} (already ran)` : `${job.symbol} ${label}`,
      "aria-pressed": String(state.selected.has(label)),
      dataset: { label },
    },
    job.symbol,
  );
  state.buttons.set(label, button);
  return button;
}

function renderGrid(jobs) {
  state.buttons = new Map();
  const jobsByLabel = new Map(Object.entries(jobs));
  const fragment = document.createDocumentFragment();
  for (const row of rowsOf(jobs)) {
    const name = row.collection ? `${row.platform} ${row.collection}` : row.platform;
    const cells = el("div", { class: "cells" });
    for (const [label, job] of row.single) cells.append(jobButton(label, job));
    for (const [symbol, group] of row.groups) {
      const members = group.jobs.map(([label, job]) => jobButton(label, job));
      cells.append(
        el(
          "span",
          { class: "group", role: "group", "aria-label": group.name, title: group.name },
          el("span", { class: "group-symbol", "aria-hidden": "true" }, `${symbol}(`),
          ...members,
          el("span", { class: "group-symbol", "aria-hidden": "true" }, ")"),
        ),
      );
    }
    fragment.append(
      el(
        "div",
        { class: "row", role: "group", "aria-label": name },
        el(
          "div",
          { class: "platform" },
          row.platform,
          row.collection ? el("span", { class: "collection" }, ` ${row.collection}`) : null,
        ),
        cells,
      ),
    );
  }
  ui.grid.replaceChildren(fragment);
  // Jobs selected earlier keep what the server said about them, even when now hidden.
  for (const label of state.selected.keys()) {
    if (jobsByLabel.has(label)) state.selected.set(label, jobsByLabel.get(label));
  }
}

function currentFilters() {
  return {
    project: ui.project.value,
    revision: ui.revision.value.trim() || "latest",
    q: ui.search.value.trim(),
    platform: ui.platform.value.trim(),
  };
}

function rememberInUrl({ project, revision, q, platform }) {
  const params = new URLSearchParams();
  params.set("project", project);
  params.set("revision", revision);
  if (q) params.set("q", q);
  if (platform) params.set("platform", platform);
  history.replaceState(null, "", `${window.location.pathname}?${params}`);
}

async function loadJobs() {
  const filters = currentFilters();
  if (!filters.project) return;
  state.loading?.abort();
  const controller = new AbortController();
  state.loading = controller;
  const params = new URLSearchParams();
  if (filters.q) params.set("q", filters.q);
  if (filters.platform) params.append("platform", filters.platform);
  const path =
    `/api/v1/projects/${encodeURIComponent(filters.project)}` +
    `/pushes/${encodeURIComponent(filters.revision)}/runnable-jobs` +
    (params.size ? `?${params}` : "");
  ui.grid.setAttribute("aria-busy", "true");
  ui.count.textContent = "Loading jobs…";
  rememberInUrl(filters);
  try {
    const data = await api(path, { signal: controller.signal });
    if (state.loading !== controller) return;
    const jobs = data.jobs && typeof data.jobs === "object" ? data.jobs : {};
    showError(ui.gridError, "");
    const pushChanged =
      state.loaded &&
      (state.loaded.project !== data.project || state.loaded.revision !== data.revision);
    if (pushChanged) clearSelection(); // labels of another push mean nothing here
    // `latest` resolves to the push's own revision: what is previewed is what gets scheduled.
    state.loaded = { project: data.project, revision: data.revision, latest: data.latest };
    renderGrid(jobs);
    const shown = Object.keys(jobs).length;
    const count = `${shown} of ${data.total} jobs shown`;
    ui.count.textContent = data.note ? `${count}: ${data.note}` : count;
  } catch (error) {
    if (error.name === "AbortError" || state.loading !== controller) return;
    state.loaded = null;
    state.buttons = new Map();
    ui.grid.replaceChildren();
    ui.count.textContent = "No jobs shown";
    showError(ui.gridError, `Could not load the jobs: ${describe(error)}`);
  } finally {
    if (state.loading === controller) {
      state.loading = null;
      ui.grid.setAttribute("aria-busy", "false");
    }
    renderSelection();
  }
}

function debounce(fn, ms) {
  let timer = 0;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

// --- the selection -------------------------------------------------------------------------

function toggle(label) {
  const button = state.buttons.get(label);
  if (state.selected.has(label)) {
    state.selected.delete(label);
  } else {
    state.selected.set(label, {
      symbol: button?.textContent ?? "",
      alreadyRan: Boolean(button?.classList.contains("ran")),
    });
  }
  button?.setAttribute("aria-pressed", String(state.selected.has(label)));
  renderSelection();
}

function clearSelection() {
  for (const label of state.selected.keys()) {
    state.buttons.get(label)?.setAttribute("aria-pressed", "false");
  }
  state.selected.clear();
  renderSelection();
}

function renderSelection() {
  const items = [...state.selected.keys()].map((label) =>
    el(
      "li",
      {},
      el("code", { title: label }, label),
      el(
        "button",
        {
          type: "button",
          class: "remove",
          "aria-label": `Remove ${label}`,
          title: "Remove from the selection",
          onclick: () => toggle(label),
        },
        "×",
      ),
    ),
  );
  ui.selectedList.replaceChildren(...items);
  ui.selectedCount.textContent = String(state.selected.size);
  ui.selectedEmpty.hidden = state.selected.size > 0;
  ui.clear.disabled = state.selected.size === 0;
  updateActions();
}

function updateActions() {
  const token = ui.token.value.trim();
  let help = "";
  if (!token) help = "Read-only: enter an API token to preview or schedule jobs.";
  else if (!state.loaded) help = "Load the jobs of a push first.";
  else if (state.selected.size === 0) help = "Select jobs in the grid to preview or schedule them.";
  else if (state.busy) help = "Waiting for the bot…";
  else {
    const { project, revision, latest } = state.loaded;
    help = `On ${project}@${revision.slice(0, 12)}${latest ? " (the latest push)" : ""}.`;
  }
  const ready = Boolean(token) && Boolean(state.loaded) && state.selected.size > 0 && !state.busy;
  ui.preview.disabled = !ready;
  ui.schedule.disabled = !ready;
  ui.backfill.disabled = !ready;
  ui.actionsHelp.textContent = help;
}

// --- preview, schedule, confirm ------------------------------------------------------------

function describe(error) {
  return error instanceof ApiError ? error.describe() : String(error?.message ?? error);
}

function showResult(title, { text = "", error = "" } = {}) {
  ui.resultTitle.textContent = title;
  showError(ui.resultError, error);
  ui.resultText.textContent = text;
  ui.resultText.hidden = !text;
  ui.resultEmpty.hidden = Boolean(text || error);
  ui.resultExtra.replaceChildren();
}

async function command(text) {
  return api("/api/v1/commands", {
    method: "POST",
    token: ui.token.value.trim(),
    body: { text },
  });
}

/** The depth asked for, kept within what `backfill` takes (1 to 25 pushes). */
function depth() {
  const asked = Number.parseInt(ui.depth.value, 10);
  const kept = Number.isFinite(asked) ? Math.min(25, Math.max(1, asked)) : 5;
  ui.depth.value = String(kept);
  return kept;
}

async function run(dryRun, verb = "schedule") {
  if (!state.loaded || state.selected.size === 0) return;
  const { project, revision } = state.loaded;
  const labels = [...state.selected.keys()];
  const flags = (verb === "backfill" ? ` depth ${depth()}` : "") + (dryRun ? " --dry-run" : "");
  const text = `${verb} ${labels.join(" ")} on ${project}@${revision}${flags}`;
  const title = dryRun ? "Preview" : verb === "backfill" ? "Backfill" : "Schedule";
  state.busy = true;
  updateActions();
  const waiting = verb === "backfill" ? "Backfilling…" : "Scheduling…";
  showResult(title, { text: dryRun ? "Asking the bot for a preview…" : waiting });
  try {
    const data = await command(text);
    const replies = Array.isArray(data.replies) ? data.replies : [];
    const ids = Array.isArray(data.requestIds) ? data.requestIds : [];
    showResult(title, { text: replies.join("\n\n") || "(the bot did not answer)" });
    if (!dryRun && ids.length) {
      showRequestLinks(ids);
      clearSelection();
      await offerConfirmation(ids);
    }
  } catch (error) {
    showResult(title, { error: `${title} failed: ${describe(error)}` });
  } finally {
    state.busy = false;
    updateActions();
  }
}

function showRequestLinks(ids) {
  if (!ids.length) return;
  const links = ids.map((id) =>
    el("li", {}, el("a", { href: `/requests?id=${encodeURIComponent(id)}` }, `Follow ${id}`)),
  );
  ui.resultExtra.append(el("ul", { class: "links" }, ...links));
}

/** A request held above the confirmation threshold gets a Confirm button. */
async function offerConfirmation(ids) {
  for (const id of ids) {
    let request;
    try {
      request = await api(`/api/v1/requests/${encodeURIComponent(id)}`);
    } catch {
      continue;
    }
    if (request.state !== "awaiting_confirmation") continue;
    const button = el("button", { type: "button", class: "primary" }, `Confirm ${id}`);
    const waiting = `${id} is waiting for confirmation (${request.taskCount} tasks). `;
    const offer = el("p", {}, waiting, button);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const data = await command(`confirm ${id}`);
        const replies = Array.isArray(data.replies) ? data.replies : [];
        ui.resultText.textContent += `\n\n${replies.join("\n\n")}`;
        ui.resultText.hidden = false;
        offer.remove();
      } catch (error) {
        showError(ui.resultError, `Confirm failed: ${describe(error)}`);
        button.disabled = false;
      }
    });
    ui.resultExtra.append(offer);
  }
}

// --- projects and the token ----------------------------------------------------------------

async function loadProjects() {
  try {
    const data = await api("/api/v1/projects");
    const names = Array.isArray(data.projects) ? data.projects : [];
    const current = ui.project.value || data.default;
    const all = names.includes(current) ? names : [current, ...names];
    ui.project.replaceChildren(
      ...all.map((name) => el("option", { value: name, selected: name === current }, name)),
    );
  } catch (error) {
    showError(ui.gridError, `Could not list the projects: ${describe(error)}`);
  }
}

function loadToken() {
  try {
    ui.token.value = window.localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    ui.token.value = ""; // storage disabled: the token lasts as long as the page
  }
}

function saveToken() {
  const token = ui.token.value.trim();
  try {
    if (token) window.localStorage.setItem(TOKEN_KEY, token);
    else window.localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled
  }
  updateActions();
}

// --- wiring --------------------------------------------------------------------------------

ui.grid.addEventListener("click", (event) => {
  const button = event.target.closest("button.job");
  if (button) toggle(button.dataset.label);
});
ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  loadJobs();
});
ui.project.addEventListener("change", loadJobs);
const reload = debounce(loadJobs, DEBOUNCE_MS);
ui.search.addEventListener("input", reload);
ui.platform.addEventListener("input", reload);
ui.token.addEventListener("input", saveToken);
ui.tokenForm.addEventListener("submit", (event) => event.preventDefault());
ui.forgetToken.addEventListener("click", () => {
  ui.token.value = "";
  saveToken();
});
ui.preview.addEventListener("click", () => run(true));
ui.schedule.addEventListener("click", () => run(false));
ui.backfill.addEventListener("click", () => run(false, "backfill"));
ui.clear.addEventListener("click", clearSelection);

loadToken();
renderSelection();
loadProjects().then(loadJobs);
