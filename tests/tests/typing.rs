//! Typing: through the API and through the BFF socket, to the other members only, as
//! `typing:start` / `typing:stop` frames (stop also when a start lapses), never stored.

use std::time::Duration;

use chat3_core::store::{coll, Store};
use chat3_tests::amqp::TestQueue;
use chat3_tests::checked::Checked;
use chat3_tests::ws::{connect, frame_named, login, next_frame, Ws};
use chat3_tests::Stack;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn say(ws: &mut Ws, frame: Value) {
    ws.send(WsMessage::Text(frame.to_string().into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn typing_reaches_the_other_members_live_lapses_and_leaves_nothing_in_the_store() {
    let stack = Stack::start("typing").await;
    let c = Checked::new(stack.client.clone());
    let ann = login(&stack, "+15550002001").await;
    let ben = login(&stack, "+15550002002").await;
    let (a, b) = (ann.user.user_id.to_string(), ben.user.user_id.to_string());
    let d = c
        .expect(
            "POST",
            "/api/dialogs",
            Some(json!({"members": [{"userId": a}, {"userId": b}, {"userId": "carl"}]})),
            201,
        )
        .await;
    let dialog = d["data"]["dialogId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut events = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.events_exchange,
        &["dialog.typing.#"],
    )
    .await;
    let mut ann_ws = connect(&stack, &ann.token, None).await;
    let mut ben_ws = connect(&stack, &ben.token, None).await;
    // Both sockets are live once a message posted now reaches them.
    c.expect(
        "POST",
        &format!("/api/dialogs/{dialog}/messages"),
        Some(json!({"senderId": "carl", "content": "hi"})),
        201,
    )
    .await;
    frame_named(&mut ann_ws, "message:new", Duration::from_secs(15)).await;
    frame_named(&mut ben_ws, "message:new", Duration::from_secs(15)).await;

    // Through the API.
    let accepted = c
        .expect(
            "POST",
            &format!("/api/dialogs/{dialog}/member/{a}/typing"),
            Some(json!({})),
            202,
        )
        .await;
    let started = json!({"dialogId": dialog, "userId": a, "isTyping": true, "expiresInMs": 5000});
    assert_eq!(accepted, json!({"data": started}));
    let e = events.next_body().await;
    assert_eq!(
        e,
        json!({
            "eventId": e["eventId"], "tenantId": stack.tenant, "eventType": "dialog.typing",
            "entityType": "dialogMember", "entityId": format!("{dialog}:{a}"), "dialogId": dialog,
            "actorId": a, "actorType": "user", "occurredAt": e["occurredAt"],
            "data": started,
        })
    );
    let raw = frame_named(&mut ben_ws, "chat3:update", Duration::from_secs(10)).await;
    assert_eq!(raw.seq, None);
    assert_eq!(raw.data["updateType"], "typing");
    assert_eq!(raw.data["eventType"], "dialog.typing");
    assert_eq!(raw.data["userId"], b.as_str());
    assert!(raw.data.get("seq").is_none());
    let start = frame_named(&mut ben_ws, "typing:start", Duration::from_secs(10)).await;
    assert_eq!(start.data, started);
    assert_eq!(start.seq, None);

    // Through ann's socket: stop, then a start that lapses after expiresInMs.
    say(
        &mut ann_ws,
        json!({"event": "typing:stop", "data": {"dialogId": dialog}}),
    )
    .await;
    let stop = frame_named(&mut ben_ws, "typing:stop", Duration::from_secs(10)).await;
    assert_eq!(
        stop.data,
        json!({"dialogId": dialog, "userId": a, "isTyping": false, "expiresInMs": 5000})
    );
    say(
        &mut ann_ws,
        json!({"event": "typing:start", "data": {"dialogId": dialog}}),
    )
    .await;
    frame_named(&mut ben_ws, "typing:start", Duration::from_secs(10)).await;
    let began = tokio::time::Instant::now();
    let lapsed = frame_named(&mut ben_ws, "typing:stop", Duration::from_secs(10)).await;
    assert!(
        began.elapsed() >= Duration::from_secs(4),
        "lapsed after {:?}",
        began.elapsed()
    );
    assert_eq!(
        lapsed.data,
        json!({"dialogId": dialog, "userId": a, "isTyping": false, "lapsed": true})
    );
    // ann does not see her own typing.
    let own: Vec<String> = {
        let mut seen = Vec::new();
        while let Some(f) = next_frame(&mut ann_ws, Duration::from_millis(500)).await {
            seen.push(f.event);
        }
        seen
    };
    assert!(own.iter().all(|e| !e.starts_with("typing:")), "{own:?}");

    // A dialog ann is not in: an error frame, the socket stays open.
    let other = c
        .expect(
            "POST",
            "/api/dialogs",
            Some(json!({"members": [{"userId": "carl"}]})),
            201,
        )
        .await;
    let other = other["data"]["dialogId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    say(
        &mut ann_ws,
        json!({"event": "typing:start", "data": {"dialogId": other}}),
    )
    .await;
    let err = frame_named(&mut ann_ws, "error", Duration::from_secs(10)).await;
    assert_eq!(err.data["code"], "not_a_member");
    say(&mut ann_ws, json!({"event": "typing:start", "data": {}})).await;
    let err = frame_named(&mut ann_ws, "error", Duration::from_secs(10)).await;
    assert_eq!(err.data["code"], "invalid_frame");
    say(&mut ann_ws, json!({"event": "ping", "data": {"n": 1}})).await;
    assert_eq!(
        frame_named(&mut ann_ws, "pong", Duration::from_secs(10))
            .await
            .data,
        json!({"n": 1})
    );

    // Errors through the API.
    c.expect_error(
        "POST",
        &format!("/api/dialogs/{other}/member/{a}/typing"),
        Some(json!({"isTyping": true})),
        403,
        "not_a_member",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("/api/dialogs/dlg_0000000000aaaaaaaaaa/member/{a}/typing"),
        Some(json!({})),
        404,
        "dialog_not_found",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("/api/dialogs/{dialog}/member/{a}/typing"),
        Some(json!({"isTyping": "yes"})),
        400,
        "validation_error",
    )
    .await;

    // Nothing of it was stored: no event in the journal, no update in any feed.
    let store = Store::connect(&stack.api.mongo)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for (collection, filter) in [
        (coll::EVENTS, bson::doc! {"eventType": "dialog.typing"}),
        (coll::UPDATES, bson::doc! {"updateType": "typing"}),
    ] {
        let n = chat3_core::testing::collection(&store, collection)
            .count_documents(filter)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, 0, "{collection}");
    }
    let feed = c
        .client
        .user_updates(&ben.user.user_id, 0, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(feed.data.iter().all(|u| u.seq.is_some()));
    stack.stop().await;
}
