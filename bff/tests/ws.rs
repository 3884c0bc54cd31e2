//! The WebSocket against real SecantusDB and RabbitMQ: authentication before the upgrade, live
//! updates published on the test exchange, client frames, and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{connect, message_update, next_frame, send_frame, spawn};
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message};

async fn refused(url: String) -> (u16, serde_json::Value) {
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().clone().unwrap_or_default();
            (
                resp.status().as_u16(),
                serde_json::from_slice(&body).unwrap(),
            )
        }
        other => panic!("expected an HTTP refusal, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_with_a_bad_or_missing_token_is_refused_before_upgrade() {
    let bff = spawn("wsauth").await;
    let expected = json!({
        "error": "Unauthorized",
        "message": "A valid session token is required.",
        "code": "invalid_token"
    });
    let (status, body) = refused(format!("{}?token=not.a.jwt", bff.ws_url)).await;
    assert_eq!(status, 401);
    assert_eq!(body, expected);
    let (status, body) = refused(bff.ws_url.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(body, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_point_beyond_any_seq_is_a_json_400_before_upgrade() {
    let bff = spawn("wssince").await;
    let session = bff.login().await;
    for since in ["9223372036854775808", "18446744073709551616", "-1", "x"] {
        let (status, body) = refused(format!(
            "{}?token={}&since={since}",
            bff.ws_url, session.token
        ))
        .await;
        assert_eq!(status, 400, "since={since}");
        assert_eq!(body["code"], "validation_error", "since={since}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_update_reaches_the_users_socket_as_raw_and_mapped_frames() {
    let bff = spawn("wslive").await;
    let ann = bff.login().await;
    let bob = bff.login().await;
    let mut ws = connect(&bff, &format!("token={}", ann.token)).await;

    // Bob's update must not reach Ann's socket; Ann's must, in order.
    bff.publish(&message_update(&bff.tenant, &bob.user.user_id, 1))
        .await;
    let update = message_update(&bff.tenant, &ann.user.user_id, 7);
    bff.publish(&update).await;

    let raw = next_frame(&mut ws).await;
    assert_eq!(raw.event, "chat3:update");
    assert_eq!(raw.seq, Some(7));
    assert_eq!(raw.data, serde_json::to_value(&update).unwrap());
    let mapped = next_frame(&mut ws).await;
    assert_eq!(mapped.event, "message:new");
    assert_eq!(mapped.seq, Some(7));
    assert_eq!(mapped.data, update.data);

    // A redelivered (same seq) update is not sent twice; a newer one is.
    bff.publish(&update).await;
    bff.publish(&message_update(&bff.tenant, &ann.user.user_id, 8))
        .await;
    let next = next_frame(&mut ws).await;
    assert_eq!((next.event.as_str(), next.seq), ("chat3:update", Some(8)));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sockets_of_one_user_both_receive_and_the_binding_outlives_the_first() {
    let bff = spawn("wstwo").await;
    let ann = bff.login().await;
    let mut first = connect(&bff, &format!("token={}", ann.token)).await;
    let mut second = connect(&bff, &format!("token={}", ann.token)).await;
    bff.publish(&message_update(&bff.tenant, &ann.user.user_id, 1))
        .await;
    assert_eq!(next_frame(&mut first).await.seq, Some(1));
    assert_eq!(next_frame(&mut second).await.seq, Some(1));

    first.close(None).await.unwrap();
    drop(first);
    // Closing one socket must not unbind the user while another is open.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    bff.publish(&message_update(&bff.tenant, &ann.user.user_id, 2))
        .await;
    let f = next_frame(&mut second).await;
    let f = if f.seq == Some(1) {
        next_frame(&mut second).await
    } else {
        f
    };
    assert_eq!((f.event.as_str(), f.seq), ("chat3:update", Some(2)));
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_frames_are_answered_and_unknown_events_get_an_error_frame() {
    let bff = spawn("wsping").await;
    let ann = bff.login().await;
    let mut ws = connect(&bff, &format!("token={}", ann.token)).await;
    // A typing frame needs a dialog id: an error frame, and the socket goes on.
    send_frame(
        &mut ws,
        json!({ "event": "typing:start", "data": { "dialogId": "x" } }),
    )
    .await;
    let err = next_frame(&mut ws).await;
    assert_eq!(err.event, "error");
    assert_eq!(err.data["code"], "invalid_frame");
    send_frame(&mut ws, json!({ "event": "ping", "data": { "n": 1 } })).await;
    let pong = next_frame(&mut ws).await;
    assert_eq!(pong.event, "pong");
    assert_eq!(pong.data, json!({ "n": 1 }));
    send_frame(&mut ws, json!({ "event": "dance" })).await;
    let err = next_frame(&mut ws).await;
    assert_eq!(err.event, "error");
    assert_eq!(err.data["code"], "unknown_event");
    ws.send_text_garbage().await;
    let err = next_frame(&mut ws).await;
    assert_eq!(err.data["code"], "invalid_frame");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_closes_open_sockets_with_a_going_away_frame() {
    let mut bff = spawn("wsshutdown").await;
    let ann = bff.login().await;
    let mut ws = connect(&bff, &format!("token={}", ann.token)).await;
    bff.shutdown.cancel();
    let close = loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("close within 10 s");
        match msg {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close reason");
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "server shutting down");
    bff.stop().await.expect("clean exit");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_answers_pings_is_closed_after_the_timeout() {
    let mut config = common::test_config("wsheartbeat");
    config.ws_heartbeat_secs = 1;
    config.ws_client_timeout_secs = 2;
    let bff = common::spawn_with(config).await;
    let ann = bff.login().await;
    let mut ws = connect(&bff, &format!("token={}", ann.token)).await;
    // Not reading means not answering pings (tungstenite answers them while reading).
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let close = loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("close within 10 s");
        match msg {
            Some(Ok(Message::Close(frame))) => break frame.expect("a close reason"),
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("expected pings then a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "heartbeat timeout");
}

/// Sending a frame that is not JSON.
trait Garbage {
    async fn send_text_garbage(&mut self);
}

impl Garbage for common::Ws {
    async fn send_text_garbage(&mut self) {
        use futures_util::SinkExt;
        self.send(Message::text("{oops")).await.unwrap();
    }
}
