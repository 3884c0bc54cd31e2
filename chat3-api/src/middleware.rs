//! Middleware around every route: the request deadline (503 instead of a hung request), the
//! `X-RateLimit-*` headers, unknown query parameters refused (400 `invalid_query`), and the last line of the error contract: any error response that is
//! not JSON yet (a framework error no handler saw) is rewritten into the JSON error shape.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use chat3_sdk::ErrorBody;

use crate::error::ApiError;
use crate::rate_limit::RateInfo;
use crate::state::AppState;

/// Answers 503 `request_timeout` when the handler has not answered within the configured
/// deadline (a store that hangs instead of failing). The handler is dropped: a transaction it
/// had not committed is aborted; one whose commit was in flight may still land, which is why
/// clients retry writes with `X-Idempotency-Key` or `clientMessageId`.
pub async fn deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.request_timeout)
        .unwrap_or(Duration::from_secs(10));
    // The request cannot be cloned before routing (the router mutates it): the answer leaves as
    // an error, rendered by `ApiError` as JSON.
    let path = req.path().to_owned();
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(res) => Ok(res?.map_into_boxed_body()),
        Err(_) => {
            tracing::warn!(%path, ?limit, "request deadline exceeded");
            Err(ApiError::Unavailable {
                code: "request_timeout",
                message: format!(
                    "the request did not complete within {} ms; retry later",
                    limit.as_millis()
                ),
            }
            .into())
        }
    }
}

/// Refuses a query parameter the operation does not document (400 `invalid_query`) before the
/// handler runs: a misspelt `filter` or a Chat3 parameter we do not have must not silently
/// return unfiltered data. The documented parameters come from the spec the server serves.
pub async fn known_query(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !req.query_string().is_empty() {
        if let (Some(state), Some(template)) =
            (req.app_data::<web::Data<AppState>>(), req.match_pattern())
        {
            let checked =
                state
                    .contract
                    .check_query(req.method().as_str(), &template, req.query_string());
            if let Err(message) = checked {
                return Err(ApiError::bad_request("invalid_query", message).into());
            }
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Adds `X-RateLimit-Limit` / `X-RateLimit-Remaining` to authenticated responses.
pub async fn rate_limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let info = res.request().extensions().get::<RateInfo>().copied();
    if let Some(info) = info {
        let h = res.headers_mut();
        h.insert(
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderValue::from(info.limit),
        );
        h.insert(
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderValue::from(info.remaining),
        );
    }
    Ok(res)
}

/// Rewrites error responses that are not JSON (errors raised by the framework outside our
/// handlers and extractors) into `{error, message, code}`, keeping status and headers.
pub async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        // An error no service turned into a response yet: make sure it renders as JSON.
        Err(e) => {
            let resp = e.error_response();
            if is_json(resp.headers()) {
                return Err(e);
            }
            let json = json_error_response(resp.status(), resp.headers());
            return Err(actix_web::error::InternalError::from_response(e, json).into());
        }
    };
    let status = res.status();
    if status.as_u16() < 400 || is_json(res.headers()) {
        return Ok(res);
    }
    let (http_req, res) = res.into_parts();
    tracing::debug!(%status, "framework error rewritten as JSON");
    Ok(ServiceResponse::new(
        http_req,
        json_error_response(status, res.headers()),
    ))
}

fn is_json(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The JSON error of `status`, keeping the other headers of the response it replaces.
fn json_error_response(status: StatusCode, headers: &header::HeaderMap) -> HttpResponse {
    let mut out = HttpResponse::build(status);
    for (name, value) in headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.append_header((name.clone(), value.clone()));
        }
    }
    let body = ErrorBody {
        error: status.canonical_reason().unwrap_or("Error").to_owned(),
        message: format!(
            "the request could not be processed ({})",
            status.canonical_reason().unwrap_or("error").to_lowercase()
        ),
        code: framework_code(status).to_owned(),
        details: None,
    };
    out.json(body)
}

/// The stable code of a framework error by status (the ones our own errors use where they
/// overlap).
fn framework_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        404 => "route_not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "invalid_content_type",
        431 => "headers_too_large",
        503 => "unavailable",
        s if s >= 500 => "internal_error",
        _ => "bad_request",
    }
}
