//! Facts the pages show beside what they change, over real HTTPS on loopback with a real
//! SQLite auth database: libvirt's networks (from a private libvirtd), each user's second
//! factor and last login, the password policy, and the audit log read within a time range.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::sync::OnceLock;

use common::{PASSWORD, Server, kind};
use mfv_auth::{Role, Timestamp, totp_code};
use mfv_tests::https::HttpResponse;
use mfv_tests::libvirtd::{PrivateLibvirtd, unique};
use serde_json::{Value, json};

/// One daemon for the whole test binary.
fn daemon() -> &'static PrivateLibvirtd {
    static DAEMON: OnceLock<PrivateLibvirtd> = OnceLock::new();
    DAEMON.get_or_init(|| PrivateLibvirtd::start().unwrap())
}

fn get(server: &Server, role: Role, path: &str) -> HttpResponse {
    server.call(server.token(role), "GET", path, None)
}

fn field(response: &HttpResponse) -> String {
    response.json().unwrap()["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The RFC 3339 stamp of `seconds` since the epoch.
fn stamp(seconds: i64) -> String {
    Timestamp(seconds).to_string()
}

fn now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

#[test]
fn libvirt_networks_are_listed_for_every_role_that_sees_the_inventory() {
    let name = unique("api-net");
    daemon().define_network(&name, "mfvapi0").unwrap();
    let server = Server::with_libvirt(daemon().uri());
    for role in Role::ALL {
        let listed = get(&server, role, "/api/v1/vm-networks");
        assert_eq!(listed.status, 200, "{role:?}: {}", listed.text());
        let networks = listed.json().unwrap()["networks"].clone();
        let network = networks
            .as_array()
            .unwrap()
            .iter()
            .find(|network| network["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} missing from {networks}"))
            .clone();
        assert_eq!(
            network,
            json!({
                "name": name,
                "active": false,
                "autostart": false,
                "bridge": "mfvapi0",
                "forward_mode": "isolated",
            })
        );
    }
    let anonymous = server
        .client
        .send("GET", "/api/v1/vm-networks", &[], None)
        .unwrap();
    assert_eq!(anonymous.status, 401);
}

#[test]
fn without_libvirt_the_networks_are_unavailable_saying_why() {
    let server = Server::start();
    let listed = get(&server, Role::Viewer, "/api/v1/vm-networks");
    assert_eq!(listed.status, 503, "{}", listed.text());
    assert_eq!(kind(&listed), "unavailable");
    assert!(listed.text().contains("--libvirt"), "{}", listed.text());
}

#[test]
fn users_show_whether_logins_need_totp_and_when_they_last_logged_in() {
    let server = Server::start();
    let user = |name: &str| {
        let shown = get(&server, Role::Admin, &format!("/api/v1/users/{name}"));
        assert_eq!(shown.status, 200, "{}", shown.text());
        shown.json().unwrap()
    };
    let listed = |name: &str| {
        let users = get(&server, Role::Admin, "/api/v1/users").json().unwrap();
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|user| user["username"] == name)
            .unwrap()
            .clone()
    };
    // The fixture's users never signed in: their API tokens are not logins.
    assert_eq!(user("vera")["last_login"], Value::Null);
    assert_eq!(user("vera")["totp_enabled"], false);
    assert_eq!(listed("vera"), user("vera"));

    let before = now();
    let vera = server.sign_in("vera", PASSWORD).unwrap();
    let after = now();
    let last_login = user("vera")["last_login"].as_str().unwrap().to_owned();
    let at = mfv_linux::utc::UtcTime::parse_rfc3339(&last_login).unwrap();
    assert!((before..=after).contains(&at), "{last_login}");
    assert!(last_login.ends_with('Z'), "{last_login}");
    // A refused login changes nothing.
    assert_eq!(server.login("vera", "not the password").0.status, 401);
    assert_eq!(user("vera")["last_login"], last_login.as_str());

    let enrolled = server.call_as(
        &vera,
        "POST",
        "/api/v1/session/totp",
        Some(json!({"password": PASSWORD})),
    );
    assert_eq!(enrolled.status, 201, "{}", enrolled.text());
    // Pending enrolment: logins do not need a code yet.
    assert_eq!(user("vera")["totp_enabled"], false);
    let secret = enrolled.json().unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = totp_code(&secret, Timestamp(now())).unwrap();
    let confirmed = server.call_as(
        &vera,
        "POST",
        "/api/v1/session/totp/confirm",
        Some(json!({"code": code})),
    );
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    assert_eq!(user("vera")["totp_enabled"], true);
    assert_eq!(listed("vera"), user("vera"));
    assert_eq!(listed("otto")["totp_enabled"], false);

    // A user just added never logged in; a changed one keeps their facts.
    let added = server.call(
        server.token(Role::Admin),
        "POST",
        "/api/v1/users",
        Some(json!({"username": "nina", "password": PASSWORD, "role": "viewer"})),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    assert_eq!(added.json().unwrap()["last_login"], Value::Null);
    assert_eq!(added.json().unwrap()["totp_enabled"], false);
    let changed = server.call(
        server.token(Role::Admin),
        "PATCH",
        "/api/v1/users/vera",
        Some(json!({"display_name": "Vera"})),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json().unwrap()["totp_enabled"], true);
    assert_eq!(changed.json().unwrap()["last_login"], last_login.as_str());
}

#[test]
fn every_signed_in_caller_reads_the_password_policy_that_the_api_enforces() {
    let server = Server::start();
    for role in Role::ALL {
        let policy = get(&server, role, "/api/v1/auth/policy");
        assert_eq!(policy.status, 200, "{role:?}: {}", policy.text());
        assert_eq!(
            policy.json().unwrap(),
            json!({
                "min_password_chars": mfv_auth::DEFAULT_MIN_PASSWORD_CHARS,
                "api_token_max_days": 365,
            })
        );
    }
    let anonymous = server
        .client
        .send("GET", "/api/v1/auth/policy", &[], None)
        .unwrap();
    assert_eq!(anonymous.status, 401);

    // One character short of the policy is refused naming the field; the policy's length is
    // taken.
    let min = mfv_auth::DEFAULT_MIN_PASSWORD_CHARS;
    let add = |name: &str, password: String| {
        server.call(
            server.token(Role::Admin),
            "POST",
            "/api/v1/users",
            Some(json!({"username": name, "password": password, "role": "viewer"})),
        )
    };
    let short = add("shorty", "é".repeat(min - 1));
    assert_eq!(short.status, 400, "{}", short.text());
    assert_eq!(field(&short), "password");
    assert!(
        short.text().contains(&format!("at least {min}")),
        "{}",
        short.text()
    );
    assert_eq!(add("longer", "é".repeat(min)).status, 201);
}

#[test]
fn the_audit_log_is_read_within_a_time_range_and_bad_ranges_are_refused_by_name() {
    let server = Server::start();
    let read = |query: &str| get(&server, Role::Admin, &format!("/api/v1/audit?{query}"));
    let logins = |query: &str| {
        let answer = read(&format!("event=login&{query}"));
        assert_eq!(answer.status, 200, "{query}: {}", answer.text());
        answer.json().unwrap()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["at"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    server.sign_in("otto", PASSWORD).unwrap();
    let all = logins("");
    assert_eq!(all.len(), 1, "{all:?}");
    let at = all[0];
    let encode = |text: String| text.replace('+', "%2B");
    assert_eq!(logins(&format!("since={}", stamp(at))), [at]);
    assert_eq!(logins(&format!("until={}", stamp(at))), [at]);
    assert_eq!(
        logins(&format!("since={}&until={}", stamp(at), stamp(at))),
        [at]
    );
    assert!(logins(&format!("since={}", stamp(at + 1))).is_empty());
    assert!(logins(&format!("until={}", stamp(at - 1))).is_empty());
    // Another offset names the same moment.
    let local = mfv_linux::utc::UtcTime::from_unix_seconds(at + 3600).rfc3339_seconds();
    assert_eq!(logins(&encode(format!("since={local}+01:00"))), [at]);

    for (query, name) in [
        ("since=yesterday", "since"),
        ("until=1795668780", "until"),
        ("since=2026-02-30T00:00:00Z", "since"),
        ("until=2026-11-26T04:53:00", "until"),
        (
            "since=2026-11-26T04:53:01Z&until=2026-11-26T04:53:00Z",
            "until",
        ),
        (
            "since=2026-11-26T04:53:00Z&since=2026-11-26T04:53:00Z",
            "since",
        ),
    ] {
        let refused = read(query);
        assert_eq!(refused.status, 400, "{query}: {}", refused.text());
        assert_eq!(kind(&refused), "invalid_request", "{query}");
        assert_eq!(field(&refused), name, "{query}: {}", refused.text());
    }
    let refused = read("since=soon");
    assert!(
        refused.text().contains("not an RFC 3339 date and time"),
        "{}",
        refused.text()
    );
}
