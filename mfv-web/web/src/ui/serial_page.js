// A VM's serial console: xterm.js filling the page, on the serial console's websocket.
// libvirt gives a serial console to one client at a time and the newest wins, so opening
// this page takes the console over from another window or `mfv vm console` (which then
// closes), and the page says so before it does.

import { fill, h } from "./dom.js";
import { consoleFrame, consoleUrl, loadBundle, windowButtons } from "./console.js";

export function start(view) {
  const name = document.body.dataset.vm;
  const screen = h("div", { id: "serial-screen", class: "console-screen serial-screen" });
  const note = h(
    "p",
    { class: "hint console-note", id: "serial-note" },
    "Opening this console takes it over from any other window or client using it: one client at a time.",
  );
  let session = null;

  const frame = consoleFrame(view, {
    kind: "serial",
    tools: [note, h("div", { class: "console-tools" }, windowButtons(screen))],
    screen,
    canConnect: (vm) =>
      vm.spec?.serial_console === false ? `${name} has no serial console: its spec turns it off.` : null,
    connect: async () => {
      const { openSerial } = await loadBundle();
      session?.close();
      fill(screen);
      const opened = openSerial(screen, consoleUrl(name, "serial"), {
        onStatus: (state, code) => {
          if (state === "connected") {
            frame.connected();
          } else if (state === "disconnected" && session === opened) {
            session = null;
            frame.disconnected({ code });
          }
        },
      });
      session = opened;
      return () => {
        if (session === opened) {
          session = null;
        }
        opened.close();
      };
    },
  });
}
