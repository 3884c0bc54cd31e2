//! Liveness, readiness and the API description.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use chat3_sdk::Readiness;
use serde_json::json;

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// `GET /health`: the process is up.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /ready`: MongoDB and RabbitMQ reachable (200), else 503 with what failed.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let mongo = match tokio::time::timeout(CHECK_TIMEOUT, state.ctx.store.ping()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: MongoDB unreachable");
            "unreachable".to_owned()
        }
        Err(_) => "timeout".to_owned(),
    };
    let rabbit = match tokio::time::timeout(CHECK_TIMEOUT, state.ctx.bus.check()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: RabbitMQ unreachable");
            "unreachable".to_owned()
        }
        Err(_) => "timeout".to_owned(),
    };
    let ok = mongo == "ok" && rabbit == "ok";
    let body = Readiness {
        status: if ok { "ok" } else { "unavailable" }.to_owned(),
        checks: BTreeMap::from([
            ("mongodb".to_owned(), mongo),
            ("rabbitmq".to_owned(), rabbit),
        ]),
    };
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /api-docs/openapi.yaml`: the contract this server implements.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(crate::OPENAPI_YAML)
}
