// The form that creates a VM: name, CPUs, memory, disks (a new volume or an existing one),
// an ISO from a pool in the CD-ROM drive, network cards (on a host bridge or a libvirt
// network), firmware, autostart. The host checks the spec (POST /api/v1/vms answers 400
// with every problem and its field path); each problem is shown beside its field and the
// input stays as typed. Creation runs as a task, followed here; then the VM's page opens.

import { api } from "./api.js";
import { alert, bytes, fill, h } from "./dom.js";
import { clearErrors, errorSummary, field, showErrors } from "./validation.js";

const TASK_POLL_MS = 500;

// The disk names a bus uses, in order: vda, vdb... or sda, sdb...
function targetName(bus, index) {
  return `${bus === "sata" ? "sd" : "vd"}${String.fromCharCode(97 + index)}`;
}

const isIso = (volume) => volume.format === "iso" || /\.iso$/i.test(volume.name);

export function start(view) {
  const summary = errorSummary("vm-form-errors");
  const progress = h("div", { id: "vm-form-progress", role: "status", "aria-live": "polite" });
  let pools = [];
  const volumesOf = new Map();

  const name = h("input", { type: "text", id: "vm-name", name: "name", spellcheck: "false", autocomplete: "off", required: true });
  const vcpus = h("input", { type: "number", id: "vm-vcpus", name: "vcpus", min: 1, step: 1, value: 1, class: "short" });
  const memory = h("input", { type: "number", id: "vm-memory", name: "memory_mib", min: 16, step: 1, value: 1024, class: "short" });
  const firmware = h(
    "select",
    { id: "vm-firmware", name: "firmware" },
    h("option", { value: "bios" }, "BIOS (SeaBIOS)"),
    h("option", { value: "uefi" }, "UEFI (OVMF)"),
  );
  const description = h("input", { type: "text", id: "vm-description", name: "description" });
  const disks = h("div", { class: "rows", id: "vm-disks" });
  const nics = h("div", { class: "rows", id: "vm-nics" });
  const cdromPool = h("select", { id: "vm-cdrom-pool", "aria-label": "Pool of the ISO image" });
  const cdrom = h("select", { id: "vm-cdrom", name: "cdrom", "aria-label": "ISO image" });
  const vnc = h("input", { type: "checkbox", id: "vm-vnc", checked: true });
  const autostart = h("input", { type: "checkbox", id: "vm-autostart" });
  const startAfter = h("input", { type: "checkbox", id: "vm-start", checked: true });
  // The host's bridges (by name) and libvirt's networks, for the network cards.
  let bridgeNames = [];
  let networks = [];

  async function volumes(pool) {
    if (!volumesOf.has(pool)) {
      volumesOf.set(
        pool,
        api("GET", `/api/v1/pools/${encodeURIComponent(pool)}/volumes`).then(
          (answer) => answer.volumes,
          () => [],
        ),
      );
    }
    return volumesOf.get(pool);
  }

  const poolChoices = (chosen) =>
    pools
      .filter((pool) => pool.state === "running")
      .map((pool) => h("option", { value: pool.name, selected: pool.name === chosen }, `${pool.name} (${bytes(pool.available_bytes)} free)`));

  async function fillIsos() {
    const list = cdromPool.value ? await volumes(cdromPool.value) : [];
    const shown = [...list.filter(isIso), ...list.filter((volume) => !isIso(volume) && volume.format !== "qcow2")];
    // Read after the wait: a choice made meanwhile stays.
    const chosen = cdrom.value;
    fill(
      cdrom,
      h("option", { value: "" }, "No CD-ROM drive"),
      shown.map((volume) => h("option", { value: volume.path, selected: volume.path === chosen }, `${volume.name} (${volume.format}, ${bytes(volume.capacity_bytes)})`)),
    );
  }
  cdromPool.addEventListener("change", fillIsos);

  function diskRow() {
    const kind = h("select", { class: "disk-kind", "aria-label": "Disk" }, h("option", { value: "new" }, "New volume"), h("option", { value: "existing" }, "Existing volume"));
    const pool = h("select", { class: "disk-pool", "aria-label": "Pool" }, poolChoices(pools.find((p) => p.state === "running")?.name));
    const size = h("input", { type: "number", class: "disk-size short", min: 1, step: 1, value: 20, "aria-label": "Size in GiB" });
    const volume = h("select", { class: "disk-volume", "aria-label": "Volume" });
    const bus = h("select", { class: "disk-bus", "aria-label": "Bus" }, h("option", { value: "virtio" }, "virtio"), h("option", { value: "sata" }, "SATA"));
    const row = h("fieldset", { class: "row-item disk" });
    const sizeField = h("div", { class: "field narrow size-field" }, h("label", {}, "Size (GiB)"), size);
    const volumeField = h("div", { class: "field wide volume-field", hidden: true }, h("label", {}, "Volume"), volume);
    const refreshVolumes = async () => {
      const list = await volumes(pool.value);
      fill(volume, list.filter((entry) => !isIso(entry)).map((entry) => h("option", { value: entry.name, "data-format": entry.format }, `${entry.name} (${entry.format}, ${bytes(entry.capacity_bytes)})`)));
    };
    kind.addEventListener("change", () => {
      const existing = kind.value === "existing";
      sizeField.hidden = existing;
      volumeField.hidden = !existing;
      if (existing) {
        refreshVolumes();
      }
    });
    pool.addEventListener("change", () => kind.value === "existing" && refreshVolumes());
    const remove = h("button", { type: "button", class: "small secondary", on: { click: () => { row.remove(); renumber(); } } }, "Remove");
    fill(
      row,
      h("legend", {}, "Disk"),
      h(
        "div",
        { class: "grid" },
        h("div", { class: "field wide" }, h("label", {}, "Source"), kind),
        h("div", { class: "field wide pool-field" }, h("label", {}, "Pool"), pool),
        sizeField,
        volumeField,
        h("div", { class: "field narrow bus-field" }, h("label", {}, "Bus"), bus),
      ),
      remove,
    );
    row.read = (index) => {
      const target = targetName(bus.value, [...disks.children].slice(0, index).filter((other) => other.querySelector(".disk-bus").value === bus.value).length);
      const source =
        kind.value === "new"
          ? { new_volume: { pool: pool.value, size_gib: wholeOr(size.value) } }
          : { volume: { pool: pool.value, volume: volume.value, format: volume.selectedOptions[0]?.dataset.format === "qcow2" ? "qcow2" : "raw" } };
      return { target, bus: bus.value, source };
    };
    row.number = (index) => {
      row.dataset.field = `disks[${index}]`;
      row.querySelector("legend").textContent = `Disk ${index + 1}`;
      kind.closest(".field").dataset.field = `disks[${index}].source`;
      pool.closest(".field").dataset.field = `disks[${index}].source.pool`;
      sizeField.dataset.field = `disks[${index}].source.size_gib`;
      volumeField.dataset.field = `disks[${index}].source.volume`;
      bus.closest(".field").dataset.field = `disks[${index}].target,disks[${index}].bus`;
      for (const [control, label] of [[kind, "source"], [pool, "pool"], [size, "size"], [volume, "volume"], [bus, "bus"]]) {
        control.id = `disk-${index}-${label}`;
        control.closest(".field").querySelector("label").htmlFor = control.id;
      }
    };
    return row;
  }

  // A card is plugged into a host bridge or a libvirt network, chosen from those the host
  // has; "Another bridge" takes a typed name (the only way when the host lists none).
  function nicRow() {
    const choices = [
      bridgeNames.length ? h("optgroup", { label: "Host bridges" }, bridgeNames.map((bridge) => h("option", { value: `bridge:${bridge}` }, bridge))) : null,
      networks.length
        ? h(
            "optgroup",
            { label: "libvirt networks" },
            networks.map((network) => h("option", { value: `network:${network.name}` }, `${network.name} (${[network.forward_mode, network.bridge, network.active ? null : "inactive"].filter(Boolean).join(", ")})`)),
          )
        : null,
      h("option", { value: "other" }, "Another bridge…"),
    ];
    const source = h("select", { class: "nic-source" }, choices);
    const firstActive = networks.find((network) => network.active);
    source.value = bridgeNames.length ? `bridge:${bridgeNames[0]}` : firstActive ? `network:${firstActive.name}` : "other";
    const other = h("input", { type: "text", class: "nic-other", spellcheck: "false", autocomplete: "off", value: bridgeNames.length ? "" : "br0" });
    const otherField = h("div", { class: "field wide other-field" }, h("label", {}, "Bridge name"), other);
    const inactive = h("p", { class: "hint inactive-network", hidden: true }, "This network is not running: the VM cannot start until it is.");
    const showOther = () => {
      otherField.hidden = source.value !== "other";
      inactive.hidden = !networks.some((network) => `network:${network.name}` === source.value && !network.active);
    };
    source.addEventListener("change", () => {
      showOther();
      if (source.value === "other") other.focus();
    });
    showOther();
    const model = h("select", { class: "nic-model" }, h("option", { value: "virtio" }, "virtio"), h("option", { value: "e1000" }, "e1000"), h("option", { value: "rtl8139" }, "rtl8139"));
    const row = h("fieldset", { class: "row-item nic" });
    const remove = h("button", { type: "button", class: "small secondary", on: { click: () => { row.remove(); renumber(); } } }, "Remove");
    fill(
      row,
      h("legend", {}, "Network card"),
      h(
        "div",
        { class: "grid" },
        h("div", { class: "field wide source-field" }, h("label", {}, "Connected to"), source, inactive),
        otherField,
        h("div", { class: "field narrow" }, h("label", {}, "Model"), model),
      ),
      remove,
    );
    row.read = () => {
      const [kind, ...name] = source.value.split(":");
      const chosen = kind === "other" ? { bridge: other.value.trim() } : { [kind]: name.join(":") };
      return { source: chosen, model: model.value };
    };
    row.number = (index) => {
      row.dataset.field = `nics[${index}]`;
      row.querySelector("legend").textContent = `Network card ${index + 1}`;
      source.closest(".field").dataset.field = `nics[${index}].source,nics[${index}].source.network`;
      otherField.dataset.field = `nics[${index}].source.bridge`;
      for (const [control, label] of [[source, "source"], [other, "bridge"], [model, "model"]]) {
        control.id = `nic-${index}-${label}`;
        control.closest(".field").querySelector("label").htmlFor = control.id;
      }
    };
    return row;
  }

  function renumber() {
    [...disks.children].forEach((row, index) => row.number(index));
    [...nics.children].forEach((row, index) => row.number(index));
  }

  const form = h(
    "form",
    { id: "vm-form", class: "vm-form", novalidate: true },
    summary,
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "General"),
      field("Name", name, { path: "name", hint: "Letters, digits, '.', '_' and '-'." }),
      h(
        "div",
        { class: "grid" },
        h("div", { class: "field narrow", "data-field": "vcpus" }, h("label", { for: "vm-vcpus" }, "CPUs"), vcpus),
        h("div", { class: "field narrow", "data-field": "memory_mib" }, h("label", { for: "vm-memory" }, "Memory (MiB)"), memory),
        h("div", { class: "field wide", "data-field": "firmware" }, h("label", { for: "vm-firmware" }, "Firmware"), firmware),
      ),
      field("Description", description, { path: "description", optional: true }),
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Disks"),
      disks,
      h("button", { type: "button", class: "small secondary", id: "add-disk", on: { click: () => { disks.append(diskRow()); renumber(); } } }, "Add disk"),
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "CD-ROM"),
      h(
        "div",
        { class: "grid", "data-field": "cdrom" },
        h("div", { class: "field wide" }, h("label", { for: "vm-cdrom-pool" }, "Pool"), cdromPool),
        h("div", { class: "field wide" }, h("label", { for: "vm-cdrom" }, "ISO image"), cdrom),
      ),
      h("p", { class: "hint" }, "The VM boots from the CD-ROM first when it holds an image, then from its first disk. Upload or fetch images on the ", h("a", { href: "/storage" }, "Storage"), " page."),
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Network"),
      nics,
      h("button", { type: "button", class: "small secondary", id: "add-nic", on: { click: () => { nics.append(nicRow()); renumber(); } } }, "Add network card"),
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Options"),
      h("div", { "data-field": "vnc,vnc.password" }, h("label", { class: "check", for: "vm-vnc" }, vnc, h("span", {}, "Graphical console (VNC) ", h("span", { class: "hint" }, "Shown in the browser; it needs no password.")))),
      h("div", { "data-field": "autostart" }, h("label", { class: "check", for: "vm-autostart" }, autostart, h("span", {}, "Start when the host boots"))),
      h("label", { class: "check", for: "vm-start" }, startAfter, h("span", {}, "Start the VM once it is created")),
    ),
    progress,
    h(
      "div",
      { class: "buttons form-buttons" },
      h("button", { type: "submit", id: "vm-create" }, "Create VM"),
      h("a", { class: "button secondary", href: "/vms" }, "Cancel"),
    ),
  );

  // The spec from the form; problems the browser can see itself (a number field that holds
  // no whole number) are thrown as the API would word them.
  function spec() {
    const problems = [];
    const whole = (path, input, label) => {
      const value = wholeOr(input.value);
      if (typeof value !== "number") {
        problems.push({ field: path, message: `${label} must be a whole number` });
      }
      return value;
    };
    const diskList = [...disks.children].map((row, index) => row.read(index));
    diskList.forEach((disk, index) => {
      if (disk.source.new_volume && typeof disk.source.new_volume.size_gib !== "number") {
        problems.push({ field: `disks[${index}].source.size_gib`, message: "the size must be a whole number of GiB" });
      }
      if (disk.source.volume && !disk.source.volume.volume) {
        problems.push({ field: `disks[${index}].source.volume`, message: "the pool has no volume to choose; pick another pool or a new volume" });
      }
    });
    const body = {
      name: name.value.trim(),
      vcpus: whole("vcpus", vcpus, "the number of CPUs"),
      memory_mib: whole("memory_mib", memory, "the memory"),
      firmware: firmware.value,
      disks: diskList,
      nics: [...nics.children].map((row) => row.read()),
      autostart: autostart.checked,
    };
    if (description.value.trim()) {
      body.description = description.value.trim();
    }
    if (cdrom.value) {
      body.cdrom = cdrom.value;
    }
    // A VM has a VNC display on no port unless its spec turns it off; the browser console
    // reaches it through the host, so it needs no password.
    if (!vnc.checked) {
      body.vnc = { enabled: false };
    }
    if (problems.length) {
      throw { status: 400, kind: "invalid_spec", message: "the form has problems", errors: problems };
    }
    return body;
  }

  async function follow(task) {
    for (;;) {
      if (task.state === "succeeded") {
        return;
      }
      if (task.state === "failed") {
        throw { status: 400, ...(task.error ?? { message: task.message }) };
      }
      fill(progress, h("div", { class: "progress" }, h("span", { class: "spinner" }), `Creating the VM… ${task.message ?? ""}`));
      await new Promise((resolve) => setTimeout(resolve, TASK_POLL_MS));
      ({ task } = await api("GET", `/api/v1/tasks/${encodeURIComponent(task.id)}`));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("#vm-create");
    button.disabled = true;
    clearErrors(form, summary);
    fill(progress);
    try {
      const body = spec();
      const { task } = await api("POST", "/api/v1/vms", body);
      await follow(task);
      const path = `/api/v1/vms/${encodeURIComponent(body.name)}`;
      if (startAfter.checked) {
        fill(progress, h("div", { class: "progress" }, h("span", { class: "spinner" }), "Starting the VM…"));
        try {
          await api("POST", `${path}/start`);
        } catch (failure) {
          sessionStorage.setItem("mfv-start-failure", failure.message);
        }
      }
      location.assign(`/vms/${encodeURIComponent(body.name)}`);
    } catch (failure) {
      fill(progress);
      showErrors(form, summary, failure);
      button.disabled = false;
    }
  });

  fill(view, h("p", { class: "loading" }, "Loading…"));
  Promise.all([
    api("GET", "/api/v1/pools"),
    api("GET", "/api/v1/network").catch(() => ({ interfaces: [] })),
    api("GET", "/api/v1/vm-networks").catch(() => ({ networks: [] })),
  ])
    .then(([poolAnswer, network, libvirtNetworks]) => {
      pools = poolAnswer.pools;
      const running = pools.filter((pool) => pool.state === "running");
      networks = libvirtNetworks.networks ?? [];
      // A libvirt network's own bridge is offered as that network.
      const networkBridges = new Set(networks.map((one) => one.bridge));
      bridgeNames = (network.interfaces ?? []).map((card) => card.name).filter((name) => /^(br|vmbr|virbr)/.test(name) && !networkBridges.has(name));
      fill(cdromPool, poolChoices(running[0]?.name));
      if (running.length) {
        disks.append(diskRow());
      } else {
        disks.before(h("p", { class: "warning" }, "No storage pool is running: the VM can have no disk from a pool."));
      }
      renumber();
      fillIsos();
      fill(view, form);
      name.focus();
    })
    .catch((failure) => fill(view, alert(failure)));
}

// `text` as a whole number, or as typed when it is none (the host names the field).
function wholeOr(text) {
  const trimmed = String(text).trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}
