// The host's network: its cards (link, speed, MAC, driver) and the [network] section in
// effect, with its interfaces, bridges and VLANs. Whoever may manage the network edits that
// section and applies it provisionally: the host undoes the change by itself unless it is
// confirmed before the countdown ends, so a change that cuts this browser off comes undone.

import { api } from "./api.js";
import { alert, fill, h, panel, sentence, table } from "./dom.js";
import { statusLine } from "./forms.js";

const mayManage = document.body.dataset.canNetwork === "true";
const CONFIRM_WITHIN = 60;

export function start(view) {
  const status = statusLine();
  const cardsBox = h("div", { id: "network-cards" });
  const effectBox = h("div", { id: "network-in-effect" });
  const editBox = h("div", { id: "network-edit" });
  let timer = null;

  async function load() {
    let answer;
    try {
      answer = await api("GET", "/api/v1/network");
    } catch (failure) {
      fill(cardsBox, alert(failure));
      return;
    }
    fill(
      cardsBox,
      table(
        [
          { title: "Card", cell: (card) => h("strong", {}, card.name) },
          { title: "Link", cell: (card) => h("span", { class: `state state-${card.link === "up" ? "running" : "shut_off"}` }, card.link === "up" ? `Up${card.speed_mbps ? `, ${card.speed_mbps} Mbit/s` : ""}` : "Down") },
          { title: "MAC", class: "mono", cell: (card) => card.mac ?? "–" },
          { title: "Driver", cell: (card) => card.driver ?? "–" },
        ],
        answer.interfaces,
        { empty: "No network cards.", label: "Network cards", rowAttributes: (card) => ({ "data-card": card.name }) },
      ),
    );
    fill(
      effectBox,
      answer.in_effect
        ? h("pre", { class: "log", id: "network-toml" }, answer.in_effect)
        : h("p", { class: "empty" }, "No [network] section: the network came from the boot command line or the console's setup screen."),
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

  function editor(text) {
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
      h("p", { class: "hint", id: "network-hint" }, "Interfaces, bridges and VLANs as in mfv.toml. Applying changes the running host at once; it lasts until the host restarts unless the configuration is saved with it."),
      area,
      error,
      h("p", { class: "row" }, h("label", { for: "network-within", class: "inline-label" }, "Undo unless confirmed within (s)"), within, apply),
    );
  }

  fill(view, status, panel("Network cards", cardsBox), panel("In effect", effectBox), mayManage ? panel("Change the network", editBox) : null);
  load();
}
