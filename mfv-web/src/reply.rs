//! What every answer carries: errors in one JSON shape, and the security headers.
//!
//! An error is `{"kind": ..., "message": ..., "field": ...}`: `kind` is a stable word a
//! program acts on, `message` says what went wrong and what to do, `field` names the part of
//! the request at fault when there is one. The host daemon's errors keep their kinds, and an
//! invalid configuration's or VM spec's error lists every problem in `errors` (line, column,
//! field, message), so a page can show each beside its field.
//!
//! The headers make a browser refuse what the pages never need: other origins' scripts,
//! framing (clickjacking), content sniffing, plain HTTP once it has seen HTTPS, and the
//! referrer leaving the host. Nothing served is to be cached, except the bundles at hashed
//! addresses that [`crate::assets`] marks immutable.
//!
//! The content security policy allows nothing inline. The console pages alone, which
//! [`crate::ui`] marks, get [`CONSOLE_CONTENT_SECURITY_POLICY`]: xterm.js and noVNC need
//! inline `<style>` elements and `data:` images, and no other page is to have them.
//!
//! The referrer policy is `same-origin`, not `no-referrer`: under `no-referrer` browsers send
//! `Origin: null` with a form post or a script's POST to the same site, and config mode's
//! `Origin` check (the guard against other sites' pages) would refuse the host's own pages.

use serde::Serialize;
use warp::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderName, HeaderValue, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use warp::http::{StatusCode, header::CONTENT_TYPE};

/// The policy every page is served with: its own scripts, styles and images only, never in
/// a frame, forms posted only to itself.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The policy of the console pages alone (marked `ConsolePolicy` by [`crate::ui`]): the strict
/// one, but `<style>` elements may be inline (xterm.js injects them without a nonce; style
/// attributes stay refused) and images may be `data:` addresses (noVNC's cursor and its
/// JPEG and PNG rectangles).
pub const CONSOLE_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; style-src-elem 'self' 'unsafe-inline'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The security headers and their values, but for `Cache-Control`.
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 5] = [
    (
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    ),
    (
        STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    ),
    (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (REFERRER_POLICY, HeaderValue::from_static("same-origin")),
];

/// `Cache-Control` of every answer but [`IMMUTABLE`]'s.
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
/// `Cache-Control` of an answer marked [`crate::assets::Immutable`]: its address changes
/// with its content.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// An error as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// A stable word a program acts on, e.g. `invalid_token`.
    pub kind: String,
    /// What went wrong and what to do, for people.
    pub message: String,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    /// With kind `invalid_config` or `invalid_spec`: every problem of the configuration or
    /// VM spec, each naming its field; absent otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<mfv_api::ConfigIssue>,
}

impl ErrorBody {
    /// An error of `kind` with `message`, about no field in particular.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            kind: kind.into(),
            message: message.into(),
            field: None,
            errors: Vec::new(),
        }
    }

    /// The same error, about `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> ErrorBody {
        self.field = Some(field.into());
        self
    }
}

impl From<&mfv_api::ApiError> for ErrorBody {
    fn from(error: &mfv_api::ApiError) -> ErrorBody {
        ErrorBody {
            kind: error.kind.as_str().to_owned(),
            message: error.message.clone(),
            field: error.field.clone(),
            errors: error.config_errors.clone(),
        }
    }
}

/// `body` as JSON text. `<`, `>` and `&` (which only strings can hold) are written as
/// `\u003c`, `\u003e` and `\u0026`, so text a user chose (a VM name, an error quoting it)
/// is never markup, even to a client that sniffs.
fn json_text(body: &impl Serialize) -> String {
    serde_json::to_string(body)
        .unwrap_or_else(|_| "{}".to_owned())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// `body` as the JSON text every answer carries, to be sent with [`json_text_response`]
/// (for an answer made once and sent many times).
pub fn json_bytes(body: &impl Serialize) -> hyper::body::Bytes {
    hyper::body::Bytes::from(json_text(body))
}

/// A JSON response of `status` carrying `body`.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> warp::reply::Response {
    json_text_response(status, json_bytes(body))
}

/// A JSON response of `status` carrying `text` made by [`json_bytes`].
pub fn json_text_response(status: StatusCode, text: hyper::body::Bytes) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(text.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// An error response of `status`.
pub fn error_response(status: StatusCode, error: &ErrorBody) -> warp::reply::Response {
    json_response(status, error)
}

/// `response` with the security headers set (replacing any of the same name): `no-store`,
/// unless [`crate::assets`] marked it immutable.
pub fn with_security_headers(mut response: warp::reply::Response) -> warp::reply::Response {
    // The values are checked once, at compile time, and room is made once: this runs for
    // every answer.
    let cache = if response
        .extensions()
        .get::<crate::assets::Immutable>()
        .is_some()
    {
        IMMUTABLE
    } else {
        NO_STORE
    };
    let console = response
        .extensions()
        .get::<crate::ui::ConsolePolicy>()
        .is_some();
    let headers = response.headers_mut();
    headers.reserve(SECURITY_HEADERS.len() + 1);
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, value);
    }
    if console {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONSOLE_CONTENT_SECURITY_POLICY),
        );
    }
    headers.insert(CACHE_CONTROL, cache);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_shape_and_every_answer_gets_the_headers() {
        let response = with_security_headers(error_response(
            StatusCode::FORBIDDEN,
            &ErrorBody::new("invalid_token", "wrong").with_field("token"),
        ));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(response.headers()[&name], value);
        }
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }

    #[test]
    fn markup_in_json_strings_is_escaped_and_reads_back_the_same() {
        let name = "<script>alert('a & b')</script>";
        let text = json_text(&serde_json::json!({ "name": name }));
        assert!(!text.contains(['<', '>', '&']), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], name);
    }
}
