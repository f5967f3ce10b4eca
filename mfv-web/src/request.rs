//! What config mode and the API read from requests and put on answers alike: the `Origin`
//! check, cookies, and the status a host daemon's error kind stands for.

use mfv_api::ErrorKind;
use warp::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

/// Whether a request came from this site's own pages: its `Origin` is `https://` and the
/// `Host` it was sent to. A request without `Origin` (not from a browser's page) passes: it
/// carries no cookie by another site's hand.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|host| host.to_str().ok());
    match (origin.to_str(), host) {
        (Ok(origin), Some(host)) => origin
            .strip_prefix("https://")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// The value of the cookie `name` in `headers`, if any.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
}

/// `response` setting the cookie `name` to `value` for the whole site, over HTTPS only,
/// out of scripts' reach and never sent by another site's page; an empty `value` removes it.
pub(crate) fn with_cookie(mut response: Response, name: &str, value: &str) -> Response {
    let expiry = if value.is_empty() { "; Max-Age=0" } else { "" };
    let cookie = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{expiry}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// The status a host daemon's error of `kind` is answered with.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::InvalidConfig => StatusCode::BAD_REQUEST,
        ErrorKind::NotPermitted => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict | ErrorKind::StaleGeneration => StatusCode::CONFLICT,
        ErrorKind::Busy | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn only_this_sites_pages_or_no_page_at_all_pass_the_origin_check() {
        assert!(same_origin(&headers(&[("host", "10.0.2.15")])));
        assert!(same_origin(&headers(&[
            ("host", "10.0.2.15:8443"),
            ("origin", "https://10.0.2.15:8443")
        ])));
        for origin in ["https://evil.example", "http://10.0.2.15", "null"] {
            assert!(
                !same_origin(&headers(&[("host", "10.0.2.15"), ("origin", origin)])),
                "{origin}"
            );
        }
    }

    #[test]
    fn cookies_are_found_by_name_among_several_headers() {
        let headers = headers(&[("cookie", "a=1; b=2"), ("cookie", "c=3")]);
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, "c").as_deref(), Some("3"));
        assert_eq!(cookie(&headers, "d"), None);
    }

    #[test]
    fn a_removed_cookie_expires_at_once() {
        let set = with_cookie(Response::default(), "s", "");
        let value = set.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
        assert!(value.starts_with("s=; Path=/; Secure; HttpOnly; SameSite=Strict"));
        assert!(value.ends_with("Max-Age=0"));
    }
}
