// The VM list: every VM with its state as it changes (the event stream), and the actions
// the visitor's role allows on each row. Arrow keys move between rows; Enter opens a VM.

import { api, may } from "./api.js";
import { alert, fill, h, stateBadge } from "./dom.js";
import { confirmDanger } from "./dialog.js";
import { watch } from "./live.js";

// The actions a VM in `state` offers, for a visitor who may control VMs.
export function vmActions(name, state, report) {
  if (!may.control) {
    return [];
  }
  const act = async (button, path, body) => {
    button.disabled = true;
    try {
      await api("POST", `/api/v1/vms/${encodeURIComponent(name)}/${path}`, body);
      report(null);
    } catch (failure) {
      report(failure);
    } finally {
      button.disabled = false;
    }
  };
  const button = (label, className, onClick) =>
    h("button", { type: "button", class: `small ${className}`, on: { click: (event) => onClick(event.currentTarget) } }, label);
  const stopped = state === "shut_off" || state === "crashed";
  const actions = [];
  if (stopped) {
    actions.push(button("Start", "", (target) => act(target, "start")));
  } else {
    actions.push(button("Shut down", "secondary", (target) => act(target, "shutdown", {})));
    actions.push(
      button("Force off", "secondary danger-text", async (target) => {
        const sure = await confirmDanger({
          title: `Force off ${name}?`,
          consequence: `${name} stops at once, like pulling the power cord: what its guest has not written to disk is lost. Shut down asks the guest to stop cleanly instead.`,
          action: `Force off ${name}`,
        });
        if (sure) {
          await act(target, "force-off");
        }
      }),
    );
  }
  return actions;
}

export function start(view) {
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const filter = h("input", { type: "search", id: "vm-filter", placeholder: "Filter by name", "aria-label": "Filter virtual machines by name" });
  const body = h("tbody");
  const list = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "grid-table vm-list", id: "vm-list", "aria-label": "Virtual machines" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Name"),
          h("th", { scope: "col" }, "State"),
          h("th", { scope: "col" }, "Autostart"),
          may.control ? h("th", { scope: "col", class: "actions" }, "Actions") : null,
        ),
      ),
      body,
    ),
  );
  const errors = h("div", { id: "vm-errors" });
  const create = may.manage ? h("a", { class: "button small", href: "/new-vm", id: "new-vm" }, "New VM…") : null;
  fill(view, h("div", { class: "toolbar" }, filter, status, create), errors, list);
  let vms = [];
  let marked = false;

  const report = (failure) => fill(errors, failure ? alert(failure) : null);

  const row = (vm) =>
    h(
      "tr",
      { "data-vm": vm.name, "data-state": vm.state },
      h("td", {}, h("a", { href: `/vms/${encodeURIComponent(vm.name)}`, class: "vm-link" }, vm.name)),
      h("td", { "data-label": "State" }, stateBadge(vm.state)),
      h("td", { "data-label": "Autostart" }, vm.autostart ? "Yes" : "No"),
      may.control ? h("td", { class: "actions" }, vmActions(vm.name, vm.state, report)) : null,
    );

  const render = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = vms.filter((vm) => vm.name.toLowerCase().includes(needle));
    fill(body, shown.length ? shown.map(row) : h("tr", {}, h("td", { colspan: may.control ? 4 : 3, class: "empty" }, vms.length ? "No VM matches the filter." : "There are no VMs on this host yet.")));
    const running = vms.filter((vm) => vm.state === "running").length;
    status.textContent = `${vms.length} VM${vms.length === 1 ? "" : "s"}, ${running} running`;
    if (!marked) {
      marked = true;
      performance.mark("mfv-vm-list-usable");
    }
  };

  const load = async () => {
    try {
      ({ vms } = await api("GET", "/api/v1/vms", undefined, {
        waiting: () => {
          status.textContent = "The host is restoring its VMs…";
        },
      }));
      render();
    } catch (failure) {
      report(failure);
    }
  };

  filter.addEventListener("input", render);
  body.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") {
      return;
    }
    const links = [...body.querySelectorAll("a.vm-link")];
    const at = links.indexOf(document.activeElement);
    if (at < 0) {
      return;
    }
    event.preventDefault();
    const next = links[at + (event.key === "ArrowDown" ? 1 : -1)];
    next?.focus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && document.activeElement !== filter && !(event.target instanceof HTMLInputElement)) {
      event.preventDefault();
      filter.focus();
    }
  });

  load();
  watch({
    onVm: (change) => {
      const known = vms.find((vm) => vm.name === change.name);
      if (!change.state) {
        vms = vms.filter((vm) => vm.name !== change.name);
      } else if (known) {
        known.state = change.state;
      } else {
        load();
        return;
      }
      status.dataset.lastChange = `${change.name} ${change.reason}`;
      render();
    },
    onResync: load,
  });
}
