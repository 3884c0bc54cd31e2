//! `GET /health` (the process answers), `GET /ready` (MongoDB, RabbitMQ and the updates
//! consumer are up; 503 otherwise) and `GET /api-docs/openapi.yaml`.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chat3_sdk::Readiness;
use serde_json::json;

use crate::state::AppState;

/// Liveness.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness of the dependencies.
#[tracing::instrument(skip_all)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let mut checks = BTreeMap::new();
    let mongo = match state.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "mongodb not ready");
            "unavailable".to_owned()
        }
    };
    checks.insert("mongodb".to_owned(), mongo);
    let amqp = match state.bus.check().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "rabbitmq not ready");
            "unavailable".to_owned()
        }
    };
    checks.insert("rabbitmq".to_owned(), amqp);
    let consumer = if state.hub.is_connected().await {
        "ok"
    } else {
        "unavailable"
    };
    checks.insert("updatesConsumer".to_owned(), consumer.to_owned());
    let ok = checks.values().all(|v| v == "ok");
    let body = Readiness {
        status: if ok { "ok" } else { "unavailable" }.to_owned(),
        checks,
    };
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /api-docs/openapi.yaml`: the contract this BFF implements.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(crate::OPENAPI_YAML)
}
