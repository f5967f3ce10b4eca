//! The host itself: its status, hardware, services, logs and power, all through the host
//! daemon, which reads what PID 1 publishes and asks PID 1 for restarts and shutdowns.
//!
//! Rebooting or powering off takes the host's name in the body (`{"confirm": "vmhost1"}`),
//! as a person types it in a confirmation dialog: a script or a click aimed at another host
//! is refused instead of taking every VM on this one down. The name is the kernel's (`uname
//! -n`, set from the configuration at boot), which `GET /api/v1/host` shows.

use mfv_api::{
    HostStatus, LogSource, MAX_LOG_LINES, Request as DaemonRequest, Response as DaemonResponse,
};
use mfv_auth::Permission;
use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};

use super::ApiError;
use super::links::ask_host;
use super::query::Query;
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use crate::daemon::{ANSWER_TIMEOUT, RESTART_TIMEOUT};
use crate::reply::json_response;

/// The log lines answered when the query does not say how many.
const DEFAULT_LOG_LINES: u32 = 100;

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::GET,
            path: "/api/v1/host",
            access: Access::Allowed(Permission::ViewInventory),
            max_body: 0,
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
            operation: "host_inventory",
            summary: "The hardware inventory: CPU, memory, network cards, disks, USB devices",
            handler: inventory,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/host/services",
            access: Access::Allowed(Permission::ViewInventory),
            max_body: 0,
            operation: "list_services",
            summary: "The supervised services: state, process, restarts, last exit",
            handler: services,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/host/services/{name}/restart",
            access: Access::Allowed(Permission::ManageHost),
            max_body: 0,
            operation: "restart_service",
            summary: "Restart a service; answers its state with the new process",
            handler: restart_service,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/host/logs",
            access: Access::Allowed(Permission::ManageHost),
            max_body: 0,
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
            operation: "reboot_host",
            summary: "Reboot the host; the body names it: {\"confirm\": \"<host name>\"}",
            handler: reboot,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/host/poweroff",
            access: Access::Allowed(Permission::ManageHost),
            max_body: SMALL_BODY,
            operation: "power_off_host",
            summary: "Power the host off; the body names it: {\"confirm\": \"<host name>\"}",
            handler: power_off,
        },
    ]
}

/// What `GET /api/v1/host` answers: the daemon's status and the host's name.
#[derive(Debug, Serialize)]
struct HostAnswer {
    /// The host's name, which a reboot or power-off must repeat.
    hostname: String,
    #[serde(flatten)]
    status: HostStatus,
}

/// What a reboot or power-off takes.
#[derive(Debug, Deserialize)]
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
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "services": services }),
        ))
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
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "service": service }),
        ))
    })
}

/// Whose log lines the query asks for, and how many.
fn log_request(raw: &str) -> Result<(LogSource, u32), ApiError> {
    let query = Query::parse(raw, &["source", "service", "lines"])?;
    let limit = query
        .number("lines", 1, MAX_LOG_LINES)?
        .unwrap_or(DEFAULT_LOG_LINES);
    let service = query.get("service");
    let source = match (query.choice("source", &["boot", "service"])?, service) {
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
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "lines": lines }),
        ))
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
        &serde_json::json!({ "hostname": hostname, "state": doing }),
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

    #[test]
    fn the_log_query_says_whose_lines_and_how_many() {
        let service = |name: &str| LogSource::Service {
            name: name.to_owned(),
        };
        assert_eq!(log_request("").unwrap(), (LogSource::Boot, 100));
        assert_eq!(
            log_request("source=boot&lines=5").unwrap(),
            (LogSource::Boot, 5)
        );
        assert_eq!(
            log_request("service=libvirtd").unwrap(),
            (service("libvirtd"), 100)
        );
        assert_eq!(
            log_request("source=service&service=mfv-web&lines=1000").unwrap(),
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
            let error = log_request(raw).unwrap_err();
            assert_eq!(error.body.field.as_deref(), Some(field), "{raw}");
        }
    }
}
