// Forms that send what a person typed to the API and show its refusal where it belongs:
// each error beside the field it names (the API's `field` paths, e.g. `disks[0].source.size_gib`),
// all of them in a summary at the top, and the input kept as typed.

import { fill, h, sentence } from "./dom.js";

// A labelled field for `control` (an input or select with an id), answering to the API's
// `field` path (or several, comma separated), with an optional hint under it.
export function field(label, control, { path, hint = null, optional = false } = {}) {
  return h(
    "div",
    { class: "field", "data-field": path ?? control.name ?? control.id },
    h("label", { for: control.id }, label, optional ? h("span", { class: "optional" }, "optional") : null),
    control,
    hint ? h("p", { class: "hint" }, hint) : null,
  );
}

// The errors a refusal names: [{field, message}], from its `errors` list or its one `field`.
export function errorsOf(failure) {
  if (failure?.errors?.length) {
    return failure.errors.map((error) => ({ field: error.field ?? "", message: error.message ?? "" }));
  }
  return [{ field: failure?.field ?? "", message: failure?.message ?? String(failure) }];
}

// Removes the errors `showErrors` put in `form`.
export function clearErrors(form, summary) {
  for (const old of form.querySelectorAll(".field-error")) {
    old.remove();
  }
  for (const control of form.querySelectorAll(".invalid")) {
    control.classList.remove("invalid");
    control.removeAttribute("aria-invalid");
  }
  fill(summary);
  summary.hidden = true;
}

// Shows `failure` in `form`: beside each field it names (the field whose `data-field` is the
// error's field, or the nearest one above it in the path), and every error in `summary`.
// Returns how many errors were placed beside a field.
export function showErrors(form, summary, failure) {
  clearErrors(form, summary);
  const errors = errorsOf(failure);
  let placed = 0;
  const items = errors.map((error) => {
    const holder = fieldFor(form, error.field);
    if (holder) {
      placed += 1;
      const control = holder.querySelector("input, select, textarea");
      control?.classList.add("invalid");
      control?.setAttribute("aria-invalid", "true");
      holder.append(h("p", { class: "field-error" }, sentence(error.message)));
    }
    return h("li", {}, error.field ? h("code", {}, error.field) : null, error.field ? ": " : null, sentence(error.message));
  });
  fill(
    summary,
    h("p", {}, errors.length === 1 ? "The host refused this:" : `The host found ${errors.length} problems:`),
    h("ul", {}, items),
  );
  summary.hidden = false;
  summary.scrollIntoView({ block: "nearest" });
  const first = form.querySelector(".invalid");
  first?.focus();
  return placed;
}

// The field of `form` for the API's field `path`: the exact one, else the nearest parent
// path (`disks[0].source.pool` falls back to `disks[0].source`, then `disks[0]`).
function fieldFor(form, path) {
  let at = path;
  while (at) {
    const found = [...form.querySelectorAll("[data-field]")].find((element) =>
      element.dataset.field.split(",").includes(at),
    );
    if (found) {
      return found;
    }
    const cut = Math.max(at.lastIndexOf("."), at.lastIndexOf("["));
    at = cut > 0 ? at.slice(0, cut) : "";
  }
  return null;
}

// The summary box a form's refusals go in.
export function errorSummary(id) {
  return h("div", { class: "error form-errors", id, role: "alert", hidden: true });
}
