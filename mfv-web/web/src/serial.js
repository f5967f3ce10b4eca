// The serial console's client: xterm.js on a binary websocket of the host's own. Bytes from
// the socket go to the terminal as they are (the guest's terminal speaks UTF-8 and escape
// sequences); keys typed go back as UTF-8. The terminal follows its element's size.

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';

// Opens a terminal inside `element` connected to the websocket at `url` (a wss:// address of
// this host) and returns { terminal, socket, close }. `onStatus(state, detail)` hears
// 'connected', and 'disconnected' (detail: the close code).
export function openSerial(element, url, { onStatus = () => {} } = {}) {
  const terminal = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000 });
  const fit = new FitAddon();
  terminal.loadAddon(fit);
  terminal.open(element);
  fit.fit();

  const socket = new WebSocket(url);
  socket.binaryType = 'arraybuffer';
  const encoder = new TextEncoder();
  socket.addEventListener('open', () => {
    onStatus('connected');
    terminal.focus();
  });
  socket.addEventListener('message', (event) => {
    if (event.data instanceof ArrayBuffer) {
      terminal.write(new Uint8Array(event.data));
    } else {
      terminal.write(event.data);
    }
  });
  socket.addEventListener('close', (event) => onStatus('disconnected', event.code));
  const send = (bytes) => {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(bytes);
    }
  };
  const typed = terminal.onData((data) => send(encoder.encode(data)));
  // Some mouse reports are bytes above 127 that are not UTF-8: each character is one byte.
  const reported = terminal.onBinary((data) =>
    send(Uint8Array.from(data, (character) => character.charCodeAt(0))),
  );

  const resized = new ResizeObserver(() => fit.fit());
  resized.observe(element);

  const close = () => {
    resized.disconnect();
    typed.dispose();
    reported.dispose();
    socket.close();
    terminal.dispose();
  };
  return { terminal, socket, close };
}
