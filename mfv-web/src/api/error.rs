//! An API error: the HTTP status and the body every error has (`kind`, `message`, `field`).

use warp::http::StatusCode;
use warp::reply::Response;

use crate::reply::{ErrorBody, error_response};

/// A refused or failed request, as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
    /// For a refusal that passes by itself: the seconds after which the request may succeed
    /// (`Retry-After`).
    pub retry_after_secs: Option<u32>,
}

impl ApiError {
    /// An error of `status` and `kind`, saying `message`.
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody::new(kind, message),
            retry_after_secs: None,
        }
    }

    /// The same error, about `field` of the request.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.body = self.body.with_field(field);
        self
    }

    /// `400 invalid_request` about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).with_field(field)
    }

    /// The same error, listing every problem of the request (an invalid VM spec's).
    pub fn with_errors(mut self, errors: Vec<mfv_api::ConfigIssue>) -> ApiError {
        self.body.errors = errors;
        self
    }

    /// `404 not_found`: what the request names does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// `409 conflict`: the request contradicts the current state.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// `401 unauthenticated`: the route needs a signed-in caller.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// `503 unavailable`: something the request needs does not answer.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The same error, saying the request may succeed after `seconds`.
    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after_secs = Some(seconds);
        self
    }

    /// The response.
    pub fn into_response(self) -> Response {
        let mut response = error_response(self.status, &self.body);
        if let Some(seconds) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(warp::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<&mfv_api::ApiError> for ApiError {
    /// The host daemon's error, with the status its kind stands for.
    fn from(error: &mfv_api::ApiError) -> ApiError {
        ApiError {
            status: crate::request::status_of(error.kind),
            body: ErrorBody::from(error),
            retry_after_secs: None,
        }
    }
}

impl From<ApiError> for (StatusCode, ErrorBody) {
    /// The error as config mode's handlers answer it.
    fn from(error: ApiError) -> (StatusCode, ErrorBody) {
        (error.status, error.body)
    }
}
