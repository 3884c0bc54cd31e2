//! The event contract on the events exchange, and the outbox surviving a broker outage.

use std::time::Duration;

use chat3_sdk::EventEnvelope;
use chat3_tests::amqp::TestQueue;
use chat3_tests::fixtures::{dialog_of, text};
use chat3_tests::proxy::CutProxy;
use chat3_tests::TestApi;
use serde_json::json;

#[tokio::test]
async fn posting_a_message_publishes_exactly_the_documented_envelope() {
    let api = TestApi::start("evt").await;
    // (Joining also creates alice and bob: their `user.add` events are the users tests' part.)
    let mut q = TestQueue::bind(
        &api.amqp.url,
        &api.amqp.events_exchange,
        &["dialog.#", "message.#"],
    )
    .await;
    let (tenant, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let m = c
        .send_message(&d.dialog_id, &text("alice", "hello"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let created = q
        .next(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no dialog.create"));
    assert_eq!(created.routing_key, format!("dialog.create.{tenant}"));
    let got = q
        .next(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no message.create"));
    assert_eq!(got.routing_key, format!("message.create.{tenant}"));
    assert_eq!(got.content_type.as_deref(), Some("application/json"));
    assert_eq!(got.delivery_mode, Some(2));
    let env: EventEnvelope =
        serde_json::from_value(got.body.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.message_id.as_deref(), Some(env.event_id.as_str()));
    let expected = json!({
        "eventId": env.event_id,
        "tenantId": tenant,
        "eventType": "message.create",
        "entityType": "message",
        "entityId": m.message_id,
        "dialogId": d.dialog_id,
        "actorId": "alice",
        "actorType": "user",
        "occurredAt": env.occurred_at,
        "data": {"message": m},
    });
    assert_eq!(got.body, expected);
    // Exactly once: nothing else follows.
    assert!(q.drain(Duration::from_millis(500)).await.is_empty());
    api.stop().await;
}

#[tokio::test]
async fn events_written_while_the_broker_is_down_are_published_once_it_is_back() {
    let mongo = chat3_core::testing::mongo_args("outage");
    let real = chat3_core::testing::amqp_args("outage");
    let broker: std::net::SocketAddr = "127.0.0.1:5672".parse().unwrap_or_else(|e| panic!("{e}"));
    let proxy = CutProxy::start(broker).await;
    let mut via_proxy = real.clone();
    via_proxy.url = format!("amqp://guest:guest@{}/%2f", proxy.addr);
    let mut q = TestQueue::bind(&real.url, &real.events_exchange, &["message.#"]).await;
    let api = TestApi::start_with(mongo, via_proxy).await;
    let (tenant, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    proxy.cut();
    let ready = api
        .anonymous()
        .raw("GET", "/ready", None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["checks"]["rabbitmq"], "unreachable");
    assert_eq!(ready.body["checks"]["mongodb"], "ok");
    let m = c
        .send_message(&d.dialog_id, &text("alice", "during outage"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The write succeeded, the event is durable, and nothing reached the broker.
    assert!(q.next(Duration::from_millis(500)).await.is_none());

    proxy.restore();
    let got = q
        .next(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("event never published"));
    assert_eq!(got.routing_key, format!("message.create.{tenant}"));
    assert_eq!(
        got.body["data"]["message"]["messageId"],
        json!(m.message_id)
    );
    assert!(
        q.drain(Duration::from_secs(3)).await.is_empty(),
        "published more than once"
    );
    api.stop().await;
}
