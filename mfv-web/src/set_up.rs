//! What the server answers on a host that is set up: normal mode's REST API and its web
//! pages.
//!
//! Once a host has its configuration, first-boot setup is over and config mode's routes are
//! gone with it, token and session included. The API ([`crate::api`]) checks its callers
//! against the auth database the host daemon keeps in use ([`mfv_host::auth::live`]), and the
//! pages ([`crate::ui`]) are built on it. When the auth database cannot be opened, the API
//! answers `503 unavailable` with the reason, and a browser that opens the site gets a page
//! saying where the host is managed from instead.

use std::path::Path;
use std::sync::Arc;

use mfv_host::auth::MissingDatabase;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::api::links::{LibvirtUri, RestoredVms, VmCapabilities};
use crate::api::{Api, ApiParts, LocalAuthority};
use crate::daemon::DaemonSocket;
use crate::pages;
use crate::reply::{ErrorBody, error_response};

/// Where libvirt is on the appliance.
pub const APPLIANCE_LIBVIRT: &str = "qemu:///system";

/// Why the API of a set-up host could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// The host daemon published no auth database.
    #[error("the host daemon published no auth database in {0} (its log says why)")]
    NoWorkingCopy(String),
    /// The working copy's settings could not be read.
    #[error(transparent)]
    Live(#[from] mfv_host::auth::live::LiveAuthError),
    /// The auth database or backend could not be opened.
    #[error(transparent)]
    Auth(#[from] mfv_host::auth::AuthSetupError),
}

/// The API of a set-up host: users from the auth database in use in `run_dir`, the host
/// daemon on `socket`, libvirt at [`APPLIANCE_LIBVIRT`], the host's `/proc`.
pub async fn open_api(run_dir: &Path, socket: &Path) -> Result<Arc<Api>, OpenApiError> {
    let settings = mfv_host::auth::live::settings(run_dir)?.ok_or_else(|| {
        OpenApiError::NoWorkingCopy(
            mfv_host::auth::live::live_dir(run_dir)
                .display()
                .to_string(),
        )
    })?;
    let authenticator = settings.open(MissingDatabase::Refuse).await?;
    Ok(Api::new(ApiParts {
        authority: Arc::new(LocalAuthority::new(authenticator)),
        host: Arc::new(DaemonSocket {
            socket: socket.to_owned(),
        }),
        libvirt: Some(LibvirtUri(APPLIANCE_LIBVIRT.to_owned())),
        restored_vms: Some(RestoredVms::once_marked_by(
            mfv_host::vm_keeper::vms_restored_marker(run_dir),
        )),
        proc_root: std::path::PathBuf::from("/proc"),
        vm_capabilities: VmCapabilities::ProbedAt(std::path::PathBuf::from("/")),
        upload_idle: crate::api::uploads::BODY_IDLE,
    }))
}

/// The routes of a host whose configuration is on `device`: `api`'s and the web pages, or
/// when it could not be opened `503` with the reason, a page at `/` saying so and the bundles
/// ([`crate::assets`]).
pub fn routes(device: String, api: Result<Arc<Api>, String>) -> BoxedFilter<(Response,)> {
    match api {
        Ok(api) => crate::ui::site(api),
        Err(reason) => {
            let page = warp::path::end()
                .and(warp::get())
                .map(move || pages::set_up_page(&device));
            let pages = page.or(crate::assets::routes()).unify();
            let unavailable = warp::any().map(move || {
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &ErrorBody::new(
                        "unavailable",
                        format!(
                            "this host is set up, but its API cannot check callers: {reason}; \
                             manage it from its console or with mfv"
                        ),
                    ),
                )
            });
            pages.or(unavailable).unify().boxed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_its_api_a_set_up_host_shows_the_page_and_says_why() {
        let routes = routes("/dev/vd<b>".to_owned(), Err("no auth database".to_owned()));
        let page = warp::test::request().path("/").reply(&routes).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = String::from_utf8_lossy(page.body());
        assert!(html.contains("This host is set up"), "{html}");
        assert!(html.contains("/dev/vd&lt;b&gt;"), "{html}");

        let stylesheet = warp::test::request()
            .path(crate::assets::href(crate::assets::Bundle::AppCss))
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
        assert!(body.contains("no auth database"), "{body}");
    }

    #[tokio::test]
    async fn with_its_api_a_set_up_host_serves_it_beside_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("run");
        let missing = open_api(&run_dir, &dir.path().join("host.sock"))
            .await
            .unwrap_err();
        assert!(
            matches!(missing, OpenApiError::NoWorkingCopy(_)),
            "{missing}"
        );

        let volume = dir.path().join("volume");
        std::fs::create_dir(&volume).unwrap();
        let auth = mfv_config::schema::parse_config("version = 1\n[host]\nhostname = \"h\"\n")
            .unwrap()
            .auth;
        mfv_host::auth::AuthSettings::from_config(auth.clone(), &volume)
            .open(MissingDatabase::Create)
            .await
            .unwrap();
        mfv_host::auth::live::publish(&volume, &auth, &run_dir).unwrap();
        let api = open_api(&run_dir, &dir.path().join("host.sock"))
            .await
            .unwrap();
        let routes = routes("/dev/vdb".to_owned(), Ok(api));
        let page = warp::test::request().path("/").reply(&routes).await;
        assert_eq!(page.status(), StatusCode::SEE_OTHER);
        assert_eq!(page.headers()["location"], "/login?next=%2F");
        let login = warp::test::request().path("/login").reply(&routes).await;
        assert_eq!(login.status(), StatusCode::OK);
        assert!(String::from_utf8_lossy(login.body()).contains("id=\"login\""));
        let document = warp::test::request()
            .path("/api/v1/openapi.json")
            .reply(&routes)
            .await;
        assert_eq!(document.status(), StatusCode::OK);
        let whoami = warp::test::request()
            .path("/api/v1/session")
            .reply(&routes)
            .await;
        assert_eq!(whoami.status(), StatusCode::UNAUTHORIZED);
        let elsewhere = warp::test::request().path("/nothing").reply(&routes).await;
        assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    }
}
