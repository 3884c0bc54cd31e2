//! The API error: one enum, a status from an exhaustive match, a stable snake_case code per case,
//! and the JSON body `{error, message, code, details?}`. Causes of internal errors go to the log,
//! never to the client. Framework errors (bad JSON, bad query, unknown route, 405, 413) are
//! turned into the same shape here.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use chat3_sdk::ErrorBody;
use serde_json::Value;

/// `Retry-After` (seconds) of 503 answers: about how long the store takes to fail over or
/// come back from a restart, short enough that clients do not wait for nothing.
pub const RETRY_AFTER_UNAVAILABLE: u64 = 2;

/// An error answered to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A domain operation failed.
    #[error(transparent)]
    Domain(#[from] chat3_core::Error),
    /// Malformed request (JSON, query, path).
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// No or bad credentials.
    #[error("{message}")]
    Unauthorized {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// Credentials valid, permission missing.
    #[error("{message}")]
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// Well-formed, but cannot be processed (idempotency key reused with another body).
    #[error("{message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// No such route.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The route exists, the method does not; the methods it has go into `Allow`.
    #[error("method {method} not allowed here; allowed: {}", allowed.join(", "))]
    MethodNotAllowed {
        /// The method asked for.
        method: String,
        /// The methods the path serves.
        allowed: Vec<&'static str>,
    },
    /// A dependency cannot serve the request now (the request took too long, ...).
    #[error("{message}")]
    Unavailable {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// Body over the limit.
    #[error("request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    /// Rate limit hit.
    #[error("rate limit exceeded")]
    RateLimited {
        /// Seconds until a request will be accepted.
        retry_after: u64,
        /// Quota (burst size).
        limit: u32,
    },
}

impl ApiError {
    /// A 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn code(&self) -> &'static str {
        use chat3_core::Error as D;
        match self {
            ApiError::Domain(d) => match d {
                D::NotFound { code, .. }
                | D::Conflict { code, .. }
                | D::Invalid { code, .. }
                | D::Forbidden { code, .. }
                | D::Unavailable { code, .. } => code,
                D::Storage(_) if d.is_unavailable() => "store_unavailable",
                D::Storage(_) | D::Internal(_) => "internal_error",
            },
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::Unavailable { code, .. } => code,
            ApiError::RouteNotFound(_) => "route_not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RateLimited { .. } => "rate_limited",
        }
    }

    fn public_message(&self) -> String {
        use chat3_core::Error as D;
        match self {
            ApiError::Domain(d @ chat3_core::Error::Unavailable { .. }) => d.to_string(),
            ApiError::Domain(d) if d.is_unavailable() => {
                "the store is unavailable; retry after the Retry-After delay".to_owned()
            }
            ApiError::Domain(D::Storage(_) | D::Internal(_)) => {
                "internal error; it has been logged".to_owned()
            }
            other => other.to_string(),
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            ApiError::Domain(
                chat3_core::Error::Invalid { details, .. }
                | chat3_core::Error::Conflict { details, .. },
            ) => details.clone(),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        use chat3_core::Error as D;
        match self {
            ApiError::Domain(d) => match d {
                D::NotFound { .. } => StatusCode::NOT_FOUND,
                D::Conflict { .. } => StatusCode::CONFLICT,
                D::Invalid { .. } => StatusCode::BAD_REQUEST,
                D::Forbidden { .. } => StatusCode::FORBIDDEN,
                D::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                D::Storage(_) if d.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
                D::Storage(_) | D::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: status.canonical_reason().unwrap_or("Error").to_owned(),
            message: self.public_message(),
            code: self.code().to_owned(),
            details: self.details(),
        };
        let mut resp = HttpResponse::build(status);
        match self {
            ApiError::RateLimited { retry_after, limit } => {
                resp.insert_header((header::RETRY_AFTER, retry_after.to_string()));
                resp.insert_header(("X-RateLimit-Limit", limit.to_string()));
                resp.insert_header(("X-RateLimit-Remaining", "0"));
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                resp.insert_header((header::ALLOW, allowed.join(", ")));
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                resp.insert_header((header::RETRY_AFTER, RETRY_AFTER_UNAVAILABLE.to_string()));
            }
            _ => {}
        }
        resp.json(body)
    }
}

/// Query string errors: 400.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("invalid_query", err.to_string()).into()
}

/// Path parameter errors (an id of the wrong shape): 400.
pub fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_path_parameter", err.to_string()).into()
}

/// Fallback for unknown routes.
pub async fn route_not_found(req: HttpRequest) -> ApiError {
    ApiError::RouteNotFound(format!("{} {}", req.method(), req.path()))
}

/// Fallback for known routes called with another method: 405 with `Allow` listing the methods
/// of the path (from the route table).
pub async fn method_not_allowed(req: HttpRequest) -> ApiError {
    let template = req.match_pattern().unwrap_or_default();
    let allowed = crate::routes::ROUTES
        .iter()
        .filter(|(_, t)| *t == template)
        .map(|(m, _)| *m)
        .collect();
    ApiError::MethodNotAllowed {
        method: req.method().to_string(),
        allowed,
    }
}

impl actix_web::Responder for ApiError {
    type Body = actix_web::body::BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}
