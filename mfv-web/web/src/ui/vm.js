// One VM's page: state and actions, CPU and memory over the last minutes (drawn from the
// VM's counters, read every few seconds while the page is shown), disks, network cards,
// snapshots, autostart, and the ways to its consoles.

import { api, may } from "./api.js";
import { alert, bytes, facts, fill, h, panel, stateBadge, table, when } from "./dom.js";
import { lineChart } from "./chart.js";
import { confirmDanger } from "./dialog.js";
import { watch } from "./live.js";
import { vmActions } from "./vms.js";
import { cdromControls, cdromOf, snapshotForm } from "./vm_media.js";

const SAMPLE_MS = 3000;
const SLOTS = 60;

// What a disk's or NIC's source is, in words.
function source(value) {
  if (!value || typeof value !== "object") {
    return String(value ?? "–");
  }
  const [kind, detail] = Object.entries(value)[0] ?? ["", ""];
  if (typeof detail !== "object" || detail === null) {
    return `${kind.replaceAll("_", " ")} ${detail}`;
  }
  if (detail.pool && detail.volume) {
    return `${detail.pool}/${detail.volume}`;
  }
  if (detail.pool) {
    return `new volume in ${detail.pool}${detail.size_gib ? `, ${detail.size_gib} GiB` : ""}`;
  }
  return detail.path ?? Object.values(detail).join(" ");
}

export function start(view) {
  const name = document.body.dataset.vm;
  const path = `/api/v1/vms/${encodeURIComponent(name)}`;
  const state = h("span", { id: "vm-state" });
  const actions = h("div", { class: "actions", id: "vm-actions" });
  const errors = h("div", { id: "vm-errors" });
  const summary = panel("Summary", h("p", { class: "loading" }, "Loading…"));
  const cpuChart = h("div", { class: "chart-slot", id: "cpu-chart" });
  const memoryChart = h("div", { class: "chart-slot", id: "memory-chart" });
  const graphs = panel("Usage", h("div", { class: "charts" }, cpuChart, memoryChart));
  const disks = panel("Disks", h("p", { class: "loading" }, "Loading…"));
  const nics = panel("Network cards", h("p", { class: "loading" }, "Loading…"));
  const snapshots = panel("Snapshots", h("p", { class: "loading" }, "Loading…"));
  snapshots.classList.add("wide");
  const media = panel("CD-ROM", h("p", { class: "loading" }, "Loading…"));
  const takeSnapshot = may.manage ? snapshotForm(path, (failure) => report(failure) || loadSnapshots()) : null;
  const consoles = may.console
    ? panel(
        "Console",
        h(
          "p",
          { class: "buttons" },
          h("a", { class: "button", href: `/vms/${encodeURIComponent(name)}/console` }, "Graphical console (VNC)"),
          h("a", { class: "button secondary", href: `/vms/${encodeURIComponent(name)}/serial` }, "Serial console"),
        ),
      )
    : null;
  fill(
    view,
    h("div", { class: "vm-head" }, state, actions),
    errors,
    h("div", { class: "vm-grid" }, summary, graphs, consoles, media, disks, nics, snapshots),
  );
  const startFailure = sessionStorage.getItem("mfv-start-failure");
  if (startFailure) {
    sessionStorage.removeItem("mfv-start-failure");
    fill(errors, alert(`The VM was created but did not start: ${startFailure}`));
  }
  const report = (failure) => {
    fill(errors, failure ? alert(failure) : null);
    if (!failure) {
      first = true;
      refresh();
    }
  };
  const samples = { cpu: [], memory: [] };
  let previous = null;
  let timer = null;
  let shownState = null;

  const section = (element) => {
    element.replaceChildren(element.querySelector("h2"));
    return element;
  };

  function drawCharts(vm) {
    fill(
      cpuChart,
      lineChart({ title: "CPU", values: samples.cpu, slots: SLOTS, max: 100, label: (value) => `${value.toFixed(1)} %` }),
    );
    fill(
      memoryChart,
      lineChart({
        title: "Memory",
        values: samples.memory,
        slots: SLOTS,
        max: vm.max_memory_kib * 1024,
        label: (value) => `${bytes(value)} of ${bytes(vm.max_memory_kib * 1024)}`,
      }),
    );
  }

  function sample(vm) {
    const now = performance.now();
    if (vm.state === "running") {
      if (previous && previous.running) {
        const elapsedNs = (now - previous.at) * 1e6;
        const used = Math.max(vm.cpu_time_ns - previous.cpu, 0);
        samples.cpu.push(Math.min((used / elapsedNs / Math.max(vm.vcpus, 1)) * 100, 100));
      }
      samples.memory.push(vm.memory_kib * 1024);
    } else {
      samples.cpu.push(0);
      samples.memory.push(0);
    }
    for (const list of Object.values(samples)) {
      list.splice(0, Math.max(list.length - SLOTS, 0));
    }
    previous = { at: now, cpu: vm.cpu_time_ns, running: vm.state === "running" };
    drawCharts(vm);
  }

  function showState(vm) {
    if (shownState === vm.state) {
      return;
    }
    shownState = vm.state;
    fill(state, stateBadge(vm.state));
    const buttons = vmActions(name, vm.state, report);
    if (may.control && vm.state === "running") {
      buttons.splice(
        1,
        0,
        h("button", {
          type: "button",
          class: "small secondary",
          on: {
            click: async () => {
              try {
                await api("POST", `${path}/reboot`);
                report(null);
              } catch (failure) {
                report(failure);
              }
            },
          },
        }, "Reboot"),
      );
    }
    if (may.manage) {
      buttons.push(
        h("button", {
          type: "button",
          class: "small secondary danger-text",
          id: "delete-vm",
          disabled: vm.state !== "shut_off",
          title: vm.state === "shut_off" ? null : "Shut the VM down first",
          on: { click: () => deleteVm(vm) },
        }, "Delete…"),
      );
    }
    fill(actions, buttons);
  }

  async function deleteVm(vm) {
    const volumes = (vm.spec?.disks ?? []).map((disk) => source(disk.source)).join(", ");
    const sure = await confirmDanger({
      title: `Delete ${name}?`,
      consequence: `The VM ${name} and its snapshots are deleted${volumes ? `, and so are its disk volumes: ${volumes}` : ""}. This cannot be undone.`,
      action: `Delete ${name}`,
    });
    if (!sure) {
      return;
    }
    try {
      await api("DELETE", `${path}?volumes=delete`);
      location.assign("/vms");
    } catch (failure) {
      fill(errors, alert(failure));
    }
  }

  function showDetail(vm) {
    showState(vm);
    const spec = vm.spec ?? {};
    const autostart = h("input", {
      type: "checkbox",
      id: "autostart",
      checked: vm.autostart,
      disabled: !may.manage,
      on: {
        change: async (event) => {
          const enabled = event.currentTarget.checked;
          try {
            await api("PUT", `${path}/autostart`, { enabled });
            fill(errors);
          } catch (failure) {
            event.currentTarget.checked = !enabled;
            fill(errors, alert(failure));
          }
        },
      },
    });
    fill(
      section(summary),
      h("h2", {}, "Summary"),
      facts([
        ["CPUs", vm.vcpus],
        ["Memory", bytes(vm.max_memory_kib * 1024)],
        ["Firmware", { bios: "BIOS (SeaBIOS)", uefi: "UEFI (OVMF)" }[spec.firmware] ?? spec.firmware ?? "–"],
        ["CD-ROM", cdromOf(spec) ?? (cdromOf(spec) === null ? "empty" : "no drive")],
        ["UUID", h("span", { class: "mono" }, vm.uuid)],
        spec.description ? ["Description", spec.description] : null,
        ["Autostart", h("label", { class: "check inline", for: "autostart" }, autostart, " Start when the host boots")],
      ]),
      vm.spec_problem ? h("p", { class: "warning" }, `The definition is not fully shown: ${vm.spec_problem}`) : null,
    );
    fill(section(media), h("h2", {}, "CD-ROM"), cdromControls(path, cdromOf(spec), report));
    const counters = new Map((vm.disks ?? []).map((disk) => [disk.target, disk]));
    fill(
      section(disks),
      h("h2", {}, "Disks"),
      table(
        [
          { title: "Device", cell: (disk) => disk.target },
          { title: "Bus", cell: (disk) => disk.bus ?? "–" },
          { title: "Source", cell: (disk) => source(disk.source) },
          { title: "Read", class: "number", cell: (disk) => bytes(counters.get(disk.target)?.read_bytes) },
          { title: "Written", class: "number", cell: (disk) => bytes(counters.get(disk.target)?.write_bytes) },
        ],
        // A running VM's live definition may hold disks the spec does not read back:
        // its counters name them all.
        [
          ...(spec.disks ?? []),
          ...(vm.disks ?? [])
            .filter((disk) => !(spec.disks ?? []).some((known) => known.target === disk.target))
            .map((disk) => ({ target: disk.target })),
        ],
        { empty: "This VM has no disks.", label: "Disks" },
      ),
    );
    const traffic = vm.nics ?? [];
    fill(
      section(nics),
      h("h2", {}, "Network cards"),
      table(
        [
          { title: "Connected to", cell: (nic) => source(nic.source) },
          { title: "Model", cell: (nic) => nic.model ?? "–" },
          { title: "MAC", class: "mono", cell: (nic) => nic.mac ?? "–" },
          { title: "Received", class: "number", cell: (nic) => bytes(traffic[(spec.nics ?? []).indexOf(nic)]?.rx_bytes) },
          { title: "Sent", class: "number", cell: (nic) => bytes(traffic[(spec.nics ?? []).indexOf(nic)]?.tx_bytes) },
        ],
        spec.nics ?? [],
        { empty: "This VM has no network cards.", label: "Network cards" },
      ),
    );
  }

  async function loadSnapshots() {
    try {
      const { snapshots: list } = await api("GET", `${path}/snapshots`);
      fill(
        section(snapshots),
        h("h2", {}, "Snapshots"),
        table(
          [
            { title: "Name", cell: (snapshot) => [snapshot.name, snapshot.current ? h("span", { class: "badge" }, "current") : null] },
            { title: "Taken", cell: (snapshot) => when(snapshot.created_unix) },
            { title: "VM was", cell: (snapshot) => snapshot.vm_state },
            { title: "Description", cell: (snapshot) => snapshot.description || "–" },
            may.manage
              ? {
                  title: "Actions",
                  class: "actions",
                  cell: (snapshot) => [
                    h("button", { type: "button", class: "small secondary", on: { click: () => revert(snapshot.name) } }, "Revert…"),
                    h("button", { type: "button", class: "small secondary danger-text", on: { click: () => removeSnapshot(snapshot.name) } }, "Delete…"),
                  ],
                }
              : null,
          ].filter(Boolean),
          list,
          { empty: "No snapshots.", label: "Snapshots" },
        ),
        takeSnapshot,
      );
    } catch (failure) {
      fill(section(snapshots), h("h2", {}, "Snapshots"), alert(failure), takeSnapshot);
    }
  }

  async function revert(snapshot) {
    const sure = await confirmDanger({
      title: `Revert ${name} to ${snapshot}?`,
      consequence: `${name} goes back to the snapshot ${snapshot}: what changed on its disks since then is lost.`,
      action: `Revert to ${snapshot}`,
    });
    if (sure) {
      await snapshotChange("POST", `${path}/snapshots/${encodeURIComponent(snapshot)}/revert`);
    }
  }

  async function removeSnapshot(snapshot) {
    const sure = await confirmDanger({
      title: `Delete snapshot ${snapshot}?`,
      consequence: `The snapshot ${snapshot} of ${name} is deleted; the VM's current state stays as it is.`,
      action: `Delete ${snapshot}`,
    });
    if (sure) {
      await snapshotChange("DELETE", `${path}/snapshots/${encodeURIComponent(snapshot)}`);
    }
  }

  async function snapshotChange(method, target) {
    try {
      await api(method, target);
      fill(errors);
    } catch (failure) {
      fill(errors, alert(failure));
    }
    loadSnapshots();
    refresh();
  }

  let first = true;
  async function refresh() {
    try {
      const { vm } = await api("GET", path);
      if (first) {
        showDetail(vm);
        first = false;
      } else {
        showState(vm);
      }
      sample(vm);
    } catch (failure) {
      fill(errors, alert(failure));
    }
  }

  const tick = () => {
    if (!document.hidden) {
      refresh();
    }
  };
  refresh().then(() => {
    timer = setInterval(tick, SAMPLE_MS);
  });
  loadSnapshots();
  watch({
    onVm: (change) => {
      if (change.name === name) {
        first = true;
        refresh();
      }
    },
    onResync: refresh,
  });
  window.addEventListener("pagehide", () => clearInterval(timer));
}
