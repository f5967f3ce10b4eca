// A VM page's CD-ROM drive (put an ISO from a pool in, eject it; a running VM sees the change
// at once) and the form that takes a snapshot.

import { api, may } from "./api.js";
import { bytes, fill, h } from "./dom.js";
import { clearErrors, errorSummary, showErrors } from "./validation.js";

const TASK_POLL_MS = 500;
const isIso = (volume) => volume.format === "iso" || /\.iso$/i.test(volume.name);

// The image in the VM's CD-ROM drive: the spec's, or where the host could not read the
// definition back into a spec (it keeps such devices as XML), the drive's source in that XML.
// `undefined` when the VM has no drive, null when the drive is empty.
export function cdromOf(spec) {
  if (spec?.cdrom) {
    return spec.cdrom;
  }
  for (const device of spec?.extra_xml?.devices ?? []) {
    const disk = new DOMParser().parseFromString(device, "application/xml").documentElement;
    if (disk.nodeName === "disk" && disk.getAttribute("device") === "cdrom") {
      return disk.querySelector("source")?.getAttribute("file") ?? null;
    }
  }
  return undefined;
}

// What the drive holds, and for those who may manage VMs the controls to change it.
// `report(failure)` shows a failure, or with null refreshes the page.
export function cdromControls(path, current, report) {
  const holds = h(
    "p",
    { id: "cdrom-media" },
    current ? ["Holds ", h("code", {}, current)] : current === null ? "Empty." : "This VM has no CD-ROM drive: an image can be put in only when the VM was created with one.",
  );
  // Without a drive there is nothing to put an image in: no controls.
  if (!may.manage || current === undefined) {
    return holds;
  }
  const summary = errorSummary("cdrom-errors");
  const pool = h("select", { id: "cdrom-pool", "aria-label": "Pool" });
  const volume = h("select", { id: "cdrom-volume", "aria-label": "ISO image" });
  const insert = h("button", { type: "submit", class: "small", id: "cdrom-insert" }, "Insert");
  const eject = h("button", { type: "button", class: "small secondary", id: "cdrom-eject", disabled: !current }, "Eject");
  const form = h(
    "form",
    { class: "media-form", id: "cdrom-form", novalidate: true },
    summary,
    h(
      "div",
      { class: "row" },
      h("div", { class: "field", "data-field": "pool" }, pool),
      h("div", { class: "field", "data-field": "volume,path" }, volume),
      insert,
      eject,
    ),
  );
  const volumes = async () => {
    const { volumes: list } = await api("GET", `/api/v1/pools/${encodeURIComponent(pool.value)}/volumes`);
    const shown = [...list.filter(isIso), ...list.filter((entry) => !isIso(entry) && entry.format !== "qcow2")];
    fill(volume, shown.map((entry) => h("option", { value: entry.name }, `${entry.name} (${bytes(entry.capacity_bytes)})`)));
    insert.disabled = shown.length === 0;
  };
  api("GET", "/api/v1/pools")
    .then(({ pools }) => {
      fill(pool, pools.filter((entry) => entry.state === "running").map((entry) => h("option", { value: entry.name }, entry.name)));
      return volumes();
    })
    .catch((failure) => showErrors(form, summary, failure));
  pool.addEventListener("change", () => volumes().catch((failure) => showErrors(form, summary, failure)));
  const change = async (method, body) => {
    clearErrors(form, summary);
    insert.disabled = true;
    eject.disabled = true;
    try {
      await api(method, `${path}/cdrom`, body);
      report(null);
    } catch (failure) {
      showErrors(form, summary, failure);
      insert.disabled = false;
      eject.disabled = !current;
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    change("PUT", { pool: pool.value, volume: volume.value });
  });
  eject.addEventListener("click", () => change("DELETE"));
  return [holds, form];
}

// The form that takes a snapshot (a task, followed to its end); `done(failure)` is called
// with null when it succeeded.
export function snapshotForm(path, done) {
  const summary = errorSummary("snapshot-errors");
  const name = h("input", { type: "text", id: "snapshot-name", name: "name", placeholder: "Name", "aria-label": "Snapshot name", spellcheck: "false" });
  const description = h("input", { type: "text", id: "snapshot-description", name: "description", placeholder: "Description (optional)", "aria-label": "Snapshot description" });
  const status = h("p", { class: "hint", id: "snapshot-status", role: "status" });
  const button = h("button", { type: "submit", class: "small", id: "snapshot-take" }, "Take snapshot");
  const form = h(
    "form",
    { class: "media-form", id: "snapshot-form", novalidate: true },
    h("h3", {}, "Take a snapshot"),
    summary,
    h("div", { class: "row" }, h("div", { class: "field", "data-field": "name" }, name), h("div", { class: "field", "data-field": "description" }, description), button),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, summary);
    button.disabled = true;
    try {
      let { task } = await api("POST", `${path}/snapshots`, { name: name.value.trim(), description: description.value.trim() });
      while (task.state === "running") {
        fill(status, `Taking the snapshot… ${task.message ?? ""}`);
        await new Promise((resolve) => setTimeout(resolve, TASK_POLL_MS));
        ({ task } = await api("GET", `/api/v1/tasks/${encodeURIComponent(task.id)}`));
      }
      if (task.state === "failed") {
        throw task.error ?? { message: task.message };
      }
      fill(status, `Snapshot ${name.value.trim()} taken.`);
      name.value = "";
      description.value = "";
      done(null);
    } catch (failure) {
      fill(status);
      showErrors(form, summary, failure);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
