// Forms for the administration pages: labelled fields, the API's refusal shown beside the
// field it names, forms in modal dialogs, a secret shown once with a way to copy it, and the
// confirmation that asks for a name to be typed before the host goes down.

import { h, sentence } from "./dom.js";

let fieldCount = 0;

// A labelled input (or <select> when `options` [[value, label]] is given, <textarea> when
// `rows`). Answers {element, input, name, error(message)}.
export function field({ name, label, type = "text", hint = null, value = "", options = null, rows = 0, attributes = {} }) {
  fieldCount += 1;
  const id = `f-${name}-${fieldCount}`;
  const hintId = hint ? `${id}-hint` : null;
  const errorNode = h("p", { class: "field-error", id: `${id}-error`, role: "alert", hidden: true });
  const common = { id, name, "aria-describedby": [hintId, `${id}-error`].filter(Boolean).join(" "), ...attributes };
  let input;
  if (options) {
    input = h("select", common, options.map(([optionValue, optionLabel]) => h("option", { value: optionValue, selected: optionValue === value }, optionLabel)));
  } else if (rows) {
    input = h("textarea", { ...common, rows, spellcheck: "false" });
    input.value = value;
  } else {
    input = h("input", { ...common, type, value });
  }
  const element = h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("p", { class: "hint", id: hintId }, hint) : null, errorNode);
  return {
    element,
    input,
    name,
    error(message) {
      errorNode.textContent = message ? sentence(message) : "";
      errorNode.hidden = !message;
      input.classList.toggle("invalid", Boolean(message));
      input.setAttribute("aria-invalid", message ? "true" : "false");
    },
  };
}

// The values of `fields`, by name.
function values(fields) {
  return Object.fromEntries(fields.map((one) => [one.name, one.input.value]));
}

// Takes every refusal shown by `fields` and `general` away.
function clearFailures(fields, general) {
  for (const one of fields) {
    one.error(null);
  }
  general.hidden = true;
}

// Shows `failure` at the field it names among `fields`, else in `general`; focuses it.
function showFailure(failure, fields, general) {
  clearFailures(fields, general);
  const target = failure?.field ? fields.find((one) => one.name === failure.field) : null;
  if (target) {
    target.error(failure.message);
    target.input.focus();
  } else {
    general.textContent = sentence(failure?.message ?? String(failure));
    general.hidden = false;
  }
}

// A form that runs `submit(values)` and shows its refusal; `check(values)` may refuse
// first with {field, message}. Calls `done(result)` after a success.
export function inlineForm({ fields, action, submit, check = () => null, done = () => {}, danger = false, id = null }) {
  const general = h("p", { class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: danger ? "danger" : null }, action);
  const form = h("form", { class: "admin-form", id, novalidate: true }, general, fields.map((one) => one.element), h("p", { class: "buttons" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const entered = values(fields);
    const refused = check(entered);
    if (refused) {
      showFailure(refused, fields, general);
      return;
    }
    button.disabled = true;
    try {
      const result = await submit(entered);
      clearFailures(fields, general);
      done(result);
    } catch (failure) {
      showFailure(failure, fields, general);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// A modal dialog holding `content` and the buttons; resolves with what `onSubmit` resolved
// with, or null when cancelled (Cancel or Escape).
function modal({ title, content, action, danger = false, cancelLabel = "Cancel", onSubmit, className = "" }) {
  return new Promise((resolve) => {
    const titleId = `dialog-title-${(fieldCount += 1)}`;
    const cancel = h("button", { type: "button", class: "secondary cancel" }, cancelLabel);
    const confirm = action ? h("button", { type: "submit", class: danger ? "danger" : null }, action) : null;
    const form = h("form", { method: "dialog", novalidate: true }, h("h2", { id: titleId }, title), content, h("div", { class: "buttons" }, cancel, confirm));
    const dialog = h("dialog", { class: `confirm form-dialog ${className}`, "aria-labelledby": titleId }, form);
    let result = null;
    cancel.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!onSubmit) {
        dialog.close();
        return;
      }
      confirm.disabled = true;
      try {
        const answer = await onSubmit();
        if (answer !== undefined) {
          result = answer;
          dialog.close();
        }
      } finally {
        confirm.disabled = false;
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    (dialog.querySelector("input, select, textarea") ?? cancel).focus();
    dialog.confirmButton = confirm;
  });
}

// A form in a dialog: `fields`, then `submit(values)`; a refusal stays in the dialog at its
// field. Resolves with submit's answer, or null when cancelled.
export function formDialog({ title, intro = null, fields, action, danger = false, submit, check = () => null }) {
  const general = h("p", { class: "error", role: "alert", hidden: true });
  return modal({
    title,
    action,
    danger,
    content: [intro ? h("p", {}, intro) : null, general, fields.map((one) => one.element)],
    onSubmit: async () => {
      const entered = values(fields);
      const refused = check(entered);
      if (refused) {
        showFailure(refused, fields, general);
        return undefined;
      }
      try {
        return (await submit(entered)) ?? true;
      } catch (failure) {
        showFailure(failure, fields, general);
        return undefined;
      }
    },
  });
}

// A secret shown this once: `secret` in a read-only box with a copy button, and the words
// that it will not be shown again.
export function secretDialog({ title, intro, secret, label = "Secret" }) {
  const id = `secret-${(fieldCount += 1)}`;
  const box = h("input", { type: "text", id, class: "mono secret", readonly: true, value: secret, "aria-label": label });
  const copied = h("span", { class: "hint", role: "status" });
  const copy = h(
    "button",
    {
      type: "button",
      class: "secondary small",
      on: {
        click: async () => {
          box.select();
          try {
            await navigator.clipboard.writeText(secret);
            copied.textContent = "Copied.";
          } catch {
            copied.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
          }
        },
      },
    },
    "Copy",
  );
  return modal({
    title,
    className: "secret-dialog",
    cancelLabel: "Done",
    content: [h("p", {}, intro), h("div", { class: "row" }, box, copy), copied, h("p", { class: "warning" }, "Copy it now: it will not be shown again.")],
  });
}

// Asks for `expected` to be typed before `action`: resolves true once it was and the person
// confirmed, false when cancelled. `consequence` is what is lost (nodes or text).
export function typedConfirm({ title, consequence, expected, action }) {
  const typed = field({ name: "confirm", label: `Type the host's name, ${expected}, to confirm`, attributes: { autocomplete: "off", spellcheck: "false", autocapitalize: "none" } });
  const matches = () => typed.input.value.trim().toLowerCase() === expected.toLowerCase();
  const promise = modal({
    title,
    action,
    danger: true,
    content: [consequence, typed.element],
    onSubmit: async () => (matches() ? true : (typed.error(`type ${expected} exactly`), undefined)),
  });
  const dialog = typed.element.closest("dialog");
  const button = dialog?.confirmButton;
  if (button) {
    button.disabled = true;
    typed.input.addEventListener("input", () => {
      button.disabled = !matches();
    });
  }
  return promise.then(Boolean);
}

// A one-line status under a page's title, for what a change did.
export function statusLine() {
  return h("p", { class: "status-line", role: "status", "aria-live": "polite" });
}
