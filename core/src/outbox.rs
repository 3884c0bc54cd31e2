//! The transactional outbox (DESIGN §4). A write stores its event documents in the same
//! transaction as its domain writes ([`stage`]); right after commit the caller hands them to the
//! background [`Publisher`], which publishes them in batches and marks them published in bulk; a
//! [`Sweeper`] publishes whatever a crash or a broker outage left unpublished. The `events`
//! collection doubles as the journal (TTL on `publishedAt`).

use std::time::Duration;

use bson::{doc, Document};
use chat3_sdk::EventEnvelope;
use futures_util::TryStreamExt;
use mongodb::options::{FindOneAndUpdateOptions, ReturnDocument};
use mongodb::ClientSession;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Outgoing};
use crate::error::is_duplicate_key;
use crate::events::routing_key;
use crate::store::{coll, Store};

/// The outbox document of `event`.
fn outbox_doc(event: &EventEnvelope) -> crate::Result<Document> {
    // Stored literally: client meta inside must not be read as extended JSON.
    let envelope = crate::plain::to_document(event)?;
    Ok(doc! {
        "_id": &event.event_id,
        "tenantId": event.tenant_id.as_str(),
        "eventType": event.event_type.as_str(),
        "routingKey": routing_key(event),
        "envelope": envelope,
        "published": false,
        "createdAt": bson::DateTime::now(),
    })
}

/// The event of an outbox document (the read side of [`outbox_doc`]).
pub(crate) fn envelope_of(doc: &Document) -> crate::Result<EventEnvelope> {
    let envelope = doc
        .get_document("envelope")
        .map_err(|e| crate::Error::Internal(format!("outbox document without an envelope: {e}")))?;
    crate::plain::from_document(envelope)
}

/// Inserts `event` into the outbox inside the caller's transaction.
pub async fn stage(
    store: &Store,
    session: &mut ClientSession,
    event: &EventEnvelope,
) -> mongodb::error::Result<()> {
    let doc = outbox_doc(event).map_err(crate::Error::into_txn)?;
    store
        .coll(coll::EVENTS)
        .insert_one(doc)
        .session(session)
        .await
        .map(|_| ())
}

/// Inserts `events` into the outbox with one write, inside the caller's transaction.
pub async fn stage_many(
    store: &Store,
    session: &mut ClientSession,
    events: &[EventEnvelope],
) -> crate::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let docs = events
        .iter()
        .map(outbox_doc)
        .collect::<crate::Result<Vec<_>>>()?;
    store
        .coll(coll::EVENTS)
        .insert_many(docs)
        .session(session)
        .await?;
    Ok(())
}

/// Most events published (and marked published) together.
const PUBLISH_BATCH: usize = 512;

/// Events waiting for the background publisher; beyond this, the sweeper publishes them.
const PUBLISH_QUEUE: usize = 16 * 1024;

/// Publishes committed events in the background, right after commit: the write does not wait
/// for the broker. Events that arrive together are published in one go (in order, confirms
/// awaited together) and marked published with one update. Whatever this misses (broker down,
/// queue full, crash) stays unpublished in the outbox for the [`Sweeper`].
#[derive(Clone, Debug)]
pub struct Publisher {
    tx: mpsc::Sender<EventEnvelope>,
}

impl Publisher {
    /// Starts the publishing task; it drains what was submitted and ends once `shutdown` is
    /// cancelled.
    pub fn start(store: Store, bus: Bus, shutdown: CancellationToken) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
        let task = tokio::spawn(run_publisher(rx, store, bus, shutdown));
        (Self { tx }, task)
    }

    /// Hands committed events over for publishing (never blocks).
    pub fn submit(&self, events: &[EventEnvelope]) {
        for event in events {
            if self.tx.try_send(event.clone()).is_err() {
                tracing::debug!(event_id = %event.event_id, "publisher busy or stopped; the sweeper publishes this event");
            }
        }
    }
}

async fn run_publisher(
    mut rx: mpsc::Receiver<EventEnvelope>,
    store: Store,
    bus: Bus,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            biased;
            next = rx.recv() => match next {
                Some(e) => e,
                None => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let mut batch = vec![first];
        while batch.len() < PUBLISH_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        publish_batch(&store, &bus, &batch).await;
    }
    // Shutting down: publish what was already handed over.
    rx.close();
    let mut rest = Vec::new();
    while let Ok(e) = rx.try_recv() {
        rest.push(e);
    }
    for chunk in rest.chunks(PUBLISH_BATCH) {
        publish_batch(&store, &bus, chunk).await;
    }
}

/// Publishes `events` in order and marks the confirmed ones published; returns how many were
/// confirmed. Failures are logged and left to the sweeper: the events are durable in the store.
pub async fn publish_batch(store: &Store, bus: &Bus, events: &[EventEnvelope]) -> usize {
    let encoded: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| (routing_key(e), serde_json::to_vec(e).unwrap_or_default()))
        .collect();
    let items: Vec<Outgoing<'_>> = events
        .iter()
        .zip(&encoded)
        .map(|(e, (key, body))| Outgoing {
            routing_key: key,
            message_id: &e.event_id,
            body,
        })
        .collect();
    let results = bus.publish_many(bus.events_exchange(), &items).await;
    let mut confirmed = Vec::with_capacity(events.len());
    let mut first_error = None;
    for (event, result) in events.iter().zip(results) {
        match result {
            Ok(()) => confirmed.push(event.event_id.as_str()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        tracing::warn!(
            failed = events.len() - confirmed.len(),
            error = %e,
            "publishing events failed; the outbox sweeper will retry"
        );
    }
    if confirmed.is_empty() {
        return 0;
    }
    if let Err(e) = mark_published(store, &confirmed).await {
        // Published but not marked: the sweeper publishes them again (consumers deduplicate).
        tracing::warn!(error = %e, "marking events published failed");
    }
    confirmed.len()
}

async fn mark_published(store: &Store, event_ids: &[&str]) -> mongodb::error::Result<()> {
    store
        .coll(coll::EVENTS)
        .update_many(
            doc! { "_id": { "$in": event_ids } },
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
        let mut envelopes = Vec::with_capacity(pending.len());
        for doc in pending {
            envelopes.push(envelope_of(&doc)?);
        }
        let published = publish_batch(&self.store, &self.bus, &envelopes).await;
        if published < envelopes.len() {
            anyhow::bail!(
                "{} of {} pending events could not be published",
                envelopes.len() - published,
                envelopes.len()
            );
        }
        Ok(published)
    }
}
