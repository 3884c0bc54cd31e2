//! The `X-Idempotency-Key` middleware: on POST/PUT/PATCH/DELETE with the header, authenticate
//! (the caller is kept for the handler, so auth and rate limit run once), claim the key for the
//! tenant, run the handler, store its response (unless it failed on our side) and replay it to
//! retries with `Idempotency-Replayed: true`. The handler runs holding the claim
//! ([`idempotency::with_claim`]) so that a transactional write records its reply atomically with
//! its commit; a claim left pending by a crash expires after its lease and a retry takes it over.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpResponse};
use chat3_core::idempotency::{self, Claim};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Header carrying the key.
pub const HEADER: &str = "X-Idempotency-Key";
const MAX_KEY_LEN: usize = 255;

fn mutating(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The middleware (see the module docs).
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = req
        .headers()
        .get(HEADER)
        .map(|v| v.to_str().map(str::to_owned));
    let key = match key {
        Some(k) if mutating(req.method()) => k,
        _ => return Ok(next.call(req).await?.map_into_boxed_body()),
    };
    let key = match key {
        Ok(k)
            if !k.is_empty()
                && k.len() <= MAX_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            k
        }
        _ => {
            let e = ApiError::bad_request(
                "invalid_idempotency_key",
                format!("{HEADER} must be 1-{MAX_KEY_LEN} visible ASCII characters"),
            );
            return Ok(req.error_response(e));
        }
    };
    let caller = match Caller::from_request(req.request(), &mut Payload::None).await {
        Ok(c) => c,
        Err(e) => return Ok(req.error_response(e)),
    };
    req.extensions_mut().insert(caller.clone());
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // Read under the same limit as the JSON extractor, so an oversized body is the same 413.
    let (http_req, payload) = req.parts_mut();
    let read = crate::body::read_limited(http_req, payload, state.body_limit).await;
    let body = match read {
        Ok(b) => b,
        Err(e) => return Ok(req.error_response(e)),
    };
    req.set_payload(Payload::from(body.clone()));

    let scope = caller
        .tenant()
        .map(|t| t.as_str().to_owned())
        .unwrap_or_else(|| idempotency::OPERATOR_SCOPE.to_owned());
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    let hash = idempotency::body_hash(&body);
    let store = &state.ctx.store;
    let claimed = match idempotency::claim(
        store,
        &scope,
        &key,
        &method,
        &path,
        &hash,
        state.idempotency_lease,
    )
    .await
    {
        Err(e) => return Ok(req.error_response(ApiError::from(e))),
        Ok(Claim::Mismatch) => {
            let e = ApiError::Unprocessable {
                code: "idempotency_key_reused",
                message: format!("{HEADER} '{key}' was used with a different request body"),
            };
            return Ok(req.error_response(e));
        }
        Ok(Claim::InFlight) => {
            let e = chat3_core::Error::conflict(
                "idempotency_key_in_use",
                format!("a request with {HEADER} '{key}' is still running; retry shortly"),
            );
            return Ok(req.error_response(ApiError::from(e)));
        }
        Ok(Claim::Replay { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let resp = HttpResponse::build(status)
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .insert_header(("Idempotency-Replayed", "true"))
                .body(body);
            return Ok(req.into_response(resp));
        }
        Ok(Claim::New(claimed)) => claimed,
    };

    let res = idempotency::with_claim(claimed.clone(), next.call(req)).await?;
    let status = res.status();
    let (http_req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = to_bytes(body)
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.into().to_string()))?;
    let outcome = if status.is_server_error() {
        idempotency::release(store, &claimed).await
    } else {
        let text = String::from_utf8_lossy(&bytes);
        idempotency::complete(store, &claimed, status.as_u16(), &text).await
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "could not record the idempotent response");
    }
    let res = head.set_body(BoxBody::new(bytes));
    Ok(ServiceResponse::new(http_req, res))
}
