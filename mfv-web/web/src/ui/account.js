// The signed-in visitor's own account, whatever their role: who they are, their password,
// and their second factor (TOTP): enrol with a QR code, confirm with a first code, see the
// recovery codes once, turn it off.

import { encode } from "uqr";
import { api } from "./api.js";
import { alert, facts, fill, h, panel, svg } from "./dom.js";
import { field, inlineForm } from "./forms.js";
import { authPolicy } from "./policy.js";
import { checkNewPassword, newPasswordFields } from "./users.js";

const ROLE_LABELS = { viewer: "Viewer", operator: "Operator", admin: "Administrator" };

// `text` as a QR code drawn in SVG, one square per dark module.
function qrCode(text, label) {
  const { size, data } = encode(text, { ecc: "M", border: 2 });
  const path = [];
  data.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (dark) {
        path.push(`M${x} ${y}h1v1h-1z`);
      }
    }),
  );
  return svg(
    "svg",
    { class: "qr", viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": label, "shape-rendering": "crispEdges" },
    svg("rect", { width: size, height: size, fill: "#fff" }),
    svg("path", { d: path.join(""), fill: "#000" }),
  );
}

export function start(view) {
  const passwordBox = h("div", { id: "own-password" });
  const totpBox = h("div", { id: "own-totp" });
  const whoBox = h("div");

  const passwordForm = (policy) => {
    const fields = [
      field({ name: "current", label: "Current password", type: "password", attributes: { autocomplete: "current-password" } }),
      ...newPasswordFields("New password", policy),
    ];
    return inlineForm({
      id: "password-form",
      fields,
      action: "Change password",
      check: checkNewPassword(policy),
      submit: async ({ current, password }) => {
        try {
          return await api("PUT", "/api/v1/session/password", { current, new: password });
        } catch (failure) {
          // The API names the new password `new`; this form calls its field `password`.
          if (failure.field === "new") failure.field = "password";
          throw failure;
        }
      },
      done: () => {
        fill(
          passwordBox,
          h("p", { class: "ok", role: "status" }, "Password changed. Every session of yours has ended, this one too: sign in again with the new password."),
          h("p", {}, h("a", { class: "button", href: "/login?next=%2Faccount" }, "Sign in")),
        );
      },
    });
  };

  // The enrolment's second half: the app's first code.
  const confirmStep = (enrolment) => {
    const code = field({ name: "code", label: "Code from the app", hint: "The 6 digits it shows now.", attributes: { autocomplete: "one-time-code", inputmode: "numeric", class: "short" } });
    return [
      h("ol", { class: "steps-text" }, h("li", {}, "Scan the code with your authenticator app, or type the secret into it."), h("li", {}, "Keep the recovery codes somewhere safe: each signs you in once without the app."), h("li", {}, "Enter the code the app shows.")),
      h(
        "div",
        { class: "enrol" },
        enrolment.otpauth_uri ? qrCode(enrolment.otpauth_uri, "QR code for your authenticator app") : null,
        h(
          "div",
          {},
          h("p", { class: "label" }, "Secret"),
          h("p", { class: "mono secret-text", id: "totp-secret" }, enrolment.secret),
          enrolment.recovery_codes
            ? [h("p", { class: "label" }, "Recovery codes"), h("ul", { class: "mono recovery", id: "recovery-codes" }, enrolment.recovery_codes.map((one) => h("li", {}, one))), h("p", { class: "warning" }, "They will not be shown again.")]
            : null,
        ),
      ),
      inlineForm({
        id: "totp-confirm",
        fields: [code],
        action: "Confirm",
        submit: ({ code: entered }) => api("POST", "/api/v1/session/totp/confirm", { code: entered.trim() }),
        done: () => loadTotp("Two-factor sign-in is on: from now on you are asked for a code after your password."),
      }),
    ];
  };

  const disableForm = (confirmed) =>
    inlineForm({
      id: "totp-disable",
      fields: [
        field({ name: "password", label: "Password", type: "password", attributes: { autocomplete: "current-password" } }),
        confirmed ? field({ name: "code", label: "Code from the app, or a recovery code", attributes: { autocomplete: "one-time-code", class: "short" } }) : null,
      ].filter(Boolean),
      action: confirmed ? "Turn off two-factor sign-in" : "Cancel the setup",
      danger: confirmed,
      submit: ({ password, code }) => api("POST", "/api/v1/session/totp/disable", confirmed ? { password, code: code.trim() } : { password }),
      done: () => loadTotp(confirmed ? "Two-factor sign-in is off: your password alone signs you in." : "The setup was cancelled."),
    });

  async function loadTotp(message = null) {
    let status;
    try {
      status = await api("GET", "/api/v1/session/totp");
    } catch (failure) {
      fill(totpBox, alert(failure));
      return;
    }
    const said = message ? h("p", { class: "ok", role: "status" }, message) : null;
    if (status.confirmed) {
      fill(
        totpBox,
        said,
        facts([
          ["State", "On: signing in asks for a code"],
          ["Recovery codes left", String(status.recovery_codes_left)],
        ]),
        h("h3", {}, "Turn it off"),
        disableForm(true),
      );
    } else if (status.enabled) {
      fill(totpBox, said, h("p", {}, "A setup was started but not confirmed with a code: its secret is no longer shown. Cancel it, then start again."), disableForm(false));
    } else {
      fill(
        totpBox,
        said,
        h("p", {}, "Off: your password alone signs you in. With it on, signing in also asks for a code from an authenticator app on your phone."),
        inlineForm({
          id: "totp-enrol",
          fields: [field({ name: "password", label: "Your password, to start", type: "password", attributes: { autocomplete: "current-password" } })],
          action: "Set up two-factor sign-in",
          submit: ({ password }) => api("POST", "/api/v1/session/totp", { password }),
          done: (enrolment) => fill(totpBox, confirmStep(enrolment)),
        }),
      );
    }
  }

  fill(view, panel("Who you are", whoBox), panel("Password", passwordBox), panel("Two-factor sign-in", totpBox));
  authPolicy().then((policy) => fill(passwordBox, passwordForm(policy)));
  api("GET", "/api/v1/session")
    .then((session) =>
      fill(
        whoBox,
        facts([
          ["User name", session.username],
          ["Role", ROLE_LABELS[session.role] ?? session.role],
        ]),
      ),
    )
    .catch((failure) => fill(whoBox, alert(failure)));
  loadTotp();
}
