// The host's rules for new passwords (GET /api/v1/auth/policy), asked once per page, so the
// password fields say them and hold to them before anything is sent. The API still refuses
// what breaks them: if the rules cannot be read, the fields say nothing and the API decides.

import { api } from "./api.js";

let asked = null;

// {min_password_chars, api_token_max_days}, or null when the host did not say.
export function authPolicy() {
  asked ??= api("GET", "/api/v1/auth/policy").catch(() => null);
  return asked;
}
