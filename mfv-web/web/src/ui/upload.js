// Sending an image to the host in chunks through the API's resumable uploads
// (POST /api/v1/pools/{pool}/uploads, then PUT /api/v1/uploads/{id} with Content-Range).
//
// A chunk that fails (the connection dropped, the host gave up on a stalled body with 408,
// mfv-web restarted behind a proxy) loses only itself: the upload asks the host where it is
// (GET /api/v1/uploads/{id}) and goes on from that offset, a few times in a row, before it
// stops and waits for the person to press Resume. Chunks grow or shrink so each takes a few
// seconds on the link: small ones give a live progress bar and lose little when cut, large
// ones waste little on requests.

import { ApiFailure, api } from "./api.js";

const csrf = document.body.dataset.csrf ?? "";
const MIB = 1024 * 1024;
const FIRST_CHUNK = MIB;
const LARGEST_CHUNK = 64 * MIB;
const CHUNK_SECONDS = 4;
// Failures in a row before the upload waits for the person.
export const TRIES = 5;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One upload of `file`. `onChange(upload)` is called whenever what it shows changes:
// `state` (starting, sending, retrying, paused, done, failed, cancelled), `sent` bytes,
// `speed` (bytes/s), `problem` (the last failure's words), `attempt`.
export class Upload {
  constructor({ file, pool, name, format, id = null, onChange }) {
    this.file = file;
    this.pool = pool;
    this.name = name;
    this.format = format;
    this.id = id;
    this.onChange = onChange;
    this.state = "starting";
    this.sent = 0;
    this.offset = 0;
    this.speed = 0;
    this.problem = null;
    this.attempt = 0;
    this.chunk = FIRST_CHUNK;
    this.request = null;
    this.volume = null;
  }

  get size() {
    return this.file.size;
  }

  changed(state) {
    if (state) {
      this.state = state;
    }
    this.onChange(this);
  }

  // Creates the upload on the host: its volume, empty. Rejects with the host's refusal.
  async create() {
    const { upload } = await api("POST", `/api/v1/pools/${encodeURIComponent(this.pool)}/uploads`, {
      name: this.name,
      size_bytes: this.size,
      format: this.format,
    });
    this.id = upload.id;
  }

  // Takes up an upload the host knows (by `id`) with this file: from where the host is.
  async takeUp() {
    await this.locate();
    return this.run();
  }

  // Goes on after a pause, with the same file.
  resume() {
    this.attempt = 0;
    this.problem = null;
    return this.run();
  }

  // Stops sending and has the host delete the unfinished volume.
  async cancel() {
    this.state = "cancelled";
    this.request?.abort();
    if (this.id !== null) {
      await api("DELETE", `/api/v1/uploads/${encodeURIComponent(this.id)}`);
    }
    this.changed("cancelled");
  }

  // Asks the host where the upload is.
  async locate() {
    const { upload } = await api("GET", `/api/v1/uploads/${encodeURIComponent(this.id)}`);
    if (upload.size_bytes !== this.size) {
      throw new ApiFailure(400, {
        kind: "invalid_request",
        field: "file",
        message: `this file has ${this.size} bytes, the upload ${upload.size_bytes}: pick the file this upload started with`,
      });
    }
    this.offset = upload.offset;
    this.sent = upload.offset;
    if (upload.state === "complete") {
      this.changed("done");
    }
  }

  async run() {
    this.changed("sending");
    while (this.offset < this.size && this.state !== "cancelled") {
      const started = performance.now();
      const length = Math.min(this.chunk, this.size - this.offset);
      try {
        const answer = await this.send(this.offset, length);
        this.offset = answer.upload.offset;
        this.sent = this.offset;
        this.volume = answer.volume ?? this.volume;
        this.attempt = 0;
        this.problem = null;
        const seconds = Math.max((performance.now() - started) / 1000, 0.001);
        // What the host acknowledged is the true speed; the browser's progress events count
        // bytes handed to the network, which run ahead.
        this.speed = this.speed ? this.speed * 0.5 + (length / seconds) * 0.5 : length / seconds;
        const fitting = (length / seconds) * CHUNK_SECONDS;
        this.chunk = Math.min(Math.max(Math.round(fitting / MIB) * MIB, FIRST_CHUNK), LARGEST_CHUNK, this.chunk * 4);
        this.changed(this.offset >= this.size ? "done" : "sending");
      } catch (failure) {
        if (this.state === "cancelled") {
          return;
        }
        if (!retryable(failure)) {
          this.problem = failure;
          this.changed("failed");
          return;
        }
        this.attempt += 1;
        this.problem = failure;
        this.chunk = FIRST_CHUNK;
        if (this.attempt >= TRIES) {
          this.changed("paused");
          return;
        }
        this.changed("retrying");
        await sleep(Math.min(500 * 2 ** this.attempt, 8000));
        try {
          await this.locate();
        } catch (lost) {
          if (!retryable(lost)) {
            this.problem = lost;
            this.changed("failed");
            return;
          }
        }
        if (this.state !== "done") {
          this.changed("sending");
        }
      }
    }
  }

  // Sends `length` bytes from `start`; resolves with the API's answer, rejects with an
  // ApiFailure (status 0 when the connection failed).
  send(start, length) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      this.request = request;
      request.open("PUT", `/api/v1/uploads/${encodeURIComponent(this.id)}`);
      request.setRequestHeader("X-CSRF-Token", csrf);
      request.setRequestHeader("Accept", "application/json");
      request.setRequestHeader("Content-Range", `bytes ${start}-${start + length - 1}/${this.size}`);
      let last = { at: performance.now(), loaded: 0 };
      request.upload.addEventListener("progress", (event) => {
        const now = performance.now();
        const elapsed = (now - last.at) / 1000;
        if (elapsed >= 0.25) {
          const rate = (event.loaded - last.loaded) / elapsed;
          this.speed = this.speed ? this.speed * 0.7 + rate * 0.3 : rate;
          last = { at: now, loaded: event.loaded };
        }
        this.sent = start + event.loaded;
        this.changed();
      });
      request.addEventListener("load", () => {
        let body = null;
        try {
          body = JSON.parse(request.responseText);
        } catch {
          body = null;
        }
        if (request.status >= 200 && request.status < 300 && body?.upload) {
          resolve(body);
        } else {
          reject(new ApiFailure(request.status, body));
        }
      });
      const lost = () =>
        reject(new ApiFailure(0, { kind: "unreachable", message: "the connection to the host was lost" }));
      request.addEventListener("error", lost);
      request.addEventListener("timeout", lost);
      request.addEventListener("abort", lost);
      request.send(this.file.slice(start, start + length));
    });
  }
}

// Whether sending again may help: the connection failed, the host gave up waiting (408),
// was busy with this upload's previous chunk or at another offset (409), or failed itself.
function retryable(failure) {
  return failure.status === 0 || failure.status === 408 || failure.status === 409 || failure.status >= 500;
}

// `seconds` as "1 h 5 min", "3 min 20 s" or "12 s".
export function timeLeft(seconds) {
  const whole = Math.max(Math.round(seconds), 0);
  if (whole >= 3600) {
    return `${Math.floor(whole / 3600)} h ${Math.round((whole % 3600) / 60)} min`;
  }
  if (whole >= 60) {
    return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  }
  return `${whole} s`;
}
