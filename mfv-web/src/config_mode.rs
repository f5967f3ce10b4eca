//! Config mode: what the web server answers on a host that has no configuration yet.
//!
//! Whoever reaches the host first over the network must not be the one who sets it up, so
//! config mode answers only a browser that proved it can read the console: it presents the
//! one-time setup token the console shows ([`mfv_host::setup_token`]) and gets a session for
//! it. The host daemon checks and spends the token (this server, unprivileged, never reads
//! it), so exactly one client ever gets the session, even across a restart of this server.
//!
//! The session is a cookie (`__Host-mfv-setup`: Secure, HttpOnly, SameSite=Strict, the
//! whole site, no domain), and a change sent with it must come from this site's own pages
//! (`Origin` checked), so another site cannot act with the operator's session.
//!
//! Wrong tokens are slowed down: after a few, each further try must wait, so guessing is
//! hopeless even without the token's 99 bits.
//!
//! The setup wizard (`/assets/setup.js` on the page a session holder gets at `/`) uses the
//! JSON API below. Its draft (every answer but the password) is kept here in memory for the
//! session, because a network change can move the browser to another address, where the
//! browser keeps nothing of the old one (the `network` module says how the session follows
//! it).

mod network;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mfv_api::{Request as DaemonRequest, Response as DaemonResponse};
use serde::{Deserialize, Serialize};
use warp::Filter;
use warp::http::header::HOST;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use crate::daemon::{ANSWER_TIMEOUT, DaemonError, DaemonLink, unexpected_answer};
use crate::pages;
use crate::reply::{ErrorBody, error_response, json_response};
use crate::server::ClientAddr;

/// The session cookie's name; `__Host-` makes browsers insist on Secure, `Path=/` and no
/// `Domain`.
pub const SESSION_COOKIE: &str = "__Host-mfv-setup";
/// The largest request body config mode reads (a whole configuration fits many times).
pub const MAX_BODY: u64 = 64 * 1024;
/// Wrong tokens allowed before tries are spaced out.
const FREE_WRONG_TOKENS: u32 = 5;
/// The spacing between tries after that.
const WRONG_TOKEN_SPACING: Duration = Duration::from_secs(2);
/// Where a confirmed network change sends the browser: the wizard at its network step, told
/// that the change was kept.
const WIZARD_AFTER_CONFIRM: &str = "/?network=confirmed#network";
/// How long the save may take: making a file system on a large partition takes a while.
const SAVE_TIMEOUT: Duration = Duration::from_secs(50);
/// How long the host daemon may take to test an auth backend: its own deadline for the
/// servers (`mfv_host::auth::CHECK_DEADLINE`, 10 s), with time to mount the config volume
/// and to answer.
const AUTH_TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The session the token was exchanged for.
#[derive(Debug, Clone)]
struct Session {
    id: String,
    client: SocketAddr,
}

/// Wrong tokens so far, and when the last try was.
#[derive(Debug, Default)]
struct WrongTokens {
    count: u32,
    last: Option<Instant>,
}

/// A refused request: its status and error.
type Refusal = (StatusCode, ErrorBody);

/// Config mode's state: who checks tokens, the one session, the wrong tries, the wizard's
/// draft and the network change waiting for its confirmation.
#[derive(Debug)]
pub struct ConfigMode<A> {
    daemon: A,
    session: Mutex<Option<Session>>,
    wrong: Mutex<WrongTokens>,
    draft: Mutex<Option<serde_json::Value>>,
    pending: Mutex<Option<network::PendingChange>>,
}

impl<A: DaemonLink> ConfigMode<A> {
    /// Config mode with no session yet, reaching the host daemon through `daemon`.
    pub fn new(daemon: A) -> Arc<ConfigMode<A>> {
        Arc::new(ConfigMode {
            daemon,
            session: Mutex::new(None),
            wrong: Mutex::new(WrongTokens::default()),
            draft: Mutex::new(None),
            pending: Mutex::new(None),
        })
    }

    /// Whether `headers` carry the session's cookie.
    fn has_session(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = session_cookie(headers) else {
            return false;
        };
        let session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        session.as_ref().is_some_and(|session| {
            mfv_auth::constant_time_eq(session.id.as_bytes(), presented.as_bytes())
        })
    }

    /// Lets in a request that carries the session and comes from this site's pages.
    fn admit(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if !self.has_session(headers) {
            return Err(unauthorized());
        }
        check_origin(headers)
    }

    /// Lets in a request as [`Self::admit`] does, and reads its JSON body as a `T`.
    fn admit_json<T: serde::de::DeserializeOwned>(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<T, Refusal> {
        self.admit(headers)?;
        read_json(body)
    }

    /// Asks the daemon, with the session's rights, and takes the answer `pick` wants (`None`
    /// for an answer of another kind).
    async fn ask<T>(
        &self,
        request: DaemonRequest,
        within: Duration,
        pick: impl FnOnce(DaemonResponse) -> Option<T>,
    ) -> Result<T, Refusal> {
        let response = self
            .daemon
            .ask(request, within)
            .await
            .map_err(daemon_refusal)?;
        let name = response.name();
        pick(response).ok_or_else(|| unexpected(name))
    }

    /// How long `now` must still wait before another try, if it must.
    fn wait_before_try(&self, now: Instant) -> Option<Duration> {
        let wrong = self
            .wrong
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if wrong.count < FREE_WRONG_TOKENS {
            return None;
        }
        let next = wrong.last? + WRONG_TOKEN_SPACING;
        next.checked_duration_since(now)
            .filter(|wait| !wait.is_zero())
    }

    fn count_wrong(&self, now: Instant) {
        let mut wrong = self
            .wrong
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        wrong.count = wrong.count.saturating_add(1);
        wrong.last = Some(now);
    }

    /// Exchanges `token` from `client` for the session: its id, or the refusal.
    async fn claim(&self, token: String, client: SocketAddr) -> Result<String, Refusal> {
        let now = Instant::now();
        if let Some(wait) = self.wait_before_try(now) {
            return Err((
                StatusCode::TOO_MANY_REQUESTS,
                ErrorBody::new(
                    "throttled",
                    format!(
                        "too many wrong setup tokens: wait {} s before the next try",
                        wait.as_secs().max(1)
                    ),
                ),
            ));
        }
        if let Err(error) = mfv_api::check_setup_token(&token) {
            return Err((StatusCode::BAD_REQUEST, ErrorBody::from(&error)));
        }
        match self
            .daemon
            .ask(DaemonRequest::SetupClaim { token }, ANSWER_TIMEOUT)
            .await
        {
            Ok(DaemonResponse::Accepted) => {
                let id = new_random_hex().map_err(|message| {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        ErrorBody::new("internal", message),
                    )
                })?;
                println!("mfv-web: config mode: the setup token was claimed from {client}");
                self.start_session(id.clone(), client);
                Ok(id)
            }
            Ok(other) => Err(unexpected(other.name())),
            Err(DaemonError::Refused(error)) => {
                println!(
                    "mfv-web: config mode: a setup token from {client} was refused: {}",
                    error.message
                );
                let status = match error.kind {
                    mfv_api::ErrorKind::NotPermitted => {
                        self.count_wrong(now);
                        StatusCode::FORBIDDEN
                    }
                    mfv_api::ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
                    _ => StatusCode::CONFLICT,
                };
                Err((status, ErrorBody::from(&error)))
            }
            Err(error @ DaemonError::Unreachable(_)) => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::new(
                    "unavailable",
                    format!("{error}; look at the host's console, then try again"),
                ),
            )),
        }
    }

    /// Gives the session to `client` as `id`; whoever held it before holds it no more.
    fn start_session(&self, id: String, client: SocketAddr) {
        *self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Session { id, client });
    }

    /// The wizard's draft, `null` before the first.
    fn draft(&self) -> serde_json::Value {
        self.draft
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or(serde_json::Value::Null)
    }

    /// Keeps `draft`, which must be a JSON object, as the wizard's draft.
    fn keep_draft(&self, draft: serde_json::Value) -> Result<(), Refusal> {
        if !draft.is_object() {
            return Err((
                StatusCode::BAD_REQUEST,
                ErrorBody::new("invalid_request", "the draft must be a JSON object")
                    .with_field("draft"),
            ));
        }
        *self
            .draft
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(draft);
        Ok(())
    }

    /// The client the session was given to.
    fn session_client(&self) -> Option<SocketAddr> {
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|session| session.client)
    }
}

/// A token as the API receives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenClaim {
    token: String,
}

/// A configuration's text, as `POST /api/v1/setup/validate` and
/// `POST /api/v1/setup/auth/test` take it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigText {
    config_text: String,
}

/// What `POST /api/v1/setup/auth/test` answers.
#[derive(Debug, Serialize)]
struct AuthTested {
    backend: String,
    message: String,
}

/// What `POST /api/v1/setup/auth/test` takes: the configuration, and the contents of the
/// files its `[auth]` names (a bind password), which have no volume to be read from yet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthTestRequest {
    config_text: String,
    #[serde(default)]
    files: BTreeMap<String, String>,
}

/// What `POST /api/v1/setup/save` takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveRequest {
    config_text: String,
    volume: mfv_api::SetupVolume,
    admin: String,
    password: String,
    /// The contents of the files the configuration's `[auth]` names, by setting.
    #[serde(default)]
    files: BTreeMap<String, String>,
}

/// `files` as the daemon takes them.
fn secrets(files: BTreeMap<String, String>) -> BTreeMap<String, mfv_api::Secret> {
    files
        .into_iter()
        .map(|(key, content)| (key, mfv_api::Secret::new(content)))
        .collect()
}

/// What `POST /api/v1/setup/save` answers.
#[derive(Debug, Serialize)]
struct Saved {
    device: String,
    generation: u64,
    formatted: bool,
    /// `normal` when the host runs with the configuration now (this server restarts into
    /// normal mode), `config` when it uses it from the next boot.
    mode: &'static str,
    /// What the operator does next, in a sentence.
    next: String,
}

impl Saved {
    /// The answer for the daemon's `SetupSaved`, with `admin` the first administrator.
    fn new(
        device: String,
        generation: u64,
        formatted: bool,
        in_use: &mfv_api::SetupInUse,
        admin: &str,
    ) -> Saved {
        let (mode, next) = match in_use {
            mfv_api::SetupInUse::Now => (
                "normal",
                format!(
                    "the host is set up and runs with this configuration; this page's session \
                     has ended: sign in as {admin} at the host's console, where mfv manages \
                     the host"
                ),
            ),
            mfv_api::SetupInUse::NextBoot { reason } => (
                "config",
                format!(
                    "reboot the host: it uses the saved configuration from its next boot ({reason})"
                ),
            ),
            _ => (
                "config",
                "reboot the host: it uses the saved configuration from its next boot".to_owned(),
            ),
        };
        Saved {
            device,
            generation,
            formatted,
            mode,
            next,
        }
    }
}

/// `200` with `answer` as JSON, or the refusal.
fn answer_json(answer: Result<impl Serialize, Refusal>) -> Response {
    match answer {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err((status, error)) => error_response(status, &error),
    }
}

/// `request` once the protocol's own checks pass, or the refusal naming the field at fault.
fn validated(request: DaemonRequest) -> Result<DaemonRequest, Refusal> {
    request
        .validate()
        .map_err(|error| (StatusCode::BAD_REQUEST, ErrorBody::from(&error)))?;
    Ok(request)
}

/// A JSON body of type `T`, or the refusal naming what is wrong with it.
fn read_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|error| {
        (
            StatusCode::BAD_REQUEST,
            ErrorBody::new(
                "invalid_request",
                format!("the body is not the JSON this path takes: {error}"),
            ),
        )
    })
}

/// What `GET /api/v1/setup` answers.
#[derive(Debug, Serialize)]
struct SetupState {
    mode: &'static str,
    claimed_from: Option<String>,
}

/// Config mode's routes, every refusal answered as JSON or as a page.
pub fn routes<A: DaemonLink>(
    state: Arc<ConfigMode<A>>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let state = warp::any().map(move || Arc::clone(&state));
    let client = warp::ext::optional::<ClientAddr>().map(|client: Option<ClientAddr>| {
        client.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |client| client.0)
    });

    // What a route with a JSON body takes: the headers, the body within its limit, the state.
    let with_body = warp::header::headers_cloned()
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .and(state.clone());

    let api_claim =
        warp::path!("api" / "v1" / "setup" / "claim")
            .and(warp::post())
            .and(with_body.clone())
            .and(client)
            .then(
                |headers: HeaderMap,
                 body: hyper::body::Bytes,
                 state: Arc<ConfigMode<A>>,
                 client| async move {
                    if let Err((status, error)) = check_origin(&headers) {
                        return error_response(status, &error);
                    }
                    let claim: TokenClaim = match serde_json::from_slice(&body) {
                        Ok(claim) => claim,
                        Err(error) => {
                            return error_response(
                            StatusCode::BAD_REQUEST,
                            &ErrorBody::new(
                                "invalid_request",
                                format!(
                                    "the body must be a JSON object {{\"token\": \"...\"}}: {error}"
                                ),
                            )
                            .with_field("token"),
                        );
                        }
                    };
                    match state.claim(claim.token, client).await {
                        Ok(id) => with_session_cookie(
                            json_response(
                                StatusCode::OK,
                                &SetupState {
                                    mode: "config",
                                    claimed_from: Some(client.to_string()),
                                },
                            ),
                            &id,
                        ),
                        Err((status, error)) => error_response(status, &error),
                    }
                },
            );

    let api_state = warp::path!("api" / "v1" / "setup")
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(state.clone())
        .map(|headers: HeaderMap, state: Arc<ConfigMode<A>>| {
            if !state.has_session(&headers) {
                let (status, error) = unauthorized();
                return error_response(status, &error);
            }
            json_response(
                StatusCode::OK,
                &SetupState {
                    mode: "config",
                    claimed_from: state.session_client().map(|client| client.to_string()),
                },
            )
        });

    let api_volumes = warp::path!("api" / "v1" / "setup" / "volumes")
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(state.clone())
        .then(|headers: HeaderMap, state: Arc<ConfigMode<A>>| async move {
            let answer = async {
                state.admit(&headers)?;
                state
                    .ask(
                        DaemonRequest::SetupVolumes,
                        ANSWER_TIMEOUT,
                        |response| match response {
                            DaemonResponse::SetupVolumes { volumes } => Some(volumes),
                            _ => None,
                        },
                    )
                    .await
            };
            answer_json(
                answer
                    .await
                    .map(|volumes| serde_json::json!({ "volumes": volumes })),
            )
        });

    let api_validate = warp::path!("api" / "v1" / "setup" / "validate")
        .and(warp::post())
        .and(with_body.clone())
        .then(
            |headers: HeaderMap, body: hyper::body::Bytes, state: Arc<ConfigMode<A>>| async move {
                let answer = async {
                    let ConfigText { config_text } = state.admit_json(&headers, &body)?;
                    state
                        .ask(
                            DaemonRequest::ConfigValidate { text: config_text },
                            ANSWER_TIMEOUT,
                            |response| match response {
                                DaemonResponse::ConfigValidation { errors } => Some(errors),
                                _ => None,
                            },
                        )
                        .await
                };
                answer_json(
                    answer
                        .await
                        .map(|errors| serde_json::json!({ "errors": errors })),
                )
            },
        );

    let api_auth_test = warp::path!("api" / "v1" / "setup" / "auth" / "test")
        .and(warp::post())
        .and(with_body.clone())
        .then(
            |headers: HeaderMap, body: hyper::body::Bytes, state: Arc<ConfigMode<A>>| async move {
                let answer = async {
                    let AuthTestRequest { config_text, files } =
                        state.admit_json(&headers, &body)?;
                    let request = validated(DaemonRequest::AuthTest {
                        config_text,
                        files: secrets(files),
                    })?;
                    state
                        .ask(request, AUTH_TEST_TIMEOUT, |response| match response {
                            DaemonResponse::AuthTested { backend, message } => {
                                Some(AuthTested { backend, message })
                            }
                            _ => None,
                        })
                        .await
                };
                answer_json(answer.await)
            },
        );

    let api_save =
        warp::path!("api" / "v1" / "setup" / "save")
            .and(warp::post())
            .and(with_body.clone())
            .and(client)
            .then(
                |headers: HeaderMap,
                 body: hyper::body::Bytes,
                 state: Arc<ConfigMode<A>>,
                 client| async move {
                    let answer = async {
                        let save: SaveRequest = state.admit_json(&headers, &body)?;
                        let admin = save.admin.clone();
                        let request = validated(DaemonRequest::SetupSave {
                            config_text: save.config_text,
                            volume: save.volume,
                            admin: save.admin,
                            password: mfv_api::Secret::new(save.password),
                            files: secrets(save.files),
                        })?;
                        state
                            .ask(request, SAVE_TIMEOUT, |response| match response {
                                DaemonResponse::SetupSaved {
                                    device,
                                    generation,
                                    formatted,
                                    in_use,
                                } => {
                                    Some(Saved::new(device, generation, formatted, &in_use, &admin))
                                }
                                _ => None,
                            })
                            .await
                    };
                    let answer = answer.await;
                    if let Ok(saved) = &answer {
                        println!(
                            "mfv-web: config mode: the setup was saved on {} by {client}",
                            saved.device
                        );
                    }
                    answer_json(answer)
                },
            );

    let api_draft_get = warp::path!("api" / "v1" / "setup" / "draft")
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(state.clone())
        .map(|headers: HeaderMap, state: Arc<ConfigMode<A>>| {
            answer_json(
                state
                    .admit(&headers)
                    .map(|()| serde_json::json!({ "draft": state.draft() })),
            )
        });

    let api_draft_put = warp::path!("api" / "v1" / "setup" / "draft")
        .and(warp::put())
        .and(with_body.clone())
        .map(
            |headers: HeaderMap, body: hyper::body::Bytes, state: Arc<ConfigMode<A>>| {
                let answer = state
                    .admit_json(&headers, &body)
                    .and_then(|draft| state.keep_draft(draft));
                answer_json(answer.map(|()| serde_json::json!({ "kept": true })))
            },
        );

    let api_network = warp::path!("api" / "v1" / "setup" / "network")
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(state.clone())
        .then(|headers: HeaderMap, state: Arc<ConfigMode<A>>| async move {
            let answer = async {
                state.admit(&headers)?;
                let inventory = state
                    .ask(
                        DaemonRequest::Inventory,
                        ANSWER_TIMEOUT,
                        |response| match response {
                            DaemonResponse::Inventory { inventory } => Some(inventory),
                            _ => None,
                        },
                    )
                    .await?;
                let interfaces = crate::daemon::network_cards(inventory)?;
                let in_effect = state
                    .ask(
                        DaemonRequest::HostStatus,
                        ANSWER_TIMEOUT,
                        |response| match response {
                            DaemonResponse::HostStatus(status) => Some(status.network_in_effect),
                            _ => None,
                        },
                    )
                    .await?;
                Ok(serde_json::json!({
                    "interfaces": interfaces,
                    "in_effect": in_effect,
                    "pending": state.pending_network(),
                }))
            };
            answer_json(answer.await)
        });

    let api_network_apply = warp::path!("api" / "v1" / "setup" / "network" / "apply")
        .and(warp::post())
        .and(with_body.clone())
        .then(
            |headers: HeaderMap, body: hyper::body::Bytes, state: Arc<ConfigMode<A>>| async move {
                let answer = async {
                    let request: network::ApplyRequest = state.admit_json(&headers, &body)?;
                    let host = headers.get(HOST).and_then(|host| host.to_str().ok());
                    state.apply_network(request, host).await
                };
                answer_json(answer.await)
            },
        );

    let api_network_confirm = warp::path!("api" / "v1" / "setup" / "network" / "confirm")
        .and(warp::post())
        .and(with_body.clone())
        .then(
            |headers: HeaderMap, body: hyper::body::Bytes, state: Arc<ConfigMode<A>>| async move {
                let answer = async {
                    let network::ConfirmRequest { apply_id } = state.admit_json(&headers, &body)?;
                    state.confirm_network(apply_id).await
                };
                answer_json(
                    answer
                        .await
                        .map(|()| serde_json::json!({ "outcome": "confirmed" })),
                )
            },
        );

    let page_confirm = warp::path!("setup" / "confirm")
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(state.clone())
        .and(client)
        .then(
            |query: Vec<(String, String)>, state: Arc<ConfigMode<A>>, client| async move {
                let value = |name: &str| {
                    query
                        .iter()
                        .find_map(|(key, value)| (key == name).then_some(value.as_str()))
                };
                let apply_id = value("apply").and_then(|id| id.parse::<u64>().ok());
                let (Some(apply_id), Some(key)) = (apply_id, value("key")) else {
                    return pages::confirm_failed_page(
                        StatusCode::BAD_REQUEST,
                        "This link is incomplete: it must carry the change's number and its key.",
                    );
                };
                match state.confirm_network_with_key(apply_id, key, client).await {
                    Ok(id) => with_session_cookie(pages::see_other(WIZARD_AFTER_CONFIRM), &id),
                    Err((status, error)) => pages::confirm_failed_page(status, &error.message),
                }
            },
        );

    let page_claim =
        warp::path!("setup" / "claim")
            .and(warp::post())
            .and(warp::header::headers_cloned())
            .and(warp::body::content_length_limit(MAX_BODY))
            .and(warp::body::form::<Vec<(String, String)>>())
            .and(state.clone())
            .and(client)
            .then(
                |headers: HeaderMap,
                 form: Vec<(String, String)>,
                 state: Arc<ConfigMode<A>>,
                 client| async move {
                    if check_origin(&headers).is_err() {
                        return pages::token_page(Some(
                            "This form must be sent from the host's own page.",
                        ));
                    }
                    let token = form
                        .into_iter()
                        .find_map(|(name, value)| (name == "token").then_some(value))
                        .unwrap_or_default();
                    match state.claim(token, client).await {
                        Ok(id) => with_session_cookie(pages::see_other("/"), &id),
                        Err((_, error)) => pages::token_page(Some(&error.message)),
                    }
                },
            );

    let page_home = warp::path::end()
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(state.clone())
        .map(|headers: HeaderMap, state: Arc<ConfigMode<A>>| {
            if state.has_session(&headers) {
                pages::wizard_page()
            } else {
                pages::token_page(None)
            }
        });

    let script = warp::path!("assets" / "setup.js")
        .and(warp::get())
        .map(pages::setup_script);

    // Each route boxed, and the alternatives joined one at a time into a boxed filter: warp's
    // nested `Or` types otherwise grow with every route until the compiler takes minutes.
    let mut all = api_claim.boxed();
    for route in [
        api_state.boxed(),
        api_volumes.boxed(),
        api_validate.boxed(),
        api_auth_test.boxed(),
        api_save.boxed(),
        api_draft_get.boxed(),
        api_draft_put.boxed(),
        api_network.boxed(),
        api_network_apply.boxed(),
        api_network_confirm.boxed(),
        page_confirm.boxed(),
        page_claim.boxed(),
        page_home.boxed(),
        script.boxed(),
        crate::assets::routes(),
    ] {
        all = all.or(route).unify().boxed();
    }
    all.recover(crate::rejection::answer).unify()
}

/// The refusal of a request without the session.
fn unauthorized() -> Refusal {
    (
        StatusCode::UNAUTHORIZED,
        ErrorBody::new(
            "setup_token_required",
            "this host is not set up yet: present the setup token the console shows \
             (POST /api/v1/setup/claim) first",
        ),
    )
}

/// An answer of the daemon, named `response`, that does not answer the request.
fn unexpected(response: &str) -> Refusal {
    unexpected_answer(response).into()
}

/// The daemon's refusal as this server passes it on: its kind, message, field and, for an
/// invalid configuration, every problem.
fn daemon_refusal(error: DaemonError) -> Refusal {
    crate::api::ApiError::from(error).into()
}

/// Refuses a request whose `Origin` is not this site ([`crate::request::same_origin`]).
fn check_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    if crate::request::same_origin(headers) {
        return Ok(());
    }
    Err((
        StatusCode::FORBIDDEN,
        ErrorBody::new(
            "cross_origin",
            "this request came from another site's page; use the host's own pages",
        ),
    ))
}

/// `response` with the session cookie set to `id`.
fn with_session_cookie(response: Response, id: &str) -> Response {
    crate::request::with_cookie(response, SESSION_COOKIE, id)
}

/// The session cookie's value in `headers`, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    crate::request::cookie(headers, SESSION_COOKIE)
}

/// 32 random bytes, hex: a session id or a one-time key.
fn new_random_hex() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| format!("the system's random source failed: {error}"))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}
