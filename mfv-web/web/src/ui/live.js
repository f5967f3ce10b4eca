// Changes as they happen: the API's event stream (GET /api/v1/events), or polling where the
// stream cannot be had.

const POLL_MS = 5000;

// Calls `onVm(event)` for each VM change and `onResync()` when changes may have been missed
// (the stream lagged or was reconnected, or on each poll without a stream); `onTask(task)`
// for task updates. Returns a function that stops it.
export function watch({ onVm = () => {}, onTask = () => {}, onResync = () => {} }) {
  let poller = null;
  let source = null;
  let opened = false;
  const poll = () => {
    if (!poller) {
      poller = setInterval(onResync, POLL_MS);
    }
  };
  if (typeof EventSource === "function") {
    source = new EventSource("/api/v1/events");
    source.addEventListener("open", () => {
      if (opened) {
        onResync();
      }
      opened = true;
      if (poller) {
        clearInterval(poller);
        poller = null;
      }
    });
    source.addEventListener("vm", (event) => onVm(JSON.parse(event.data)));
    source.addEventListener("task", (event) => onTask(JSON.parse(event.data)));
    source.addEventListener("lagged", onResync);
    source.addEventListener("end", () => {
      source.close();
      poll();
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        poll();
      }
    });
  } else {
    poll();
  }
  window.addEventListener("pagehide", () => source?.close());
  return () => {
    source?.close();
    if (poller) {
      clearInterval(poller);
    }
  };
}
