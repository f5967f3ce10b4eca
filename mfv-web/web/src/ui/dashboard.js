// The dashboard: the host's facts at a glance, from the host, inventory, services, VM and
// log routes, each panel filled as its answer arrives (one slow answer holds up no other).

import { api } from "./api.js";
import { alert, bytes, duration, facts, fill, h, panel, stateBadge, table, uptimeStamp, when } from "./dom.js";

// A virtio disk has no model in sysfs, and its vendor is the PCI vendor id of virtio.
const PCI_VENDORS = { "0x1af4": "Virtio disk" };

// What a disk is, as its vendor and model say.
function diskModel(disk) {
  const vendor = PCI_VENDORS[disk.vendor] ?? disk.vendor;
  return [vendor, disk.model].filter(Boolean).join(" ") || "–";
}

export function start(view) {
  const host = panel("Host", h("p", { class: "loading" }, "Loading…"));
  const hardware = panel("Hardware", h("p", { class: "loading" }, "Loading…"));
  const vms = panel("Virtual machines", h("p", { class: "loading" }, "Loading…"));
  const services = panel("Services", h("p", { class: "loading" }, "Loading…"));
  const disks = panel("Disks", h("p", { class: "loading" }, "Loading…"));
  const nics = panel("Network cards", h("p", { class: "loading" }, "Loading…"));
  const logs = panel("Recent log", h("p", { class: "loading" }, "Loading…"));
  fill(view, h("div", { class: "dashboard" }, host, vms, hardware, services, nics, disks, logs));
  const body = (section) => {
    const heading = section.querySelector("h2");
    section.replaceChildren(heading);
    return section;
  };

  api("GET", "/api/v1/host")
    .then((status) => {
      const bootedAt = Date.now() - status.uptime_ms;
      body(host).append(
        facts([
          ["Name", status.hostname],
          ["Up for", duration(status.uptime_ms)],
          ["Booted", when(bootedAt / 1000)],
          ["Virtualization", virtualizationText(status.virtualization)],
        ]),
      );
      body(services).append(
        table(
          [
            { title: "Service", cell: (service) => service.name },
            { title: "State", cell: (service) => stateBadge(service.state) },
            { title: "Restarts", class: "number", cell: (service) => service.restarts },
          ],
          status.services,
          { empty: "No services are supervised.", label: "Services" },
        ),
      );
    })
    .catch((failure) => {
      body(host).append(alert(failure));
      body(services).append(alert(failure));
    });

  api("GET", "/api/v1/host/inventory")
    .then((inventory) => {
      const cpu = inventory.cpu ?? {};
      const memory = inventory.memory ?? {};
      const used = memory.total_bytes && memory.available_bytes !== null && memory.available_bytes !== undefined
        ? memory.total_bytes - memory.available_bytes
        : null;
      body(hardware).append(
        facts([
          ["CPU", cpu.model_name ?? "unknown"],
          ["CPUs", `${cpu.logical_cpus ?? "?"} logical${cpu.cores ? `, ${cpu.cores} cores` : ""}${cpu.sockets ? `, ${cpu.sockets} socket${cpu.sockets > 1 ? "s" : ""}` : ""}`],
          ["Virtualization support", describeVirtualization(cpu)],
          ["Memory", memory.total_bytes ? `${bytes(used)} used of ${bytes(memory.total_bytes)}` : "unknown"],
        ]),
      );
      if (used !== null) {
        hardware.append(meter(used / memory.total_bytes, "Memory in use"));
      }
      body(disks).append(
        table(
          [
            { title: "Disk", cell: (disk) => disk.name },
            { title: "Model", cell: diskModel },
            { title: "Size", class: "number", cell: (disk) => bytes(disk.size_bytes) },
          ],
          (inventory.block_devices ?? []).filter((disk) => !disk.removable || disk.size_bytes > 0),
          { empty: "No disks found.", label: "Disks" },
        ),
      );
      body(nics).append(
        table(
          [
            { title: "Card", cell: (nic) => nic.name },
            { title: "Link", cell: (nic) => h("span", { class: nic.carrier ? "link-up" : "link-down" }, nic.carrier ? `up${nic.speed_mbps ? ` ${nic.speed_mbps} Mbit/s` : ""}` : "down") },
            { title: "MAC", class: "mono", cell: (nic) => nic.mac ?? "–" },
          ],
          (inventory.nics ?? []).filter((nic) => !nic.is_virtual),
          { empty: "No network cards found.", label: "Network cards" },
        ),
      );
    })
    .catch((failure) => {
      for (const section of [hardware, disks, nics]) {
        body(section).append(alert(failure));
      }
    });

  api("GET", "/api/v1/vms")
    .then(({ vms: list }) => {
      const running = list.filter((vm) => vm.state === "running").length;
      body(vms).append(
        h(
          "div",
          { class: "counts" },
          h("a", { href: "/vms", class: "count" }, h("strong", {}, running), " running"),
          h("a", { href: "/vms", class: "count" }, h("strong", {}, list.length - running), " stopped or paused"),
        ),
      );
    })
    .catch((failure) => body(vms).append(alert(failure)));

  if (document.body.dataset.role === "admin") {
    api("GET", "/api/v1/host/logs?source=boot&lines=12")
      .then(({ lines }) =>
        body(logs).append(
          lines.length
            ? h("pre", { class: "log" }, lines.map((line) => `${uptimeStamp(line.timestamp_us)}  ${line.text}\n`))
            : h("p", { class: "empty" }, "The log is empty."),
        ),
      )
      .catch((failure) => body(logs).append(alert(failure)));
  } else {
    logs.remove();
  }
}

function virtualizationText(virtualization) {
  if (virtualization === "kvm") {
    return "KVM (hardware)";
  }
  if (virtualization === "pending") {
    return "being prepared (the VM services start a moment after the web server)";
  }
  return "TCG (software emulation, slow)";
}

function describeVirtualization(cpu) {
  const extension = typeof cpu.virtualization === "string" ? cpu.virtualization.toUpperCase() : null;
  const kvm = typeof cpu.kvm === "string"
    ? cpu.kvm
    : Object.values(cpu.kvm ?? {}).filter((value) => typeof value === "string").join(": ");
  const parts = [];
  parts.push(extension ? `${extension} in the CPU` : "none in the CPU");
  if (kvm) {
    parts.push(`KVM ${kvm.replaceAll("_", " ")}`);
  }
  return parts.join("; ");
}

function meter(share, label) {
  const bar = h("span", { class: "meter-fill" });
  bar.style.width = `${Math.round(Math.min(Math.max(share, 0), 1) * 100)}%`;
  return h("div", { class: "meter", role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(share * 100) }, bar);
}
