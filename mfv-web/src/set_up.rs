//! What the server answers on a host that is set up.
//!
//! Once a host has its configuration, first-boot setup is over and config mode's routes are
//! gone with it, token and session included. Such a host is managed from its console and
//! with `mfv`; a browser that comes here (the wizard's own tab after the save, or a bookmark)
//! gets a page that says so rather than a bare error, and API clients get `503 unavailable`.
// TODO(#15): normal mode's API and pages take the place of these routes.

use std::convert::Infallible;

use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::pages;
use crate::reply::{ErrorBody, error_response};

/// The routes of a host whose configuration is on `device`.
pub fn routes(device: String) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let page = warp::path::end()
        .and(warp::get())
        .map(move || pages::set_up_page(&device));
    let stylesheet = warp::path!("assets" / "mfv.css")
        .and(warp::get())
        .map(pages::stylesheet);
    let everything_else = warp::any().map(|| {
        error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &ErrorBody::new(
                "unavailable",
                "this host is set up; this web server serves only the setup of hosts without \
                 a configuration: manage this one from its console or with mfv",
            ),
        )
    });
    page.or(stylesheet).unify().or(everything_else).unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_browser_gets_the_page_and_the_api_is_unavailable() {
        let routes = routes("/dev/vd<b>".to_owned());
        let page = warp::test::request().path("/").reply(&routes).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = String::from_utf8_lossy(page.body());
        assert!(html.contains("This host is set up"), "{html}");
        assert!(html.contains("/dev/vd&lt;b&gt;"), "{html}");

        let stylesheet = warp::test::request()
            .path("/assets/mfv.css")
            .reply(&routes)
            .await;
        assert_eq!(stylesheet.status(), StatusCode::OK);

        let claim = warp::test::request()
            .method("POST")
            .path("/api/v1/setup/claim")
            .body("{\"token\":\"x\"}")
            .reply(&routes)
            .await;
        assert_eq!(claim.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = String::from_utf8_lossy(claim.body());
        assert!(body.contains("this host is set up"), "{body}");
    }
}
