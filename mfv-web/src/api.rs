//! Normal mode's REST API under `/api/v1`: JSON in and out, every route a line of one table.
//!
//! Why one table ([`table::routes`]): each line names a route's method, path template, who
//! may call it, how large its body may be, its summary and its handler. The dispatcher
//! ([`Api::dispatch`]) is then the one place that matches paths, authenticates the caller
//! (the session cookie, or an API token as bearer), asks [`mfv_auth::Role::allows`] before
//! any handler runs, checks CSRF on changes made with the cookie and limits bodies; and the
//! OpenAPI document ([`openapi::document`]) is generated from the same lines, with the query
//! parameters the dispatcher parses against and the schemas of the types the handler reads
//! and answers ([`doc`]). So no route is
//! served without its permission check, and none is served undocumented or documented and
//! absent.
//!
//! Who the callers are is the [`Authority`]'s business: an [`mfv_auth::Authenticator`] in
//! this process ([`LocalAuthority`]), over the working copy of the auth database the host
//! daemon keeps on the appliance ([`mfv_host::auth::live`]), or over a SQLite file in `--dev`
//! mode and in tests. A
//! session's check is kept for [`SESSION_RECHECK`], so a page full of requests costs the
//! authority one check (and requests arriving while it is made wait for it rather than
//! asking too); logging out, and a change to a user or a session made through this
//! API, end it at once (the dispatcher forgets the checks of that user); a change made
//! elsewhere (`mfv user` on the host) within that time.

pub mod accounts;
mod audit;
mod authority;
mod config;
mod consoles;
mod dispatch;
pub mod doc;
mod error;
pub mod events;
mod fetches;
mod host;
pub mod links;
pub mod metrics;
mod network;
pub mod openapi;
mod path;
pub mod query;
mod session;
mod session_checks;
mod storage;
pub mod table;
pub mod tasks;
mod tokens;
mod totp;
pub mod uploads;
mod users;
mod vm_clone;
mod vm_list;
mod vm_networks;
mod vms;

pub use authority::{
    Authority, AuthorityFuture, Caller, Change, Credential, LocalAuthority, LoginAttempt, SignedIn,
};
pub(crate) use dispatch::csrf_token;
pub use dispatch::{Api, ApiParts, ApiState, SESSION_COOKIE};
pub use error::ApiError;
pub use session_checks::SESSION_RECHECK;

/// The API's routes, with `404` in the API's error shape for every path it does not serve.
pub fn routes(
    api: std::sync::Arc<Api>,
) -> impl warp::Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone
{
    use warp::Filter;
    Api::filter(api).recover(crate::rejection::answer).unify()
}
