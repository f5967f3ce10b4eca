// A VM's consoles in the browser: the graphical one (noVNC, this module's `start`) and what
// it shares with the serial page (ui/serial_page.js): the VM's state with a Start button,
// the connection's state with the reason it ended and a Reconnect button, and the
// console's bundle loaded by its hashed address (`data-bundle`), so that only these pages
// load noVNC or xterm.js.
//
// The websocket's refusal (a stopped VM, no VNC display, a role without consoles) never
// reaches the page: a browser reports any refused upgrade as close code 1006. So the page
// reads the VM first, and again after each close, to say why.

import { api, may, toLogin } from "./api.js";
import { alert, fill, h, sentence, stateBadge } from "./dom.js";
import { watch } from "./live.js";

// The most text "Paste as keystrokes" types: at a few milliseconds a key, 20 000
// characters take a few minutes, beyond that a file transfer is the better way.
const MAX_PASTE = 20000;

// What a close code means to the person watching (the server's codes, see the API's
// consoles module).
function closeReason(code, kind) {
  switch (code) {
    case 1000:
      return kind === "serial"
        ? "The console closed: the VM stopped, or another window took its serial console over."
        : "The display closed: the VM stopped or its display went away.";
    case 1001:
      return "The server is shutting down or restarting. Reconnect when it is back.";
    case 1003:
      return "The page sent the console something it does not take. Reload the page.";
    case 1008:
      return "Your session ended. Sign in again to reconnect.";
    default:
      return "The connection broke or was refused.";
  }
}

// The websocket address of the VM's console `kind` (`vnc` or `serial`) on this host.
export function consoleUrl(name, kind) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/api/v1/vms/${encodeURIComponent(name)}/console/${kind}`;
}

// Whether the VM's spec gives it a VNC display.
function hasVnc(vm) {
  return vm.spec?.vnc?.enabled !== false;
}

// The frame both console pages share, filled into `view`: a toolbar with the VM's state,
// the connection's state and the page's own `tools`, a message line, and `screen`.
// `kind` is `vnc` or `serial`; `connect()` opens the console and returns a function that
// closes it; `canConnect(vm)` says why a running VM's console cannot be opened (or null).
// Returns `{ connecting, connected, disconnected(detail), vm }`, which the page calls as
// its console's state changes.
export function consoleFrame(view, { kind, tools, screen, connect, canConnect = () => null }) {
  const name = document.body.dataset.vm;
  const popout = document.body.dataset.popout === "true";
  const path = `/api/v1/vms/${encodeURIComponent(name)}`;
  const vmState = h("span", { id: "console-vm-state", class: "console-vm" });
  const status = h("span", { id: "console-status", class: "console-status", role: "status", "aria-live": "polite" });
  const startButton = h("button", { type: "button", id: "console-start", class: "small", hidden: true }, "Start");
  const reconnect = h("button", { type: "button", id: "console-reconnect", class: "small", hidden: true }, "Reconnect");
  const message = h("div", { id: "console-message", class: "console-message" });
  const back = popout
    ? null
    : h("a", { class: "console-back", href: `/vms/${encodeURIComponent(name)}` }, "← ", name);
  fill(
    view,
    h(
      "div",
      { class: "console-bar", role: "toolbar", "aria-label": "Console" },
      back,
      popout ? h("strong", { class: "console-name" }, name) : null,
      vmState,
      startButton,
      h("span", { class: "console-sep", "aria-hidden": "true" }),
      status,
      reconnect,
      h("span", { class: "spacer" }),
      tools,
    ),
    message,
    screen,
  );
  document.body.classList.add("console-page");

  let close = null;
  let vm = null;
  let wanted = true;

  const setStatus = (text, state) => {
    status.textContent = text;
    status.dataset.state = state;
    document.body.dataset.console = state;
  };

  function showVm(current) {
    vm = current;
    fill(vmState, stateBadge(current.state));
    const stopped = current.state === "shut_off" || current.state === "crashed";
    startButton.hidden = !(stopped && may.control);
  }

  async function readVm() {
    try {
      showVm((await api("GET", path)).vm);
      return vm;
    } catch (failure) {
      fill(message, alert(failure));
      setStatus("Not connected", "disconnected");
      return null;
    }
  }

  // Why the console cannot be opened now, from the VM's state: null when it can.
  function obstacle(current) {
    if (current.state !== "running") {
      return `${name} is not running${may.control ? ": start it to use its console" : ""}.`;
    }
    return canConnect(current);
  }

  async function open() {
    wanted = true;
    reconnect.hidden = true;
    fill(message);
    const current = await readVm();
    if (!current) {
      return;
    }
    const blocked = obstacle(current);
    if (blocked) {
      setStatus("Not connected", "disconnected");
      fill(message, h("p", { class: "warning", id: "console-obstacle" }, blocked));
      return;
    }
    setStatus("Connecting…", "connecting");
    try {
      close = await connect();
    } catch (failure) {
      setStatus("Not connected", "disconnected");
      fill(message, alert(failure));
      reconnect.hidden = false;
    }
  }

  const frame = {
    connected() {
      setStatus("Connected", "connected");
      fill(message);
    },
    async disconnected(detail) {
      close = null;
      if (!wanted) {
        return;
      }
      setStatus("Disconnected", "disconnected");
      reconnect.hidden = false;
      const code = detail?.code ?? 1006;
      if (code === 1008) {
        fill(
          message,
          h("p", { class: "error", role: "alert" }, closeReason(code, kind), " ",
            h("button", { type: "button", class: "small", on: { click: toLogin } }, "Sign in")),
        );
        return;
      }
      const current = await readVm();
      const blocked = current ? obstacle(current) : null;
      // Reconnecting to a VM that is not running would only fail: Start is the way on.
      reconnect.hidden = current !== null && current.state !== "running";
      // The server's reason says it best; the code's meaning where it gave none.
      const reason = detail?.reason ? sentence(detail.reason) : closeReason(code, kind);
      fill(message, h("p", { class: "warning", id: "console-obstacle" }, blocked ?? reason));
    },
    get vm() {
      return vm;
    },
  };

  reconnect.addEventListener("click", () => {
    close?.();
    close = null;
    open();
  });
  startButton.addEventListener("click", async () => {
    startButton.disabled = true;
    try {
      await api("POST", `${path}/start`);
      await open();
    } catch (failure) {
      fill(message, alert(failure));
    } finally {
      startButton.disabled = false;
    }
  });
  watch({
    onVm: async (change) => {
      if (change.name !== name) {
        return;
      }
      const before = vm?.state;
      const current = await readVm();
      if (!current || close) {
        return;
      }
      if (current.state === "running" && before !== "running") {
        open();
      } else if (obstacle(current)) {
        // The VM's state may change after its console closed (libvirt reports it a
        // moment later): say what it is now.
        reconnect.hidden = current.state !== "running";
        fill(message, h("p", { class: "warning", id: "console-obstacle" }, obstacle(current)));
      }
    },
    onResync: readVm,
  });
  window.addEventListener("pagehide", () => {
    wanted = false;
    close?.();
  });
  open();
  return frame;
}

// The buttons both consoles have: full screen for `screen`, and (but in a pop-out window)
// the same page in a window of its own without the site's chrome.
export function windowButtons(screen) {
  const name = document.body.dataset.vm;
  const popout = document.body.dataset.popout === "true";
  const button = (id, label, onClick, title) =>
    h("button", { type: "button", id, class: "small secondary", title, on: { click: onClick } }, label);
  return [
    button("console-fullscreen", "Full screen", () => {
      screen.requestFullscreen?.().catch(() => {});
    }, "Show the console on the whole screen (Esc leaves)"),
    popout
      ? null
      : button("console-popout", "Pop out", () => {
          window.open(`${location.pathname}?popout=1`, `console-${name}`, "popup,width=1060,height=840");
        }, "Open the console in a window of its own"),
  ];
}

// Loads the console's bundle (its address is in `data-bundle`).
export function loadBundle() {
  return import(document.body.dataset.bundle);
}

// X keysyms and the physical keys (KeyboardEvent codes) of the keys the Keys menu and the
// held modifiers press: QEMU takes the code as the key's scan code, so the guest sees the
// key itself whatever its keyboard layout.
const KEY = {
  ctrl: [0xffe3, "ControlLeft"],
  alt: [0xffe9, "AltLeft"],
  super: [0xffeb, "MetaLeft"],
  delete: [0xffff, "Delete"],
  backspace: [0xff08, "Backspace"],
  tab: [0xff09, "Tab"],
  escape: [0xff1b, "Escape"],
  print: [0xff61, "PrintScreen"],
  f: (n) => [0xffbd + n, `F${n}`],
};

// The Keys menu: what each entry presses, in order (released in reverse), with its id. A
// null entry is a separator. As in Proxmox's console, the combinations a browser or the
// desktop around it would take for itself.
const KEY_COMBOS = [
  { id: "console-cad", label: "Ctrl-Alt-Del", keys: [KEY.ctrl, KEY.alt, KEY.delete] },
  { id: "console-key-cab", label: "Ctrl-Alt-Backspace", keys: [KEY.ctrl, KEY.alt, KEY.backspace] },
  { id: "console-key-alt-tab", label: "Alt-Tab", keys: [KEY.alt, KEY.tab] },
  { id: "console-key-alt-f4", label: "Alt-F4", keys: [KEY.alt, KEY.f(4)] },
  { id: "console-key-ctrl-esc", label: "Ctrl-Esc", keys: [KEY.ctrl, KEY.escape] },
  { id: "console-key-super", label: "Super (Windows key)", keys: [KEY.super] },
  { id: "console-key-print", label: "Print Screen", keys: [KEY.print] },
  null,
  ...Array.from({ length: 12 }, (_, at) => ({
    id: `console-key-ctrl-alt-f${at + 1}`,
    label: `Ctrl-Alt-F${at + 1}`,
    keys: [KEY.ctrl, KEY.alt, KEY.f(at + 1)],
  })),
];

// A menu button `label` (id `id`) opening `entries` ({ id, label } or null for a separator)
// below it; `onChoose(entry)` hears the chosen one. Keyboard use as a menu button's: Enter,
// Space or the down arrow open it on the first entry, the up arrow on the last; in the menu
// the arrows, Home and End move, Enter chooses, Escape closes back onto the button, Tab
// closes. Returns `{ element, button, items }`.
function menuButton(id, label, entries, onChoose) {
  const button = h("button", {
    type: "button",
    id,
    class: "small secondary menu-button",
    "aria-haspopup": "menu",
    "aria-expanded": "false",
    "aria-controls": `${id}-menu`,
  }, label);
  const items = [];
  const menu = h("div", { id: `${id}-menu`, class: "menu", role: "menu", "aria-label": label, hidden: true });
  for (const entry of entries) {
    if (entry === null) {
      menu.append(h("div", { role: "separator", class: "menu-sep" }));
      continue;
    }
    const item = h("button", { type: "button", id: entry.id, role: "menuitem", tabindex: "-1" }, entry.label);
    item.addEventListener("click", () => {
      close(false);
      onChoose(entry);
    });
    items.push(item);
    menu.append(item);
  }
  const element = h("div", { class: "menu-wrap" }, button, menu);

  function open(at) {
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    // Opened at the right of a narrow screen, the menu ends at its button's right edge.
    menu.classList.remove("end");
    if (menu.getBoundingClientRect().right > document.documentElement.clientWidth) {
      menu.classList.add("end");
    }
    items[(at + items.length) % items.length].focus();
  }
  function close(refocus) {
    if (menu.hidden) {
      return;
    }
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (refocus) {
      button.focus();
    }
  }
  button.addEventListener("click", () => (menu.hidden ? open(0) : close(false)));
  button.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      open(event.key === "ArrowDown" ? 0 : -1);
    }
  });
  menu.addEventListener("keydown", (event) => {
    const at = items.indexOf(document.activeElement);
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: -1 };
    if (event.key in moves) {
      event.preventDefault();
      items[(moves[event.key] + items.length) % items.length].focus();
    } else if (event.key === "Escape") {
      event.preventDefault();
      close(true);
    } else if (event.key === "Tab") {
      close(false);
    }
  });
  // In the capturing phase: noVNC's canvas keeps the pointer's events to itself.
  document.addEventListener(
    "pointerdown",
    (event) => {
      if (!element.contains(event.target)) {
        close(false);
      }
    },
    true,
  );
  return { element, button, items, close };
}

// The graphical console's page.
export function start(view) {
  const name = document.body.dataset.vm;
  const screen = h("div", { id: "console-screen", class: "console-screen" });
  let rfb = null;
  let typing = null;
  let connected = false;

  const button = (id, label, onClick, attributes = {}) =>
    h("button", { type: "button", id, class: "small secondary", on: { click: onClick }, ...attributes }, label);
  const pressed = (toggle) => toggle.getAttribute("aria-pressed") === "true";
  // Pressed: the screen at its actual size (scrolling when larger); not: fitted to the window.
  const scale = button("console-scale", "Actual size", () => {
    const actual = !pressed(scale);
    scale.setAttribute("aria-pressed", String(actual));
    scale.textContent = actual ? "Fit to window" : "Actual size";
    if (rfb) {
      rfb.scaleViewport = !actual;
    }
    screen.classList.toggle("actual-size", actual);
  }, { "aria-pressed": "false", title: "Switch between the screen fitted to the window and at its actual size (100 %)" });

  // Ctrl and Alt held down until pressed again, for the keys a phone's keyboard lacks or
  // combinations the browser keeps: the guest sees them held while other keys are typed.
  const held = {};
  const holdButton = (key, label) => {
    const toggle = button(`console-hold-${key}`, label, () => hold(key, !pressed(toggle)), {
      "aria-pressed": "false",
      disabled: true,
      title: `Hold ${label} down in the VM until pressed again`,
    });
    held[key] = toggle;
    return toggle;
  };
  function hold(key, down) {
    if (pressed(held[key]) === down) {
      return;
    }
    held[key].setAttribute("aria-pressed", String(down));
    rfb?.sendKey(KEY[key][0], KEY[key][1], down);
    rfb?.focus();
  }
  const releaseHeld = () => Object.keys(held).forEach((key) => hold(key, false));

  const keys = menuButton("console-keys", "Keys", KEY_COMBOS, (combo) => {
    if (!rfb) {
      return;
    }
    // A held modifier stays held: the combination neither presses nor releases it.
    const keysToPress = combo.keys.filter(
      ([keysym]) => !Object.entries(held).some(([key, toggle]) => pressed(toggle) && KEY[key][0] === keysym),
    );
    for (const [keysym, code] of keysToPress) {
      rfb.sendKey(keysym, code, true);
    }
    for (const [keysym, code] of [...keysToPress].reverse()) {
      rfb.sendKey(keysym, code, false);
    }
    rfb.focus();
  });
  keys.button.disabled = true;
  keys.button.title = "Send a key combination the browser or your desktop would keep for itself";

  // Pressed: the screen is only watched, the page sends the VM no keys, pointer or clipboard.
  const viewOnly = button("console-view-only", "View only", () => {
    const on = !pressed(viewOnly);
    if (on) {
      releaseHeld();
    }
    viewOnly.setAttribute("aria-pressed", String(on));
    if (rfb) {
      rfb.viewOnly = on;
    }
    setConnected(connected);
  }, { "aria-pressed": "false", title: "Watch the screen without sending the VM any keys or pointer moves" });

  // The panels above the screen, one open at a time: text typed as keystrokes, the clipboard.
  const panels = [];
  const panelToggle = (id, label, panel, focus) => {
    const toggle = button(id, label, () => {
      const opening = panel.hidden;
      for (const [other, otherToggle] of panels) {
        other.hidden = true;
        otherToggle.setAttribute("aria-expanded", "false");
      }
      panel.hidden = !opening;
      toggle.setAttribute("aria-expanded", String(opening));
      if (opening) {
        focus.focus();
      }
    }, { disabled: true, "aria-expanded": "false", "aria-controls": panel.id });
    panels.push([panel, toggle]);
    return toggle;
  };

  const pasteText = h("textarea", {
    id: "console-paste-text",
    rows: 4,
    maxlength: MAX_PASTE,
    spellcheck: "false",
    "aria-describedby": "console-paste-hint",
  });
  const pasteProgress = h("span", { id: "console-paste-progress", class: "hint", role: "status" });
  const typeButton = h("button", { type: "button", id: "console-type", class: "small" }, "Type it");
  const stopButton = h("button", { type: "button", id: "console-type-stop", class: "small secondary", hidden: true }, "Stop");
  const paste = h(
    "div",
    { id: "console-paste-panel", class: "console-paste", hidden: true },
    h("label", { for: "console-paste-text" }, "Text to type into the VM"),
    pasteText,
    h(
      "p",
      { class: "hint", id: "console-paste-hint" },
      `Typed key by key as on a US keyboard layout, line ends as Enter, up to ${MAX_PASTE.toLocaleString()} characters (a few minutes). Characters the guest's keyboard has no key for are skipped by it.`,
    ),
    h("div", { class: "buttons" }, typeButton, stopButton, pasteProgress),
  );
  const pasteToggle = panelToggle(
    "console-paste",
    ["Paste", h("span", { class: "wide" }, " as keystrokes"), "…"],
    paste,
    pasteText,
  );
  pasteToggle.setAttribute("aria-label", "Paste as keystrokes…");

  typeButton.addEventListener("click", async () => {
    if (!rfb || typing) {
      return;
    }
    const text = pasteText.value;
    if (text === "") {
      pasteProgress.textContent = "Nothing to type.";
      return;
    }
    const { typeText } = await loadBundle();
    typing = new AbortController();
    typeButton.disabled = true;
    stopButton.hidden = false;
    const typed = await typeText(rfb, text, {
      signal: typing.signal,
      onProgress: (done, total) => {
        pasteProgress.textContent = `Typed ${done} of ${total} characters…`;
      },
    });
    pasteProgress.textContent = typing.signal.aborted ? `Stopped after ${typed} characters.` : `Typed ${typed} characters.`;
    typing = null;
    setConnected(connected);
    stopButton.hidden = true;
    rfb?.focus();
  });
  stopButton.addEventListener("click", () => typing?.abort());

  // The VM's clipboard: what the guest copies arrives here (noVNC's clipboard event), to
  // copy into the browser's clipboard; edited text goes back as the VM's clipboard. Only a
  // guest with a clipboard agent takes part; keystrokes work with any.
  const clipboardText = h("textarea", {
    id: "console-clipboard-text",
    rows: 4,
    spellcheck: "false",
    "aria-describedby": "console-clipboard-hint",
  });
  const clipboardStatus = h("span", { id: "console-clipboard-status", class: "hint", role: "status" });
  const copyButton = h("button", { type: "button", id: "console-clipboard-copy", class: "small secondary" }, "Copy");
  const sendButton = h("button", { type: "button", id: "console-clipboard-send", class: "small" }, "Send to the VM's clipboard");
  const clipboard = h(
    "div",
    { id: "console-clipboard-panel", class: "console-paste", hidden: true },
    h("label", { for: "console-clipboard-text" }, "The VM's clipboard"),
    clipboardText,
    h(
      "p",
      { class: "hint", id: "console-clipboard-hint" },
      "What the VM copies shows here when it runs a clipboard agent (spice-vdagent). Copy puts the text on this computer's clipboard, Send on the VM's. Without an agent, paste as keystrokes.",
    ),
    h("div", { class: "buttons" }, copyButton, sendButton, clipboardStatus),
  );
  const clipboardToggle = panelToggle("console-clipboard", "Clipboard…", clipboard, clipboardText);

  copyButton.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(clipboardText.value);
      clipboardStatus.textContent = "Copied to this computer's clipboard.";
    } catch {
      // The browser refuses the clipboard to a page without permission: the text is
      // selected for the person's own Ctrl-C.
      clipboardText.select();
      clipboardStatus.textContent = "The browser keeps its clipboard closed: the text is selected, press Ctrl-C.";
    }
  });
  sendButton.addEventListener("click", () => {
    if (!rfb) {
      return;
    }
    rfb.clipboardPasteFrom(clipboardText.value);
    clipboardStatus.textContent = `Sent ${Array.from(clipboardText.value).length} characters to the VM's clipboard.`;
  });
  const heardClipboard = (event) => {
    clipboardText.value = event.detail.text;
    clipboardStatus.textContent = `The VM copied ${Array.from(event.detail.text).length} characters.`;
    clipboardToggle.classList.toggle("news", clipboard.hidden);
  };
  clipboardToggle.addEventListener("click", () => clipboardToggle.classList.remove("news"));

  function setConnected(now) {
    connected = now;
    const input = now && !pressed(viewOnly);
    keys.button.disabled = !input;
    if (!input) {
      keys.close(false);
    }
    for (const toggle of Object.values(held)) {
      toggle.disabled = !input;
      if (!now) {
        // A new connection starts with nothing held.
        toggle.setAttribute("aria-pressed", "false");
      }
    }
    pasteToggle.disabled = !now;
    clipboardToggle.disabled = !now;
    typeButton.disabled = !input || typing !== null;
    sendButton.disabled = !input;
    if (!input) {
      typing?.abort();
    }
  }

  const frame = consoleFrame(view, {
    kind: "vnc",
    tools: h(
      "div",
      { class: "console-tools" },
      keys.element,
      holdButton("ctrl", "Ctrl"),
      holdButton("alt", "Alt"),
      clipboardToggle,
      pasteToggle,
      viewOnly,
      scale,
      windowButtons(screen),
    ),
    screen: h("div", { class: "console-stage" }, paste, clipboard, screen),
    canConnect: (vm) =>
      hasVnc(vm)
        ? null
        : `${name} has no VNC display: its spec turns it off. Turn it on (vnc.enabled) and start the VM again.`,
    connect: async () => {
      const { openVnc } = await loadBundle();
      screen.replaceChildren();
      const made = openVnc(screen, consoleUrl(name, "vnc"), {
        onStatus: (state, detail) => {
          if (rfb !== made) {
            return;
          }
          if (state === "connected") {
            setConnected(true);
            frame.connected();
            rfb.focus();
          } else if (state === "disconnected") {
            setConnected(false);
            rfb = null;
            frame.disconnected(detail);
          }
        },
      });
      rfb = made;
      rfb.background = "#000";
      rfb.scaleViewport = !pressed(scale);
      rfb.viewOnly = pressed(viewOnly);
      rfb.addEventListener("clipboard", heardClipboard);
      return () => {
        if (rfb === made) {
          releaseHeld();
          rfb = null;
          setConnected(false);
        }
        made.disconnect();
      };
    },
  });
}
