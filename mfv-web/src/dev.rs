//! `mfv-web --dev`: the API and the web pages on an ordinary Linux machine, for working on the API and the pages
//! without an appliance. Users and sessions come from a SQLite auth database this process
//! opens itself ([`crate::api::LocalAuthority`]); the certificate is made at start and kept
//! in memory, so its fingerprint is printed for the browser.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use mfv_host::auth::{AuthOverrides, AuthSettings, MissingDatabase};
use mfv_host::web_identity::WebIdentity;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::api::links::{LibvirtUri, NoHostDaemon, VmCapabilities};
use crate::api::{Api, ApiParts, LocalAuthority};

/// What `--dev` serves, and with which certificate.
pub struct DevServer {
    /// The TLS configuration of the certificate made at start.
    pub tls: Arc<rustls::ServerConfig>,
    /// The API and the web pages, and `404` in the API's error shape for every other path.
    pub routes: BoxedFilter<(Response,)>,
    fingerprint: String,
    backend: &'static str,
}

impl std::fmt::Debug for DevServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevServer")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DevServer {
    /// Opens the SQLite auth database `auth_db` (it must exist: `mfv user add NAME --role
    /// admin --db PATH` makes it) and makes a certificate; VMs live on `libvirt` if given.
    pub async fn open(auth_db: &Path, libvirt: Option<String>) -> anyhow::Result<DevServer> {
        let authenticator = AuthSettings::new()
            .with_overrides(AuthOverrides {
                database: Some(auth_db.to_owned()),
                ..AuthOverrides::default()
            })
            .open(MissingDatabase::Refuse)
            .await
            .with_context(|| {
                format!(
                    "open the auth database {} (make it with: mfv user add NAME --role admin \
                     --db {})",
                    auth_db.display(),
                    auth_db.display()
                )
            })?;
        let backend = authenticator.backend().name();
        let identity = WebIdentity::generate("localhost").context("make a certificate")?;
        let tls = crate::tls::server_config_for(&identity)?;
        let api = Api::new(ApiParts {
            authority: Arc::new(LocalAuthority::new(authenticator)),
            host: Arc::new(NoHostDaemon),
            libvirt: libvirt.map(LibvirtUri),
            restored_vms: None,
            proc_root: std::path::PathBuf::from("/proc"),
            vm_capabilities: VmCapabilities::ProbedAt(std::path::PathBuf::from("/")),
            upload_idle: crate::api::uploads::BODY_IDLE,
        });
        Ok(DevServer {
            tls,
            routes: crate::ui::site(api),
            fingerprint: identity.fingerprint().to_string(),
            backend,
        })
    }

    /// What to print at start: where the API is and the certificate to expect.
    pub fn banner(&self, address: SocketAddr) -> String {
        format!(
            "mfv-web: dev mode, users from the {} backend\n  pages: https://{address}/\n  \
             API: https://{address}/api/v1/ \
             (the document: https://{address}/api/v1/openapi.json)\n  certificate SHA-256 \
             fingerprint: {}\n  log in: curl -k -c cookies -H 'content-type: application/json' \
             -d '{{\"username\":\"NAME\",\"password\":\"...\"}}' https://{address}/api/v1/session",
            self.backend, self.fingerprint
        )
    }
}
