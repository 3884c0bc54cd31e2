//! The route table. Each resource answers unknown methods with a JSON 405 and the app answers
//! unknown paths with a JSON 404; body and query errors use the same JSON shape.

mod auth;
mod health;
mod ws;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::state::AppState;

use crate::error::{method_not_allowed, not_found, query_error};

/// Every (method, path) served, in the order of `openapi/bff.yaml` (405 answers list the
/// methods of a path from here).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/api-docs/openapi.yaml"),
    ("POST", "/api/auth/request-code"),
    ("POST", "/api/auth/verify-code"),
    ("GET", "/ws"),
];

/// Refuses a query parameter the operation does not document in `openapi/bff.yaml` (400
/// `validation_error`) before the handler runs.
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
                return Err(crate::error::ApiError::validation(message).into());
            }
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Largest JSON body accepted.
pub const JSON_LIMIT: usize = 16 * 1024;

/// Registers every route, in the order of the spec.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::default().limit(JSON_LIMIT))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .service(
            web::resource("/health")
                .route(web::get().to(health::health))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/ready")
                .route(web::get().to(health::ready))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/api-docs/openapi.yaml")
                .route(web::get().to(health::openapi))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/api/auth/request-code")
                .route(web::post().to(auth::request_code))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/api/auth/verify-code")
                .route(web::post().to(auth::verify_code))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/ws")
                .route(web::get().to(ws::connect))
                .default_service(web::to(method_not_allowed)),
        )
        .default_service(web::to(not_found));
}
