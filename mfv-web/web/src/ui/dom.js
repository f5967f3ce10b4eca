// Building the page from the API's answers. Every text goes in as a text node or an
// attribute value set through the DOM, never as markup, so nothing from outside is read as
// HTML.

// An element `tag` with `attributes` (`class`, `on` for listeners, others as attributes;
// false and null leave one out) and `children` (nodes, texts, arrays, nulls left out).
export function h(tag, attributes = {}, ...children) {
  const element = document.createElementNS(
    tag === "svg" || attributes.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
    tag,
  );
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "on") {
      for (const [event, listener] of Object.entries(value)) {
        element.addEventListener(event, listener);
      }
    } else if (name === "svg" || value === false || value === null || value === undefined) {
      continue;
    } else {
      element.setAttribute(name === "className" ? "class" : name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

// An SVG element `tag` with `attributes`.
export function svg(tag, attributes = {}, ...children) {
  return h(tag, { ...attributes, svg: true }, ...children);
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    if (Array.isArray(child)) {
      append(element, child);
    } else if (child instanceof Node) {
      element.append(child);
    } else {
      element.append(document.createTextNode(String(child)));
    }
  }
}

// `element` with `children` in place of what it held.
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export const byId = (id) => document.getElementById(id);

// The API's messages are sentence fragments; the page shows sentences.
export function sentence(text) {
  const trimmed = String(text ?? "").trim();
  if (trimmed === "") {
    return trimmed;
  }
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?:]$/.test(capital) ? capital : `${capital}.`;
}

// `count` bytes in the largest binary unit that keeps a number of at least 1.
export function bytes(count) {
  if (count === null || count === undefined || Number.isNaN(count)) {
    return "–";
  }
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = Number(count);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

// `ms` milliseconds as days, hours and minutes.
export function duration(ms) {
  const minutes = Math.floor(ms / 60000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const parts = [];
  if (days) parts.push(`${days} d`);
  if (days || hours) parts.push(`${hours} h`);
  parts.push(`${minutes % 60} min`);
  return parts.join(" ");
}

// A log line's time, microseconds since the kernel started, as the console shows it.
export function uptimeStamp(microseconds) {
  return `[${(microseconds / 1e6).toFixed(3).padStart(11)}]`;
}

// A date and time from Unix seconds, in the browser's zone.
export function when(unixSeconds) {
  if (!unixSeconds) {
    return "–";
  }
  return new Date(unixSeconds * 1000).toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

const STATE_LABELS = {
  running: "Running",
  paused: "Paused",
  shutting_down: "Shutting down",
  shut_off: "Stopped",
  crashed: "Crashed",
  pm_suspended: "Suspended",
  unknown: "Unknown",
  waiting: "Waiting",
  starting: "Starting",
  stopped: "Stopped",
  restarting: "Restarting",
  failed: "Failed",
};

// A state as a coloured badge with its word (the colour is never the only sign).
export function stateBadge(state) {
  const word = STATE_LABELS[state] ?? String(state ?? "unknown");
  return h("span", { class: `state state-${state ?? "unknown"}` }, word);
}

// A table of `rows` under `columns` ([{title, cell(row), class}]), or `empty` when none.
export function table(columns, rows, { empty = "None.", label = null, rowAttributes = null } = {}) {
  if (!rows || rows.length === 0) {
    return h("p", { class: "empty" }, empty);
  }
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "grid-table", "aria-label": label },
      h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col", class: column.class }, column.title)))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            rowAttributes ? rowAttributes(row) : {},
            columns.map((column) => h("td", { class: column.class, "data-label": column.title }, column.cell(row))),
          ),
        ),
      ),
    ),
  );
}

// A list of facts: [[term, value], ...].
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "–")]),
  );
}

// A titled panel around `children`.
export function panel(title, ...children) {
  return h("section", { class: "panel" }, h("h2", {}, title), ...children);
}

// The error `failure` (the API's {kind, message}) as an alert saying what to do.
export function alert(failure) {
  return h("p", { class: "error", role: "alert" }, sentence(failure?.message ?? failure));
}
