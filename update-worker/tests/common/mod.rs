//! Test harness: a fresh database and fresh exchange/queue names per test on the real SecantusDB
//! and RabbitMQ, documents seeded the way the API stores them, workers started in-process, and an
//! observer queue bound to the test updates exchange.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use bson::doc;
use chat3_core::bus::Bus;
use chat3_core::docs::{DialogDoc, MemberDoc, MessageDoc};
use chat3_core::events::{envelope, routing_key, Actor};
use chat3_core::service::Running;
use chat3_core::store::{coll, Store};
use chat3_core::testing::{amqp_args, mongo_args, unique_name};
use chat3_core::{ids, updates};
use chat3_sdk::{DialogId, EventEnvelope, EventType, TenantId, Update, UserId};
use chat3_update_worker::Config;
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Harness {
    pub store: Store,
    pub bus: Bus,
    pub config: Config,
    pub tenant: TenantId,
    shutdown: CancellationToken,
    workers: Vec<Running>,
}

impl Harness {
    pub async fn new(prefix: &str) -> Self {
        let mut config = Config::new(mongo_args(prefix), amqp_args(prefix));
        config.queue = unique_name(&format!("t_{prefix}_q"));
        config.retry_backoff_ms = 20;
        config.heartbeat_ms = 200;
        let store = Store::connect(&config.mongo).await.unwrap();
        updates::ensure_indexes(&store, updates::DEFAULT_RETENTION)
            .await
            .unwrap();
        let bus = Bus::connect(config.amqp.clone()).await.unwrap();
        Self {
            store,
            bus,
            config,
            tenant: unique_name("tnt").parse().unwrap(),
            shutdown: CancellationToken::new(),
            workers: Vec::new(),
        }
    }

    /// Starts one more worker instance on the shared queue.
    pub async fn start_worker(&mut self) {
        let running = chat3_update_worker::start(self.config.clone(), self.shutdown.clone())
            .await
            .unwrap();
        self.workers.push(running);
    }

    /// Starts one more worker instance on the shared queue that stops when `token` is
    /// cancelled; returns it for the caller to stop and await.
    pub async fn start_worker_stopping_on(&self, token: &CancellationToken) -> Running {
        chat3_update_worker::start(self.config.clone(), token.clone())
            .await
            .unwrap()
    }

    /// (ready messages, consumers) of `queue`.
    pub async fn queue_counts(&self, queue: &str) -> (u32, u32) {
        let ch = self.bus.channel().await.unwrap();
        let q = ch
            .queue_declare(
                queue,
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = ch.close(200, "done").await;
        (q.message_count(), q.consumer_count())
    }

    /// Cancels the workers, checks each exits cleanly, and removes the test's broker objects and
    /// database.
    pub async fn stop(mut self) {
        self.stop_workers().await;
        let ch = self.bus.channel().await.unwrap();
        for q in self.config.broker_queues() {
            let _ = ch.queue_delete(&q, QueueDeleteOptions::default()).await;
        }
        let mut exchanges = self.config.broker_exchanges();
        exchanges.push(self.config.amqp.events_exchange.clone());
        exchanges.push(self.config.amqp.updates_exchange.clone());
        for x in exchanges {
            let _ = ch
                .exchange_delete(&x, ExchangeDeleteOptions::default())
                .await;
        }
        self.bus.close().await;
        let _ = chat3_core::testing::drop_database(&self.store).await;
    }

    /// Cancels the workers and waits for each to settle its deliveries and exit with `Ok`.
    pub async fn stop_workers(&mut self) {
        self.shutdown.cancel();
        for w in self.workers.drain(..) {
            let result = tokio::time::timeout(DEADLINE, w.task)
                .await
                .expect("worker did not stop in time")
                .expect("worker task panicked");
            assert!(result.is_ok(), "worker exited with {result:?}");
        }
        // Workers started later get a live token.
        self.shutdown = CancellationToken::new();
    }

    /// Messages waiting in `queue` (ready, not unacked).
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        self.queue_counts(queue).await.0
    }

    /// Binds a fresh exclusive queue to every update of the test updates exchange.
    pub async fn observe(&self) -> Observer {
        let ch = self.bus.channel().await.unwrap();
        let q = ch
            .queue_declare(
                "",
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        ch.queue_bind(
            q.name().as_str(),
            &self.config.amqp.updates_exchange,
            "update.#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        let consumer = ch
            .basic_consume(
                q.name().as_str(),
                "observer",
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        Observer {
            _channel: ch,
            consumer,
        }
    }

    /// A dialog as the API stores it, with `members` as `(userId, userType)` and no messages.
    pub async fn seed_dialog(&self, members: &[(&str, &str)]) -> DialogId {
        let dialog = ids::dialog_id();
        let now = ids::now_ms();
        let doc = DialogDoc::created(
            &self.tenant,
            &dialog,
            Some("Team".to_owned()),
            bson::Document::new(),
            &members[0].0.parse().unwrap(),
            now,
        );
        chat3_core::testing::collection(&self.store, coll::DIALOGS)
            .insert_one(doc.to_doc())
            .await
            .unwrap();
        for (user, kind) in members {
            let member = MemberDoc::joined(
                &self.tenant,
                &dialog,
                &user.parse().unwrap(),
                &kind.parse().unwrap(),
                now,
            );
            chat3_core::testing::collection(&self.store, coll::MEMBERS)
                .insert_one(member.to_doc())
                .await
                .unwrap();
        }
        dialog
    }

    /// Stores a message the way the API does (dialog `lastSeq`/`msgCount` bumped, the sender's
    /// watermark moved to it) and returns its `message.create` event.
    pub async fn send_message(
        &self,
        dialog: &DialogId,
        sender: &str,
        content: &str,
    ) -> EventEnvelope {
        let tenant = self.tenant.as_str();
        let after = chat3_core::testing::collection(&self.store, coll::DIALOGS)
            .find_one_and_update(
                doc! { "tenantId": tenant, "dialogId": dialog.as_str() },
                doc! { "$inc": { "lastSeq": 1_i64, "msgCount": 1_i64 } },
            )
            .return_document(mongodb::options::ReturnDocument::After)
            .await
            .unwrap()
            .unwrap();
        let seq = after.get_i64("lastSeq").unwrap();
        let count = after.get_i64("msgCount").unwrap();
        let now = ids::now_ms();
        let stored = MessageDoc {
            message: chat3_sdk::Message {
                message_id: ids::message_id(),
                tenant_id: self.tenant.clone(),
                dialog_id: dialog.clone(),
                seq: seq as u64,
                sender_id: sender.parse().unwrap(),
                content: content.to_owned(),
                message_type: "text".to_owned(),
                meta: Default::default(),
                quoted_message_id: None,
                client_message_id: None,
                quoted_message: None,
                created_at: now,
                edited_at: None,
                deleted_at: None,
                statuses: chat3_core::docs::empty_statuses(),
                reactions: Vec::new(),
            },
            count_at: count as u64,
        };
        chat3_core::testing::collection(&self.store, coll::MESSAGES)
            .insert_one(stored.to_doc())
            .await
            .unwrap();
        self.set_read(dialog, sender, seq, count).await;
        chat3_core::events::event(
            &self.tenant,
            stored.message.message_id.as_str(),
            Some(dialog),
            &Actor::user(sender),
            &chat3_sdk::events::MessageCreated {
                message: stored.message.clone(),
            },
        )
    }

    /// Moves a member's watermark.
    pub async fn set_read(
        &self,
        dialog: &DialogId,
        user: &str,
        last_read_seq: i64,
        read_count: i64,
    ) {
        chat3_core::testing::collection(&self.store, coll::MEMBERS)
            .update_one(
                doc! { "tenantId": self.tenant.as_str(), "dialogId": dialog.as_str(), "userId": user },
                doc! { "$set": { "lastReadSeq": last_read_seq, "readCount": read_count } },
            )
            .await
            .unwrap();
    }

    /// An event of `event_type` about `dialog` with `data`.
    pub fn event(&self, event_type: EventType, dialog: &DialogId, data: Value) -> EventEnvelope {
        envelope(
            &self.tenant,
            event_type,
            dialog.as_str(),
            Some(dialog),
            &Actor::user("alice"),
            data,
        )
    }

    /// Publishes an envelope on the test events exchange, as the API's outbox does.
    pub async fn publish(&self, event: &EventEnvelope) {
        let body = serde_json::to_vec(event).unwrap();
        self.publish_raw(&routing_key(event), &event.event_id, &body)
            .await;
    }

    /// Publishes arbitrary bytes on the test events exchange.
    pub async fn publish_raw(&self, key: &str, message_id: &str, body: &[u8]) {
        self.bus
            .publish_json(&self.config.amqp.events_exchange, key, message_id, body)
            .await
            .unwrap();
    }

    /// Every stored update of `user`, in seq order.
    pub async fn stored(&self, user: &str) -> Vec<Update> {
        let user: UserId = user.parse().unwrap();
        let page = updates::list_since(&self.store, &self.tenant, &user, 0, 1000)
            .await
            .unwrap();
        assert!(!page.has_more);
        page.data
    }

    /// Number of stored updates of the test tenant.
    pub async fn stored_count(&self) -> u64 {
        chat3_core::testing::collection(&self.store, coll::UPDATES)
            .count_documents(doc! { "tenantId": self.tenant.as_str() })
            .await
            .unwrap()
    }
}

/// Receives what the workers publish on the updates exchange.
pub struct Observer {
    _channel: lapin::Channel,
    consumer: lapin::Consumer,
}

impl Observer {
    /// The next `n` published updates with their routing keys, waiting at most [`DEADLINE`].
    pub async fn take(&mut self, n: usize) -> Vec<(String, Update)> {
        let mut out = Vec::with_capacity(n);
        let until = Instant::now() + DEADLINE;
        while out.len() < n {
            let left = until.saturating_duration_since(Instant::now());
            let delivery = tokio::time::timeout(left, self.consumer.next())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} updates published in time", out.len()))
                .unwrap()
                .unwrap();
            let update: Update = serde_json::from_slice(&delivery.data).unwrap();
            assert_eq!(
                delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|m| m.as_str()),
                Some(update.update_id.as_str())
            );
            out.push((delivery.routing_key.as_str().to_owned(), update));
        }
        out
    }

    /// Asserts nothing more is published within a short grace period.
    pub async fn assert_quiet(&mut self, grace: Duration) {
        if let Ok(Some(Ok(d))) = tokio::time::timeout(grace, self.consumer.next()).await {
            panic!("unexpected update published on {}", d.routing_key);
        }
    }
}

/// Polls `check` until it yields `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(DEADLINE, what, check).await
}

/// Polls `check` until it yields `Some`, failing the test after `deadline`.
pub async fn eventually_within<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
