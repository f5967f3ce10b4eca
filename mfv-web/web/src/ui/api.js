// Talking to the host's REST API: JSON in and out, the session's CSRF token on changes, and
// the way back to the login when the session ended.

const csrf = document.body.dataset.csrf ?? "";

// A refusal of the API, or a host that does not answer.
export class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.message ?? `the host answered ${status}`);
    this.status = status;
    this.kind = body?.kind ?? "http";
    this.field = body?.field ?? null;
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
  }
}

// The login, going back to this page after it.
export function toLogin() {
  const here = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(here)}`);
}

// Calls the API; resolves with the JSON answer, rejects with an ApiFailure. A 401 on a page
// that had a session sends the visitor to the login.
export async function api(method, path, body, { login = false } = {}) {
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
    throw new ApiFailure(response.status, answer);
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
