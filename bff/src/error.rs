//! The BFF's one error enum: a stable snake_case code and an HTTP status per variant, rendered
//! as the shared `ErrorBody`. Framework errors (bad JSON, bad query, unknown route, wrong method)
//! are converted here so every error on the wire has the same shape; causes stay in the logs.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{error, HttpRequest, HttpResponse, ResponseError};
use chat3_sdk::ErrorBody;
use serde_json::Value;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field breaks a rule (bad phone, missing field, ...).
    #[error("{message}")]
    Validation {
        /// Human text.
        message: String,
        /// Per-field problems.
        details: Option<Value>,
    },
    /// The body is not JSON.
    #[error("{0}")]
    InvalidJson(String),
    /// The body is not `application/json`.
    #[error("Content-Type must be application/json.")]
    UnsupportedMediaType,
    /// The body is larger than allowed.
    #[error("The request body is too large.")]
    PayloadTooLarge,
    /// The login code is wrong or none was requested.
    #[error("The code is invalid.")]
    InvalidCode,
    /// The login code has expired.
    #[error("The code has expired; request a new one.")]
    CodeExpired,
    /// Too many wrong attempts burned the code.
    #[error("Too many wrong attempts; request a new code.")]
    TooManyAttempts,
    /// The session token is missing, malformed, forged or expired.
    #[error("A valid session token is required.")]
    InvalidToken,
    /// A rate limit was hit.
    #[error("Too many requests; retry in {retry_after_secs} s.")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// No such route.
    #[error("No route for {0}.")]
    NotFound(String),
    /// The route exists, not with this method; `allowed` goes into the `Allow` header.
    #[error("Method {method} is not allowed here.")]
    MethodNotAllowed {
        /// The method asked for.
        method: String,
        /// The methods the path serves.
        allowed: Vec<&'static str>,
    },
    /// The SMS provider failed.
    #[error("The code could not be sent; try again later.")]
    SmsFailed,
    /// A dependency (storage, broker) is down.
    #[error("{message}")]
    Unavailable {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// Our fault; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A validation error without details.
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::Validation {
            message: message.into(),
            details: None,
        }
    }

    /// Wraps an internal failure (logged when rendered).
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation_error",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::InvalidCode => "invalid_code",
            ApiError::CodeExpired => "code_expired",
            ApiError::TooManyAttempts => "too_many_attempts",
            ApiError::InvalidToken => "invalid_token",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::SmsFailed => "sms_failed",
            ApiError::Unavailable { code, .. } => code,
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The wire body.
    pub fn body(&self) -> ErrorBody {
        let status = self.status_code();
        ErrorBody {
            error: status.canonical_reason().unwrap_or("Error").to_owned(),
            message: self.to_string(),
            code: self.code().to_owned(),
            details: match self {
                ApiError::Validation { details, .. } => details.clone(),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } | ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidCode
            | ApiError::CodeExpired
            | ApiError::TooManyAttempts
            | ApiError::InvalidToken => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::SmsFailed => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = ?cause, "internal error");
        }
        let mut resp = HttpResponse::build(self.status_code()).json(self.body());
        let retry_after = match self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Unavailable { .. } => Some(RETRY_AFTER_UNAVAILABLE),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::MethodNotAllowed { allowed, .. } = self {
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
        }
        resp
    }
}

/// `Retry-After` (seconds) of 503 answers.
const RETRY_AFTER_UNAVAILABLE: u64 = 2;

impl From<mongodb::error::Error> for ApiError {
    fn from(e: mongodb::error::Error) -> Self {
        if chat3_core::error::store_unavailable(&e) {
            tracing::warn!(error = %e, "store unavailable");
            return ApiError::Unavailable {
                code: "store_unavailable",
                message: "The store is unavailable; retry shortly.".to_owned(),
            };
        }
        ApiError::internal(e)
    }
}

/// Maps actix's query-string errors onto [`ApiError`] (installed through `QueryConfig`).
pub fn query_error(err: error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::validation(format!("Invalid query string: {err}")).into()
}

/// The app's default service: every unknown route is a JSON 404.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::NotFound(req.path().to_owned()).error_response()
}

/// A resource's default service: a known path with the wrong method is a JSON 405 with
/// `Allow` naming the methods it has (from the route table).
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let template = req.match_pattern().unwrap_or_default();
    ApiError::MethodNotAllowed {
        method: req.method().to_string(),
        allowed: crate::routes::ROUTES
            .iter()
            .filter(|(_, t)| *t == template)
            .map(|(m, _)| *m)
            .collect(),
    }
    .error_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_reason_code_and_message() {
        let b = ApiError::InvalidCode.body();
        assert_eq!(b.error, "Unauthorized");
        assert_eq!(b.code, "invalid_code");
        assert_eq!(b.message, "The code is invalid.");
        let r = ApiError::RateLimited {
            retry_after_secs: 7,
        };
        assert_eq!(r.status_code(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            r.error_response().headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(7u64))
        );
    }

    #[test]
    fn internal_errors_do_not_leak_causes() {
        let b = ApiError::internal(anyhow::anyhow!("db password wrong")).body();
        assert_eq!(b.message, "internal error");
        assert_eq!(b.code, "internal_error");
    }
}
