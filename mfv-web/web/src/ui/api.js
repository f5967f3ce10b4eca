// Talking to the host's REST API: JSON in and out, the session's CSRF token on changes, and
// the way back to the login when the session ended.

const csrf = document.body.dataset.csrf ?? "";

// How long, in all, a read waits for a host that says (503 with Retry-After) it answers soon:
// right after boot, while it restores its VMs.
const RETRY_WITHIN_MS = 60_000;

// A refusal of the API, or a host that does not answer.
export class ApiFailure extends Error {
  constructor(status, body, retryAfter = null) {
    super(body?.message ?? `the host answered ${status}`);
    this.status = status;
    this.kind = body?.kind ?? "http";
    this.field = body?.field ?? null;
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
    // Milliseconds after which the host says the request may succeed, or null.
    const seconds = Number.parseInt(retryAfter ?? "", 10);
    this.retryAfterMs = status === 503 && seconds >= 0 ? seconds * 1000 : null;
  }
}

// The login, going back to this page after it.
export function toLogin() {
  const here = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(here)}`);
}

// Calls the API; resolves with the JSON answer, rejects with an ApiFailure. A 401 on a page
// that had a session sends the visitor to the login. A read the host answers with "not yet"
// (503 with Retry-After) is asked again when it says, for up to a minute, calling `waiting`
// with the host's reason before each wait.
export async function api(method, path, body, { login = false, waiting = () => {} } = {}) {
  const deadline = Date.now() + RETRY_WITHIN_MS;
  for (;;) {
    try {
      return await callOnce(method, path, body, login);
    } catch (failure) {
      const wait = failure.retryAfterMs ?? null;
      if (method !== "GET" || wait === null || Date.now() + wait > deadline) {
        throw failure;
      }
      waiting(failure.message);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

async function callOnce(method, path, body, login) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (method !== "GET" && method !== "HEAD") {
    headers["X-CSRF-Token"] = csrf;
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiFailure(0, {
      kind: "unreachable",
      message: "the host does not answer; check the network, then reload the page",
    });
  }
  const text = await response.text();
  let answer = null;
  try {
    answer = text ? JSON.parse(text) : null;
  } catch {
    answer = null;
  }
  if (response.status === 401 && !login) {
    toLogin();
  }
  if (!response.ok) {
    throw new ApiFailure(response.status, answer, response.headers.get("Retry-After"));
  }
  return answer;
}

// What the signed-in visitor's role allows, as the layout says.
export const may = {
  control: document.body.dataset.canControl === "true",
  manage: document.body.dataset.canManage === "true",
  console: document.body.dataset.canConsole === "true",
  storage: document.body.dataset.canStorage === "true",
  host: document.body.dataset.canHost === "true",
};
