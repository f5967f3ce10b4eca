// Users, API tokens and sessions, for administrators: add, change and delete users, make a
// token (its secret shown once), revoke tokens and sessions. Each change is the API's, which
// checks it again; what would be destroyed is named before it is.

import { api } from "./api.js";
import { confirmDanger } from "./dialog.js";
import { alert, fill, h, panel, table, when } from "./dom.js";
import { field, formDialog, secretDialog, statusLine } from "./forms.js";
import { authPolicy } from "./policy.js";

const ROLES = ["viewer", "operator", "admin"];
const ROLE_LABELS = { viewer: "Viewer", operator: "Operator", admin: "Administrator" };
const me = document.body.dataset.user ?? "";
const myRole = document.body.dataset.role ?? "viewer";

// The roles a token made by this visitor may have: up to their own.
const grantable = () => ROLES.slice(0, ROLES.indexOf(myRole) + 1);

// The new-password fields, entered twice, held to the host's `policy` (from authPolicy();
// null when unknown: then the API alone says what is too short).
export function newPasswordFields(label, policy) {
  const min = policy?.min_password_chars;
  const hint = min ? `At least ${min} characters.` : null;
  const attributes = { autocomplete: "new-password", ...(min ? { minlength: min } : {}) };
  return [
    field({ name: "password", label, type: "password", hint, attributes }),
    field({ name: "again", label: `${label}, again`, type: "password", attributes: { autocomplete: "new-password" } }),
  ];
}

// A check for formDialog/inlineForm: refuses a password shorter than the policy's minimum
// (naming the form's field `name`) or two that differ.
export const checkNewPassword =
  (policy, name = "password") =>
  ({ password, again }) => {
    const min = policy?.min_password_chars ?? 0;
    if ([...password].length < min) {
      return { field: name, message: `the password needs at least ${min} characters` };
    }
    if (password !== again) {
      return { field: "again", message: "the two passwords differ" };
    }
    return null;
  };

// A sign-in's time, without the year when it is this year's (the users table is wide).
function signedInAt(stamp) {
  const moment = new Date(stamp);
  const thisYear = moment.getFullYear() === new Date().getFullYear();
  return moment.toLocaleString(undefined, { ...(thisYear ? {} : { year: "numeric" }), month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
}

export function start(view) {
  const status = statusLine();
  const usersBox = h("div", { id: "user-list", class: "admin-actions" });
  const tokensBox = h("div", { id: "token-list", class: "admin-actions" });
  const sessionsBox = h("div", { id: "session-list", class: "admin-actions" });
  let users = [];

  const say = (text) => {
    status.textContent = text;
  };

  // Runs a change, then says `done` and reloads; a refusal is said instead.
  const change = async (run, done) => {
    try {
      await run();
      say(done);
    } catch (failure) {
      say(`Not done: ${failure.message}.`);
    }
    await load();
  };

  const addUser = async () => {
    const policy = await authPolicy();
    const fields = [
      field({ name: "username", label: "User name", hint: "Starts with a lower-case letter; then lower-case letters, digits, ., - and _. It cannot be changed later.", attributes: { autocomplete: "off", autocapitalize: "none", spellcheck: "false" } }),
      field({ name: "display_name", label: "Display name", hint: "Optional: the person's name." }),
      field({ name: "role", label: "Role", value: "viewer", options: ROLES.map((role) => [role, ROLE_LABELS[role]]) }),
      ...newPasswordFields("Password", policy),
    ];
    const added = await formDialog({
      title: "Add a user",
      fields,
      action: "Add user",
      check: checkNewPassword(policy),
      submit: ({ username, display_name, role, password }) => api("POST", "/api/v1/users", { username, display_name, role, password }),
    });
    if (added) {
      say(`User ${added.username} added.`);
      await load();
    }
  };

  const resetPassword = async (user) => {
    const policy = await authPolicy();
    const fields = newPasswordFields("New password", policy);
    const done = await formDialog({
      title: `Set a new password for ${user.username}`,
      intro: `${user.username}'s sessions end; they sign in again with the new password.`,
      fields,
      action: "Set password",
      check: checkNewPassword(policy),
      submit: ({ password }) => api("PATCH", `/api/v1/users/${encodeURIComponent(user.username)}`, { password }),
    });
    if (done) {
      say(`${user.username}'s password was set.`);
      await load();
    }
  };

  const userActions = (user) => {
    if (user.username === me) {
      return h("a", { href: "/account" }, "You: My account");
    }
    const path = `/api/v1/users/${encodeURIComponent(user.username)}`;
    return [
      h(
        "button",
        {
          type: "button",
          class: "secondary small",
          on: {
            click: () =>
              change(
                () => api("PATCH", path, { disabled: !user.disabled }),
                user.disabled ? `${user.username} can sign in again.` : `${user.username} is disabled: their sessions ended.`,
              ),
          },
        },
        user.disabled ? "Enable" : "Disable",
      ),
      h("button", { type: "button", class: "secondary small", on: { click: () => resetPassword(user) } }, "Password…"),
      h(
        "button",
        {
          type: "button",
          class: "secondary small",
          on: {
            click: async () => {
              const sure = await confirmDanger({
                title: `Reset ${user.username}'s second factor?`,
                consequence: `${user.username}'s authenticator app and recovery codes stop working and their sessions end. They can sign in with their password alone until they enrol again.`,
                action: "Reset second factor",
              });
              if (sure) {
                await change(() => api("DELETE", `${path}/totp`), `${user.username}'s second factor was reset.`);
              }
            },
          },
        },
        "Reset 2FA",
      ),
      h(
        "button",
        {
          type: "button",
          class: "danger small",
          on: {
            click: async () => {
              const sure = await confirmDanger({
                title: `Delete user ${user.username}?`,
                consequence: `${user.username} is removed with their sessions, their API tokens and their second factor. The audit log keeps what they did.`,
                action: `Delete ${user.username}`,
              });
              if (sure) {
                await change(() => api("DELETE", path), `User ${user.username} deleted.`);
              }
            },
          },
        },
        "Delete",
      ),
    ];
  };

  const roleCell = (user) => {
    if (user.username === me) {
      return ROLE_LABELS[user.role] ?? user.role;
    }
    const select = h(
      "select",
      { "aria-label": `Role of ${user.username}`, class: "compact" },
      ROLES.map((role) => h("option", { value: role, selected: role === user.role }, ROLE_LABELS[role])),
    );
    select.addEventListener("change", () =>
      change(
        () => api("PATCH", `/api/v1/users/${encodeURIComponent(user.username)}`, { role: select.value }),
        `${user.username} is now ${ROLE_LABELS[select.value]}.`,
      ),
    );
    return select;
  };

  const newToken = async () => {
    const fields = [
      field({ name: "name", label: "Label", hint: "What uses it, e.g. backup-script; unique per owner.", attributes: { autocomplete: "off", spellcheck: "false" } }),
      field({ name: "owner", label: "Owner", value: me, options: users.filter((user) => !user.disabled).map((user) => [user.username, user.username]) }),
      field({ name: "role", label: "Role", value: "viewer", hint: "At most the owner's role; the token never does more than its owner may.", options: grantable().map((role) => [role, ROLE_LABELS[role]]) }),
      field({ name: "expires_in_days", label: "Lifetime in days", type: "number", value: "90", attributes: { min: 1, inputmode: "numeric", class: "short" } }),
    ];
    const created = await formDialog({
      title: "New API token",
      fields,
      action: "Create token",
      check: ({ expires_in_days }) => (/^[1-9][0-9]*$/.test(expires_in_days) ? null : { field: "expires_in_days", message: "a whole number of days, at least 1" }),
      submit: ({ name, owner, role, expires_in_days }) => api("POST", "/api/v1/tokens", { name, owner, role, expires_in_days: Number(expires_in_days) }),
    });
    if (created) {
      await load();
      await secretDialog({
        title: `Token ${created.token.name} created`,
        intro: `Send it as "Authorization: Bearer <token>". It acts as ${created.token.owner} with the ${created.token.role} role until ${when(created.token.expires_at)}.`,
        secret: created.secret,
        label: "API token",
      });
      say(`Token ${created.token.name} created for ${created.token.owner}.`);
    }
  };

  const revokeButton = (label, confirmation, path, done) =>
    h(
      "button",
      {
        type: "button",
        class: "danger small",
        on: {
          click: async () => {
            if (await confirmDanger(confirmation)) {
              await change(() => api("DELETE", path), done);
            }
          },
        },
      },
      label,
    );

  async function load() {
    let tokens;
    let sessions;
    try {
      [{ users }, { tokens }, { sessions }] = await Promise.all([api("GET", "/api/v1/users"), api("GET", "/api/v1/tokens"), api("GET", "/api/v1/sessions")]);
    } catch (failure) {
      fill(usersBox, alert(failure));
      return;
    }
    fill(
      usersBox,
      table(
        [
          { title: "User", cell: (user) => [h("strong", {}, user.username), user.display_name ? h("span", { class: "sub" }, user.display_name) : null] },
          { title: "Role", cell: roleCell },
          { title: "Status", cell: (user) => h("span", { class: `state state-${user.disabled ? "failed" : "running"}` }, user.disabled ? "Disabled" : "Active") },
          { title: "2FA", cell: (user) => h("span", { class: `state${user.totp_enabled ? " state-running" : ""}` }, user.totp_enabled ? "On" : "Off") },
          {
            title: "Last sign-in",
            class: "nowrap last-login",
            cell: (user) => (user.last_login ? h("time", { datetime: user.last_login, title: when(Date.parse(user.last_login) / 1000) }, signedInAt(user.last_login)) : h("span", { class: "hint" }, "never")),
          },
          { title: "Actions", class: "actions", cell: userActions },
        ],
        users,
        { empty: "There are no users.", label: "Users", rowAttributes: (user) => ({ "data-user": user.username }) },
      ),
    );
    fill(
      tokensBox,
      table(
        [
          { title: "Label", cell: (token) => h("strong", {}, token.name) },
          { title: "Owner", cell: (token) => token.owner },
          { title: "Role", cell: (token) => (token.effective_role === token.role ? token.role : `${token.role} (acts as ${token.effective_role})`) },
          { title: "Expires", cell: (token) => when(token.expires_at) },
          { title: "Last used", cell: (token) => (token.last_used_at ? when(token.last_used_at) : "never") },
          {
            title: "Actions",
            class: "actions",
            cell: (token) =>
              revokeButton(
                "Revoke",
                {
                  title: `Revoke token ${token.name}?`,
                  consequence: `Whatever uses ${token.owner}'s token ${token.name} is refused from its next request on. This cannot be undone: a new token has a new secret.`,
                  action: `Revoke ${token.name}`,
                },
                `/api/v1/tokens/${token.id}`,
                `Token ${token.name} revoked.`,
              ),
          },
        ],
        tokens,
        { empty: "There are no API tokens.", label: "API tokens", rowAttributes: (token) => ({ "data-token": token.name }) },
      ),
    );
    fill(
      sessionsBox,
      table(
        [
          { title: "User", cell: (session) => session.username },
          { title: "From", class: "mono", cell: (session) => session.source },
          { title: "Signed in", cell: (session) => when(session.created_at) },
          { title: "Last active", cell: (session) => when(session.last_seen_at) },
          { title: "Ends", cell: (session) => when(Math.min(session.idle_expires_at, session.expires_at)) },
          {
            title: "Actions",
            class: "actions",
            cell: (session) =>
              revokeButton(
                "Sign out",
                {
                  title: `End ${session.username}'s session?`,
                  consequence: `The browser ${session.username} signed in from at ${session.source} is signed out at its next request${session.username === me ? " (if it is this one, you too)" : ""}.`,
                  action: "End session",
                },
                `/api/v1/sessions/${session.id}`,
                `${session.username}'s session from ${session.source} ended.`,
              ),
          },
        ],
        sessions,
        { empty: "Nobody is signed in.", label: "Sessions", rowAttributes: (session) => ({ "data-session": session.username, "data-id": session.id }) },
      ),
    );
  }

  fill(
    view,
    status,
    panel("Users", h("div", { class: "toolbar" }, h("button", { type: "button", id: "add-user", on: { click: addUser } }, "Add user…")), usersBox),
    panel(
      "API tokens",
      h("div", { class: "toolbar" }, h("button", { type: "button", id: "new-token", on: { click: newToken } }, "New token…"), h("span", { class: "hint" }, "For scripts and mfv --remote; a token's secret is shown only when it is made.")),
      tokensBox,
    ),
    panel("Sessions", sessionsBox),
  );
  load();
}
