// Asking once before a change that cannot be undone: a modal <dialog> naming what is
// destroyed, with the safe choice focused.

import { h } from "./dom.js";

// Resolves true when the person confirms `action` ("Delete VM web-1") after reading
// `consequence`; false on cancel or Escape.
export function confirmDanger({ title, consequence, action }) {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", class: "secondary", value: "cancel" }, "Cancel");
    const confirm = h("button", { type: "submit", class: "danger", value: "confirm" }, action);
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: "confirm-title" }, title),
        h("p", {}, consequence),
        h("div", { class: "buttons" }, cancel, confirm),
      ),
    );
    cancel.addEventListener("click", () => dialog.close("cancel"));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "confirm");
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
