//! Second factors through normal mode's API, over real HTTPS on loopback with a real SQLite
//! auth database: a user enrols and confirms their own, logs in with a code or a recovery
//! code, removes it with their password and a code; wrong passwords are throttled as logins
//! are; an administrator resets another user's; every step is in the audit log.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::{Browser, PASSWORD, Server, kind};
use mfv_auth::{Role, Timestamp, totp_code};
use mfv_tests::https::HttpResponse;
use serde_json::{Value, json};

/// The field an error names.
fn field(response: &HttpResponse) -> String {
    response.json().unwrap()["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The code an app shows for `secret` `steps` steps of 30 s from now.
fn code(secret: &str, steps: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = Timestamp(i64::try_from(now).unwrap() + steps * mfv_auth::TOTP_STEP_SECONDS);
    totp_code(secret, at).unwrap()
}

/// A login with a second factor.
fn login(server: &Server, username: &str, password: &str, totp: Option<&str>) -> HttpResponse {
    let mut body = json!({"username": username, "password": password});
    if let Some(totp) = totp {
        body["totp"] = json!(totp);
    }
    server
        .client
        .post_json("/api/v1/session", &[], &body)
        .unwrap()
}

/// `username` signed in with a second factor.
fn sign_in_with(server: &Server, username: &str, totp: &str) -> Browser {
    let answer = login(server, username, PASSWORD, Some(totp));
    assert_eq!(answer.status, 200, "{}", answer.text());
    Browser {
        cookie: answer
            .header("set-cookie")
            .and_then(|cookie| cookie.split(';').next())
            .unwrap()
            .to_owned(),
        csrf: answer.json().unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

/// The audit entries about or by `user` of `event`, newest first, as the admin reads them.
fn audit(server: &Server, user: &str, event: &str) -> Vec<Value> {
    let read = server.call(
        server.token(Role::Admin),
        "GET",
        &format!("/api/v1/audit?user={user}&event={event}"),
        None,
    );
    assert_eq!(read.status, 200, "{}", read.text());
    read.json().unwrap()["entries"].as_array().unwrap().clone()
}

#[test]
fn a_viewer_enrols_confirms_logs_in_with_a_code_or_a_recovery_code_once_and_removes_it() {
    let server = Server::start();
    let vera = server.sign_in("vera", PASSWORD).unwrap();
    let status = |browser: &Browser| {
        let status = server.call_as(browser, "GET", "/api/v1/session/totp", None);
        assert_eq!(status.status, 200, "{}", status.text());
        status.json().unwrap()
    };
    assert_eq!(
        status(&vera),
        json!({"enabled": false, "confirmed": false, "recovery_codes_left": 0})
    );

    let wrong = server.call_as(
        &vera,
        "POST",
        "/api/v1/session/totp",
        Some(json!({"password": "not my password"})),
    );
    assert_eq!(
        (wrong.status, kind(&wrong), field(&wrong)),
        (403, "wrong_password".to_owned(), "password".to_owned())
    );
    let refused = audit(&server, "vera", "totp_enrolled");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["outcome"], "refused");
    assert_eq!(refused[0]["source"], "127.0.0.1");
    assert_eq!(refused[0]["detail"], "the current password given is wrong");

    let enrolled = server.call_as(
        &vera,
        "POST",
        "/api/v1/session/totp",
        Some(json!({"password": PASSWORD})),
    );
    assert_eq!(enrolled.status, 201, "{}", enrolled.text());
    assert_eq!(enrolled.header("cache-control"), Some("no-store"));
    let enrolment = enrolled.json().unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(
        enrolment["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "otpauth://totp/Minifed-Virt:vera?secret={secret}&"
            )),
        "{enrolment}"
    );
    let recovery: Vec<String> = enrolment["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(
        status(&vera),
        json!({"enabled": true, "confirmed": false, "recovery_codes_left": 10})
    );

    // Not confirmed yet: the password alone still logs in.
    assert_eq!(login(&server, "vera", PASSWORD, None).status, 200);
    for (body, expected) in [
        (json!({"code": "000000"}), "code"),
        (json!({"code": "not a code"}), "code"),
        (json!({}), "code"),
        (
            json!({"code": code(&secret, 0), "secret": secret}),
            "secret",
        ),
    ] {
        let refused = server.call_as(&vera, "POST", "/api/v1/session/totp/confirm", Some(body));
        assert_eq!(
            (refused.status, kind(&refused), field(&refused)),
            (400, "invalid_request".to_owned(), expected.to_owned()),
            "{}",
            refused.text()
        );
    }
    let confirmed = server.call_as(
        &vera,
        "POST",
        "/api/v1/session/totp/confirm",
        Some(json!({"code": code(&secret, 0)})),
    );
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    assert_eq!(status(&vera)["confirmed"], true);
    let again = server.call_as(
        &vera,
        "POST",
        "/api/v1/session/totp",
        Some(json!({"password": PASSWORD})),
    );
    assert_eq!((again.status, kind(&again)), (409, "conflict".to_owned()));

    assert_eq!(
        server
            .call_as(&vera, "DELETE", "/api/v1/session", None)
            .status,
        200
    );
    let without = login(&server, "vera", PASSWORD, None);
    assert_eq!(
        (without.status, kind(&without), field(&without)),
        (401, "totp_required".to_owned(), "totp".to_owned())
    );
    let wrong_code = login(&server, "vera", PASSWORD, Some("000000"));
    assert_eq!(
        (wrong_code.status, kind(&wrong_code)),
        (401, "totp_invalid".to_owned())
    );
    // The confirming code's step is used; the next one works.
    let with_code = login(&server, "vera", PASSWORD, Some(&code(&secret, 1)));
    assert_eq!(with_code.status, 200, "{}", with_code.text());
    let with_recovery = login(&server, "vera", PASSWORD, Some(&recovery[0]));
    assert_eq!(with_recovery.status, 200, "{}", with_recovery.text());
    let reused = login(&server, "vera", PASSWORD, Some(&recovery[0]));
    assert_eq!(
        (reused.status, kind(&reused)),
        (401, "totp_invalid".to_owned())
    );
    let vera = sign_in_with(&server, "vera", &recovery[1]);
    assert_eq!(
        status(&vera),
        json!({"enabled": true, "confirmed": true, "recovery_codes_left": 8})
    );

    // Removal needs the password and a code.
    let disable =
        |body: Value| server.call_as(&vera, "POST", "/api/v1/session/totp/disable", Some(body));
    for (body, status, expected_kind, expected_field) in [
        (
            json!({"password": PASSWORD}),
            400,
            "invalid_request",
            "code",
        ),
        (
            json!({"password": PASSWORD, "code": "000000"}),
            400,
            "invalid_request",
            "code",
        ),
        (
            json!({"password": "not my password", "code": recovery[2]}),
            403,
            "wrong_password",
            "password",
        ),
        (
            json!({"code": recovery[2]}),
            400,
            "invalid_request",
            "password",
        ),
        (
            json!({"password": PASSWORD, "code": recovery[2], "force": true}),
            400,
            "invalid_request",
            "force",
        ),
    ] {
        let refused = disable(body.clone());
        assert_eq!(
            (refused.status, kind(&refused), field(&refused)),
            (status, expected_kind.to_owned(), expected_field.to_owned()),
            "{body}: {}",
            refused.text()
        );
    }
    assert_eq!(status(&vera)["confirmed"], true);
    let removed = disable(json!({"password": PASSWORD, "code": recovery[2]}));
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert_eq!(removed.json().unwrap(), json!({"removed": true}));
    assert_eq!(
        status(&vera),
        json!({"enabled": false, "confirmed": false, "recovery_codes_left": 0})
    );
    assert_eq!(login(&server, "vera", PASSWORD, None).status, 200);

    for (event, outcomes) in [
        ("totp_enrolled", vec!["refused", "ok", "refused"]),
        ("totp_confirmed", vec!["ok", "refused", "refused"]),
        ("recovery_code_used", vec!["ok", "ok", "ok"]),
        ("totp_disabled", vec!["ok", "refused", "refused", "refused"]),
    ] {
        let entries = audit(&server, "vera", event);
        let seen: Vec<&str> = entries
            .iter()
            .map(|entry| entry["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(seen, outcomes, "{event}: {entries:?}");
        for entry in &entries {
            assert_eq!(entry["source"], "127.0.0.1", "{entry}");
        }
    }
}

#[test]
fn five_wrong_passwords_throttle_enrolment_and_a_password_change_as_logins() {
    let server = Server::start();
    let otto = server.sign_in("otto", PASSWORD).unwrap();
    for _ in 0..5 {
        let wrong = server.call_as(
            &otto,
            "POST",
            "/api/v1/session/totp",
            Some(json!({"password": "a guess"})),
        );
        assert_eq!(wrong.status, 403, "{}", wrong.text());
    }
    let locked = server.call_as(
        &otto,
        "POST",
        "/api/v1/session/totp",
        Some(json!({"password": PASSWORD})),
    );
    assert_eq!(
        (locked.status, kind(&locked)),
        (429, "throttled".to_owned()),
        "{}",
        locked.text()
    );
    let login_locked = login(&server, "otto", PASSWORD, None);
    assert_eq!(
        (login_locked.status, kind(&login_locked)),
        (429, "throttled".to_owned())
    );
    let lockouts = audit(&server, "otto", "lockout");
    assert_eq!(lockouts.len(), 1, "{lockouts:?}");
    assert_eq!(lockouts[0]["source"], "127.0.0.1");

    let vera = server.sign_in("vera", PASSWORD).unwrap();
    let change = |current: &str| {
        server.call_as(
            &vera,
            "PUT",
            "/api/v1/session/password",
            Some(json!({"current": current, "new": "a new long password"})),
        )
    };
    for _ in 0..5 {
        let wrong = change("a guess");
        assert_eq!(
            (wrong.status, kind(&wrong), field(&wrong)),
            (403, "wrong_password".to_owned(), "current".to_owned())
        );
    }
    let locked = change(PASSWORD);
    assert_eq!(
        (locked.status, kind(&locked)),
        (429, "throttled".to_owned()),
        "{}",
        locked.text()
    );
    // Not changed, and the session goes on.
    assert_eq!(
        server.call_as(&vera, "GET", "/api/v1/session", None).status,
        200
    );
    let refusals = audit(&server, "vera", "password_changed");
    assert_eq!(refusals.len(), 6, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|entry| entry["outcome"] == "refused" && entry["source"] == "127.0.0.1")
    );
}

#[test]
fn an_admin_resets_another_users_second_factor_but_not_their_own() {
    let server = Server::start();
    let admin = server.token(Role::Admin);
    let vera = server.sign_in("vera", PASSWORD).unwrap();
    server.enrol_and_confirm_totp(&vera);

    let reset = server.call(admin, "DELETE", "/api/v1/users/vera/totp", None);
    assert_eq!(reset.status, 200, "{}", reset.text());
    assert_eq!(reset.json().unwrap(), json!({"removed": true}));
    // Her sessions ended at once; the password alone logs her in again.
    assert_eq!(
        server.call_as(&vera, "GET", "/api/v1/session", None).status,
        401
    );
    let vera = server.sign_in("vera", PASSWORD).unwrap();
    assert_eq!(
        server
            .call_as(&vera, "GET", "/api/v1/session/totp", None)
            .json()
            .unwrap()["enabled"],
        false
    );
    let again = server.call(admin, "DELETE", "/api/v1/users/vera/totp", None);
    assert_eq!(again.json().unwrap(), json!({"removed": false}));
    let entries = audit(&server, "vera", "totp_disabled");
    let details: Vec<&str> = entries
        .iter()
        .map(|entry| entry["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        [
            "reset by an administrator: there was none",
            "reset by an administrator"
        ]
    );
    for entry in &entries {
        assert_eq!(
            (&entry["actor"], &entry["source"], &entry["outcome"]),
            (&json!("ada"), &json!("127.0.0.1"), &json!("ok"))
        );
    }
    assert_eq!(
        audit(&server, "vera", "session_revoked")[0]["detail"],
        "1 session(s) ended: second factor reset"
    );

    let missing = server.call(admin, "DELETE", "/api/v1/users/nosuchuser/totp", None);
    assert_eq!(
        (missing.status, kind(&missing)),
        (404, "not_found".to_owned())
    );
    let own = server.call(admin, "DELETE", "/api/v1/users/ada/totp", None);
    assert_eq!((own.status, kind(&own)), (409, "conflict".to_owned()));
    assert!(
        own.text().contains("/api/v1/session/totp/disable"),
        "{}",
        own.text()
    );
    for role in [Role::Operator, Role::Viewer] {
        let refused = server.call(
            server.token(role),
            "DELETE",
            "/api/v1/users/vera/totp",
            None,
        );
        assert_eq!(
            (refused.status, kind(&refused)),
            (403, "forbidden".to_owned())
        );
    }
}

#[test]
fn the_self_service_routes_need_a_caller_and_the_csrf_token() {
    let server = Server::start();
    for (method, path) in [
        ("GET", "/api/v1/session/totp"),
        ("POST", "/api/v1/session/totp"),
        ("POST", "/api/v1/session/totp/confirm"),
        ("POST", "/api/v1/session/totp/disable"),
    ] {
        let refused = server
            .client
            .send(method, path, &[("content-type", "application/json")], None)
            .unwrap();
        assert_eq!(refused.status, 401, "{method} {path}");
    }
    let vera = server.sign_in("vera", PASSWORD).unwrap();
    let forged = server
        .client
        .send(
            "POST",
            "/api/v1/session/totp",
            &[
                ("cookie", &vera.cookie),
                ("content-type", "application/json"),
            ],
            Some(json!({"password": PASSWORD}).to_string().as_bytes()),
        )
        .unwrap();
    assert_eq!((forged.status, kind(&forged)), (403, "csrf".to_owned()));
    let unknown = server.call_as(
        &vera,
        "POST",
        "/api/v1/session/totp",
        Some(json!({"password": PASSWORD, "user": "ada"})),
    );
    assert_eq!((unknown.status, field(&unknown)), (400, "user".to_owned()));
    // An API token's holder manages its owner's second factor too.
    let status = server.call(
        server.token(Role::Operator),
        "GET",
        "/api/v1/session/totp",
        None,
    );
    assert_eq!(status.status, 200, "{}", status.text());
}
