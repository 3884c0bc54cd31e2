//! The JSON body extractor of the BFF's routes: `application/json` only, at most
//! [`crate::routes::JSON_LIMIT`] bytes, checked against the operation's request schema in
//! `openapi/bff.yaml` before it becomes a typed value ([`chat3_core::contract`]).

use actix_web::dev::Payload;
use actix_web::{mime, web, FromRequest, HttpMessage, HttpRequest};
use chat3_core::contract::BodyError;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A request body checked against the contract.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T> Body<T> {
    /// The typed body.
    pub fn into_inner(self) -> T {
        self.0
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
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("app state missing")))?
                .clone();
            let is_json = matches!(req.mime_type(), Ok(Some(m))
                if m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            // The size limit is the `PayloadConfig` of the routes.
            let bytes = web::Bytes::from_request(&req, &mut payload)
                .await
                .map_err(|e| match e.as_response_error().status_code().as_u16() {
                    413 => ApiError::PayloadTooLarge,
                    _ => ApiError::InvalidJson(format!("The body could not be read: {e}")),
                })?;
            let template = req.match_pattern().unwrap_or_default();
            state
                .contract
                .parse(req.method().as_str(), &template, &bytes)
                .map(Body)
                .map_err(|e| match e {
                    BodyError::Malformed(m) => {
                        ApiError::InvalidJson(format!("The body is not valid JSON: {m}"))
                    }
                    BodyError::Invalid { message, details } => ApiError::Validation {
                        message,
                        details: Some(details),
                    },
                })
        })
    }
}
