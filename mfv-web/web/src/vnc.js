// The VNC console's client: noVNC's RFB on a websocket of the host's own, the picture scaled
// to the element. The console page's own script (ui/console.js) imports this bundle by its
// address, calls openVnc and adds its buttons on the RFB object it gets back.

import RFB from '@novnc/novnc';

// X keysyms of the keys typed text needs beyond its characters.
const XK_SHIFT_L = 0xffe1;
const XK_RETURN = 0xff0d;
const XK_TAB = 0xff09;

// The characters a US keyboard types with Shift held: a VNC server that maps keysyms to
// scan codes (QEMU's) needs the Shift press to type them.
const SHIFTED = '~!@#$%^&*()_+{}|:"<>?';

// Connects a noVNC client inside `element` to the websocket at `url` (a wss:// address of
// this host) and returns the RFB object. `onStatus(state, detail)` hears each change:
// 'connected', 'disconnected' (detail: { clean, code, reason } of the websocket's close),
// 'failed' (detail: the server's reason), 'name' (detail: the desktop's name).
export function openVnc(element, url, { onStatus = () => {} } = {}) {
  // The page opens the socket itself to learn its close code (noVNC only says whether the
  // close was clean); this listener comes before noVNC's, so the code is known when noVNC
  // reports the disconnect.
  const socket = new WebSocket(url);
  let closed = { code: 1006, reason: '' };
  socket.addEventListener('close', (event) => {
    closed = { code: event.code, reason: event.reason };
  });
  const rfb = new RFB(element, socket);
  rfb.scaleViewport = true;
  rfb.resizeSession = false;
  rfb.addEventListener('connect', () => onStatus('connected'));
  rfb.addEventListener('disconnect', (event) =>
    onStatus('disconnected', { clean: event.detail.clean, ...closed }),
  );
  rfb.addEventListener('securityfailure', (event) => onStatus('failed', event.detail.reason));
  rfb.addEventListener('desktopname', (event) => onStatus('name', event.detail.name));
  return rfb;
}

// The keysym of one character: Latin-1 characters are their own keysym, the others
// Unicode keysyms (0x01000000 + code point), which a server without them in its keymap
// ignores.
function keysym(character) {
  if (character === '\n') {
    return XK_RETURN;
  }
  if (character === '\t') {
    return XK_TAB;
  }
  const point = character.codePointAt(0);
  if ((point >= 0x20 && point <= 0x7e) || (point >= 0xa0 && point <= 0xff)) {
    return point;
  }
  return 0x01000000 + point;
}

// Types `text` into the VNC display key by key, `perKeyMs` apart so the guest's keyboard
// buffer keeps up. `onProgress(typed, total)` hears each character; `signal` (an
// AbortSignal) stops it between two keys. Resolves with the number of characters typed.
// Line ends are Return; carriage returns are dropped (a CR LF pair is one Return).
export async function typeText(rfb, text, { perKeyMs = 8, onProgress = () => {}, signal } = {}) {
  const characters = Array.from(text.replaceAll('\r\n', '\n').replaceAll('\r', ''));
  let typed = 0;
  for (const character of characters) {
    if (signal?.aborted) {
      break;
    }
    const shifted = SHIFTED.includes(character) || (character !== character.toLowerCase());
    if (shifted) {
      rfb.sendKey(XK_SHIFT_L, 'ShiftLeft', true);
    }
    rfb.sendKey(keysym(character), null);
    if (shifted) {
      rfb.sendKey(XK_SHIFT_L, 'ShiftLeft', false);
    }
    typed += 1;
    onProgress(typed, characters.length);
    await new Promise((resolve) => setTimeout(resolve, perKeyMs));
  }
  return typed;
}
