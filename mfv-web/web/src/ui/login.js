// The login: user name and password, then the authentication code when the user enrolled
// one; errors beside the form with what to do next.

import { api } from "./api.js";
import { byId, sentence } from "./dom.js";

// The path to go on to after signing in: the form's, when it is a path of this site.
function nextPath(form) {
  const next = form.dataset.next ?? "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.includes("\\") ? next : "/";
}

// What to tell the person about the refusal `failure`, and which field to put them in.
function explain(failure) {
  switch (failure.kind) {
    case "invalid_credentials":
      return ["The user name or password is wrong. Check both (and Caps Lock), then try again.", "password"];
    case "totp_required":
      return ["This account has two-factor authentication: type the code your authenticator app shows.", "totp"];
    case "totp_invalid":
      return ["That code is wrong or has expired. Type the code your app shows now, or a recovery code.", "totp"];
    case "throttled":
      return [`${sentence(failure.message)} Wait, then try again; an administrator can also unlock the account.`, "password"];
    case "invalid_request":
      return [sentence(failure.message), failure.field === "username" ? "username" : "password"];
    case "unreachable":
      return [sentence(failure.message), null];
    default:
      return [`${sentence(failure.message)} If this goes on, look at the host's console.`, null];
  }
}

export function start() {
  const form = byId("login");
  const error = byId("login-error");
  const totpField = byId("totp-field");
  const button = byId("sign-in");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = byId("username").value.trim();
    const password = byId("password").value;
    const totp = byId("totp").value.replace(/\s+/g, "");
    for (const input of form.querySelectorAll("input")) {
      input.classList.remove("invalid");
      input.removeAttribute("aria-invalid");
    }
    if (!username || !password) {
      showError(username ? "password" : "username", `Type your ${username ? "password" : "user name"}.`);
      return;
    }
    button.disabled = true;
    button.textContent = "Signing in…";
    try {
      const body = { username, password };
      if (!totpField.hidden && totp) {
        body.totp = totp;
      }
      await api("POST", "/api/v1/session", body, { login: true });
      location.assign(nextPath(form));
    } catch (failure) {
      if (failure.kind === "totp_required" || failure.kind === "totp_invalid") {
        totpField.hidden = false;
      }
      const [message, field] = explain(failure);
      showError(field, message);
      button.disabled = false;
      button.textContent = "Sign in";
    }
  });

  function showError(field, message) {
    error.textContent = message;
    error.hidden = false;
    const input = field ? byId(field) : null;
    if (input) {
      input.classList.add("invalid");
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "login-error");
      input.focus();
      input.select?.();
    }
  }
}
