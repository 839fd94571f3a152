// Shared by the picker and the requests dashboard: building elements, calling the JSON API.
// Everything that comes from the bot (labels, replies, names) goes into the page as text
// nodes or attribute values, never as HTML.

export const TOKEN_KEY = "taskbot.apiToken";

/** An element with attributes and children; strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** `url` if it is an http(s) address, else null: only those become links. */
export function safeUrl(url) {
  if (typeof url !== "string" || !url) return null;
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** A link to an http(s) address, or the text alone when the address is not one. */
export function link(url, text) {
  const href = safeUrl(url);
  return href ? el("a", { href, rel: "noopener noreferrer" }, text) : el("span", {}, text);
}

/** Compares strings with their digit runs as numbers: bc2 before bc10. */
const collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });
export const naturalCompare = (a, b) => collator.compare(a, b);

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }

  /** What to show: the API's `error`, with the HTTP status when there is one. */
  describe() {
    return this.status ? `${this.message} (HTTP ${this.status})` : this.message;
  }
}

/** Calls the JSON API; resolves to the parsed body, or throws an ApiError. */
export async function api(path, { method = "GET", token = "", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "omit",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(`could not reach the bot: ${error.message}`, 0);
  }
  const raw = await response.text();
  let data = null;
  try {
    data = raw ? JSON.parse(raw) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    let message = `the bot answered ${response.status} ${response.statusText}`.trim();
    if (data && typeof data.error === "string") message = data.error;
    else if (data && Array.isArray(data.replies) && data.replies.length)
      message = data.replies.join("\n\n"); // a command failed on the bot's side
    throw new ApiError(message, response.status);
  }
  if (data === null || typeof data !== "object") {
    throw new ApiError("the bot's answer was not JSON", response.status);
  }
  return data;
}

/** Shows `message` in a hidden-by-default error box, or hides the box when it is empty. */
export function showError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

/** A local time for an ISO timestamp, the full timestamp as its tooltip. */
export function timeElement(iso) {
  if (typeof iso !== "string" || !iso) return el("span", {}, "");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return el("span", {}, iso);
  return el("time", { datetime: iso, title: iso }, date.toLocaleTimeString());
}
