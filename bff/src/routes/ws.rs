//! `GET /ws?token=JWT[&since=SEQ]`: authenticates (a JSON 401 before any upgrade), subscribes
//! the user live, upgrades, and hands the socket to [`crate::socket::run`].

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::error::ApiError;
use crate::hub::HubError;
use crate::socket::{self, Connection};
use crate::state::AppState;

/// Query of `/ws`.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Session token (or `Authorization: Bearer`).
    token: Option<String>,
    /// Resume after this update seq.
    since: Option<u64>,
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_owned())
}

/// Upgrades an authenticated request to a WebSocket.
#[tracing::instrument(skip_all, fields(user_id), err(level = "info"))]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<WsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let WsQuery { token, since } = query.into_inner();
    if since.is_some_and(|s| s > i64::MAX as u64) {
        return Err(ApiError::validation(format!(
            "since must be between 0 and {}",
            i64::MAX
        )));
    }
    let token = token
        .or_else(|| bearer(&req))
        .ok_or(ApiError::InvalidToken)?;
    let user = state
        .login
        .tokens()
        .verify(&token)
        .map_err(|_| ApiError::InvalidToken)?;
    tracing::Span::current().record("user_id", tracing::field::display(&user));
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::validation(format!("WebSocket handshake failed: {e}")))?;
    let sub = state
        .hub
        .subscribe(&user, state.ws.buffer)
        .await
        .map_err(|e| match e {
            HubError::NotConnected => ApiError::Unavailable {
                code: "broker_unavailable",
                message: "Live updates are unavailable; retry shortly.".to_owned(),
            },
            HubError::Bind(e) => ApiError::internal(e),
        })?;
    let conn = Connection {
        user,
        since,
        sub,
        source: state.source.clone(),
        settings: state.ws,
        shutdown: state.shutdown.clone(),
    };
    actix_web::rt::spawn(socket::run(conn, session, stream));
    Ok(response)
}
