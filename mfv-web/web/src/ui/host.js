// The host, for administrators: its services with a restart each, their recent log lines,
// its configuration (checked, then saved as the next generation), and rebooting or powering
// it off, which names the VMs that will stop and asks for the host's name to be typed.

import { api } from "./api.js";
import { confirmDanger } from "./dialog.js";
import { alert, facts, fill, h, panel, sentence, stateBadge, table, uptimeStamp } from "./dom.js";
import { statusLine, typedConfirm } from "./forms.js";

export function start(view) {
  const status = statusLine();
  const servicesBox = h("div", { id: "services", class: "admin-actions" });
  const logBox = h("pre", { class: "log tall", id: "host-log", tabindex: "0" });
  const source = h("select", { id: "log-source", "aria-label": "Whose log" }, h("option", { value: "boot" }, "Boot log"));
  const configBox = h("div", { id: "host-config" });
  const powerBox = h("div", { id: "host-power" });
  let hostname = "";

  const say = (text) => {
    status.textContent = text;
  };

  async function loadLog() {
    const query = source.value === "boot" ? "source=boot&lines=200" : `service=${encodeURIComponent(source.value)}&lines=200`;
    try {
      const { lines } = await api("GET", `/api/v1/host/logs?${query}`);
      fill(logBox, lines.length ? lines.map((line) => `${uptimeStamp(line.timestamp_us)}  ${line.text}\n`) : "The log is empty.");
      logBox.scrollTop = logBox.scrollHeight;
    } catch (failure) {
      fill(logBox, sentence(failure.message));
    }
  }

  async function loadServices() {
    let services;
    try {
      ({ services } = await api("GET", "/api/v1/host/services"));
    } catch (failure) {
      fill(servicesBox, alert(failure));
      return;
    }
    const chosen = source.value;
    fill(source, h("option", { value: "boot" }, "Boot log"), services.map((service) => h("option", { value: service.name }, `Service ${service.name}`)));
    source.value = services.some((service) => service.name === chosen) ? chosen : "boot";
    fill(
      servicesBox,
      table(
        [
          { title: "Service", cell: (service) => h("strong", {}, service.name) },
          { title: "State", cell: (service) => stateBadge(service.state) },
          { title: "PID", class: "number", cell: (service) => service.pid ?? "–" },
          { title: "Restarts", class: "number", cell: (service) => service.restarts },
          {
            title: "Actions",
            class: "actions",
            cell: (service) => [
              h(
                "button",
                {
                  type: "button",
                  class: "secondary small",
                  on: {
                    click: async () => {
                      const sure = await confirmDanger({
                        title: `Restart ${service.name}?`,
                        consequence: `${service.name} stops and starts again; what it serves is away meanwhile${service.name === "mfv-web" ? " (this page too, for a few seconds)" : ""}.`,
                        action: `Restart ${service.name}`,
                      });
                      if (!sure) return;
                      try {
                        await api("POST", `/api/v1/host/services/${encodeURIComponent(service.name)}/restart`);
                        say(`${service.name} restarted.`);
                      } catch (failure) {
                        say(`${service.name} was not restarted: ${failure.message}.`);
                      }
                      loadServices();
                    },
                  },
                },
                "Restart",
              ),
              h(
                "button",
                {
                  type: "button",
                  class: "secondary small",
                  on: {
                    click: () => {
                      source.value = service.name;
                      loadLog();
                      logBox.focus();
                    },
                  },
                },
                "Log",
              ),
            ],
          },
        ],
        services,
        { empty: "No services are supervised.", label: "Services", rowAttributes: (service) => ({ "data-service": service.name }) },
      ),
    );
  }

  async function loadConfig() {
    let config;
    try {
      config = await api("GET", "/api/v1/config");
    } catch (failure) {
      fill(configBox, alert(failure));
      return;
    }
    const text = h("textarea", { id: "config-text", class: "mono config-text", rows: 16, spellcheck: "false", "aria-label": "The configuration, mfv.toml" });
    text.value = config.text;
    const problems = h("div", { id: "config-problems", role: "alert" });
    const shown = (errors) =>
      fill(
        problems,
        errors.length
          ? h(
              "ul",
              { class: "error" },
              errors.map((issue) => h("li", {}, `${issue.line ? `line ${issue.line}${issue.column ? `:${issue.column}` : ""}, ` : ""}${issue.field ? `${issue.field}: ` : ""}${issue.message}`)),
            )
          : null,
      );
    const check = async () => {
      const { valid, errors } = await api("POST", "/api/v1/config/validate", { text: text.value });
      shown(errors);
      return valid;
    };
    const validate = h("button", { type: "button", class: "secondary", id: "config-check" }, "Check");
    const save = h("button", { type: "button", id: "config-save" }, "Save");
    validate.addEventListener("click", async () => {
      try {
        if (await check()) say("The configuration is valid.");
      } catch (failure) {
        say(`Not checked: ${failure.message}.`);
      }
    });
    save.addEventListener("click", async () => {
      try {
        if (!(await check())) return;
        const { generation } = await api("PUT", "/api/v1/config", { text: text.value, generation: config.generation ?? null });
        say(`Saved as generation ${generation}.`);
        loadConfig();
      } catch (failure) {
        if (failure.errors?.length) shown(failure.errors);
        say(`Not saved: ${failure.message}.`);
      }
    });
    fill(
      configBox,
      facts([
        ["Kept in", config.location],
        ["Generation", config.generation ?? "none yet"],
      ]),
      text,
      problems,
      h("p", { class: "buttons" }, validate, save),
    );
  }

  const power = async (path, verb, noun) => {
    if (!hostname) {
      say("The host's name is not known yet: reload the page.");
      return;
    }
    let running = [];
    try {
      const { vms } = await api("GET", "/api/v1/vms");
      running = vms.filter((vm) => vm.state === "running" || vm.state === "paused").map((vm) => vm.name);
    } catch {
      running = null;
    }
    const consequence = h(
      "div",
      {},
      h("p", {}, `${noun} ${hostname} stops every VM on it and ends every session and console.`),
      running === null
        ? h("p", { class: "warning" }, "The VMs could not be listed: any that run will be stopped.")
        : running.length
          ? [h("p", {}, running.length === 1 ? "This running VM will be stopped:" : `These ${running.length} running VMs will be stopped:`), h("ul", { class: "vm-names" }, running.map((name) => h("li", {}, name)))]
          : h("p", {}, "No VM is running."),
      verb === "Power off" ? h("p", { class: "warning" }, "It stays off until someone turns it on at the machine or its management board.") : null,
    );
    const sure = await typedConfirm({ title: `${verb} ${hostname}?`, consequence, expected: hostname, action: `${verb} ${hostname}` });
    if (!sure) return;
    try {
      await api("POST", path, { confirm: hostname });
      fill(powerBox, h("p", { class: "warning", role: "status", id: "power-state" }, `${hostname} is ${verb === "Reboot" ? "rebooting: this page answers again once it is up" : "powering off"}.`));
    } catch (failure) {
      say(`${hostname} was not stopped: ${failure.message}.`);
    }
  };

  source.addEventListener("change", loadLog);
  fill(
    view,
    status,
    panel(
      "Power",
      powerBox,
      h(
        "p",
        { class: "buttons" },
        h("button", { type: "button", class: "danger", id: "reboot", on: { click: () => power("/api/v1/host/reboot", "Reboot", "Rebooting") } }, "Reboot…"),
        h("button", { type: "button", class: "danger", id: "power-off", on: { click: () => power("/api/v1/host/poweroff", "Power off", "Powering off") } }, "Power off…"),
        h("span", { class: "hint" }, "Each names the VMs it stops and asks for the host's name first."),
      ),
    ),
    panel("Services", servicesBox),
    panel("Log", h("div", { class: "toolbar" }, source, h("button", { type: "button", class: "secondary small", on: { click: loadLog } }, "Refresh")), logBox),
    panel("Configuration", h("p", { class: "hint" }, "The host's mfv.toml. A save is checked first and kept as a new generation; a save made by someone else since this page loaded is refused."), configBox),
  );
  api("GET", "/api/v1/host")
    .then((host) => {
      hostname = host.hostname;
    })
    .catch((failure) => fill(powerBox, alert(failure)));
  loadServices().then(loadLog);
  loadConfig();
}
