//! Normal mode's API over real HTTPS on loopback, with users, sessions and API tokens in a
//! real SQLite auth database (the `--dev` authority): every route with every role and
//! without credentials, the login and its cookie, CSRF, and requests that must be refused.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::schema::{Objects, answer_schema, check, request_schema};
use common::{PASSWORD, Server, kind};
use mfv_auth::Role;
use mfv_web::api::SESSION_COOKIE;
use mfv_web::api::table::Access;
use serde_json::{Value, json};
use std::io::{Read, Write};

#[test]
fn every_route_answers_each_role_as_its_permission_says() {
    let server = Server::start();
    for route in mfv_web::api::table::routes() {
        let path = route
            .path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = route.method.as_str();
        let body = (route.max_body > 0).then_some(b"{}".as_slice());
        let json = [("content-type", "application/json")];
        let anonymous = server.client.send(method, &path, &json, body).unwrap();
        let closed = !matches!(route.access, Access::Anyone);
        assert_eq!(
            anonymous.status == 401,
            closed,
            "{method} {path} without credentials: {} {}",
            anonymous.status,
            anonymous.text()
        );
        for role in Role::ALL {
            let headers = [
                ("content-type", "application/json"),
                ("authorization", server.token(role)),
            ];
            let allowed = match route.access {
                Access::Anyone | Access::SignedIn => true,
                Access::Allowed(permission) => role.allows(permission),
            };
            if route.operation == "stream_events" && allowed {
                // A stream that stays open: only its answer's head is read.
                let stream = server.open_stream(&path, &headers);
                assert_eq!(stream.status, 200, "{method} {path} as {role:?}");
                continue;
            }
            let answer = server.client.send(method, &path, &headers, body).unwrap();
            assert_ne!(answer.status, 401, "{method} {path} as {role:?}");
            assert_eq!(
                answer.status == 403 && kind(&answer) == "forbidden",
                !allowed,
                "{method} {path} as {role:?}: {} {}",
                answer.status,
                answer.text()
            );
        }
    }
}

#[test]
fn a_login_sets_a_strict_cookie_and_changes_need_the_sessions_csrf_token() {
    let server = Server::start();
    let (answer, cookie) = server.login("ada", PASSWORD);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let set_cookie = answer.header("set-cookie").unwrap();
    assert!(set_cookie.starts_with(&format!("{SESSION_COOKIE}=")));
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let body = answer.json().unwrap();
    assert_eq!(body["username"], "ada");
    assert_eq!(body["role"], "admin");
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let cookie = cookie.unwrap();

    let whoami = server
        .client
        .get("/api/v1/session", &[("cookie", &cookie)])
        .unwrap();
    assert_eq!(whoami.status, 200);
    assert_eq!(whoami.json().unwrap()["csrf_token"], csrf.as_str());

    let no_csrf = server
        .client
        .send("DELETE", "/api/v1/session", &[("cookie", &cookie)], None)
        .unwrap();
    assert_eq!((no_csrf.status, kind(&no_csrf)), (403, "csrf".to_owned()));
    let wrong_csrf = server
        .client
        .send(
            "DELETE",
            "/api/v1/session",
            &[("cookie", &cookie), ("x-csrf-token", "0000")],
            None,
        )
        .unwrap();
    assert_eq!(wrong_csrf.status, 403);
    let other_site = server
        .client
        .send(
            "DELETE",
            "/api/v1/session",
            &[
                ("cookie", &cookie),
                ("x-csrf-token", &csrf),
                ("origin", "https://evil.example"),
            ],
            None,
        )
        .unwrap();
    assert_eq!(
        (other_site.status, kind(&other_site)),
        (403, "cross_origin".to_owned())
    );

    let logout = server
        .client
        .send(
            "DELETE",
            "/api/v1/session",
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            None,
        )
        .unwrap();
    assert_eq!(logout.status, 200, "{}", logout.text());
    assert!(logout.header("set-cookie").unwrap().contains("Max-Age=0"));
    // Ended at once, though its last check is recent.
    let after = server
        .client
        .get("/api/v1/session", &[("cookie", &cookie)])
        .unwrap();
    assert_eq!(
        (after.status, kind(&after)),
        (401, "session_invalid".to_owned())
    );
}

#[test]
fn wrong_passwords_and_unknown_users_get_one_answer_until_the_login_is_throttled() {
    let server = Server::start();
    let (wrong, cookie) = server.login("ada", "not the password at all");
    assert_eq!(
        (wrong.status, kind(&wrong)),
        (401, "invalid_credentials".to_owned())
    );
    assert_eq!(cookie, None);
    let (unknown, _) = server.login("nobody", PASSWORD);
    assert_eq!(
        (unknown.status, kind(&unknown)),
        (401, "invalid_credentials".to_owned())
    );
    let throttled = (0..30)
        .map(|_| server.login("ada", "not the password at all").0)
        .find(|answer| answer.status == 429)
        .expect("never throttled");
    assert_eq!(kind(&throttled), "throttled");
    assert!(
        throttled.text().contains("try again"),
        "{}",
        throttled.text()
    );
}

#[test]
fn requests_the_api_does_not_take_are_refused_with_their_reason() {
    let server = Server::start();
    let client = &server.client;
    let admin = server.token(Role::Admin);

    let missing = client.get("/api/v1/no-such-thing", &[]).unwrap();
    assert_eq!(
        (missing.status, kind(&missing)),
        (404, "not_found".to_owned())
    );
    let method = client.send("PUT", "/api/v1/session", &[], None).unwrap();
    assert_eq!(method.status, 405);
    assert_eq!(method.header("allow"), Some("POST, GET, DELETE"));

    let login = |body: &[u8], content_type: &str| {
        client
            .send(
                "POST",
                "/api/v1/session",
                &[("content-type", content_type)],
                Some(body),
            )
            .unwrap()
    };
    let malformed = login(b"{\"username\": ", "application/json");
    assert_eq!(
        (malformed.status, kind(&malformed)),
        (400, "invalid_request".to_owned())
    );
    let unknown_field = login(
        br#"{"username":"ada","password":"x","role":"admin"}"#,
        "application/json",
    );
    assert_eq!(unknown_field.status, 400);
    assert_eq!(unknown_field.json().unwrap()["field"], "role");
    let wrong_type = login(br#"{"username":7,"password":"x"}"#, "application/json");
    assert_eq!(wrong_type.status, 400, "{}", wrong_type.text());
    let missing_field = login(br#"{"username":"ada"}"#, "application/json");
    assert_eq!(missing_field.json().unwrap()["field"], "password");
    let form = login(
        b"username=ada&password=x",
        "application/x-www-form-urlencoded",
    );
    assert_eq!(form.status, 415);

    // Ten megabytes announced: refused before a byte of it is read.
    let huge = client
        .send_raw(
            b"POST /api/v1/session HTTP/1.1\r\nhost: vmhost\r\ncontent-type: application/json\r\n\
              content-length: 10485760\r\nconnection: close\r\n\r\n{",
        )
        .unwrap();
    assert_eq!((huge.status, kind(&huge)), (413, "too_large".to_owned()));
    let body_on_get = client
        .send(
            "GET",
            "/api/v1/session",
            &[
                ("authorization", admin),
                ("content-type", "application/json"),
            ],
            Some(b"{}"),
        )
        .unwrap();
    assert_eq!(body_on_get.status, 413);

    let forged = client
        .get(
            "/api/v1/session",
            &[("authorization", "Bearer mfv_0000000000000000")],
        )
        .unwrap();
    assert_eq!(
        (forged.status, kind(&forged)),
        (401, "token_invalid".to_owned())
    );
    let token_logout = client
        .send(
            "DELETE",
            "/api/v1/session",
            &[("authorization", admin)],
            None,
        )
        .unwrap();
    assert_eq!(token_logout.status, 400);
}

#[test]
fn a_client_still_sending_a_refused_body_reads_the_refusal() {
    let server = Server::start();
    // The refusal comes from the head, before the body is read; a client that writes all
    // of its body before reading (as many do) must still find the answer. Four megabytes
    // are more than the sockets' buffers hold, so the server has to read them away after
    // answering rather than close on unread data, which would reset the connection.
    let body = vec![b' '; 4 << 20];
    let mut request = format!(
        "POST /api/v1/session HTTP/1.1\r\nhost: vmhost\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let mut stream = server.client.connect().unwrap();
    stream.write_all(&request).unwrap();
    stream.flush().unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof),
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 413 "),
        "the answer: {answer:?}"
    );
    assert!(answer.contains("too_large"), "the answer: {answer:?}");
}

#[test]
fn the_openapi_document_lists_every_route_with_its_permission() {
    let server = Server::start();
    let document = server.client.get("/api/v1/openapi.json", &[]).unwrap();
    assert_eq!(document.status, 200);
    let document = document.json().unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let login = &document["paths"]["/api/v1/session"]["post"];
    assert_eq!(login["operationId"], "login");
    assert_eq!(login["security"], json!([]));
    let whoami = &document["paths"]["/api/v1/session"]["get"];
    assert_eq!(whoami["security"], json!([{"session": []}, {"token": []}]));
}

/// The document's error schema.
fn error_schema(document: &Value) -> &Value {
    &document["components"]["responses"]["Error"]["content"]["application/json"]["schema"]
}

/// Asserts the answer to `method path` is `status` and fits the schema the document gives it
/// (the error schema for a 4xx or 5xx), naming no field the document does not.
fn assert_fits(
    document: &Value,
    method: &str,
    path: &str,
    template: &str,
    answer: &mfv_tests::https::HttpResponse,
    status: u16,
) -> Value {
    assert_eq!(answer.status, status, "{method} {path}: {}", answer.text());
    let body = answer.json().unwrap();
    let schema = if status >= 400 {
        error_schema(document)
    } else {
        answer_schema(document, method, template, status)
    };
    assert!(
        !schema.is_null(),
        "{method} {template} documents no {status}"
    );
    if let Err(error) = check(document, schema, &body, Objects::Closed) {
        panic!("{method} {path} answered {body} against {schema}: {error}");
    }
    body
}

#[test]
fn real_answers_and_sample_bodies_fit_the_documented_schemas() {
    let server = Server::start();
    let document = server
        .client
        .get("/api/v1/openapi.json", &[])
        .unwrap()
        .json()
        .unwrap();
    let admin = server.token(Role::Admin);
    let call = |method: &str, path: &str, template: &str, body: Option<Value>, status: u16| {
        if let Some(body) = &body {
            let schema = request_schema(&document, &method.to_lowercase(), template);
            if let Err(error) = check(&document, schema, body, Objects::AsWritten) {
                panic!("{method} {template} takes {body}? {error}");
            }
        }
        let answer = server.call(admin, method, path, body);
        assert_fits(
            &document,
            &method.to_lowercase(),
            path,
            template,
            &answer,
            status,
        )
    };

    let (login, _) = server.login("ada", PASSWORD);
    assert_fits(
        &document,
        "post",
        "/api/v1/session",
        "/api/v1/session",
        &login,
        200,
    );
    call("GET", "/api/v1/session", "/api/v1/session", None, 200);
    let users = call("GET", "/api/v1/users", "/api/v1/users", None, 200);
    // The checker does judge: a field the document does not name fails.
    let mut extra = users.clone();
    extra["users"][0]["nickname"] = json!("x");
    let schema = answer_schema(&document, "get", "/api/v1/users", 200);
    assert!(check(&document, schema, &extra, Objects::Closed).is_err());
    let user = json!({"username": "grace", "password": PASSWORD, "role": "operator",
                      "display_name": "Grace"});
    call("POST", "/api/v1/users", "/api/v1/users", Some(user), 201);
    call(
        "GET",
        "/api/v1/users/grace",
        "/api/v1/users/{name}",
        None,
        200,
    );
    let change = json!({"role": "viewer", "disabled": false});
    call(
        "PATCH",
        "/api/v1/users/grace",
        "/api/v1/users/{name}",
        Some(change),
        200,
    );
    call(
        "GET",
        "/api/v1/users/nobody",
        "/api/v1/users/{name}",
        None,
        404,
    );
    call("GET", "/api/v1/roles", "/api/v1/roles", None, 200);
    let token = json!({"owner": "grace", "name": "ci", "role": "viewer", "expires_in_days": 7});
    let created = call("POST", "/api/v1/tokens", "/api/v1/tokens", Some(token), 201);
    let tokens = call("GET", "/api/v1/tokens", "/api/v1/tokens", None, 200);
    assert!(tokens["tokens"].as_array().unwrap().len() >= 4, "{tokens}");
    let id = created["token"]["id"].as_i64().unwrap();
    call(
        "DELETE",
        &format!("/api/v1/tokens/{id}"),
        "/api/v1/tokens/{id}",
        None,
        200,
    );
    call("GET", "/api/v1/sessions", "/api/v1/sessions", None, 200);
    let page = call("GET", "/api/v1/audit?limit=2", "/api/v1/audit", None, 200);
    assert_eq!(page["entries"].as_array().unwrap().len(), 2, "{page}");
    let refused = call("GET", "/api/v1/audit?limit=0", "/api/v1/audit", None, 400);
    assert_eq!(refused["field"], "limit");
    call("GET", "/api/v1/tasks", "/api/v1/tasks", None, 200);
    call(
        "DELETE",
        "/api/v1/users/grace",
        "/api/v1/users/{name}",
        None,
        200,
    );
    call("GET", "/api/v1/vms", "/api/v1/vms", None, 503);
    call("GET", "/api/v1/host", "/api/v1/host", None, 503);

    // What the server refuses, the request schemas refuse too.
    for (template, method, body) in [
        (
            "/api/v1/users",
            "post",
            json!({"username": "a", "password": "b", "role": "root"}),
        ),
        (
            "/api/v1/users",
            "post",
            json!({"username": "a", "password": "b"}),
        ),
        ("/api/v1/users/{name}", "patch", json!({"nickname": "x"})),
        (
            "/api/v1/tokens",
            "post",
            json!({"name": "x", "role": "viewer", "expires_in_days": -1}),
        ),
        (
            "/api/v1/session",
            "post",
            json!({"username": "a", "password": "b", "otp": "1"}),
        ),
    ] {
        let schema = request_schema(&document, method, template);
        assert!(
            check(&document, schema, &body, Objects::AsWritten).is_err(),
            "{template} {body}"
        );
        let path = template.replace("{name}", "ada");
        let answer = server.call(admin, &method.to_uppercase(), &path, Some(body.clone()));
        assert_eq!(answer.status, 400, "{template} {body}: {}", answer.text());
    }
}

#[test]
fn the_openapi_document_documents_query_parameters_as_the_server_reads_them() {
    let server = Server::start();
    let document = server
        .client
        .get("/api/v1/openapi.json", &[])
        .unwrap()
        .json()
        .unwrap();
    let audit = &document["paths"]["/api/v1/audit"]["get"]["parameters"];
    let limit = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|param| param["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["maximum"], 1000);
    let admin = server.token(Role::Admin);
    let over = server.call(admin, "GET", "/api/v1/audit?limit=1001", None);
    assert_eq!(over.status, 400);
    // A route that declares no parameter refuses any, naming it.
    let stray = server.call(admin, "GET", "/api/v1/users?sort=name", None);
    assert_eq!(stray.status, 400, "{}", stray.text());
    assert_eq!(stray.json().unwrap()["field"], "sort");
    assert_eq!(
        document["paths"]["/api/v1/users"]["get"]["parameters"],
        json!([])
    );
}

#[test]
fn metrics_need_a_caller_and_count_the_requests_answered() {
    let server = Server::start();
    let refused = server.client.get("/metrics", &[]).unwrap();
    assert_eq!(refused.status, 401);
    let _ = server.login("ada", PASSWORD);
    let _ = server.login("ada", "not the password at all");
    let metrics = server
        .client
        .get("/metrics", &[("authorization", server.token(Role::Viewer))])
        .unwrap();
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = metrics.text();
    for line in [
        "mfv_http_requests_total{operation=\"login\",status=\"200\"} 1\n",
        "mfv_http_requests_total{operation=\"login\",status=\"401\"} 1\n",
        "mfv_http_requests_total{operation=\"metrics\",status=\"401\"} 1\n",
        "mfv_http_request_duration_seconds_count{operation=\"login\"} 2\n",
        "mfv_libvirt_up 0\n",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    // This machine's own /proc.
    assert!(
        text.contains("mfv_host_memory_bytes{kind=\"total\"} "),
        "{text}"
    );
    assert!(
        text.contains("mfv_host_cpu_seconds_total{mode=\"idle\"} "),
        "{text}"
    );
}
