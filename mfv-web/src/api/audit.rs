//! The audit log: who did what, from which address, newest first, a page at a time
//! (`limit`, and `before` the last id seen), filtered by user (about them or by them), by
//! event and by time (`since` and `until`, RFC 3339, both inclusive).

use mfv_auth::{AuditEvent, Permission, Timestamp, Username};
use schemars::JsonSchema;
use serde::Serialize;
use warp::http::{Method, StatusCode};

use super::ApiError;
use super::accounts::AuditQuery;
use super::doc::{Answer, schema};
use super::query::{Param, ParamKind, Query};
use super::table::{Access, Call, HandlerFuture, Route};
use crate::reply::json_response;

/// Entries answered when the query names no `limit`.
pub const DEFAULT_LIMIT: u32 = 50;

/// The most entries one answer holds.
pub const MAX_LIMIT: u32 = 1000;

/// The parameters the route takes.
const PARAMETERS: &[Param] = &[
    Param {
        name: "limit",
        kind: ParamKind::Number {
            min: 1,
            max: MAX_LIMIT,
            default: DEFAULT_LIMIT,
        },
        about: "at most this many entries, newest first",
    },
    Param {
        name: "before",
        kind: ParamKind::Integer,
        about: "only entries with an id below this one: the previous answer's next_before",
    },
    Param {
        name: "user",
        kind: ParamKind::Text,
        about: "only entries about this user or done by them (a user name)",
    },
    Param {
        name: "event",
        kind: ParamKind::Typed(schema::<AuditEvent>),
        about: "only entries of this event",
    },
    Param {
        name: "since",
        kind: ParamKind::DateTime,
        about: "only entries written at this time or later (RFC 3339)",
    },
    Param {
        name: "until",
        kind: ParamKind::DateTime,
        about: "only entries written at this time or earlier (RFC 3339)",
    },
];

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: Method::GET,
        path: "/api/v1/audit",
        access: Access::Allowed(Permission::ViewAuditLog),
        max_body: 0,
        query: PARAMETERS,
        request: None,
        answer: Answer::Ok(schema::<AuditPage>),
        operation: "auditLog",
        summary: "The audit log, newest first: ?limit=N (1-1000, default 50), ?before=ID (the \
                  next page), ?user=NAME (about or by them), ?event=KIND, ?since=TIME and ?until=TIME \
                  (RFC 3339)",
        handler: audit_log,
    }]
}

/// The query of `GET /api/v1/audit`, or a refusal naming the parameter at fault.
fn audit_query(query: &Query) -> Result<AuditQuery, ApiError> {
    let before = query.integer("before")?;
    let user = query
        .get("user")
        .map(|value| {
            Username::new(value)
                .map(|user| user.as_str().to_owned())
                .map_err(|error| ApiError::invalid("user", error.to_string()))
        })
        .transpose()?;
    let event = query
        .get("event")
        .map(|value| {
            AuditEvent::ALL
                .into_iter()
                .find(|event| event.as_str() == value)
                .ok_or_else(|| {
                    let known: Vec<&str> = AuditEvent::ALL
                        .into_iter()
                        .map(AuditEvent::as_str)
                        .collect();
                    ApiError::invalid(
                        "event",
                        format!(
                            "{value:?} is not an event; expected one of: {}",
                            known.join(", ")
                        ),
                    )
                })
        })
        .transpose()?;
    let since = query.date_time("since")?;
    let until = query.date_time("until")?;
    if let (Some(since), Some(until)) = (since, until) {
        if until < since {
            return Err(ApiError::invalid(
                "until",
                "the range ends before it starts: until must not be before since",
            ));
        }
    }
    Ok(AuditQuery {
        limit: query.number("limit")?,
        before,
        user,
        event,
        since: since.map(Timestamp),
        until: until.map(Timestamp),
    })
}

/// The answer: the entries, and the `before` of the next page when there may be one.
#[derive(Debug, Serialize, JsonSchema)]
struct AuditPage {
    entries: Vec<mfv_auth::AuditEntry>,
    next_before: Option<i64>,
}

fn audit_log(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let query = audit_query(&call.query)?;
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let entries = call.state.authority.audit_log(query).await?;
        let next_before = (entries.len() == limit)
            .then(|| entries.last().map(|entry| entry.id))
            .flatten();
        Ok(json_response(
            StatusCode::OK,
            &AuditPage {
                entries,
                next_before,
            },
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> Result<AuditQuery, ApiError> {
        audit_query(&Query::parse(raw, PARAMETERS)?)
    }

    #[test]
    fn the_query_is_read_into_its_parameters() {
        assert_eq!(
            read("limit=2&before=40&user=ada&event=role_changed").unwrap(),
            AuditQuery {
                limit: 2,
                before: Some(40),
                user: Some("ada".to_owned()),
                event: Some(AuditEvent::RoleChanged),
                since: None,
                until: None,
            }
        );
        let range = read("since=2026-11-26T04:53:00Z&until=2026-11-26T05:53:00%2B01:00").unwrap();
        assert_eq!(
            (range.since, range.until),
            (
                Some(Timestamp(1_795_668_780)),
                Some(Timestamp(1_795_668_780))
            )
        );
        assert_eq!(read("").unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn bad_parameters_are_refused_by_name() {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            ("before=x", "before"),
            ("user=Ada", "user"),
            ("event=coffee", "event"),
            ("sort=id", "sort"),
            ("since=yesterday", "since"),
            ("since=1795668780", "since"),
            ("until=2026-02-30T00:00:00Z", "until"),
            (
                "since=2026-11-26T04:53:01Z&until=2026-11-26T04:53:00Z",
                "until",
            ),
        ] {
            let refusal = read(query).unwrap_err();
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(refusal.body.field.as_deref(), Some(field), "{query}");
        }
    }
}
