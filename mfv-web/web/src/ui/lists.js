// The read-only pages of this version: the network, users, the audit log and
// the host's services and log, each a table of what its API route answers.

import { api } from "./api.js";
import { alert, fill, h, panel, stateBadge, table, uptimeStamp, when } from "./dom.js";

async function show(view, load) {
  try {
    fill(view, ...(await load()));
  } catch (failure) {
    fill(view, alert(failure));
  }
}

export function network(view) {
  show(view, async () => {
    const answer = await api("GET", "/api/v1/network");
    return [
      panel(
        "Network cards",
        table(
          [
            { title: "Card", cell: (card) => card.name },
            { title: "Link", cell: (card) => h("span", { class: `link-${card.link}` }, `${card.link}${card.speed_mbps ? ` ${card.speed_mbps} Mbit/s` : ""}`) },
            { title: "Driver", cell: (card) => card.driver ?? "–" },
            { title: "MAC", class: "mono", cell: (card) => card.mac ?? "–" },
          ],
          answer.interfaces,
          { empty: "No network cards.", label: "Network cards" },
        ),
      ),
      panel(
        "In effect",
        answer.in_effect ? h("pre", { class: "log" }, answer.in_effect) : h("p", { class: "empty" }, "The network came from the boot command line, or there is none."),
      ),
    ];
  });
}

export function users(view) {
  show(view, async () => {
    const { users: list } = await api("GET", "/api/v1/users");
    return [
      table(
        [
          { title: "User", cell: (user) => user.username },
          { title: "Name", cell: (user) => user.display_name || "–" },
          { title: "Role", cell: (user) => user.role },
          { title: "Status", cell: (user) => (user.disabled ? "disabled" : "active") },
        ],
        list,
        { empty: "There are no users.", label: "Users" },
      ),
    ];
  });
}

export function audit(view) {
  show(view, async () => {
    const { entries } = await api("GET", "/api/v1/audit");
    return [
      table(
        [
          { title: "When", cell: (entry) => when(entry.at) },
          { title: "Who", cell: (entry) => entry.username ?? entry.actor ?? "–" },
          { title: "What", cell: (entry) => entry.event },
          { title: "Outcome", cell: (entry) => entry.outcome },
          { title: "Detail", cell: (entry) => entry.detail },
          { title: "From", class: "mono", cell: (entry) => entry.source ?? "–" },
        ],
        entries,
        { empty: "The audit log is empty.", label: "Audit log" },
      ),
    ];
  });
}

export function host(view) {
  show(view, async () => {
    const [{ services }, { lines }] = await Promise.all([
      api("GET", "/api/v1/host/services"),
      api("GET", "/api/v1/host/logs?source=boot&lines=200"),
    ]);
    return [
      panel(
        "Services",
        table(
          [
            { title: "Service", cell: (service) => service.name },
            { title: "State", cell: (service) => stateBadge(service.state) },
            { title: "PID", class: "number", cell: (service) => service.pid ?? "–" },
            { title: "Restarts", class: "number", cell: (service) => service.restarts },
          ],
          services,
          { empty: "No services are supervised.", label: "Services" },
        ),
      ),
      panel(
        "Boot log",
        lines.length
          ? h("pre", { class: "log tall" }, lines.map((line) => `${uptimeStamp(line.timestamp_us)}  ${line.text}\n`))
          : h("p", { class: "empty" }, "The log is empty."),
      ),
    ];
  });
}
