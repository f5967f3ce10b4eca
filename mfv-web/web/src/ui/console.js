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

// The graphical console's page.
export function start(view) {
  const name = document.body.dataset.vm;
  const screen = h("div", { id: "console-screen", class: "console-screen" });
  let rfb = null;
  let typing = null;

  const button = (id, label, onClick, attributes = {}) =>
    h("button", { type: "button", id, class: "small secondary", on: { click: onClick }, ...attributes }, label);
  // Pressed: the screen at its actual size (scrolling when larger); not: fitted to the window.
  const scale = button("console-scale", "Actual size", () => {
    const actual = scale.getAttribute("aria-pressed") !== "true";
    scale.setAttribute("aria-pressed", String(actual));
    scale.textContent = actual ? "Fit to window" : "Actual size";
    if (rfb) {
      rfb.scaleViewport = !actual;
    }
    screen.classList.toggle("actual-size", actual);
  }, { "aria-pressed": "false", title: "Switch between the screen fitted to the window and at its actual size (100 %)" });
  const ctrlAltDel = button("console-cad", "Ctrl-Alt-Del", () => rfb?.sendCtrlAltDel(), { disabled: true });
  const pasteToggle = button("console-paste", "Paste as keystrokes…", () => {
    paste.hidden = !paste.hidden;
    pasteToggle.setAttribute("aria-expanded", String(!paste.hidden));
    if (!paste.hidden) {
      pasteText.focus();
    }
  }, { disabled: true, "aria-expanded": "false", "aria-controls": "console-paste-panel" });

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
    typeButton.disabled = false;
    stopButton.hidden = true;
    rfb?.focus();
  });
  stopButton.addEventListener("click", () => typing?.abort());

  const setConnected = (connected) => {
    ctrlAltDel.disabled = !connected;
    pasteToggle.disabled = !connected;
    typeButton.disabled = !connected || typing !== null;
    if (!connected) {
      typing?.abort();
    }
  };

  const frame = consoleFrame(view, {
    kind: "vnc",
    tools: h("div", { class: "console-tools" }, ctrlAltDel, pasteToggle, scale, windowButtons(screen)),
    screen: h("div", { class: "console-stage" }, paste, screen),
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
      rfb.scaleViewport = scale.getAttribute("aria-pressed") !== "true";
      return () => {
        if (rfb === made) {
          rfb = null;
          setConnected(false);
        }
        made.disconnect();
      };
    },
  });
}
