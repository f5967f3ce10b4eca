// The audit log: who did what from where, newest first, a page at a time, filtered by user,
// by event and by time (from, to: the browser's local time, sent as UTC) as the API allows.
// The filters live in the page's address (times as RFC 3339 UTC), so a filtered view can be
// reloaded or sent to someone. Arrow keys move between rows.

import { api } from "./api.js";
import { fill, h, sentence, table, when } from "./dom.js";

const EVENTS = [
  "login",
  "lockout",
  "logout",
  "session_revoked",
  "token_created",
  "token_revoked",
  "user_added",
  "user_deleted",
  "password_changed",
  "role_changed",
  "user_disabled",
  "user_enabled",
  "display_name_changed",
  "totp_enrolled",
  "totp_confirmed",
  "totp_disabled",
  "recovery_code_used",
  "console_shell",
  "host_change",
];
const PAGE_SIZE = 50;

const words = (event) => event.replaceAll("_", " ");

// An RFC 3339 stamp as a datetime-local input's value (local time, to the minute), or "".
function localValue(stamp) {
  const moment = new Date(stamp ?? "");
  if (Number.isNaN(moment.getTime())) return "";
  return new Date(moment.getTime() - moment.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

// A datetime-local input's value as an RFC 3339 UTC stamp, "" when empty. `toEnd` takes the
// last second of the minute shown, so "to 10:30" keeps what happened during 10:30.
function stampOf(input, toEnd = false) {
  if (!input.value) return "";
  const moment = new Date(input.value);
  if (Number.isNaN(moment.getTime())) return "";
  const seconds = input.value.length <= 16 && toEnd ? 59_000 : 0;
  return new Date(moment.getTime() + seconds).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function start(view) {
  const params = new URLSearchParams(location.search);
  const user = h("input", { type: "search", id: "audit-user", name: "user", value: params.get("user") ?? "", placeholder: "any user", autocapitalize: "none", spellcheck: "false" });
  const event = h(
    "select",
    { id: "audit-event", name: "event" },
    h("option", { value: "" }, "any action"),
    EVENTS.map((name) => h("option", { value: name, selected: name === params.get("event") }, words(name))),
  );
  const since = h("input", { type: "datetime-local", id: "audit-since", name: "since", value: localValue(params.get("since")) });
  const until = h("input", { type: "datetime-local", id: "audit-until", name: "until", value: localValue(params.get("until")) });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const results = h("div", { id: "audit-results" });
  const newer = h("button", { type: "button", class: "secondary small", id: "audit-newer" }, "← Newer");
  const older = h("button", { type: "button", class: "secondary small", id: "audit-older" }, "Older →");
  const where = h("span", { class: "hint", role: "status" });
  // The `before` of each page shown so far: the first is the newest entries.
  const pages = [null];

  async function load() {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const before = pages[pages.length - 1];
    if (before !== null) query.set("before", String(before));
    if (user.value.trim()) query.set("user", user.value.trim());
    if (event.value) query.set("event", event.value);
    if (stampOf(since)) query.set("since", stampOf(since));
    if (stampOf(until, true)) query.set("until", stampOf(until, true));
    let answer;
    try {
      answer = await api("GET", `/api/v1/audit?${query}`);
      error.hidden = true;
    } catch (failure) {
      error.textContent = sentence(failure.message);
      error.hidden = false;
      fill(results);
      return;
    }
    fill(
      results,
      table(
        [
          { title: "When", class: "nowrap", cell: (entry) => h("time", { datetime: new Date(entry.at * 1000).toISOString() }, when(entry.at)) },
          { title: "By", cell: (entry) => entry.actor ?? entry.username ?? "–" },
          { title: "From", class: "mono", cell: (entry) => entry.source ?? "–" },
          { title: "Action", cell: (entry) => words(entry.event) },
          { title: "About", cell: (entry) => (entry.actor && entry.username ? entry.username : "–") },
          { title: "Result", cell: (entry) => h("span", { class: `outcome outcome-${entry.outcome}` }, entry.outcome) },
          { title: "Detail", cell: (entry) => entry.detail || "–" },
        ],
        answer.entries,
        {
          empty: pages.length > 1 ? "No older entries." : "No entries match.",
          label: "Audit log",
          rowAttributes: (entry) => ({ tabindex: "0", "data-id": entry.id }),
        },
      ),
    );
    newer.disabled = pages.length === 1;
    older.disabled = answer.next_before === null || answer.next_before === undefined;
    older.dataset.next = answer.next_before ?? "";
    where.textContent = answer.entries.length ? `Page ${pages.length}, ${answer.entries.length} entries` : "";
  }

  const filter = () => {
    pages.length = 1;
    const shown = new URLSearchParams();
    if (user.value.trim()) shown.set("user", user.value.trim());
    if (event.value) shown.set("event", event.value);
    if (stampOf(since)) shown.set("since", stampOf(since));
    if (stampOf(until, true)) shown.set("until", stampOf(until, true));
    history.replaceState(null, "", shown.size ? `?${shown}` : location.pathname);
    load();
  };

  const form = h(
    "form",
    { class: "toolbar filters", id: "audit-filters", role: "search" },
    h("span", { class: "pair" }, h("label", { for: "audit-user" }, "User"), user),
    h("span", { class: "pair" }, h("label", { for: "audit-event" }, "Action"), event),
    h("span", { class: "pair" }, h("label", { for: "audit-since" }, "From"), since),
    h("span", { class: "pair" }, h("label", { for: "audit-until" }, "To"), until),
    h("button", { type: "submit", class: "small" }, "Filter"),
    h("button", { type: "button", class: "secondary small", on: { click: () => ((user.value = ""), (event.value = ""), (since.value = ""), (until.value = ""), filter()) } }, "Clear"),
  );
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    filter();
  });
  event.addEventListener("change", filter);
  newer.addEventListener("click", () => {
    pages.pop();
    load();
  });
  older.addEventListener("click", () => {
    pages.push(Number(older.dataset.next));
    load();
  });
  results.addEventListener("keydown", (key) => {
    const row = key.target.closest?.("tr[tabindex]");
    if (!row) return;
    const next = key.key === "ArrowDown" ? row.nextElementSibling : key.key === "ArrowUp" ? row.previousElementSibling : null;
    if (next) {
      key.preventDefault();
      next.focus();
    }
  });
  fill(
    view,
    form,
    h("p", { class: "hint" }, "Newest first. The user filter finds what a user did and what was done to them; From and To are in this browser's time zone and include the minutes they name. Tab to a row, then use the arrow keys."),
    error,
    results,
    h("div", { class: "toolbar pager" }, newer, older, where),
  );
  load();
}
