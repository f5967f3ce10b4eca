//! The host itself: its status, hardware, services, logs and power, all through the host
//! daemon, which reads what PID 1 publishes and asks PID 1 for restarts and shutdowns.
//!
//! Rebooting or powering off takes the host's name in the body (`{"confirm": "vmhost1"}`),
//! as a person types it in a confirmation dialog: a script or a click aimed at another host
//! is refused instead of taking every VM on this one down. The name is the kernel's (`uname
//! -n`, set from the configuration at boot), which `GET /api/v1/host` shows.

use mfv_api::{
    HostStatus, LogLine, LogSource, MAX_LOG_LINES, Request as DaemonRequest,
    Response as DaemonResponse, ServiceStatus,
};
use mfv_auth::Permission;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};

use super::ApiError;
use super::doc::{Answer, schema};
use super::links::ask_host;
use super::query::{Param, ParamKind, Query};
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use crate::daemon::{ANSWER_TIMEOUT, RESTART_TIMEOUT};
use crate::reply::json_response;

/// The log lines answered when the query does not say how many.
const DEFAULT_LOG_LINES: u32 = 100;

/// The parameters of `GET /api/v1/host/logs`.
const LOG_PARAMETERS: &[Param] = &[
    Param {
        name: "source",
        kind: ParamKind::Choice {
            choices: &["boot", "service"],
            default: None,
        },
        about: "the boot's log, or a service's (the default when service is given)",
    },
    Param {
        name: "service",
        kind: ParamKind::Text,
        about: "the service whose log to read (with source=service or alone)",
    },
    Param {
        name: "lines",
        kind: ParamKind::Number {
            min: 1,
            max: MAX_LOG_LINES,
            default: DEFAULT_LOG_LINES,
        },
        about: "how many of the most recent lines",
    },
];

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::GET,
            path: "/api/v1/host",
            access: Access::Allowed(Permission::ViewInventory),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<HostAnswer>),
            operation: "host_status",
            summary: "The host: its name, uptime, the boot report with where the configuration \
                      came from, the services, KVM or TCG, the network in effect",
            handler: host_status,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/host/inventory",
            access: Access::Allowed(Permission::ViewInventory),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(inventory_schema),
            operation: "host_inventory",
            summary: "The hardware inventory: CPU, memory, network cards, disks, USB devices",
            handler: inventory,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/host/services",
            access: Access::Allowed(Permission::ViewInventory),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<ServiceList>),
            operation: "list_services",
            summary: "The supervised services: state, process, restarts, last exit",
            handler: services,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/host/services/{name}/restart",
            access: Access::Allowed(Permission::ManageHost),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<RestartedService>),
            operation: "restart_service",
            summary: "Restart a service; answers its state with the new process",
            handler: restart_service,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/host/logs",
            access: Access::Allowed(Permission::ManageHost),
            max_body: 0,
            query: LOG_PARAMETERS,
            request: None,
            answer: Answer::Ok(schema::<LogLines>),
            operation: "host_logs",
            summary: "The most recent log lines of the boot or of a service: \
                      ?source=boot|service&service=NAME&lines=N (1 to 1000, default 100)",
            handler: logs,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/host/reboot",
            access: Access::Allowed(Permission::ManageHost),
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<PowerRequest>),
            answer: Answer::Accepted(schema::<Stopping>),
            operation: "reboot_host",
            summary: "Reboot the host; the body names it: {\"confirm\": \"<host name>\"}",
            handler: reboot,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/host/poweroff",
            access: Access::Allowed(Permission::ManageHost),
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<PowerRequest>),
            answer: Answer::Accepted(schema::<Stopping>),
            operation: "power_off_host",
            summary: "Power the host off; the body names it: {\"confirm\": \"<host name>\"}",
            handler: power_off,
        },
    ]
}

/// What `GET /api/v1/host` answers: the daemon's status and the host's name.
#[derive(Debug, Serialize, JsonSchema)]
struct HostAnswer {
    /// The host's name, which a reboot or power-off must repeat.
    hostname: String,
    #[serde(flatten)]
    status: HostStatus,
}

/// What `GET /api/v1/host/services` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct ServiceList {
    services: Vec<ServiceStatus>,
}

/// What a service's restart answers: its state with the new process.
#[derive(Debug, Serialize, JsonSchema)]
struct RestartedService {
    service: ServiceStatus,
}

/// What `GET /api/v1/host/logs` answers, oldest line first.
#[derive(Debug, Serialize, JsonSchema)]
struct LogLines {
    lines: Vec<LogLine>,
}

/// The hardware inventory (mfv-probe's, which has no schemas of its own): its top-level
/// shape.
fn inventory_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "mfv-probe's hardware inventory: CPU, memory, network cards, disks, \
                        USB devices",
    })
}

/// What a reboot or power-off answers: the host is going down.
#[derive(Debug, Serialize, JsonSchema)]
struct Stopping {
    /// The host's name.
    hostname: String,
    /// `rebooting` or `powering off`.
    state: &'static str,
}

/// What a reboot or power-off takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PowerRequest {
    /// The host's name, again.
    confirm: String,
}

fn host_status(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let status = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::HostStatus,
            ANSWER_TIMEOUT,
            |response| match response {
                DaemonResponse::HostStatus(status) => Some(status),
                _ => None,
            },
        )
        .await?;
        let answer = HostAnswer {
            hostname: hostname()?,
            status,
        };
        Ok(json_response(StatusCode::OK, &answer))
    })
}

fn inventory(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let inventory = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::Inventory,
            ANSWER_TIMEOUT,
            |response| match response {
                DaemonResponse::Inventory { inventory } => Some(inventory),
                _ => None,
            },
        )
        .await?;
        Ok(json_response(StatusCode::OK, &inventory))
    })
}

fn services(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let services = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::ServiceStatus { name: None },
            ANSWER_TIMEOUT,
            |response| match response {
                DaemonResponse::Services { services } => Some(services),
                _ => None,
            },
        )
        .await?;
        Ok(json_response(StatusCode::OK, &ServiceList { services }))
    })
}

fn restart_service(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let name = call.param("name").to_owned();
        let service = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::ServiceRestart { name },
            RESTART_TIMEOUT,
            |response| match response {
                DaemonResponse::ServiceRestarted { service } => Some(service),
                _ => None,
            },
        )
        .await?;
        Ok(json_response(StatusCode::OK, &RestartedService { service }))
    })
}

/// Whose log lines the query asks for, and how many.
fn log_request(query: &Query) -> Result<(LogSource, u32), ApiError> {
    let limit = query.number("lines")?;
    let service = query.get("service");
    let source = match (query.choice("source")?, service) {
        (None | Some("service"), Some(name)) => LogSource::Service {
            name: name.to_owned(),
        },
        (Some("service"), None) => {
            return Err(ApiError::invalid(
                "service",
                "source=service needs the service's name: add &service=NAME",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                "service",
                "the boot log is not a service's: leave service out, or ask source=service",
            ));
        }
        (_, None) => LogSource::Boot,
    };
    Ok((source, limit))
}

fn logs(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let (source, limit) = log_request(&call.query)?;
        let host = call.state.host.as_ref();
        if let LogSource::Service { name } = &source {
            // The daemon answers an unknown service's log as empty: ask for the service
            // first, so a misspelt name is a 404 naming it.
            ask_host(
                host,
                DaemonRequest::ServiceStatus {
                    name: Some(name.clone()),
                },
                ANSWER_TIMEOUT,
                |response| match response {
                    DaemonResponse::Services { .. } => Some(()),
                    _ => None,
                },
            )
            .await
            .map_err(|error| {
                if error.status == StatusCode::NOT_FOUND {
                    error.with_field("service")
                } else {
                    error
                }
            })?;
        }
        let lines = ask_host(
            host,
            DaemonRequest::Logs { source, limit },
            ANSWER_TIMEOUT,
            |response| match response {
                DaemonResponse::Logs { lines } => Some(lines),
                _ => None,
            },
        )
        .await?;
        Ok(json_response(StatusCode::OK, &LogLines { lines }))
    })
}

fn reboot(call: Call) -> HandlerFuture {
    Box::pin(shut_down(call, DaemonRequest::Reboot, "rebooting"))
}

fn power_off(call: Call) -> HandlerFuture {
    Box::pin(shut_down(call, DaemonRequest::PowerOff, "powering off"))
}

/// Asks for `request` (a reboot or power-off) once the body names this host; `doing` says
/// what the host is doing then.
async fn shut_down(
    call: Call,
    request: DaemonRequest,
    doing: &'static str,
) -> Result<warp::reply::Response, ApiError> {
    let PowerRequest { confirm } = call.json()?;
    let hostname = hostname()?;
    if !confirm.eq_ignore_ascii_case(&hostname) {
        return Err(ApiError::invalid(
            "confirm",
            format!("must repeat this host's name, {hostname:?}, to confirm; got {confirm:?}"),
        ));
    }
    ask_host(
        call.state.host.as_ref(),
        request,
        ANSWER_TIMEOUT,
        |response| matches!(response, DaemonResponse::Accepted).then_some(()),
    )
    .await?;
    if let Some(caller) = &call.caller {
        println!(
            "mfv-web: {} asked the host to stop ({doing}) from {}",
            caller.username, call.client
        );
    }
    Ok(json_response(
        StatusCode::ACCEPTED,
        &Stopping {
            hostname,
            state: doing,
        },
    ))
}

/// The host's name, as the kernel has it.
fn hostname() -> Result<String, ApiError> {
    nix::unistd::gethostname()
        .map(|name| name.to_string_lossy().into_owned())
        .map_err(|error| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the host's name cannot be read: {error}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs_asked(raw: &str) -> Result<(LogSource, u32), ApiError> {
        log_request(&Query::parse(raw, LOG_PARAMETERS)?)
    }

    #[test]
    fn the_log_query_says_whose_lines_and_how_many() {
        let service = |name: &str| LogSource::Service {
            name: name.to_owned(),
        };
        assert_eq!(logs_asked("").unwrap(), (LogSource::Boot, 100));
        assert_eq!(
            logs_asked("source=boot&lines=5").unwrap(),
            (LogSource::Boot, 5)
        );
        assert_eq!(
            logs_asked("service=libvirtd").unwrap(),
            (service("libvirtd"), 100)
        );
        assert_eq!(
            logs_asked("source=service&service=mfv-web&lines=1000").unwrap(),
            (service("mfv-web"), 1000)
        );
        for (raw, field) in [
            ("source=service", "service"),
            ("source=boot&service=libvirtd", "service"),
            ("source=kernel", "source"),
            ("lines=1001", "lines"),
            ("lines=-1", "lines"),
            ("limit=5", "limit"),
        ] {
            let error = logs_asked(raw).unwrap_err();
            assert_eq!(error.body.field.as_deref(), Some(field), "{raw}");
        }
    }
}
