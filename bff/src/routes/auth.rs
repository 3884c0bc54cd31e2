//! `POST /api/auth/request-code` and `POST /api/auth/verify-code`.

use actix_web::{web, HttpRequest, HttpResponse};
use chat3_sdk::{Data, RequestCode, VerifyCode};

use crate::body::Body;
use crate::error::ApiError;
use crate::phone::Phone;
use crate::state::AppState;

fn parse_phone(raw: &str) -> Result<Phone, ApiError> {
    raw.parse()
        .map_err(|e: crate::phone::PhoneError| ApiError::Validation {
            message: e.to_string(),
            details: Some(serde_json::json!({ "phone": "not E.164" })),
        })
}

/// Sends a login code by SMS.
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn request_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Body<RequestCode>,
) -> Result<HttpResponse, ApiError> {
    let RequestCode { phone, name } = body.into_inner();
    let phone = parse_phone(&phone)?;
    state
        .limits
        .check_request(req.peer_addr().map(|a| a.ip()), &phone)?;
    let sent = state.login.request_code(&phone, name).await?;
    Ok(HttpResponse::Ok().json(Data::new(sent)))
}

/// Exchanges a code for a session.
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn verify_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Body<VerifyCode>,
) -> Result<HttpResponse, ApiError> {
    let VerifyCode { phone, code } = body.into_inner();
    let phone = parse_phone(&phone)?;
    state
        .limits
        .check_verify(req.peer_addr().map(|a| a.ip()), &phone)?;
    let session = state.login.verify_code(&phone, &code).await?;
    Ok(HttpResponse::Ok().json(Data::new(session)))
}
