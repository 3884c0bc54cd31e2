//! The transactional outbox (DESIGN §4). A write stores its event documents in the same
//! transaction as its domain writes ([`stage`]); right after commit the caller publishes them
//! ([`publish_committed`]); a [`Sweeper`] publishes whatever a crash or a broker outage left
//! unpublished. The `events` collection doubles as the journal (TTL on `publishedAt`).

use std::time::Duration;

use bson::{doc, Document};
use chat3_sdk::EventEnvelope;
use futures_util::TryStreamExt;
use mongodb::options::{FindOneAndUpdateOptions, ReturnDocument};
use mongodb::ClientSession;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::error::is_duplicate_key;
use crate::events::routing_key;
use crate::store::{coll, Store};

/// Inserts `event` into the outbox inside the caller's transaction.
pub async fn stage(
    store: &Store,
    session: &mut ClientSession,
    event: &EventEnvelope,
) -> mongodb::error::Result<()> {
    // Stored literally: client meta inside must not be read as extended JSON.
    let envelope = crate::plain::to_document(event).map_err(crate::Error::into_txn)?;
    let doc = doc! {
        "_id": &event.event_id,
        "tenantId": event.tenant_id.as_str(),
        "eventType": &event.event_type,
        "routingKey": routing_key(event),
        "envelope": envelope,
        "published": false,
        "createdAt": bson::DateTime::now(),
    };
    store
        .coll(coll::EVENTS)
        .insert_one(doc)
        .session(session)
        .await
        .map(|_| ())
}

/// Publishes committed events and marks them published. A failure is logged and left to the
/// sweeper: the events are durable in MongoDB, so nothing is lost.
pub async fn publish_committed(store: &Store, bus: &Bus, events: &[EventEnvelope]) {
    for event in events {
        if let Err(e) = publish_one(store, bus, event).await {
            tracing::warn!(event_id = %event.event_id, error = %e, "publish after commit failed; the outbox sweeper will retry");
        }
    }
}

async fn publish_one(store: &Store, bus: &Bus, event: &EventEnvelope) -> anyhow::Result<()> {
    let body = serde_json::to_vec(event)?;
    bus.publish_json(
        bus.events_exchange(),
        &routing_key(event),
        &event.event_id,
        &body,
    )
    .await?;
    mark_published(store, &event.event_id).await?;
    Ok(())
}

async fn mark_published(store: &Store, event_id: &str) -> mongodb::error::Result<()> {
    store
        .coll(coll::EVENTS)
        .update_one(
            doc! { "_id": event_id },
            doc! { "$set": { "published": true, "publishedAt": bson::DateTime::now() } },
        )
        .await
        .map(|_| ())
}

/// Settings of the sweeper.
#[derive(Debug, Clone)]
pub struct SweeperConfig {
    /// How often to look for unpublished events.
    pub interval: Duration,
    /// Events younger than this are left to the request that wrote them.
    pub grace: Duration,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
    /// This instance's name in the lease.
    pub holder: String,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            grace: Duration::from_secs(3),
            lease: Duration::from_secs(15),
            holder: format!("sweeper-{}", crate::ids::random_base36(8)),
        }
    }
}

/// Publishes events left unpublished. Only the instance holding the `outbox-sweeper` lease works,
/// so several API instances do not publish the same backlog concurrently.
pub struct Sweeper {
    store: Store,
    bus: Bus,
    config: SweeperConfig,
}

const LEASE_ID: &str = "outbox-sweeper";

impl Sweeper {
    /// A sweeper over `store` publishing to `bus`.
    pub fn new(store: Store, bus: Bus, config: SweeperConfig) -> Self {
        Self { store, bus, config }
    }

    /// Runs until `shutdown` is cancelled, then gives up the lease.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.config.interval) => {}
            }
            match self.sweep_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(published = n, "outbox sweeper published pending events"),
                Err(e) => tracing::warn!(error = %e, "outbox sweep failed"),
            }
        }
        let _ = self
            .store
            .coll(coll::LEASES)
            .delete_one(doc! { "_id": LEASE_ID, "holder": &self.config.holder })
            .await;
    }

    /// Takes or renews the lease. False when another instance holds it.
    pub async fn acquire_lease(&self) -> mongodb::error::Result<bool> {
        let now = bson::DateTime::now();
        let until = bson::DateTime::from_millis(
            now.timestamp_millis() + self.config.lease.as_millis() as i64,
        );
        let filter = doc! {
            "_id": LEASE_ID,
            "$or": [ { "holder": &self.config.holder }, { "expiresAt": { "$lt": now } } ],
        };
        let update = doc! { "$set": { "holder": &self.config.holder, "expiresAt": until } };
        let opts = FindOneAndUpdateOptions::builder()
            .upsert(true)
            .return_document(ReturnDocument::After)
            .build();
        match self
            .store
            .coll(coll::LEASES)
            .find_one_and_update(filter, update)
            .with_options(opts)
            .await
        {
            Ok(doc) => Ok(doc.is_some()),
            // The upsert collided with the other holder's document: not ours.
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One pass: if the lease is ours, publish up to 500 old unpublished events in order.
    pub async fn sweep_once(&self) -> anyhow::Result<usize> {
        if !self.acquire_lease().await? {
            return Ok(0);
        }
        let cutoff = bson::DateTime::from_millis(
            bson::DateTime::now().timestamp_millis() - self.config.grace.as_millis() as i64,
        );
        let pending: Vec<Document> = self
            .store
            .coll(coll::EVENTS)
            .find(doc! { "published": false, "createdAt": { "$lte": cutoff } })
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .limit(500)
            .await?
            .try_collect()
            .await?;
        let mut published = 0;
        for doc in pending {
            let envelope: EventEnvelope =
                crate::plain::from_document(doc.get_document("envelope")?)?;
            publish_one(&self.store, &self.bus, &envelope).await?;
            published += 1;
        }
        Ok(published)
    }
}
