//! The JSON body extractor of every write route: the body is read under the size limit (413),
//! must be `application/json` (400), and is checked against the operation's request schema in
//! `openapi/openapi.yaml` before it becomes a typed value ([`chat3_core::contract`]), so the
//! spec and the server agree on every rule of shape.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{mime, web, FromRequest, HttpMessage, HttpRequest};
use chat3_core::contract::BodyError;
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A request body checked against the contract.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T> std::ops::Deref for Body<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| chat3_core::Error::Internal("app state missing".to_owned()))?
                .clone();
            let is_json = matches!(req.mime_type(), Ok(Some(m))
                if m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
            if !is_json {
                return Err(ApiError::bad_request(
                    "invalid_content_type",
                    "expected Content-Type: application/json",
                ));
            }
            let bytes = read_limited(&req, &mut payload, state.body_limit).await?;
            let template = req.match_pattern().unwrap_or_default();
            state
                .contract
                .parse(req.method().as_str(), &template, &bytes)
                .map(Body)
                .map_err(|e| match e {
                    BodyError::Malformed(m) => ApiError::bad_request("invalid_json", m),
                    BodyError::Invalid { message, details } => {
                        ApiError::Domain(chat3_core::Error::Invalid {
                            code: "validation_error",
                            message,
                            details: Some(details),
                        })
                    }
                })
        })
    }
}

/// The whole body, or a JSON 413 past `limit` bytes (by `Content-Length` or as it streams).
pub async fn read_limited(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
