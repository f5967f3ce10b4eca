// The setup wizard of config mode. Six steps, one shown at a time (the URL fragment names
// it); the answers compose the host's mfv.toml, and everything the host knows or checks
// (volumes, network cards, the configuration's validity, the save) comes from config mode's
// JSON API. Nothing the host or the person typed is ever parsed as HTML: text goes in with
// textContent only. The answers but the password are kept as a draft on the host, so the
// wizard resumes where it was after a network change moved it to another address.
"use strict";

(function () {
  const STEPS = ["admin", "volume", "host", "network", "auth", "review"];
  const STEP_TITLES = {
    admin: "Administrator",
    volume: "Config volume",
    host: "Host name",
    network: "Network",
    auth: "User directory",
    review: "Review and save",
  };
  // Which step each input (by id) belongs to, for errors the host names.
  const FIELD_STEPS = {
    admin: "admin", password: "admin", password2: "admin",
    device: "volume", confirm: "volume",
    hostname: "host", time_zone: "host",
    interface: "network", address: "network", prefix: "network", gateway: "network",
    dns: "network", vlan: "network", network: "network", confirm_within_secs: "network",
    backend: "auth", auth: "auth",
  };

  const wizard = document.getElementById("wizard");
  if (!wizard) {
    return;
  }
  const minPassword = Number(wizard.dataset.minPassword) || 8;
  const byId = (id) => document.getElementById(id);
  const value = (id) => (byId(id) ? byId(id).value.trim() : "");
  const checked = (name) => {
    const input = wizard.querySelector(`input[name="${name}"]:checked`);
    return input ? input.value : "";
  };

  const state = {
    volumes: null,
    interfaces: null,
    pendingTimer: null,
    draftLoaded: false,
    saving: false,
  };

  // --- Talking to the host ---------------------------------------------------------------

  // Calls the API; resolves with the JSON answer, rejects with {kind, message, field, errors}.
  async function api(method, path, body) {
    const init = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw { kind: "unreachable", message: `the host does not answer (${error.message})` };
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch (error) {
      answer = null;
    }
    if (!response.ok) {
      const refusal = answer && typeof answer.message === "string" ? answer : {};
      throw {
        kind: refusal.kind || "http",
        message: refusal.message || `the host answered ${response.status} ${response.statusText}`,
        field: refusal.field || null,
        errors: Array.isArray(refusal.errors) ? refusal.errors : [],
      };
    }
    return answer;
  }

  // --- Errors beside their fields ----------------------------------------------------------

  // The API's messages are sentence fragments; the page shows sentences.
  function sentence(text) {
    const trimmed = String(text).trim();
    if (trimmed === "") {
      return trimmed;
    }
    const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
    return /[.!?:]$/.test(capital) ? capital : `${capital}.`;
  }

  // The input id an API or configuration field is shown beside, or null.
  function inputFor(field) {
    if (!field) {
      return null;
    }
    const direct = {
      admin: "admin", password: "password", device: "device", volume: "device",
      confirm: "confirm", confirm_address: "network", network_toml: "network",
      confirm_within_secs: "confirm_within_secs", apply_id: "network",
    };
    if (field in direct) {
      return direct[field];
    }
    if (field.startsWith("host.hostname")) {
      return "hostname";
    }
    if (field.startsWith("host.time_zone")) {
      return "time_zone";
    }
    const backendField = field.match(/^auth\.(ldap|mysql)\.([a-z_]+)/);
    if (backendField) {
      return byId(`${backendField[1]}-${backendField[2]}-error`)
        ? `${backendField[1]}-${backendField[2]}`
        : "auth";
    }
    if (field === "auth.backend") {
      return "backend";
    }
    if (field.startsWith("auth")) {
      return "auth";
    }
    if (field.startsWith("network")) {
      for (const [part, input] of [["addresses", "address"], ["gateway", "gateway"],
        ["dns", "dns"], ["vlan", "vlan"]]) {
        if (field.includes(part)) {
          return input;
        }
      }
      return /\.name$/.test(field) ? "interface" : "network";
    }
    return null;
  }

  function stepOf(input) {
    if (!input) {
      return null;
    }
    if (input.startsWith("ldap-") || input.startsWith("mysql-")) {
      return "auth";
    }
    return FIELD_STEPS[input] || null;
  }

  // Shows `message` beside input `id` (or above the step when it has no place of its own).
  function showFieldError(id, message) {
    const place = id ? byId(`${id}-error`) : null;
    if (!place) {
      showWizardError(message);
      return;
    }
    place.textContent = sentence(message);
    place.hidden = false;
    const input = byId(id);
    if (input) {
      input.classList.add("invalid");
      input.setAttribute("aria-invalid", "true");
    }
  }

  function showWizardError(message) {
    const place = byId("wizard-error");
    place.textContent = sentence(message);
    place.hidden = false;
  }

  function clearErrors(section) {
    const scope = section || wizard;
    for (const place of scope.querySelectorAll(".field-error")) {
      place.hidden = true;
      place.textContent = "";
    }
    for (const input of scope.querySelectorAll(".invalid")) {
      input.classList.remove("invalid");
      input.removeAttribute("aria-invalid");
    }
    byId("wizard-error").hidden = true;
  }

  // Shows an API refusal beside the field it names; every configuration problem too.
  function showRefusal(refusal) {
    if (refusal.errors && refusal.errors.length > 0) {
      for (const problem of refusal.errors) {
        showFieldError(inputFor(problem.field), problemText(problem));
      }
      return;
    }
    showFieldError(inputFor(refusal.field), refusal.message);
  }

  function problemText(problem) {
    const where = problem.field ? `${problem.field}: ` : "";
    return `${where}${problem.message}`;
  }

  // --- The draft -----------------------------------------------------------------------------

  function collectDraft() {
    const fields = {};
    for (const input of wizard.querySelectorAll("input, select")) {
      if (input.type === "password" || input.type === "radio" || !input.id) {
        continue;
      }
      fields[input.id] = input.type === "checkbox" ? input.checked : input.value;
    }
    const radios = {};
    for (const name of ["volume", "volume-kind", "network-kind", "interface", "network-mode",
      "backend"]) {
      radios[name] = checked(name);
    }
    return { fields, radios };
  }

  function restoreFields(draft) {
    for (const [id, saved] of Object.entries(draft.fields || {})) {
      const input = byId(id);
      if (!input || input.type === "password") {
        continue;
      }
      if (input.type === "checkbox") {
        input.checked = saved === true;
      } else if (typeof saved === "string") {
        input.value = saved;
      }
    }
    restoreRadios(draft);
  }

  function restoreRadios(draft) {
    for (const [name, saved] of Object.entries(draft.radios || {})) {
      for (const input of wizard.querySelectorAll(`input[name="${name}"]`)) {
        if (input.value === saved) {
          input.checked = true;
        }
      }
    }
  }

  let lastDraft = null;
  async function keepDraft() {
    lastDraft = collectDraft();
    try {
      await api("PUT", "/api/v1/setup/draft", lastDraft);
    } catch (refusal) {
      showWizardError(`The answers could not be kept on the host: ${refusal.message}`);
    }
  }

  // --- Composing mfv.toml ------------------------------------------------------------------

  // A TOML basic string: JSON's escapes are TOML's.
  const toml = (text) => JSON.stringify(text);
  const tomlNumberOr = (text) => (/^[0-9]+$/.test(text) ? String(Number(text)) : toml(text));
  const isIpv6 = (text) => text.includes(":");

  function networkSection() {
    if (checked("network-kind") !== "card") {
      // The network the console set up, as the host reports it (none after mfv.net=).
      return state.networkInEffect || null;
    }
    const card = checked("interface");
    const mode = checked("network-mode") || "dhcp";
    const vlan = value("vlan");
    const lines = [];
    if (vlan) {
      lines.push("[[network.interfaces]]", `name = ${toml(card)}`, 'mode = "manual"', "");
    }
    lines.push("[[network.interfaces]]", `name = ${toml(vlan ? `${card}.${vlan}` : card)}`,
      `mode = ${toml(mode)}`);
    if (mode === "static") {
      lines.push(`addresses = [${toml(`${value("address")}/${value("prefix")}`)}]`);
      const gateway = value("gateway");
      if (gateway) {
        lines.push(`${isIpv6(gateway) ? "gateway6" : "gateway"} = ${toml(gateway)}`);
      }
    }
    if (vlan) {
      lines.push(`vlan = { parent = ${toml(card)}, id = ${tomlNumberOr(vlan)} }`);
    }
    const servers = value("dns").split(/[\s,]+/).filter((server) => server !== "");
    if (mode === "static" && servers.length > 0) {
      lines.push("", "[network.dns]", `servers = [${servers.map(toml).join(", ")}]`);
    }
    return `${lines.join("\n")}\n`;
  }

  function backendLines(backend) {
    const keys = backend === "ldap"
      ? [["url"], ["base_dn"], ["group_base"], ["bind_dn"], ["bind_password_file"],
        ["user_filter"], ["starttls", "bool"], ["ca_certificate"], ["insecure", "bool"]]
      : [["host"], ["port", "number"], ["database"], ["user"], ["password_file"],
        ["tls", "bool"], ["ca_certificate"], ["insecure", "bool"]];
    const lines = ["", `[auth.${backend}]`];
    for (const [key, type] of keys) {
      const input = byId(`${backend}-${key}`);
      if (type === "bool") {
        if (input.checked) {
          lines.push(`${key} = true`);
        }
      } else if (input.value.trim() !== "") {
        const text = input.value.trim();
        lines.push(`${key} = ${type === "number" ? tomlNumberOr(text) : toml(text)}`);
      } else if (key === SECRETS[backend]?.fileKey && byId(SECRETS[backend].input).value !== "") {
        lines.push(`${key} = ${toml(SECRETS[backend].defaultFile)}`);
      }
    }
    return lines;
  }

  // The password a backend reads from a file on the config volume: typed here, sent with the
  // connection test and the save, which writes it where the configuration says.
  const SECRETS = {
    ldap: { input: "ldap-bind_password", fileKey: "bind_password_file",
      defaultFile: "secrets/ldap-bind" },
    mysql: { input: "mysql-password", fileKey: "password_file",
      defaultFile: "secrets/db-password" },
  };

  // The contents of the files the composed [auth] names, by setting.
  function authFiles() {
    const backend = checked("backend") || "sqlite";
    const secret = SECRETS[backend];
    const files = {};
    if (secret && byId(secret.input).value !== "") {
      files[`auth.${backend}.${secret.fileKey}`] = byId(secret.input).value;
    }
    return files;
  }

  function composeConfig() {
    const lines = ["version = 1", "", "[host]", `hostname = ${toml(value("hostname"))}`];
    if (value("time_zone")) {
      lines.push(`time_zone = ${toml(value("time_zone"))}`);
    }
    const network = networkSection();
    if (network) {
      lines.push("", network.trimEnd());
    }
    const backend = checked("backend") || "sqlite";
    lines.push("", "[auth]", `backend = ${toml(backend)}`);
    if (backend !== "sqlite") {
      lines.push(...backendLines(backend));
    }
    return `${lines.join("\n")}\n`;
  }

  // The configuration's problems as the host sees them (an empty list: valid).
  async function validate() {
    const answer = await api("POST", "/api/v1/setup/validate", { config_text: composeConfig() });
    return answer.errors || [];
  }

  // --- Steps -------------------------------------------------------------------------------

  function currentStep() {
    const step = location.hash.replace(/^#/, "");
    return STEPS.includes(step) ? step : "admin";
  }

  function showStep() {
    const step = currentStep();
    const index = STEPS.indexOf(step);
    for (const name of STEPS) {
      byId(`step-${name}`).hidden = name !== step;
    }
    STEPS.forEach((name, position) => {
      const item = byId("steps").children[position];
      item.classList.toggle("current", position === index);
      item.classList.toggle("done", position < index);
      const link = item.querySelector("a");
      if (position === index) {
        link.setAttribute("aria-current", "step");
      } else {
        link.removeAttribute("aria-current");
      }
    });
    byId("nav").hidden = false;
    byId("back").hidden = index === 0;
    byId("next").hidden = step === "review";
    byId("save").hidden = step !== "review";
    byId("wizard-error").hidden = true;
    document.title = `${STEP_TITLES[step]} - Set up this host - Minifed-Virt`;
    const enter = { volume: enterVolume, network: enterNetwork, auth: showBackend, review: enterReview };
    if (enter[step]) {
      enter[step]();
    }
  }

  function go(step) {
    if (location.hash !== `#${step}`) {
      location.hash = step;
    } else {
      showStep();
    }
    window.scrollTo(0, 0);
  }

  // Checks the current step's answers the host cannot check before the save; true when
  // they may go on.
  function checkLocally(step) {
    if (step === "admin") {
      let fine = true;
      if (value("admin") === "") {
        showFieldError("admin", "Type the administrator's user name.");
        fine = false;
      }
      const password = byId("password").value;
      if ([...password].length < minPassword) {
        showFieldError("password", `The password needs at least ${minPassword} characters.`);
        fine = false;
      } else if (password !== byId("password2").value) {
        showFieldError("password2", "The two passwords differ: type the same one twice.");
        fine = false;
      }
      return fine;
    }
    if (step === "volume") {
      const device = checked("volume");
      if (!device) {
        showFieldError("device", "Choose the volume the configuration goes on.");
        return false;
      }
      const kind = checked("volume-kind");
      if (!kind) {
        showFieldError("device", `Choose whether to use ${device} as it is or to erase it.`);
        return false;
      }
      if (kind === "format" && byId("confirm").value !== device) {
        showFieldError("confirm", `Type ${device} exactly, to confirm that it is erased.`);
        return false;
      }
      return true;
    }
    if (step === "host" && value("hostname") === "") {
      showFieldError("hostname", "Type the host's name.");
      return false;
    }
    if (step === "network") {
      if (byId("network-pending").hidden === false) {
        showFieldError("network", "A network change waits for its confirmation: keep it, or " +
          "wait until the host goes back to the previous network.");
        return false;
      }
      if (checked("network-kind") === "card") {
        if (!checked("interface")) {
          showFieldError("interface", "Choose the card the host's address goes on.");
          return false;
        }
        if (checked("network-mode") === "static") {
          let fine = true;
          if (value("address") === "") {
            showFieldError("address", "Type the host's IP address.");
            fine = false;
          }
          if (value("prefix") === "") {
            showFieldError("prefix", "Type the prefix length (24 for 255.255.255.0).");
            fine = false;
          }
          return fine;
        }
      } else if (!checked("network-kind")) {
        showFieldError("network", "Choose whether to keep the network or to set up a card.");
        return false;
      }
    }
    return true;
  }

  async function next() {
    const step = currentStep();
    const section = byId(`step-${step}`);
    clearErrors(section);
    if (!checkLocally(step)) {
      return;
    }
    if (["host", "network", "auth"].includes(step)) {
      let problems;
      try {
        problems = await validate();
      } catch (refusal) {
        showRefusal(refusal);
        return;
      }
      const here = problems.filter((problem) => stepOf(inputFor(problem.field)) === step);
      if (here.length > 0) {
        for (const problem of here) {
          showFieldError(inputFor(problem.field), problem.message);
        }
        return;
      }
    }
    await keepDraft();
    go(STEPS[STEPS.indexOf(step) + 1]);
  }

  function back() {
    const index = STEPS.indexOf(currentStep());
    go(STEPS[Math.max(0, index - 1)]);
  }

  // --- Step 2: the volume ------------------------------------------------------------------

  const HOLDS = {
    config_volume: "an mfv-config volume",
    file_system: "a file system",
    partitions: "a partition table",
    nothing: "nothing recognised",
  };

  function size(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let shown = bytes;
    let unit = 0;
    while (shown >= 1024 && unit < units.length - 1) {
      shown /= 1024;
      unit += 1;
    }
    return `${shown >= 10 || unit === 0 ? Math.round(shown) : shown.toFixed(1)} ${units[unit]}`;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) {
      td.className = className;
    }
    return td;
  }

  function radioCell(name, value, label) {
    const td = document.createElement("td");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = name;
    input.value = value;
    input.setAttribute("aria-label", label);
    td.append(input);
    return td;
  }

  // Makes a whole table row select its radio button.
  function selectable(row) {
    row.addEventListener("click", (event) => {
      const input = row.querySelector("input[type=radio]");
      if (event.target !== input) {
        input.checked = true;
        input.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
  }

  async function loadVolumes() {
    const body = byId("volumes-body");
    body.replaceChildren();
    try {
      state.volumes = (await api("GET", "/api/v1/setup/volumes")).volumes;
    } catch (refusal) {
      state.volumes = null;
      showFieldError("device", refusal.message);
      return;
    }
    for (const volume of state.volumes) {
      const row = document.createElement("tr");
      let holds = HOLDS[volume.holds] || volume.holds;
      const about = [volume.fs_type, volume.label ? `label ${volume.label}` : null]
        .filter(Boolean).join(", ");
      if (about) {
        holds = `${holds}: ${about}`;
      }
      row.append(
        radioCell("volume", volume.device, volume.device),
        cell(volume.device, "mono"),
        cell(size(volume.size_bytes), "number"),
        cell([volume.model, volume.removable ? "removable" : null].filter(Boolean).join(", ") || "—"),
        cell(holds),
      );
      if (volume.holds === "config_volume") {
        row.classList.add("recommended");
      }
      selectable(row);
      body.append(row);
    }
    byId("volumes").hidden = state.volumes.length === 0;
    byId("volumes-empty").hidden = state.volumes.length !== 0;
    if (lastDraft) {
      restoreRadios(lastDraft);
    }
    showVolumeAction();
  }

  function enterVolume() {
    if (state.volumes === null) {
      loadVolumes();
    } else {
      showVolumeAction();
    }
  }

  function showVolumeAction() {
    const device = checked("volume");
    const volume = (state.volumes || []).find((choice) => choice.device === device);
    byId("volume-action").hidden = !volume;
    if (!volume) {
      return;
    }
    for (const row of byId("volumes-body").children) {
      row.classList.toggle("selected", row.querySelector("input").checked);
    }
    byId("volume-chosen").textContent = device;
    const usable = volume.holds === "config_volume" || volume.holds === "file_system";
    byId("volume-existing-choice").hidden = !usable;
    if (!usable && byId("volume-existing").checked) {
      byId("volume-existing").checked = false;
    }
    if (!checked("volume-kind")) {
      (usable ? byId("volume-existing") : byId("volume-format")).checked = true;
    }
    const format = checked("volume-kind") === "format";
    byId("format-fields").hidden = !format;
    byId("format-device").textContent = device;
    byId("format-partitions").textContent = volume.holds === "partitions"
      ? ", every partition on it included" : "";
    byId("confirm").placeholder = device;
  }

  // --- Step 4: the network -----------------------------------------------------------------

  async function loadNetwork() {
    const body = byId("interfaces-body");
    body.replaceChildren();
    let answer;
    try {
      answer = await api("GET", "/api/v1/setup/network");
    } catch (refusal) {
      showFieldError("interface", refusal.message);
      return;
    }
    state.interfaces = answer.interfaces;
    state.networkInEffect = answer.in_effect || null;
    byId("network-keep-hint").textContent = state.networkInEffect
      ? "The configuration gets the network in effect now, so the next boot sets it up again."
      : "The host reports no network section for it (it came from mfv.net=): after a reboot " +
        "the host sets up no card unless its kernel command line has mfv.net= again.";
    for (const card of state.interfaces) {
      const row = document.createElement("tr");
      const link = cell(card.link === "up"
        ? `up${card.speed_mbps ? `, ${card.speed_mbps} Mbit/s` : ""}` : "no link");
      link.className = card.link === "up" ? "link-up" : "link-down";
      row.append(
        radioCell("interface", card.name, card.name),
        cell(card.name, "mono"),
        cell(card.mac || "—", "mono"),
        cell(card.driver || "—"),
        link,
      );
      selectable(row);
      body.append(row);
    }
    byId("interfaces").hidden = state.interfaces.length === 0;
    byId("interfaces-empty").hidden = state.interfaces.length !== 0;
    if (lastDraft) {
      restoreRadios(lastDraft);
    }
    if (!checked("interface")) {
      const first = state.interfaces.find((card) => card.link === "up") || state.interfaces[0];
      const input = first && body.querySelector(`input[value="${CSS.escape(first.name)}"]`);
      if (input) {
        input.checked = true;
      }
    }
    markSelected(body);
    if (answer.pending) {
      showPending(answer.pending, false);
    }
  }

  function markSelected(body) {
    for (const row of body.children) {
      row.classList.toggle("selected", row.querySelector("input").checked);
    }
  }

  function enterNetwork() {
    if (new URLSearchParams(location.search).get("network") === "confirmed") {
      byId("network-confirmed").hidden = false;
    }
    if (!checked("network-kind")) {
      byId("network-card").checked = true;
    }
    if (!checked("network-mode")) {
      byId("mode-dhcp").checked = true;
    }
    showNetworkFields();
    if (state.interfaces === null) {
      loadNetwork();
    }
  }

  function showNetworkFields() {
    byId("network-fields").hidden = checked("network-kind") !== "card";
    byId("static-fields").hidden = checked("network-mode") !== "static";
    markSelected(byId("interfaces-body"));
  }

  // The address the host answers on after the change, when the change moves it.
  function newAddress() {
    if (checked("network-mode") !== "static" || value("address") === "") {
      return null;
    }
    const address = value("address");
    const here = location.hostname.replace(/^\[|\]$/g, "");
    if (address === here) {
      return null;
    }
    const host = isIpv6(address) ? `[${address}]` : address;
    return location.port ? `${host}:${location.port}` : host;
  }

  async function applyNetwork() {
    const section = byId("step-network");
    clearErrors(section);
    byId("network-result").hidden = true;
    byId("network-confirmed").hidden = true;
    if (!checkLocally("network")) {
      return;
    }
    const text = networkSection();
    if (!text) {
      showFieldError("network", "Keeping the network changes nothing: there is nothing to apply.");
      return;
    }
    const request = {
      network_toml: text,
      confirm_within_secs: Number(value("confirm-within")) || 0,
    };
    const address = newAddress();
    if (address) {
      request.confirm_address = address;
    }
    const button = byId("network-apply");
    button.disabled = true;
    button.textContent = "Applying…";
    try {
      await keepDraft();
      const applied = await api("POST", "/api/v1/setup/network/apply", request);
      showPending(applied, address !== null);
    } catch (refusal) {
      showRefusal(refusal);
    } finally {
      button.disabled = false;
      button.textContent = "Apply now";
    }
  }

  function showPending(applied, moved) {
    const box = byId("network-pending");
    box.hidden = false;
    box.classList.toggle("in-place", !moved);
    byId("network-apply").disabled = true;
    const link = byId("network-link");
    link.href = applied.confirm_url;
    link.textContent = applied.confirm_url;
    const linkText = byId("network-link-text");
    linkText.hidden = moved;
    linkText.textContent = "If the host's address changed instead (a DHCP lease can bring " +
      "another one; the console shows it), open this link with the new address in place of " +
      "the old one:";
    byId("network-keep-text").textContent = moved
      ? "If this page still reaches the host, you can keep the network from here instead:"
      : "";
    byId("network-keep-text").hidden = !moved;
    const deadline = Date.now() + applied.confirm_within_secs * 1000;
    clearInterval(state.pendingTimer);
    const tick = () => {
      const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      byId("network-countdown").textContent = moved
        ? `Open this link within ${left} s from the new address, or the host goes back to the old network:`
        : `The new network is on. Keep it within ${left} s, or the host goes back to the old network.`;
      if (left === 0) {
        endPending("The time ran out: the host went back to its previous network.", false);
      }
    };
    tick();
    state.pendingTimer = setInterval(tick, 1000);
    box.scrollIntoView({ block: "nearest" });
  }

  function endPending(message, kept) {
    clearInterval(state.pendingTimer);
    byId("network-pending").hidden = true;
    byId("network-apply").disabled = false;
    const result = byId("network-result");
    result.textContent = sentence(message);
    result.className = kept ? "ok" : "error";
    result.hidden = false;
  }

  async function keepNetwork() {
    const link = new URL(byId("network-link").href);
    const applyId = Number(link.searchParams.get("apply"));
    const button = byId("network-keep-button");
    button.disabled = true;
    try {
      await api("POST", "/api/v1/setup/network/confirm", { apply_id: applyId });
      endPending("The host keeps this network.", true);
    } catch (refusal) {
      endPending(refusal.message, false);
    } finally {
      button.disabled = false;
    }
  }

  // --- Step 5: the user directory ------------------------------------------------------------

  function showBackend() {
    if (!checked("backend")) {
      byId("backend-sqlite").checked = true;
    }
    const backend = checked("backend");
    byId("ldap-fields").hidden = backend !== "ldap";
    byId("mysql-fields").hidden = backend !== "mysql";
    byId("auth-test-row").hidden = backend === "sqlite";
    byId("auth-test-ok").hidden = true;
  }

  async function testAuth() {
    const section = byId("step-auth");
    clearErrors(section);
    byId("auth-test-ok").hidden = true;
    byId("auth-test-busy").hidden = false;
    byId("auth-test").disabled = true;
    try {
      const answer = await api("POST", "/api/v1/setup/auth/test", {
        config_text: composeConfig(),
        files: authFiles(),
      });
      const ok = byId("auth-test-ok");
      ok.textContent = `${answer.backend}: ${answer.message}`;
      ok.hidden = false;
    } catch (refusal) {
      if (refusal.kind === "not_found") {
        showFieldError("auth", "This host cannot test the connection (its web server has no " +
          "connection test yet). The settings are still checked when you go on.");
        return;
      }
      const input = inputFor(refusal.field);
      showFieldError(stepOf(input) === "auth" ? input : "auth", refusal.message);
      for (const problem of refusal.errors || []) {
        const place = inputFor(problem.field);
        if (stepOf(place) === "auth") {
          showFieldError(place, problem.message);
        }
      }
    } finally {
      byId("auth-test-busy").hidden = true;
      byId("auth-test").disabled = false;
    }
  }

  // --- Step 6: review and save ---------------------------------------------------------------

  function volumeChoice() {
    const device = checked("volume");
    if (!device) {
      return null;
    }
    if (checked("volume-kind") === "format") {
      return { kind: "format", device, fs: byId("fs").value, confirm: byId("confirm").value };
    }
    return { kind: "existing", device };
  }

  function describeVolume(volume) {
    if (!volume) {
      return "not chosen yet";
    }
    return volume.kind === "format"
      ? `${volume.device}, erased and formatted as ${volume.fs === "vfat" ? "FAT" : "ext4"}`
      : `${volume.device}, used as it is`;
  }

  // Lists `problems` (strings or configuration problems) above the review, each with a link
  // to its step.
  function listProblems(problems) {
    const list = byId("review-errors-list");
    list.replaceChildren();
    for (const problem of problems) {
      const item = document.createElement("li");
      const text = typeof problem === "string" ? problem : problemLine(problem);
      const step = typeof problem === "string" ? null : stepOf(inputFor(problem.field));
      item.append(text);
      if (step) {
        const link = document.createElement("a");
        link.href = `#${step}`;
        link.textContent = `Go to step ${STEPS.indexOf(step) + 1}: ${STEP_TITLES[step]}`;
        item.append(" ", link);
      }
      list.append(item);
    }
    byId("review-errors-title").textContent = problems.length === 1
      ? "One thing must be fixed before the save:"
      : `${problems.length} things must be fixed before the save:`;
    byId("review-errors").hidden = problems.length === 0;
  }

  function problemLine(problem) {
    const position = problem.line ? `line ${problem.line}: ` : "";
    return sentence(`${position}${problemText(problem)}`);
  }

  function missingAnswers() {
    const missing = [];
    if (value("admin") === "") {
      missing.push({ field: "admin", message: "the administrator has no user name", line: null });
    }
    if (byId("password").value === "") {
      missing.push({
        field: "password",
        message: "type the administrator's password (again, after a move to another address)",
        line: null,
      });
    }
    if (!volumeChoice()) {
      missing.push({ field: "device", message: "no config volume is chosen", line: null });
    }
    return missing;
  }

  async function enterReview() {
    const text = composeConfig();
    byId("review-config").textContent = text;
    byId("review-admin").textContent = value("admin") || "not set yet";
    byId("review-volume").textContent = describeVolume(volumeChoice());
    byId("review-valid").hidden = true;
    let problems;
    try {
      problems = await validate();
    } catch (refusal) {
      listProblems([`The configuration could not be checked: ${refusal.message}`]);
      return;
    }
    const all = [...missingAnswers(), ...problems];
    listProblems(all);
    byId("review-valid").hidden = problems.length !== 0;
    byId("save").disabled = all.length !== 0 || state.saving;
  }

  async function save() {
    if (state.saving) {
      return;
    }
    const volume = volumeChoice();
    const progress = byId("save-progress");
    byId("save-progress-text").textContent = volume.kind === "format"
      ? `Formatting ${volume.device} and saving the configuration… this can take a minute.`
      : `Saving the configuration on ${volume.device}…`;
    progress.hidden = false;
    progress.scrollIntoView({ block: "nearest" });
    state.saving = true;
    byId("save").disabled = true;
    byId("back").disabled = true;
    try {
      const saved = await api("POST", "/api/v1/setup/save", {
        config_text: composeConfig(),
        volume,
        admin: value("admin"),
        password: byId("password").value,
        files: authFiles(),
      });
      showSaved(saved);
    } catch (refusal) {
      state.saving = false;
      byId("save").disabled = false;
      byId("back").disabled = false;
      const problems = refusal.errors && refusal.errors.length > 0
        ? refusal.errors
        : [{ field: refusal.field, message: refusal.message, line: null }];
      listProblems(problems);
      clearErrors(byId("step-admin"));
      clearErrors(byId("step-volume"));
      showRefusal(refusal);
    } finally {
      progress.hidden = true;
    }
  }

  function showSaved(saved) {
    byId("save-result-text").textContent =
      `The configuration was saved on ${saved.device} (generation ${saved.generation}` +
      `${saved.formatted ? ", formatted first" : ""}).`;
    byId("save-next").textContent = saved.next ? sentence(saved.next) : "";
    byId("save-result").hidden = false;
    byId("review-errors").hidden = true;
    byId("review-valid").hidden = true;
    byId("save").hidden = true;
    byId("back").hidden = true;
    byId("save-result").scrollIntoView({ block: "nearest" });
    const last = byId("steps").lastElementChild;
    last.classList.remove("current");
    last.classList.add("done");
  }

  // --- Start -------------------------------------------------------------------------------

  function listen() {
    window.addEventListener("hashchange", showStep);
    byId("next").addEventListener("click", next);
    byId("back").addEventListener("click", back);
    byId("save").addEventListener("click", save);
    byId("volumes-reload").addEventListener("click", loadVolumes);
    byId("network-apply").addEventListener("click", applyNetwork);
    byId("network-keep-button").addEventListener("click", keepNetwork);
    byId("auth-test").addEventListener("click", testAuth);
    // The administrator's fields are a form for password managers; it is never sent.
    byId("admin-form").addEventListener("submit", (event) => event.preventDefault());
    wizard.addEventListener("change", (event) => {
      const name = event.target.name;
      if (name === "volume" || name === "volume-kind") {
        showVolumeAction();
      } else if (name === "network-kind" || name === "network-mode" || name === "interface") {
        showNetworkFields();
      } else if (name === "backend") {
        showBackend();
      }
    });
    wizard.addEventListener("input", (event) => {
      const place = event.target.id ? byId(`${event.target.id}-error`) : null;
      if (place) {
        place.hidden = true;
        event.target.classList.remove("invalid");
        event.target.removeAttribute("aria-invalid");
      }
    });
    // Enter in a field means Next, as in a form.
    wizard.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target.tagName === "INPUT" &&
        event.target.type !== "radio" && event.target.type !== "checkbox" &&
        currentStep() !== "review") {
        event.preventDefault();
        next();
      }
    });
  }

  async function start() {
    byId("password-hint").textContent = `At least ${minPassword} characters.`;
    listen();
    try {
      const answer = await api("GET", "/api/v1/setup/draft");
      if (answer.draft) {
        lastDraft = answer.draft;
        restoreFields(answer.draft);
      }
    } catch (refusal) {
      showWizardError(`The answers given so far could not be read: ${refusal.message}`);
    }
    showStep();
  }

  start();
}());
