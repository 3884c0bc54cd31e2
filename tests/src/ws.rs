//! End users through the BFF in tests: phone login with the SMS outbox and WebSocket frames.

use std::time::Duration;

use chat3_sdk::client::Client;
use chat3_sdk::{Session, VerifyCode, WsFrame};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::Stack;

/// A client WebSocket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Logs `phone` in through the BFF (request-code, the code from the outbox, verify-code).
pub async fn login(stack: &Stack, phone: &str) -> Session {
    let bff = Client::anonymous(&stack.bff_url);
    bff.request_code(&chat3_sdk::RequestCode {
        phone: phone.to_owned(),
        name: Some("Ann".to_owned()),
    })
    .await
    .unwrap_or_else(|e| panic!("request-code: {e}"));
    let code = stack
        .sms
        .last_code(phone)
        .unwrap_or_else(|| panic!("no code sent"));
    bff.verify_code(&VerifyCode {
        phone: phone.to_owned(),
        code,
    })
    .await
    .unwrap_or_else(|e| panic!("verify-code: {e}"))
}

/// Opens `/ws` with `token`, resuming after `since` when given.
pub async fn connect(stack: &Stack, token: &str, since: Option<u64>) -> Ws {
    let mut url = format!(
        "{}/ws?token={token}",
        stack.bff_url.replace("http://", "ws://")
    );
    if let Some(s) = since {
        url.push_str(&format!("&since={s}"));
    }
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("ws: {e}"));
    ws
}

/// The next text frame; `None` after `timeout` of silence or when the socket closed.
pub async fn next_frame(ws: &mut Ws, timeout: Duration) -> Option<WsFrame> {
    loop {
        let msg = tokio::time::timeout(timeout, ws.next()).await.ok()??.ok()?;
        if let WsMessage::Text(t) = msg {
            return serde_json::from_str(t.as_str()).ok();
        }
    }
}

/// The next frame with event `event` and update seq `seq` (skipping others), or a panic naming
/// what did not arrive within `timeout`.
pub async fn frame_with(ws: &mut Ws, event: &str, seq: u64, timeout: Duration) -> WsFrame {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_frame(ws, left).await {
            Some(f) if f.event == event && f.seq == Some(seq) => return f,
            Some(_) => continue,
            None => panic!("no {event} frame with seq {seq} within {timeout:?}"),
        }
    }
}

/// Every frame until `quiet` passes without one.
pub async fn frames_until_quiet(ws: &mut Ws, quiet: Duration) -> Vec<WsFrame> {
    let mut out = Vec::new();
    while let Some(f) = next_frame(ws, quiet).await {
        out.push(f);
    }
    out
}

/// The next frame named `event` whatever its seq (skipping others), or a panic naming what did
/// not arrive within `timeout`.
pub async fn frame_named(ws: &mut Ws, event: &str, timeout: Duration) -> WsFrame {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_frame(ws, left).await {
            Some(f) if f.event == event => return f,
            Some(_) => continue,
            None => panic!("no {event} frame within {timeout:?}"),
        }
    }
}
