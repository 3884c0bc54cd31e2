//! The fan-out contract of the worker: who gets an update, with which seq, routing key and data;
//! redelivery; poison messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chat3_sdk::EventType;
use chat3_sdk::{Update, UpdateType};
use common::{eventually, Harness};
use serde_json::json;

fn by_user(published: Vec<(String, Update)>) -> BTreeMap<String, (String, Update)> {
    published
        .into_iter()
        .map(|(key, u)| (u.user_id.to_string(), (key, u)))
        .collect()
}

#[tokio::test]
async fn every_member_gets_one_message_update_with_the_next_seq_and_their_unread_count() {
    let mut h = Harness::new("uw_contract").await;
    h.start_worker().await;
    let mut observer = h.observe().await;
    let dialog = h
        .seed_dialog(&[("alice", "user"), ("bob", "user"), ("carol", "bot")])
        .await;

    // A first event gives everyone seq 1, so the message must take seq 2.
    h.publish(&h.event(EventType::DialogCreate, &dialog, json!({})))
        .await;
    let first = by_user(observer.take(3).await);
    assert!(first.values().all(|(_, u)| u.seq == Some(1)));
    assert!(first
        .values()
        .all(|(_, u)| u.update_type == UpdateType::Dialog));

    let event = h.send_message(&dialog, "alice", "hello").await;
    h.publish(&event).await;
    let published = by_user(observer.take(3).await);
    assert_eq!(
        published.keys().collect::<Vec<_>>(),
        ["alice", "bob", "carol"]
    );

    let tenant = h.tenant.to_string();
    for (user, user_type, unread) in [
        ("alice", "user", 0),
        ("bob", "user", 1),
        ("carol", "bot", 1),
    ] {
        let (key, update) = &published[user];
        assert_eq!(key, &format!("update.{tenant}.{user_type}.{user}.message"));
        let stored = h.stored(user).await;
        assert_eq!(stored.len(), 2, "{user} has exactly two updates");
        assert_eq!(
            &stored[1], update,
            "published body equals the stored update"
        );
        assert_eq!(update.seq, Some(2));
        assert_eq!(update.update_type, UpdateType::Message);
        assert_eq!(update.event_id, event.event_id);
        assert_eq!(update.event_type, chat3_sdk::EventType::MessageCreate);
        assert_eq!(update.dialog_id.as_ref(), Some(&dialog));
        assert_eq!(update.user_type.as_str(), user_type);
        assert_eq!(update.data["message"], event.data["message"]);
        assert_eq!(
            update.data["dialog"],
            json!({
                "dialogId": dialog, "name": "Team", "lastSeq": 1,
                "unreadCount": unread, "lastReadSeq": if user == "alice" { 1 } else { 0 },
            })
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn delivering_the_same_event_twice_republishes_without_storing_anything_new() {
    let mut h = Harness::new("uw_redeliver").await;
    h.start_worker().await;
    let mut observer = h.observe().await;
    let dialog = h.seed_dialog(&[("alice", "user"), ("bob", "user")]).await;
    let event = h.send_message(&dialog, "alice", "once").await;

    h.publish(&event).await;
    let first = by_user(observer.take(2).await);
    let stored_before = (h.stored("alice").await, h.stored("bob").await);

    h.publish(&event).await;
    let second = by_user(observer.take(2).await);
    assert_eq!(first, second, "the same stored updates are published again");
    assert_eq!(
        (h.stored("alice").await, h.stored("bob").await),
        stored_before
    );
    assert_eq!(h.stored_count().await, 2);

    // A later event still continues each user's sequence without a gap.
    let next = h.send_message(&dialog, "bob", "twice").await;
    h.publish(&next).await;
    let third = by_user(observer.take(2).await);
    assert!(third.values().all(|(_, u)| u.seq == Some(2)));
    h.stop().await;
}

#[tokio::test]
async fn a_read_event_updates_only_the_reader_with_their_current_watermark() {
    let mut h = Harness::new("uw_read").await;
    h.start_worker().await;
    let mut observer = h.observe().await;
    let dialog = h.seed_dialog(&[("alice", "user"), ("bob", "user")]).await;
    for text in ["one", "two", "three"] {
        let e = h.send_message(&dialog, "alice", text).await;
        h.publish(&e).await;
    }
    observer.take(6).await;

    h.set_read(&dialog, "bob", 2, 2).await;
    let read = h.event(
        EventType::DialogRead,
        &dialog,
        json!({ "userId": "bob", "lastReadSeq": 2, "unreadCount": 1 }),
    );
    h.publish(&read).await;
    let (key, update) = observer.take(1).await.remove(0);
    assert_eq!(key, format!("update.{}.user.bob.dialog", h.tenant));
    assert_eq!(update.seq, Some(4));
    assert_eq!(update.data["dialog"]["unreadCount"], 1);
    assert_eq!(update.data["dialog"]["lastReadSeq"], 2);
    assert_eq!(update.data["member"]["lastReadSeq"], 2);
    assert_eq!(update.data["member"]["unreadCount"], 1);
    assert_eq!(h.stored("alice").await.len(), 3);
    observer.assert_quiet(Duration::from_millis(300)).await;
    h.stop().await;
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_does_not_block_the_next_event() {
    let mut h = Harness::new("uw_poison").await;
    h.start_worker().await;
    let mut observer = h.observe().await;
    let dialog = h.seed_dialog(&[("alice", "user")]).await;
    let key = format!("message.create.{}", h.tenant);

    h.publish_raw(&key, "evt_poison", b"{not json").await;
    let unhandled = h.event(
        EventType::Unknown("dialog.from_a_newer_producer".to_owned()),
        &dialog,
        json!({}),
    );
    h.publish(&unhandled).await;
    let event = h.send_message(&dialog, "alice", "after the poison").await;
    h.publish(&event).await;

    let (_, update) = observer.take(1).await.remove(0);
    assert_eq!(update.event_id, event.event_id);
    let dlq = h.config.dead_letter_queue();
    eventually("the poison message in the DLQ", || async {
        (h.queue_depth(&dlq).await >= 1).then_some(())
    })
    .await;

    h.stop_workers().await;
    assert_eq!(
        h.queue_depth(&dlq).await,
        1,
        "only the poison is dead-lettered"
    );
    assert_eq!(
        h.queue_depth(&h.config.queue).await,
        0,
        "nothing is left behind"
    );
    let ch = h.bus.channel().await.unwrap();
    let got = ch
        .basic_get(&dlq, lapin::options::BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("a dead-lettered message");
    assert_eq!(got.delivery.data, b"{not json");
    h.stop().await;
}

#[tokio::test]
async fn member_add_tells_every_member_who_joined() {
    let mut h = Harness::new("uw_member_add").await;
    h.start_worker().await;
    let mut observer = h.observe().await;
    let dialog = h.seed_dialog(&[("alice", "user"), ("dave", "user")]).await;
    let added = json!([{ "userId": "dave", "type": "user", "lastReadSeq": 0, "unreadCount": 0, "joinedAt": 1 }]);
    let event = h.event(
        EventType::DialogMemberAdd,
        &dialog,
        json!({ "dialog": { "dialogId": dialog }, "members": added }),
    );
    h.publish(&event).await;
    let published = by_user(observer.take(2).await);
    for user in ["alice", "dave"] {
        let (key, u) = &published[user];
        assert_eq!(key, &format!("update.{}.user.{user}.dialog", h.tenant));
        assert_eq!(u.data["members"], added);
        assert_eq!(u.data["member"]["userId"], user);
        assert_eq!(u.data["dialog"]["dialogId"], json!(dialog));
    }
    h.stop().await;
}
