//! Users, roles, API tokens, sessions and the audit log through normal mode's API, over real
//! HTTPS on loopback with a real SQLite auth database: what an administrator changes reaches
//! the user's sessions and tokens at once, bad input is refused naming the field, an
//! administrator cannot lock themselves out, and the audit log says who did it from where.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::{PASSWORD, Server, kind};
use mfv_auth::Role;
use mfv_tests::https::HttpResponse;
use serde_json::{Value, json};

/// The field an error names.
fn field(response: &HttpResponse) -> String {
    response.json().unwrap()["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Adds `username` with `role` as the admin's token; panics unless it is added.
fn add(server: &Server, username: &str, role: &str) -> Value {
    let added = server.call(
        server.token(Role::Admin),
        "POST",
        "/api/v1/users",
        Some(json!({"username": username, "password": PASSWORD, "role": role})),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    added.json().unwrap()
}

#[test]
fn an_admin_adds_a_user_who_then_logs_in_with_the_role_given() {
    let server = Server::start();
    let admin = server.token(Role::Admin);
    let added = server.call(
        admin,
        "POST",
        "/api/v1/users",
        Some(json!({
            "username": "carl",
            "password": PASSWORD,
            "role": "operator",
            "display_name": "Carl C."
        })),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    assert_eq!(
        added.json().unwrap(),
        json!({"username": "carl", "display_name": "Carl C.", "role": "operator", "disabled": false,
               "totp_enabled": false, "last_login": null})
    );
    let list = server.call(admin, "GET", "/api/v1/users", None);
    let names: Vec<String> = list.json().unwrap()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["ada", "carl", "otto", "vera"]);
    let one = server.call(admin, "GET", "/api/v1/users/carl", None);
    assert_eq!(one.json().unwrap()["role"], "operator");

    let carl = server.sign_in("carl", PASSWORD).unwrap();
    let whoami = server.call_as(&carl, "GET", "/api/v1/session", None);
    assert_eq!(whoami.json().unwrap()["role"], "operator");

    let duplicate = server.call(
        admin,
        "POST",
        "/api/v1/users",
        Some(json!({"username": "carl", "password": PASSWORD, "role": "viewer"})),
    );
    assert_eq!(
        (duplicate.status, kind(&duplicate), field(&duplicate)),
        (409, "conflict".to_owned(), "username".to_owned())
    );
}

#[test]
fn bad_users_are_refused_naming_the_field() {
    let server = Server::start();
    let admin = server.token(Role::Admin);
    let refusals = [
        (
            json!({"username": "Carl!", "password": PASSWORD, "role": "viewer"}),
            "username",
        ),
        (
            json!({"username": "root", "password": PASSWORD, "role": "viewer"}),
            "username",
        ),
        (
            json!({"username": "carl", "password": "short", "role": "viewer"}),
            "password",
        ),
        (
            json!({"username": "carl", "password": "", "role": "viewer"}),
            "password",
        ),
        (
            json!({"username": "carl", "password": PASSWORD, "role": "boss"}),
            "role",
        ),
        (
            json!({"username": "carl", "password": PASSWORD, "role": "viewer", "display_name": "a\u{7}b"}),
            "display_name",
        ),
        (
            json!({"username": "carl", "password": PASSWORD, "role": "viewer", "admin": true}),
            "admin",
        ),
        (json!({"username": "carl", "role": "viewer"}), "password"),
    ];
    for (body, expected) in refusals {
        let refused = server.call(admin, "POST", "/api/v1/users", Some(body.clone()));
        assert_eq!(
            (refused.status, kind(&refused), field(&refused)),
            (400, "invalid_request".to_owned(), expected.to_owned()),
            "{body}: {}",
            refused.text()
        );
    }
    let short = server.call(
        admin,
        "POST",
        "/api/v1/users",
        Some(json!({"username": "carl", "password": "short", "role": "viewer"})),
    );
    assert!(
        short.text().contains("at least"),
        "the minimum is named: {}",
        short.text()
    );
    let role = server.call(
        admin,
        "PATCH",
        "/api/v1/users/vera",
        Some(json!({"role": "boss"})),
    );
    assert_eq!((role.status, field(&role)), (400, "role".to_owned()));
    // Nothing was added by the refusals.
    assert_eq!(
        server.call(admin, "GET", "/api/v1/users/carl", None).status,
        404
    );
    for (method, path, body) in [
        ("GET", "/api/v1/users/nosuchuser", None),
        ("GET", "/api/v1/users/No%20Such", None),
        (
            "PATCH",
            "/api/v1/users/nosuchuser",
            Some(json!({"role": "viewer"})),
        ),
        ("DELETE", "/api/v1/users/nosuchuser", None),
    ] {
        let missing = server.call(admin, method, path, body);
        assert_eq!(
            (missing.status, kind(&missing)),
            (404, "not_found".to_owned()),
            "{method} {path}"
        );
    }
}

#[test]
fn a_role_change_or_a_disable_reaches_the_users_session_at_once() {
    let server = Server::start();
    let admin = server.token(Role::Admin);
    add(&server, "carl", "viewer");
    let carl = server.sign_in("carl", PASSWORD).unwrap();
    let refused = server.call_as(&carl, "GET", "/api/v1/users", None);
    assert_eq!(
        (refused.status, kind(&refused)),
        (403, "forbidden".to_owned())
    );

    let promoted = server.call(
        admin,
        "PATCH",
        "/api/v1/users/carl",
        Some(json!({"role": "admin"})),
    );
    assert_eq!(promoted.status, 200, "{}", promoted.text());
    assert_eq!(promoted.json().unwrap()["role"], "admin");
    // Within the dispatcher's five seconds of trusting a session's check.
    let allowed = server.call_as(&carl, "GET", "/api/v1/users", None);
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    server.call(
        admin,
        "PATCH",
        "/api/v1/users/carl",
        Some(json!({"role": "viewer"})),
    );
    let demoted = server.call_as(&carl, "GET", "/api/v1/users", None);
    assert_eq!(demoted.status, 403);
    let whoami = server.call_as(&carl, "GET", "/api/v1/session", None);
    assert_eq!(whoami.json().unwrap()["role"], "viewer");

    let disabled = server.call(
        admin,
        "PATCH",
        "/api/v1/users/carl",
        Some(json!({"disabled": true})),
    );
    assert_eq!(disabled.json().unwrap()["disabled"], true);
    let ended = server.call_as(&carl, "GET", "/api/v1/session", None);
    assert_eq!(
        (ended.status, kind(&ended)),
        (401, "session_invalid".to_owned())
    );
    let refused = server.sign_in("carl", PASSWORD).err().unwrap();
    assert_eq!(kind(&refused), "invalid_credentials");

    let enabled = server.call(
        admin,
        "PATCH",
        "/api/v1/users/carl",
        Some(json!({"disabled": false, "display_name": "Carl"})),
    );
    assert_eq!(
        without_last_login(enabled.json().unwrap()),
        json!({"username": "carl", "display_name": "Carl", "role": "viewer", "disabled": false,
               "totp_enabled": false})
    );
    server.sign_in("carl", PASSWORD).unwrap();

    // An admin sets another's password: their sessions end, the new password works.
    let carl = server.sign_in("carl", PASSWORD).unwrap();
    let reset = server.call(
        admin,
        "PATCH",
        "/api/v1/users/carl",
        Some(json!({"password": "another long password"})),
    );
    assert_eq!(reset.status, 200, "{}", reset.text());
    assert_eq!(
        server.call_as(&carl, "GET", "/api/v1/session", None).status,
        401
    );
    server.sign_in("carl", "another long password").unwrap();
}

#[test]
fn a_tokens_secret_is_answered_once_and_revoked_or_deleted_tokens_stop_at_once() {
    let server = Server::start();
    let admin = server.token(Role::Admin);
    add(&server, "carl", "operator");
    let created = server.call(
        admin,
        "POST",
        "/api/v1/tokens",
        Some(json!({"owner": "carl", "name": "backup", "role": "viewer", "expires_in_days": 30})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json().unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("mfv_"), "{secret}");
    assert_eq!(created["token"]["owner"], "carl");
    assert_eq!(created["token"]["role"], "viewer");
    let id = created["token"]["id"].as_i64().unwrap();
    let bearer = format!("Bearer {secret}");
    let whoami = server.call(&bearer, "GET", "/api/v1/session", None);
    assert_eq!(whoami.json().unwrap()["role"], "viewer");

    let list = server.call(admin, "GET", "/api/v1/tokens", None);
    assert!(!list.text().contains(&secret));
    let tokens = list.json().unwrap()["tokens"].as_array().unwrap().clone();
    let listed = tokens.iter().find(|token| token["id"] == id).unwrap();
    assert_eq!(listed["name"], "backup");
    assert!(listed.get("secret").is_none(), "{listed}");

    let revoked = server.call(admin, "DELETE", &format!("/api/v1/tokens/{id}"), None);
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let refused = server.call(&bearer, "GET", "/api/v1/session", None);
    assert_eq!(
        (refused.status, kind(&refused)),
        (401, "token_invalid".to_owned())
    );
    let again = server.call(admin, "DELETE", &format!("/api/v1/tokens/{id}"), None);
    assert_eq!(again.status, 404);
    let not_an_id = server.call(admin, "DELETE", "/api/v1/tokens/seven", None);
    assert_eq!(
        (not_an_id.status, field(&not_an_id)),
        (400, "id".to_owned())
    );

    // The token's owner defaults to the caller; deleting a user ends their tokens and
    // sessions.
    let own = server.call(
        admin,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "mine", "role": "viewer", "expires_in_days": 1})),
    );
    assert_eq!(own.json().unwrap()["token"]["owner"], "ada");
    let second = server.call(
        admin,
        "POST",
        "/api/v1/tokens",
        Some(json!({"owner": "carl", "name": "ci", "role": "operator", "expires_in_days": 7})),
    );
    let bearer = format!(
        "Bearer {}",
        second.json().unwrap()["secret"].as_str().unwrap()
    );
    let carl = server.sign_in("carl", PASSWORD).unwrap();
    assert_eq!(
        server.call(&bearer, "GET", "/api/v1/session", None).status,
        200
    );
    assert_eq!(
        server.call_as(&carl, "GET", "/api/v1/session", None).status,
        200
    );
    let deleted = server.call(admin, "DELETE", "/api/v1/users/carl", None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let token_after = server.call(&bearer, "GET", "/api/v1/session", None);
    assert_eq!(
        (token_after.status, kind(&token_after)),
        (401, "token_invalid".to_owned())
    );
    let session_after = server.call_as(&carl, "GET", "/api/v1/session", None);
    assert_eq!(
        (session_after.status, kind(&session_after)),
        (401, "session_invalid".to_owned())
    );
    let list = server.call(admin, "GET", "/api/v1/tokens", None);
    assert!(
        list.json().unwrap()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|token| token["owner"] != "carl")
    );
}

#[test]
fn bad_tokens_are_refused_naming_the_field() {
    let server = Server::start();
    let admin = server.token(Role::Admin);
    let token = |body: Value| server.call(admin, "POST", "/api/v1/tokens", Some(body));
    for (body, status, expected) in [
        (
            json!({"owner": "vera", "name": "t", "role": "admin", "expires_in_days": 1}),
            400,
            "role",
        ),
        (
            json!({"owner": "vera", "name": "t", "role": "root", "expires_in_days": 1}),
            400,
            "role",
        ),
        (
            json!({"owner": "vera", "name": "t", "role": "viewer", "expires_in_days": 0}),
            400,
            "expires_in_days",
        ),
        (
            json!({"owner": "vera", "name": "t", "role": "viewer", "expires_in_days": 100_000}),
            400,
            "expires_in_days",
        ),
        (
            json!({"owner": "vera", "name": "", "role": "viewer", "expires_in_days": 1}),
            400,
            "name",
        ),
        (
            json!({"owner": "Vera", "name": "t", "role": "viewer", "expires_in_days": 1}),
            400,
            "owner",
        ),
        (
            json!({"owner": "nosuchuser", "name": "t", "role": "viewer", "expires_in_days": 1}),
            404,
            "owner",
        ),
        (
            json!({"owner": "vera", "name": "tests", "role": "viewer", "expires_in_days": 1}),
            409,
            "name",
        ),
        (
            json!({"owner": "vera", "name": "t", "role": "viewer"}),
            400,
            "expires_in_days",
        ),
    ] {
        let refused = token(body.clone());
        assert_eq!(
            (refused.status, field(&refused)),
            (status, expected.to_owned()),
            "{body}: {}",
            refused.text()
        );
    }
}

#[test]
fn a_revoked_session_stops_at_once() {
    let server = Server::start();
    let admin = server.token(Role::Admin);
    let vera = server.sign_in("vera", PASSWORD).unwrap();
    assert_eq!(
        server.call_as(&vera, "GET", "/api/v1/session", None).status,
        200
    );
    let sessions = server.call(admin, "GET", "/api/v1/sessions", None);
    assert_eq!(sessions.status, 200);
    let sessions = sessions.json().unwrap()["sessions"]
        .as_array()
        .unwrap()
        .clone();
    let session = sessions
        .iter()
        .find(|session| session["username"] == "vera")
        .unwrap();
    assert_eq!(session["source"], "127.0.0.1");
    assert!(session.get("token").is_none());
    let id = session["id"].as_i64().unwrap();
    let revoked = server.call(admin, "DELETE", &format!("/api/v1/sessions/{id}"), None);
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let after = server.call_as(&vera, "GET", "/api/v1/session", None);
    assert_eq!(
        (after.status, kind(&after)),
        (401, "session_invalid".to_owned())
    );
    let again = server.call(admin, "DELETE", &format!("/api/v1/sessions/{id}"), None);
    assert_eq!((again.status, kind(&again)), (404, "not_found".to_owned()));
}

#[test]
fn ones_own_password_is_changed_given_the_current_one() {
    let server = Server::start();
    let vera = server.sign_in("vera", PASSWORD).unwrap();
    let change = |current: &str, new: &str| {
        server.call_as(
            &vera,
            "PUT",
            "/api/v1/session/password",
            Some(json!({"current": current, "new": new})),
        )
    };
    let wrong = change("not my password", "a new long password");
    assert_eq!(
        (wrong.status, kind(&wrong), field(&wrong)),
        (403, "wrong_password".to_owned(), "current".to_owned())
    );
    let short = change(PASSWORD, "short");
    assert_eq!((short.status, field(&short)), (400, "new".to_owned()));
    // Without the CSRF token, a page of another site cannot do it with the cookie.
    let forged = server
        .client
        .send(
            "PUT",
            "/api/v1/session/password",
            &[
                ("cookie", &vera.cookie),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"current": PASSWORD, "new": "a new long password"})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .unwrap();
    assert_eq!(forged.status, 403);

    let changed = change(PASSWORD, "a new long password");
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json().unwrap()["sessions_ended"], true);
    assert!(changed.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        server.call_as(&vera, "GET", "/api/v1/session", None).status,
        401
    );
    assert!(server.sign_in("vera", PASSWORD).is_err());
    server.sign_in("vera", "a new long password").unwrap();
}

#[test]
fn an_admin_cannot_delete_disable_or_demote_themselves() {
    let server = Server::start();
    let ada = server.token(Role::Admin);
    let deleted = server.call(ada, "DELETE", "/api/v1/users/ada", None);
    assert_eq!(
        (deleted.status, kind(&deleted)),
        (409, "conflict".to_owned())
    );
    assert!(
        deleted.text().contains("another administrator"),
        "{}",
        deleted.text()
    );
    for (change, expected) in [
        (json!({"disabled": true}), "disabled"),
        (json!({"role": "operator"}), "role"),
        (json!({"role": "viewer", "display_name": "Ada"}), "role"),
    ] {
        let refused = server.call(ada, "PATCH", "/api/v1/users/ada", Some(change.clone()));
        assert_eq!(
            (refused.status, field(&refused)),
            (409, expected.to_owned()),
            "{change}"
        );
    }
    let password = server.call(
        ada,
        "PATCH",
        "/api/v1/users/ada",
        Some(json!({"password": "a new long password"})),
    );
    assert_eq!(
        (password.status, field(&password)),
        (400, "password".to_owned())
    );
    // Nothing of the refused changes was made.
    let me = server
        .call(ada, "GET", "/api/v1/users/ada", None)
        .json()
        .unwrap();
    assert_eq!(
        me,
        json!({"username": "ada", "display_name": "", "role": "admin", "disabled": false,
               "totp_enabled": false, "last_login": null})
    );
    let renamed = server.call(
        ada,
        "PATCH",
        "/api/v1/users/ada",
        Some(json!({"display_name": "Ada L.", "role": "admin"})),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.text());

    // Another administrator may: then the one who did it is still an administrator.
    add(&server, "bea", "admin");
    let bea = server.sign_in("bea", PASSWORD).unwrap();
    let demoted = server.call_as(
        &bea,
        "PATCH",
        "/api/v1/users/ada",
        Some(json!({"role": "operator"})),
    );
    assert_eq!(demoted.status, 200, "{}", demoted.text());
    let refused = server.call(ada, "GET", "/api/v1/users", None);
    assert_eq!(refused.status, 403);
    let last = server.call_as(
        &bea,
        "PATCH",
        "/api/v1/users/bea",
        Some(json!({"role": "viewer"})),
    );
    assert_eq!(last.status, 409);
}

#[test]
fn the_audit_log_says_who_did_what_from_where_by_user_and_page() {
    let server = Server::start();
    let admin = server.token(Role::Admin);
    add(&server, "carl", "viewer");
    server.call(
        admin,
        "PATCH",
        "/api/v1/users/carl",
        Some(json!({"role": "operator"})),
    );
    server.call(
        admin,
        "PATCH",
        "/api/v1/users/carl",
        Some(json!({"disabled": true})),
    );
    server.call(admin, "DELETE", "/api/v1/users/carl", None);
    let audit = |query: &str| server.call(admin, "GET", &format!("/api/v1/audit{query}"), None);

    let about_carl = audit("?user=carl").json().unwrap();
    let entries = about_carl["entries"].as_array().unwrap();
    let events: Vec<&str> = entries
        .iter()
        .map(|entry| entry["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "user_deleted",
            "user_disabled",
            "role_changed",
            "user_added"
        ]
    );
    for entry in entries {
        assert_eq!(entry["username"], "carl", "{entry}");
        assert_eq!(entry["actor"], "ada", "{entry}");
        assert_eq!(entry["source"], "127.0.0.1", "{entry}");
        assert_eq!(entry["outcome"], "ok", "{entry}");
    }
    assert_eq!(entries[2]["detail"], "role operator");

    let first = audit("?user=carl&limit=1").json().unwrap();
    assert_eq!(first["entries"].as_array().unwrap().len(), 1);
    assert_eq!(first["entries"][0]["event"], "user_deleted");
    let next = first["next_before"].as_i64().unwrap();
    let second = audit(&format!("?user=carl&limit=2&before={next}"))
        .json()
        .unwrap();
    let events: Vec<&str> = second["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["user_disabled", "role_changed"]);
    let last = audit(&format!(
        "?user=carl&before={}",
        second["next_before"].as_i64().unwrap()
    ))
    .json()
    .unwrap();
    assert_eq!(last["entries"].as_array().unwrap().len(), 1);
    assert_eq!(last["next_before"], Value::Null);

    let roles = audit("?event=role_changed").json().unwrap();
    assert_eq!(roles["entries"].as_array().unwrap().len(), 1);
    let by_ada = audit("?user=ada").json().unwrap();
    assert!(
        by_ada["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["event"] == "user_deleted")
    );

    for (query, expected) in [
        ("?limit=0", "limit"),
        ("?limit=many", "limit"),
        ("?before=yesterday", "before"),
        ("?user=Carl", "user"),
        ("?event=coffee", "event"),
        ("?sort=asc", "sort"),
        ("?limit=1&limit=2", "limit"),
    ] {
        let refused = audit(query);
        assert_eq!(
            (refused.status, field(&refused)),
            (400, expected.to_owned()),
            "{query}: {}",
            refused.text()
        );
    }
    for role in [Role::Operator, Role::Viewer] {
        let refused = server.call(server.token(role), "GET", "/api/v1/audit", None);
        assert_eq!(
            (refused.status, kind(&refused)),
            (403, "forbidden".to_owned())
        );
    }
}

#[test]
fn a_display_name_with_markup_comes_back_as_the_same_inert_json_string() {
    let server = Server::start();
    let admin = server.token(Role::Admin);
    let markup = "<script>alert(1)</script>";
    let changed = server.call(
        admin,
        "PATCH",
        "/api/v1/users/vera",
        Some(json!({"display_name": markup})),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    for path in ["/api/v1/users/vera", "/api/v1/users"] {
        let answer = server.call(admin, "GET", path, None);
        assert!(
            answer
                .header("content-type")
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert!(answer.text().contains(markup) || answer.text().contains("\\u003c"));
        let body = answer.json().unwrap();
        let vera = if path.ends_with("vera") {
            body
        } else {
            body["users"]
                .as_array()
                .unwrap()
                .iter()
                .find(|user| user["username"] == "vera")
                .unwrap()
                .clone()
        };
        assert_eq!(vera["display_name"], markup);
    }
}

#[test]
fn operators_and_viewers_are_refused_every_user_route_and_everyone_sees_the_roles() {
    let server = Server::start();
    for role in [Role::Operator, Role::Viewer] {
        let token = server.token(role);
        for (method, path, body) in [
            ("GET", "/api/v1/users", None),
            (
                "POST",
                "/api/v1/users",
                Some(json!({"username": "eve", "password": PASSWORD, "role": "admin"})),
            ),
            ("GET", "/api/v1/users/ada", None),
            (
                "PATCH",
                "/api/v1/users/ada",
                Some(json!({"role": "viewer"})),
            ),
            ("DELETE", "/api/v1/users/ada", None),
            ("GET", "/api/v1/tokens", None),
            (
                "POST",
                "/api/v1/tokens",
                Some(json!({"owner": "ada", "name": "x", "role": "admin", "expires_in_days": 1})),
            ),
            ("DELETE", "/api/v1/tokens/1", None),
            ("GET", "/api/v1/sessions", None),
            ("DELETE", "/api/v1/sessions/1", None),
        ] {
            let refused = server.call(token, method, path, body);
            assert_eq!(
                (refused.status, kind(&refused)),
                (403, "forbidden".to_owned()),
                "{method} {path} as {role:?}"
            );
        }
    }
    // Nothing of it happened.
    let ada = server.call(server.token(Role::Admin), "GET", "/api/v1/users/ada", None);
    assert_eq!(ada.json().unwrap()["role"], "admin");

    let roles = server.call(server.token(Role::Viewer), "GET", "/api/v1/roles", None);
    assert_eq!(roles.status, 200);
    let roles = roles.json().unwrap();
    assert_eq!(
        roles["roles"][0],
        json!({"name": "viewer", "permissions": ["view_inventory"]})
    );
    assert_eq!(roles["roles"][1]["name"], "operator");
    assert!(
        roles["roles"][1]["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("control_vms"))
    );
    assert_eq!(roles["roles"][2]["name"], "admin");
    assert_eq!(
        roles["roles"][2]["permissions"].as_array().unwrap().len(),
        9
    );
}

/// `user` as the API shows it without `last_login`, which must be an RFC 3339 stamp: the
/// user logged in during the test, at a time the test does not know to the second.
fn without_last_login(mut user: Value) -> Value {
    let last_login = user.as_object_mut().unwrap().remove("last_login").unwrap();
    let stamp = last_login.as_str().unwrap();
    assert!(
        mfv_linux::utc::UtcTime::parse_rfc3339(stamp).is_ok(),
        "{stamp}"
    );
    user
}
