//! The configuration: read it with its generation, check a text, save one through the host
//! daemon, which validates it again and keeps it as the config store's next generation.
//!
//! A save names the generation it was based on, so two people editing at once cannot
//! overwrite each other: the second save is refused (`409 stale_generation`) and must read the
//! configuration again. An invalid text is refused with every problem (`400 invalid_config`,
//! each with its line, column and field in `errors`), so a page can mark them all at once.

use mfv_api::{Request as DaemonRequest, Response as DaemonResponse};
use mfv_auth::Permission;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};

use super::doc::{Answer, schema};
use super::links::ask_host;
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use crate::daemon::{ANSWER_TIMEOUT, CONFIG_TIMEOUT};
use crate::reply::json_response;

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::GET,
            path: "/api/v1/config",
            access: Access::Allowed(Permission::ManageHost),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<mfv_api::ConfigDocument>),
            operation: "get_config",
            summary: "The configuration in use: its text, generation, whether it is the current \
                      or the last-known-good one, and where it is kept",
            handler: get_config,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/config/validate",
            access: Access::Allowed(Permission::ManageHost),
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<ConfigText>),
            answer: Answer::Ok(schema::<Validation>),
            operation: "validate_config",
            summary: "Check a configuration text without saving it: every problem with its \
                      line, column and field",
            handler: validate_config,
        },
        Route {
            method: Method::PUT,
            path: "/api/v1/config",
            access: Access::Allowed(Permission::ManageHost),
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<SaveRequest>),
            answer: Answer::Ok(schema::<Saved>),
            operation: "save_config",
            summary: "Save a configuration text as the next generation; the body names the \
                      generation it was based on (409 stale_generation when another was saved \
                      since)",
            handler: save_config,
        },
    ]
}

/// What `POST /api/v1/config/validate` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConfigText {
    /// The whole `mfv.toml`.
    text: String,
}

/// What `PUT /api/v1/config` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SaveRequest {
    /// The whole `mfv.toml`.
    text: String,
    /// The generation `GET /api/v1/config` gave; `null` (or absent) when there was none.
    #[serde(default)]
    generation: Option<u64>,
}

/// What `POST /api/v1/config/validate` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct Validation {
    /// Whether the text has no problem.
    valid: bool,
    /// Every problem, with its line, column and field.
    errors: Vec<mfv_api::ConfigIssue>,
}

/// What `PUT /api/v1/config` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct Saved {
    /// The generation the text was saved as.
    generation: u64,
}

fn get_config(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let document = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::ConfigGet,
            CONFIG_TIMEOUT,
            |response| match response {
                DaemonResponse::Config(document) => Some(document),
                _ => None,
            },
        )
        .await?;
        Ok(json_response(StatusCode::OK, &document))
    })
}

fn validate_config(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let ConfigText { text } = call.json()?;
        let errors = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::ConfigValidate { text },
            ANSWER_TIMEOUT,
            |response| match response {
                DaemonResponse::ConfigValidation { errors } => Some(errors),
                _ => None,
            },
        )
        .await?;
        Ok(json_response(
            StatusCode::OK,
            &Validation {
                valid: errors.is_empty(),
                errors,
            },
        ))
    })
}

fn save_config(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let SaveRequest { text, generation } = call.json()?;
        let saved = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::ConfigSave {
                text,
                base_generation: generation,
            },
            CONFIG_TIMEOUT,
            |response| match response {
                DaemonResponse::ConfigSaved { generation } => Some(generation),
                _ => None,
            },
        )
        .await?;
        if let Some(caller) = &call.caller {
            println!(
                "mfv-web: {} saved configuration generation {saved} from {}",
                caller.username, call.client
            );
        }
        Ok(json_response(StatusCode::OK, &Saved { generation: saved }))
    })
}
