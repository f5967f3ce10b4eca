//! Requests no route takes, answered in the API's error shape: an unknown path, a method the
//! path does not take, a body too large, missing its length, or not what the route reads.

use std::convert::Infallible;

use warp::Rejection;
use warp::http::StatusCode;
use warp::reject::{LengthRequired, MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType};
use warp::reply::Response;

use crate::reply::{ErrorBody, error_response};

/// The answer to a request the routes refused.
pub async fn answer(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, error) = if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            ErrorBody::new("not_found", "nothing is served at this path"),
        )
    } else if rejection.find::<PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorBody::new(
                "too_large",
                format!(
                    "the request body is larger than this path takes ({} KiB at most)",
                    crate::config_mode::MAX_BODY / 1024
                ),
            ),
        )
    } else if rejection.find::<LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            ErrorBody::new(
                "length_required",
                "send the body with a Content-Length header",
            ),
        )
    } else if rejection.find::<UnsupportedMediaType>().is_some() {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorBody::new(
                "unsupported_media_type",
                "this path takes another content type",
            ),
        )
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorBody::new("method_not_allowed", "this path does not take this method"),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            ErrorBody::new(
                "invalid_request",
                format!("the request was refused: {rejection:?}"),
            ),
        )
    };
    Ok(error_response(status, &error))
}
