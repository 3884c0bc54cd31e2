//! The live-update hub: ONE RabbitMQ queue per BFF instance (exclusive, auto-delete) bound to
//! the updates exchange with one binding per connected user (`update.{tenant}.*.{userId}.#`),
//! made on a user's first socket and removed after their last. A dispatcher routes each
//! delivery to that user's sockets. If the broker link drops, every socket is closed so its
//! client resumes with `since`; the supervisor reconnects with backoff on a fresh queue.

mod registry;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat3_core::bus::Bus;
use chat3_sdk::{TenantId, Update, UserId};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

pub use registry::{Kick, KickReason, Registry};

/// Deliveries in flight from the broker before acks.
const PREFETCH: u16 = 512;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The hub cannot subscribe a socket now.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The consumer is not running (broker down or starting).
    #[error("not connected to the broker")]
    NotConnected,
    /// Binding the user's routing key failed.
    #[error("binding failed: {0}")]
    Bind(#[from] lapin::Error),
}

/// The current broker link: the channel that owns the queue, and its generation.
struct Link {
    channel: Channel,
    queue: String,
    generation: u64,
}

/// Shared handle on the hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    tenant: TenantId,
    exchange: String,
    instance: String,
    registry: Registry,
    /// Also serialises bind/unbind decisions, so a user's binding state cannot race.
    link: Mutex<Option<Link>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("tenant", &self.inner.tenant)
            .field("exchange", &self.inner.exchange)
            .field("instance", &self.inner.instance)
            .finish()
    }
}

/// One socket's subscription: live updates arrive on a bounded channel. Close it with
/// [`Subscription::close`]; dropping it unsubscribes in the background.
pub struct Subscription {
    hub: Hub,
    user: UserId,
    id: u64,
    rx: mpsc::Receiver<Arc<Update>>,
    kick: Arc<Kick>,
    closed: bool,
}

impl Subscription {
    /// The next live update (None once the hub dropped this socket).
    pub async fn recv(&mut self) -> Option<Arc<Update>> {
        self.rx.recv().await
    }

    /// The switch the hub flips when it wants this socket closed.
    pub fn kick(&self) -> Arc<Kick> {
        self.kick.clone()
    }

    /// Unsubscribes now (drops the user's binding if this was their last socket).
    pub async fn close(mut self) {
        self.closed = true;
        self.hub.unregister(&self.user, self.id).await;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let (hub, user, id) = (self.hub.clone(), self.user.clone(), self.id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { hub.unregister(&user, id).await });
        }
    }
}

impl Hub {
    /// A hub for `tenant`'s users on `exchange`. Nothing is consumed until [`Hub::run`].
    pub fn new(tenant: TenantId, exchange: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                tenant,
                exchange: exchange.into(),
                instance: chat3_core::ids::random_base36(10),
                registry: Registry::default(),
                link: Mutex::new(None),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// `update.{tenant}.*.{userId}.#`: every update of one user.
    pub fn binding_key(&self, user: &UserId) -> String {
        format!("update.{}.*.{}.#", self.inner.tenant, user)
    }

    /// True while the consumer runs.
    pub async fn is_connected(&self) -> bool {
        self.inner.link.lock().await.is_some()
    }

    /// Subscribes one socket of `user`; the user's binding exists when this returns, so
    /// every update published afterwards reaches the subscription.
    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn subscribe(&self, user: &UserId, buffer: usize) -> Result<Subscription, HubError> {
        let link = self.inner.link.lock().await;
        let link = link.as_ref().ok_or(HubError::NotConnected)?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let kick = Arc::new(Kick::default());
        let reg = &self.inner.registry;
        if reg.add(user, id, tx, kick.clone(), link.generation) {
            let key = self.binding_key(user);
            let bound = link
                .channel
                .queue_bind(
                    &link.queue,
                    &self.inner.exchange,
                    &key,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await;
            if let Err(e) = bound {
                reg.remove(user, id);
                return Err(e.into());
            }
            reg.mark_bound(user, link.generation);
            tracing::debug!(key, "bound user");
        }
        Ok(Subscription {
            hub: self.clone(),
            user: user.clone(),
            id,
            rx,
            kick,
            closed: false,
        })
    }

    async fn unregister(&self, user: &UserId, id: u64) {
        let link = self.inner.link.lock().await;
        let Some(Some(generation)) = self.inner.registry.remove(user, id) else {
            return;
        };
        // A binding made on an older link died with that link's queue.
        let Some(link) = link.as_ref().filter(|l| l.generation == generation) else {
            return;
        };
        let key = self.binding_key(user);
        let result = link
            .channel
            .queue_unbind(
                &link.queue,
                &self.inner.exchange,
                &key,
                FieldTable::default(),
            )
            .await;
        match result {
            Ok(()) => tracing::debug!(key, "unbound user"),
            Err(e) => tracing::warn!(key, error = %e, "unbinding failed"),
        }
    }

    /// Consumes the instance queue until `shutdown`, reconnecting with backoff.
    pub async fn run(self, bus: Bus, shutdown: CancellationToken) {
        let mut generation = 0;
        let mut backoff = Duration::from_millis(500);
        while !shutdown.is_cancelled() {
            match self.open(&bus, generation + 1).await {
                Ok((link, consumer)) => {
                    generation = link.generation;
                    backoff = Duration::from_millis(500);
                    let channel = link.channel.clone();
                    tracing::info!(queue = %link.queue, "consuming updates");
                    *self.inner.link.lock().await = Some(link);
                    self.consume(consumer, &shutdown).await;
                    *self.inner.link.lock().await = None;
                    if shutdown.is_cancelled() {
                        let _ = channel.close(200, "shutdown").await;
                        break;
                    }
                    tracing::warn!("updates consumer lost; closing sockets so clients resume");
                    self.inner.registry.kick_all(KickReason::BrokerLost);
                }
                Err(e) => tracing::warn!(error = %e, ?backoff, "cannot consume updates"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        tracing::info!("updates consumer stopped");
    }

    async fn open(&self, bus: &Bus, generation: u64) -> Result<(Link, Consumer), anyhow::Error> {
        let channel = bus.channel().await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        let queue = format!("bff.{}.{generation}", self.inner.instance);
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            durable: false,
            ..Default::default()
        };
        channel
            .queue_declare(&queue, options, FieldTable::default())
            .await?;
        let consumer = channel
            .basic_consume(
                &queue,
                &queue,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((
            Link {
                channel,
                queue,
                generation,
            },
            consumer,
        ))
    }

    /// Dispatches deliveries until the stream ends or `shutdown`.
    async fn consume(&self, mut consumer: Consumer, shutdown: &CancellationToken) {
        loop {
            let delivery = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                next = consumer.next() => next,
            };
            let delivery = match delivery {
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "updates consumer failed");
                    return;
                }
                None => return,
            };
            self.dispatch(&delivery.data, delivery.routing_key.as_str());
            if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                tracing::warn!(error = %e, "ack failed");
                return;
            }
        }
    }

    fn dispatch(&self, body: &[u8], routing_key: &str) {
        let update: Update = match serde_json::from_slice(body) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(routing_key, error = %e, "dropping an unreadable update");
                return;
            }
        };
        if update.tenant_id != self.inner.tenant {
            tracing::warn!(routing_key, "dropping an update of another tenant");
            return;
        }
        let n = self.inner.registry.dispatch(&Arc::new(update));
        tracing::trace!(routing_key, sockets = n, "dispatched");
    }
}
