// Simple changes to the [network] section without writing TOML: add a VLAN, put a bridge over
// a card, set a link's addresses. Each builds the whole new section from the section in
// effect (as the API reads it) and hands its TOML to the editor, where the person reviews it
// and applies it the usual way: provisionally, undone unless confirmed. The host checks the
// section when it is applied; the dialogs only refuse what is plainly incomplete.

import { h } from "./dom.js";
import { field, formDialog } from "./forms.js";

const MODES = [
  ["dhcp", "DHCP"],
  ["static", "Static addresses"],
  ["manual", "None (up without addresses)"],
];

// The section as a model to change: its interface entries, the bridge and DNS, from the
// API's `layout` (null: no section yet).
export function sectionModel(layout) {
  if (!layout) {
    return { interfaces: [], bridge: null, dns: { servers: [], search: [] } };
  }
  const bridgeLink = layout.links.find((link) => link.kind === "bridge") ?? null;
  const interfaces = layout.links
    // A bridge up without addresses needs no entry of its own.
    .filter((link) => link !== bridgeLink || link.mode !== "manual" || link.mtu)
    .map((link) => ({
      name: link.name,
      mode: link.mode,
      addresses: [...link.addresses],
      gateway: link.gateway,
      gateway6: link.gateway6,
      mtu: link.mtu,
      vlan: link.kind === "vlan" ? { parent: link.vlan_parent, id: link.vlan_id } : null,
      bond: link.kind === "bond" ? { ports: [...link.ports], primary: link.bond_primary } : null,
    }));
  return {
    interfaces,
    bridge: bridgeLink ? { name: bridgeLink.name, ports: [...bridgeLink.ports], stp: Boolean(bridgeLink.stp) } : null,
    dns: { servers: [...layout.dns_servers], search: [...layout.dns_search] },
  };
}

const quoted = (text) => JSON.stringify(String(text));
const list = (items) => `[${items.map(quoted).join(", ")}]`;

// The model as the `[network]` section's TOML.
export function sectionToml(model) {
  const lines = ["[network]"];
  for (const entry of model.interfaces) {
    lines.push("", "[[network.interfaces]]", `name = ${quoted(entry.name)}`, `mode = ${quoted(entry.mode)}`);
    if (entry.mode === "static" && entry.addresses.length) {
      lines.push(`addresses = ${list(entry.addresses)}`);
    }
    if (entry.mode === "static" && entry.gateway) {
      lines.push(`gateway = ${quoted(entry.gateway)}`);
    }
    if (entry.mode === "static" && entry.gateway6) {
      lines.push(`gateway6 = ${quoted(entry.gateway6)}`);
    }
    if (entry.mtu) {
      lines.push(`mtu = ${entry.mtu}`);
    }
    if (entry.vlan) {
      lines.push(`vlan = { parent = ${quoted(entry.vlan.parent)}, id = ${entry.vlan.id} }`);
    }
    if (entry.bond) {
      const primary = entry.bond.primary ? `, primary = ${quoted(entry.bond.primary)}` : "";
      lines.push(`bond = { ports = ${list(entry.bond.ports)}${primary} }`);
    }
  }
  if (model.bridge) {
    lines.push("", "[network.bridge]", `name = ${quoted(model.bridge.name)}`, `ports = ${list(model.bridge.ports)}`, `stp = ${model.bridge.stp}`);
  }
  if (model.dns.servers.length || model.dns.search.length) {
    lines.push("", "[network.dns]");
    if (model.dns.servers.length) {
      lines.push(`servers = ${list(model.dns.servers)}`);
    }
    if (model.dns.search.length) {
      lines.push(`search = ${list(model.dns.search)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

// The entry of `name` in `model`, added (DHCP, as a card the section leaves out is) if the
// section has none.
function entryOf(model, name) {
  let entry = model.interfaces.find((one) => one.name === name);
  if (!entry) {
    entry = { name, mode: "dhcp", addresses: [], gateway: null, gateway6: null, mtu: null, vlan: null, bond: null };
    model.interfaces.push(entry);
  }
  return entry;
}

// The addresses typed one a line (or separated by commas or spaces).
const addressList = (text) => text.split(/[\s,]+/).filter(Boolean);

// The address fields of a link: mode, then addresses and gateways, shown with static
// addresses only.
function addressFields(entry) {
  const mode = field({ name: "mode", label: "Addresses", value: entry?.mode ?? "dhcp", options: MODES });
  const text = { spellcheck: "false", autocapitalize: "none" };
  const staticOnly = [
    field({ name: "addresses", label: "Static addresses", rows: 2, value: (entry?.addresses ?? []).join("\n"), hint: "With prefix length, one a line, e.g. 192.0.2.10/24 or 2001:db8::10/64.", attributes: text }),
    field({ name: "gateway", label: "IPv4 gateway", value: entry?.gateway ?? "", hint: "Optional; the host has one IPv4 default gateway.", attributes: text }),
    field({ name: "gateway6", label: "IPv6 gateway", value: entry?.gateway6 ?? "", hint: "Optional; the host has one IPv6 default gateway.", attributes: text }),
  ];
  const showStatic = () => {
    for (const one of staticOnly) {
      one.element.hidden = mode.input.value !== "static";
    }
  };
  mode.input.addEventListener("change", showStatic);
  showStatic();
  return [mode, ...staticOnly];
}

function addressRefusal(entered) {
  return entered.mode === "static" && addressList(entered.addresses).length === 0 ? { field: "addresses", message: "static addresses need at least one address, e.g. 192.0.2.10/24" } : null;
}

function setAddresses(entry, entered) {
  entry.mode = entered.mode;
  const isStatic = entered.mode === "static";
  entry.addresses = isStatic ? addressList(entered.addresses) : [];
  entry.gateway = isStatic ? entered.gateway.trim() || null : null;
  entry.gateway6 = isStatic ? entered.gateway6.trim() || null : null;
}

// Asks for `link`'s addresses; the new section's TOML, or null when cancelled.
export async function addressesDialog(layout, link) {
  const model = sectionModel(layout);
  const current = model.interfaces.find((one) => one.name === link) ?? null;
  const fields = addressFields(current);
  const done = await formDialog({
    title: `Addresses of ${link}`,
    intro: "The new section goes to the editor below, to be applied from there.",
    fields,
    action: "Put in the editor",
    check: addressRefusal,
    submit: async (entered) => {
      setAddresses(entryOf(model, link), entered);
      return true;
    },
  });
  return done ? sectionToml(model) : null;
}

// Asks for a VLAN: its parent, id and addresses; the new section's TOML, or null.
export async function vlanDialog(layout, parents) {
  const model = sectionModel(layout);
  const fields = [
    field({ name: "parent", label: "On", value: parents[0], options: parents.map((name) => [name, name]) }),
    field({ name: "id", label: "VLAN id", type: "number", value: "", hint: "1 to 4094; the link is named PARENT.ID, e.g. eth0.20.", attributes: { min: 1, max: 4094, inputmode: "numeric", class: "short" } }),
    ...addressFields(null),
  ];
  const done = await formDialog({
    title: "Add a VLAN",
    intro: "The new section goes to the editor below, to be applied from there.",
    fields,
    action: "Put in the editor",
    check: (entered) => {
      const id = Number(entered.id);
      if (!/^\d+$/.test(entered.id.trim()) || id < 1 || id > 4094) {
        return { field: "id", message: "a VLAN id is a whole number from 1 to 4094" };
      }
      if (model.interfaces.some((one) => one.vlan && one.vlan.parent === entered.parent && one.vlan.id === id)) {
        return { field: "id", message: `VLAN ${id} on ${entered.parent} is there already` };
      }
      return addressRefusal(entered);
    },
    submit: async (entered) => {
      const id = Number(entered.id);
      // The parent carries the VLAN's frames: it is declared, as it is or DHCP if it was not.
      entryOf(model, entered.parent);
      const vlan = entryOf(model, `${entered.parent}.${id}`);
      vlan.vlan = { parent: entered.parent, id };
      setAddresses(vlan, entered);
      return true;
    },
  });
  return done ? sectionToml(model) : null;
}

// Asks for a bridge over one of `ports`; the port's addresses move to the bridge. The new
// section's TOML, or null.
export async function bridgeDialog(layout, ports) {
  const model = sectionModel(layout);
  const fields = [
    field({ name: "name", label: "Bridge name", value: "br0", attributes: { spellcheck: "false", autocapitalize: "none", maxlength: 15 } }),
    field({ name: "port", label: "Over", value: ports[0], options: ports.map((name) => [name, name]) }),
  ];
  const done = await formDialog({
    title: "Add a bridge",
    intro: h("span", {}, "VMs attach to the bridge. The card becomes its port and its addresses move to the bridge (DHCP where the section had none for it). The new section goes to the editor below."),
    fields,
    action: "Put in the editor",
    check: (entered) => (/^[A-Za-z0-9_.-]{1,15}$/.test(entered.name.trim()) ? null : { field: "name", message: "a link name is 1 to 15 letters, digits, '.', '-' or '_'" }),
    submit: async (entered) => {
      const name = entered.name.trim();
      const port = entryOf(model, entered.port);
      const bridge = entryOf(model, name);
      Object.assign(bridge, { mode: port.mode, addresses: port.addresses, gateway: port.gateway, gateway6: port.gateway6 });
      Object.assign(port, { mode: "manual", addresses: [], gateway: null, gateway6: null });
      model.bridge = { name, ports: [entered.port], stp: false };
      return true;
    },
  });
  return done ? sectionToml(model) : null;
}
