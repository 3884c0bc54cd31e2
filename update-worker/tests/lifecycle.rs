//! Shutdown and the operator commands: nothing is lost or duplicated across a stop and restart,
//! `replay` re-publishes stored updates, `reprocess` fans journal events out idempotently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bson::doc;
use chat3_core::config::{LogArgs, LogFormat};
use chat3_core::events::routing_key;
use chat3_core::store::coll;
use chat3_update_worker::config::RetentionArgs;
use chat3_update_worker::{replay, reprocess, ReplayArgs, ReprocessArgs};
use common::{eventually, Harness};
use tokio_util::sync::CancellationToken;

fn log() -> LogArgs {
    LogArgs {
        log_format: LogFormat::Text,
        log_level: "info".to_owned(),
    }
}

#[tokio::test]
async fn stopping_mid_stream_and_restarting_loses_and_duplicates_nothing() {
    let mut h = Harness::new("uw_restart").await;
    h.start_worker().await;
    let dialog = h
        .seed_dialog(&[("alice", "user"), ("bob", "user"), ("carol", "user")])
        .await;
    for i in 0..30 {
        let e = h.send_message(&dialog, "alice", &format!("m{i}")).await;
        h.publish(&e).await;
    }
    // Stop while deliveries are in flight: the worker must still exit cleanly.
    h.stop_workers().await;

    h.start_worker().await;
    eventually("all 90 updates stored", || async {
        (h.stored_count().await == 90).then_some(())
    })
    .await;
    for user in ["alice", "bob", "carol"] {
        let seqs: Vec<u64> = h
            .stored(user)
            .await
            .iter()
            .map(|u| u.seq.unwrap())
            .collect();
        assert_eq!(seqs, (1..=30).collect::<Vec<u64>>(), "{user}");
    }
    h.stop().await;
}

#[tokio::test]
async fn replay_republishes_one_users_stored_updates_in_seq_order() {
    let mut h = Harness::new("uw_replay").await;
    h.start_worker().await;
    let mut observer = h.observe().await;
    let dialog = h.seed_dialog(&[("alice", "user"), ("bob", "user")]).await;
    for i in 0..4 {
        let e = h.send_message(&dialog, "alice", &format!("m{i}")).await;
        h.publish(&e).await;
    }
    observer.take(8).await;
    h.stop_workers().await;

    let mut args = ReplayArgs {
        mongo: h.config.mongo.clone(),
        amqp: h.config.amqp.clone(),
        log: log(),
        tenant: h.tenant.clone(),
        user: Some("bob".parse().unwrap()),
        from_seq: Some(2),
        to_seq: None,
        from_ms: None,
        to_ms: None,
        dry_run: true,
        rate: 0,
        quiet: true,
    };
    let dry = replay::run(&args, CancellationToken::new()).await.unwrap();
    assert_eq!((dry.matched, dry.published), (3, 0));

    args.dry_run = false;
    let done = replay::run(&args, CancellationToken::new()).await.unwrap();
    assert_eq!((done.matched, done.published), (3, 3));
    let replayed: Vec<_> = observer.take(3).await.into_iter().map(|(_, u)| u).collect();
    assert_eq!(replayed, h.stored("bob").await[1..]);
    h.stop().await;
}

#[tokio::test]
async fn reprocessing_journal_events_creates_only_missing_updates() {
    let mut h = Harness::new("uw_reprocess").await;
    let mut observer = h.observe().await;
    let dialog = h.seed_dialog(&[("alice", "user"), ("bob", "user")]).await;
    let from_ms = chat3_core::ids::now_ms();
    let mut events = Vec::new();
    for i in 0..3 {
        let e = h.send_message(&dialog, "bob", &format!("m{i}")).await;
        // Journalled by the API but never published (the broker was down, say).
        chat3_core::testing::collection(&h.store, coll::EVENTS)
            .insert_one(doc! {
                "_id": &e.event_id, "tenantId": h.tenant.as_str(), "eventType": e.event_type.as_str(),
                "routingKey": routing_key(&e), "envelope": bson::to_document(&e).unwrap(),
                "published": false, "createdAt": bson::DateTime::now(),
            })
            .await
            .unwrap();
        events.push(e);
    }
    let args = ReprocessArgs {
        mongo: h.config.mongo.clone(),
        amqp: h.config.amqp.clone(),
        log: log(),
        tenant: Some(h.tenant.clone()),
        from_ms,
        to_ms: None,
        dry_run: false,
        rate: 0,
        quiet: true,
        retention: RetentionArgs::default(),
    };
    let first = reprocess::run(&args, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((first.matched, first.processed, first.published), (3, 3, 6));
    let published: Vec<_> = observer.take(6).await;
    let stored = (h.stored("alice").await, h.stored("bob").await);
    assert_eq!(stored.0.len(), 3);
    assert!(published
        .iter()
        .all(|(_, u)| stored.0.contains(u) || stored.1.contains(u)));

    let again = reprocess::run(&args, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((again.processed, again.failed), (3, 0));
    observer.take(6).await;
    assert_eq!((h.stored("alice").await, h.stored("bob").await), stored);

    // The live worker gets the same events later: the stored updates are published again and
    // nothing new is stored.
    h.start_worker().await;
    for e in &events {
        h.publish(e).await;
    }
    observer.take(6).await;
    assert_eq!((h.stored("alice").await, h.stored("bob").await), stored);
    h.stop().await;
}
