//! The pages' script and stylesheet served as they are written (`web/src/`), native ES
//! modules unbundled, until the asset pipeline (issue #16) bundles, hashes and compresses
//! them. Its only job is that, so the pipeline's `assets::href` takes its place in one spot:
//! [`href`] for the layout's links, [`routes`] for the files.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::HeaderValue;
use warp::http::header::CONTENT_TYPE;
use warp::reply::Response;

/// The files under `/assets/`, by their path there, with their text.
const FILES: [(&str, &str); 13] = [
    ("app.js", include_str!("../../web/src/app.js")),
    ("app.css", include_str!("../../web/src/app.css")),
    ("ui/api.js", include_str!("../../web/src/ui/api.js")),
    ("ui/dom.js", include_str!("../../web/src/ui/dom.js")),
    ("ui/shell.js", include_str!("../../web/src/ui/shell.js")),
    ("ui/login.js", include_str!("../../web/src/ui/login.js")),
    (
        "ui/dashboard.js",
        include_str!("../../web/src/ui/dashboard.js"),
    ),
    ("ui/vms.js", include_str!("../../web/src/ui/vms.js")),
    ("ui/vm.js", include_str!("../../web/src/ui/vm.js")),
    ("ui/chart.js", include_str!("../../web/src/ui/chart.js")),
    ("ui/dialog.js", include_str!("../../web/src/ui/dialog.js")),
    ("ui/live.js", include_str!("../../web/src/ui/live.js")),
    ("ui/lists.js", include_str!("../../web/src/ui/lists.js")),
];

/// The address of the asset `name` (`app.js`, `app.css`).
pub fn href(name: &str) -> String {
    format!("/assets/{name}")
}

/// `GET /assets/PATH` for each of the files.
pub fn routes() -> BoxedFilter<(Response,)> {
    warp::path("assets")
        .and(warp::path::tail())
        .and(warp::get())
        .and_then(|tail: warp::path::Tail| async move {
            let (path, text) = FILES
                .iter()
                .find(|(path, _)| *path == tail.as_str())
                .ok_or_else(warp::reject::not_found)?;
            let content_type = if path.ends_with(".css") {
                "text/css; charset=utf-8"
            } else {
                "text/javascript; charset=utf-8"
            };
            let mut response = Response::new((*text).into());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            Ok::<_, warp::Rejection>(response)
        })
        .boxed()
}
