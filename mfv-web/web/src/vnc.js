// The VNC console's client: noVNC's RFB on a websocket of the host's own, the picture scaled
// to the element. The console page's own script calls openVnc and adds its buttons
// (ctrl-alt-del, paste, full screen) on the RFB object it gets back.

import RFB from '@novnc/novnc';

// Connects a noVNC client inside `element` to the websocket at `url` (a wss:// address of
// this host) and returns the RFB object. `onStatus(state, detail)` hears each change:
// 'connected', 'disconnected' (detail: whether the close was clean), 'failed' (detail: the
// server's reason), 'name' (detail: the desktop's name).
export function openVnc(element, url, { onStatus = () => {} } = {}) {
  const rfb = new RFB(element, url);
  rfb.scaleViewport = true;
  rfb.resizeSession = false;
  rfb.addEventListener('connect', () => onStatus('connected'));
  rfb.addEventListener('disconnect', (event) => onStatus('disconnected', event.detail.clean));
  rfb.addEventListener('securityfailure', (event) => onStatus('failed', event.detail.reason));
  rfb.addEventListener('desktopname', (event) => onStatus('name', event.detail.name));
  return rfb;
}
