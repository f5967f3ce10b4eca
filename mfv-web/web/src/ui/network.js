// The host's network: one table of its links (the interfaces, VLANs, bonds and the bridge
// of the [network] section in effect, with the cards' link state and MAC beside them, and
// the cards the section leaves out), the DNS it sets, and the section itself as TOML.
// Whoever may manage the network edits that section, by the simple changes of
// network_edit.js or as TOML, and applies it provisionally: the host undoes the change by
// itself unless it is confirmed before the countdown ends, so a change that cuts this browser
// off comes undone.

import { api } from "./api.js";
import { alert, fill, h, panel, sentence, table } from "./dom.js";
import { statusLine } from "./forms.js";
import { addressesDialog, bridgeDialog, vlanDialog } from "./network_edit.js";

const mayManage = document.body.dataset.canNetwork === "true";
const CONFIRM_WITHIN = 60;

const KINDS = { interface: "Network card", vlan: "VLAN", bond: "Bond", bridge: "Bridge" };

// The rows of the table: the section's links, each with its card where it is one, then the
// cards the section does not mention.
function linkRows(cards, layout) {
  const cardOf = new Map(cards.map((card) => [card.name, card]));
  const links = layout ? layout.links : [];
  const named = new Set(links.map((link) => link.name));
  return [
    ...links.map((link) => ({ ...link, card: cardOf.get(link.name) ?? null })),
    ...cards.filter((card) => !named.has(card.name)).map((card) => ({ name: card.name, kind: "card", card, unconfigured: true })),
  ];
}

function kindCell(row) {
  if (row.kind === "card") {
    return h("span", {}, "Network card", row.card.driver ? h("span", { class: "sub" }, row.card.driver) : null);
  }
  const label = row.kind === "vlan" ? `VLAN ${row.vlan_id}` : KINDS[row.kind] ?? row.kind;
  const notes = [row.kind === "interface" ? row.card?.driver : null, row.mtu ? `MTU ${row.mtu}` : null, row.stp ? "STP on" : null].filter(Boolean);
  return h("span", {}, label, notes.length ? h("span", { class: "sub" }, notes.join(", ")) : null);
}

function relationCell(row) {
  if (row.kind === "vlan") {
    return h("span", {}, "on ", h("strong", {}, row.vlan_parent));
  }
  if (row.kind === "bridge" || row.kind === "bond") {
    const ports = row.ports.length ? row.ports.flatMap((port, index) => [index ? ", " : null, h("strong", {}, port)]) : "no ports";
    return h("span", {}, ports, row.bond_primary ? h("span", { class: "sub" }, `primary ${row.bond_primary}`) : null);
  }
  return row.port_of ? h("span", {}, "port of ", h("strong", {}, row.port_of)) : "–";
}

function addressCell(row) {
  if (row.unconfigured) {
    return h("span", { class: "hint" }, "Not configured");
  }
  if (row.mode === "dhcp") {
    return "DHCP";
  }
  if (row.mode === "manual") {
    return h("span", { class: "hint" }, "None");
  }
  return h("span", { class: "addresses" }, row.addresses.map((address) => h("span", { class: "mono" }, address)));
}

function gatewayCell(row) {
  const gateways = [row.gateway, row.gateway6].filter(Boolean);
  return gateways.length ? h("span", { class: "addresses" }, gateways.map((gateway) => h("span", { class: "mono" }, gateway))) : "–";
}

function linkCell(row) {
  if (!row.card) {
    return "–";
  }
  const up = row.card.link === "up";
  return h("span", {}, h("span", { class: `state state-${up ? "running" : "shut_off"}` }, up ? "Up" : "Down"), up && row.card.speed_mbps ? h("span", { class: "sub" }, `${row.card.speed_mbps} Mbit/s`) : null);
}

function dnsLine(layout) {
  const servers = layout.dns_servers.length ? layout.dns_servers.join(", ") : "those learned by DHCP";
  return h(
    "p",
    { class: "dns", id: "network-dns" },
    h("strong", {}, "DNS servers: "),
    servers,
    layout.dns_search.length ? [h("span", { class: "sep" }, " · "), h("strong", {}, "Search: "), layout.dns_search.join(", ")] : null,
  );
}

export function start(view) {
  const status = statusLine();
  const linksBox = h("div", { id: "network-links" });
  const effectBox = h("div", { id: "network-in-effect" });
  const editBox = h("div", { id: "network-edit" });
  let timer = null;
  let latest = null;

  // Puts the section a simple change built in the editor, for the person to apply.
  async function edit(build) {
    if (timer || !latest) {
      return;
    }
    const toml = await build(latest);
    if (toml) {
      editor(toml, "The changed section is in the editor: review it, then apply it.");
      const apply = document.getElementById("network-apply");
      apply.scrollIntoView({ block: "center" });
      apply.focus();
    }
  }

  function tools(answer) {
    const rows = linkRows(answer.interfaces, answer.layout);
    const parents = rows.filter((row) => row.kind !== "vlan").map((row) => row.name);
    const ports = rows.filter((row) => ["interface", "bond", "card"].includes(row.kind) && !row.port_of).map((row) => row.name);
    const hasBridge = rows.some((row) => row.kind === "bridge");
    return h(
      "div",
      { class: "toolbar", id: "network-tools" },
      h("button", { type: "button", class: "secondary", id: "network-add-vlan", disabled: parents.length === 0, on: { click: () => edit((now) => vlanDialog(now.layout, parents)) } }, "Add VLAN…"),
      hasBridge ? null : h("button", { type: "button", class: "secondary", id: "network-add-bridge", disabled: ports.length === 0, on: { click: () => edit((now) => bridgeDialog(now.layout, ports)) } }, "Add bridge…"),
    );
  }

  function addressAction(row) {
    // A port carries no addresses of its own: the bridge or bond it is a port of does.
    if (row.port_of) {
      return null;
    }
    return h("button", { type: "button", class: "secondary small", "data-addresses": row.name, "aria-label": `Addresses of ${row.name}`, on: { click: () => edit((now) => addressesDialog(now.layout, row.name)) } }, "Edit…");
  }

  async function load() {
    let answer;
    try {
      answer = await api("GET", "/api/v1/network");
    } catch (failure) {
      fill(linksBox, alert(failure));
      return;
    }
    latest = answer;
    fill(
      linksBox,
      mayManage ? tools(answer) : null,
      answer.layout ? null : h("p", { class: "hint" }, "No [network] section: the network came from the boot command line or the console's setup screen."),
      table(
        [
          { title: "Name", class: "nowrap", cell: (row) => h("strong", {}, row.name) },
          { title: "Type", class: "nowrap", cell: kindCell },
          { title: "Ports / parent", cell: relationCell },
          { title: "Addresses", cell: addressCell },
          { title: "Gateway", cell: gatewayCell },
          { title: "Link", class: "nowrap", cell: linkCell },
          { title: "MAC", cell: (row) => (row.card?.mac ? h("span", { class: "mono" }, row.card.mac) : "–") },
          mayManage ? { title: "Actions", class: "actions", cell: addressAction } : null,
        ].filter(Boolean),
        linkRows(answer.interfaces, answer.layout),
        { empty: "No network cards and no [network] section.", label: "Network interfaces", rowAttributes: (row) => ({ "data-link": row.name, "data-kind": row.kind }) },
      ),
      answer.layout ? dnsLine(answer.layout) : null,
    );
    fill(
      effectBox,
      answer.in_effect
        ? h("details", {}, h("summary", {}, "The [network] section in effect, as TOML"), h("pre", { class: "log", id: "network-toml" }, answer.in_effect))
        : h("p", { class: "empty" }, "No [network] section."),
    );
    if (mayManage && !timer) {
      editor(answer.in_effect ?? "[network]\n");
    }
  }

  // The countdown of a change applied: keep it, or let it come undone.
  function pending(applied) {
    const deadline = Date.now() + applied.confirm_within_secs * 1000;
    const left = h("strong", { class: "countdown", id: "network-countdown" });
    const keep = h("button", { type: "button", id: "network-confirm" }, "Keep this network");
    const box = h(
      "div",
      { class: "pending", role: "region", "aria-label": "Network change waiting for confirmation" },
      h("p", {}, "Applied: ", applied.changes.length ? applied.changes.join("; ") : "nothing changed", "."),
      h("p", {}, "If this page still answers, the host is reachable: keep the change. Otherwise the host puts the previous network back by itself in ", left, "."),
      h("p", { class: "buttons" }, keep),
    );
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      left.textContent = `${seconds} s`;
      if (seconds === 0) {
        clearInterval(timer);
        timer = null;
        status.textContent = "Not confirmed in time: the host put the previous network back.";
        load();
      }
    };
    timer = setInterval(tick, 250);
    tick();
    // No other change until this one is kept or undone: the table comes back with it.
    for (const button of linksBox.querySelectorAll("button")) {
      button.disabled = true;
    }
    keep.addEventListener("click", async () => {
      keep.disabled = true;
      try {
        await api("POST", "/api/v1/network/confirm", { apply_id: applied.apply_id });
        status.textContent = "The network change is kept.";
      } catch (failure) {
        status.textContent = failure.kind === "rolled_back" ? `The host had undone the change: ${failure.message}.` : `Not confirmed: ${failure.message}.`;
      }
      clearInterval(timer);
      timer = null;
      load();
    });
    fill(editBox, box);
    keep.focus();
  }

  function editor(text, note = null) {
    const area = h("textarea", { id: "network-text", class: "mono config-text", rows: 12, spellcheck: "false", "aria-describedby": "network-hint" });
    area.value = text;
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const within = h("input", { type: "number", id: "network-within", class: "short", min: 10, max: 600, value: String(CONFIRM_WITHIN) });
    const apply = h("button", { type: "button", id: "network-apply" }, "Apply…");
    apply.addEventListener("click", async () => {
      apply.disabled = true;
      error.hidden = true;
      try {
        pending(await api("POST", "/api/v1/network/apply", { network_toml: area.value, confirm_within_secs: Number(within.value) }));
      } catch (failure) {
        error.textContent = sentence(failure.message);
        error.hidden = false;
      } finally {
        apply.disabled = false;
      }
    });
    fill(
      editBox,
      h("label", { for: "network-text" }, "The [network] section"),
      note ? h("p", { class: "notice", role: "status" }, note) : null,
      h("p", { class: "hint", id: "network-hint" }, "Interfaces, bridges and VLANs as in mfv.toml. Applying changes the running host at once; it lasts until the host restarts unless the configuration is saved with it."),
      area,
      error,
      h("p", { class: "row" }, h("label", { for: "network-within", class: "inline-label" }, "Undo unless confirmed within (s)"), within, apply),
    );
  }

  fill(view, h("div", { class: "network-panels" }, status, panel("Interfaces", linksBox), mayManage ? panel("Change the network", editBox) : panel("Configuration", effectBox)));
  load();
}
