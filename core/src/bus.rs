//! The AMQP bus: one connection with a confirm-mode publishing channel, re-established on demand
//! after the broker goes away, and topic exchanges declared durable.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;

use crate::config::AmqpArgs;

/// How long a publish may wait for the broker's confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// A broker failure.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Connection, channel or publish failed.
    #[error("amqp: {0}")]
    Amqp(#[from] lapin::Error),
    /// The broker did not confirm in time.
    #[error("publish not confirmed within {0:?}")]
    Timeout(Duration),
    /// The broker refused the message (basic.nack).
    #[error("publish nacked by the broker")]
    Nacked,
    /// The channel could not be had, or broke before this message was sent.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The routing key cannot be sent (AMQP short strings hold at most 255 bytes). Refused
    /// before anything reaches the broker, so the shared connection is not affected.
    #[error("routing key of {0} bytes exceeds the AMQP limit of 255")]
    RoutingKeyTooLong(usize),
}

impl BusError {
    /// True when retrying the same publish can never succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, BusError::RoutingKeyTooLong(_))
    }
}

/// One message of [`Bus::publish_many`].
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Routing key.
    pub routing_key: &'a str,
    /// AMQP `message_id` (the event or update id).
    pub message_id: &'a str,
    /// JSON body.
    pub body: &'a [u8],
}

/// Longest routing key AMQP can carry.
pub const MAX_ROUTING_KEY_BYTES: usize = 255;

struct Link {
    conn: Connection,
    publisher: Channel,
}

/// A shared handle on the broker. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    args: AmqpArgs,
    link: Mutex<Option<Link>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("args", &self.inner.args)
            .finish()
    }
}

impl Bus {
    /// A bus that connects on first use (so a service can start while the broker is down).
    pub fn lazy(args: AmqpArgs) -> Self {
        Self {
            inner: Arc::new(Inner {
                args,
                link: Mutex::new(None),
            }),
        }
    }

    /// A bus connected now, with both exchanges declared.
    pub async fn connect(args: AmqpArgs) -> Result<Self, BusError> {
        let bus = Self::lazy(args);
        bus.publisher().await?;
        Ok(bus)
    }

    /// Names and URL.
    pub fn args(&self) -> &AmqpArgs {
        &self.inner.args
    }

    /// Name of the events exchange.
    pub fn events_exchange(&self) -> &str {
        &self.inner.args.events_exchange
    }

    /// Name of the updates exchange.
    pub fn updates_exchange(&self) -> &str {
        &self.inner.args.updates_exchange
    }

    async fn open(&self) -> Result<Link, BusError> {
        let conn =
            Connection::connect(&self.inner.args.url, ConnectionProperties::default()).await?;
        let publisher = conn.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        for exchange in [self.events_exchange(), self.updates_exchange()] {
            declare_topic(&publisher, exchange).await?;
        }
        tracing::info!(
            events = self.events_exchange(),
            updates = self.updates_exchange(),
            "connected to RabbitMQ"
        );
        Ok(Link { conn, publisher })
    }

    /// The confirm-mode channel, reconnecting when the previous one is gone.
    async fn publisher(&self) -> Result<Channel, BusError> {
        let mut guard = self.inner.link.lock().await;
        if let Some(link) = guard.as_ref() {
            if link.conn.status().connected() && link.publisher.status().connected() {
                return Ok(link.publisher.clone());
            }
        }
        let link = self.open().await?;
        let ch = link.publisher.clone();
        *guard = Some(link);
        Ok(ch)
    }

    /// Forgets the current connection so the next call reconnects.
    async fn reset(&self) {
        if let Some(link) = self.inner.link.lock().await.take() {
            let _ = link.conn.close(200, "reset").await;
        }
    }

    /// A fresh channel on the shared connection, for consumers.
    pub async fn channel(&self) -> Result<Channel, BusError> {
        self.publisher().await?;
        let guard = self.inner.link.lock().await;
        match guard.as_ref() {
            Some(link) => Ok(link.conn.create_channel().await?),
            None => Err(BusError::Amqp(lapin::Error::InvalidConnectionState(
                lapin::ConnectionState::Closed,
            ))),
        }
    }

    /// Publishes a persistent JSON message and waits for the broker's confirm. A failure of
    /// this message alone (a nack, a key that cannot be sent) leaves the shared connection as
    /// it is, so concurrent publishes of other messages are not failed with it; only a lost or
    /// stuck connection is dropped and re-established on the next call.
    pub async fn publish_json(
        &self,
        exchange: &str,
        routing_key: &str,
        message_id: &str,
        body: &[u8],
    ) -> Result<(), BusError> {
        let one = [Outgoing {
            routing_key,
            message_id,
            body,
        }];
        match self.publish_many(exchange, &one).await.pop() {
            Some(result) => result,
            None => Err(BusError::Nacked),
        }
    }

    /// Publishes `items` in order on the confirm channel without waiting between them, then
    /// waits for every confirm: one result per item, in order. Messages of one call reach the
    /// broker (and each queue) in the order given. Items whose key cannot be sent are refused
    /// without touching the channel; after a channel failure the remaining items fail too.
    pub async fn publish_many(
        &self,
        exchange: &str,
        items: &[Outgoing<'_>],
    ) -> Vec<Result<(), BusError>> {
        let results = self.try_publish_many(exchange, items).await;
        // Confirms that never come mean a stuck connection; a channel error, a lost one.
        let stuck = results
            .iter()
            .any(|r| matches!(r, Err(BusError::Timeout(_))));
        let failed = results
            .iter()
            .any(|r| matches!(r, Err(BusError::Amqp(_) | BusError::Unavailable(_))));
        if stuck || (failed && !self.is_connected().await) {
            self.reset().await;
        }
        results
    }

    async fn is_connected(&self) -> bool {
        self.inner
            .link
            .lock()
            .await
            .as_ref()
            .is_some_and(|l| l.conn.status().connected() && l.publisher.status().connected())
    }

    async fn try_publish_many(
        &self,
        exchange: &str,
        items: &[Outgoing<'_>],
    ) -> Vec<Result<(), BusError>> {
        let ch = match self.publisher().await {
            Ok(ch) => ch,
            Err(e) => {
                let msg = e.to_string();
                return items
                    .iter()
                    .map(|_| Err(BusError::Unavailable(msg.clone())))
                    .collect();
            }
        };
        let mut pending = Vec::with_capacity(items.len());
        let mut broken: Option<String> = None;
        for item in items {
            if item.routing_key.len() > MAX_ROUTING_KEY_BYTES {
                pending.push(Err(BusError::RoutingKeyTooLong(item.routing_key.len())));
                continue;
            }
            if let Some(why) = &broken {
                pending.push(Err(BusError::Unavailable(why.clone())));
                continue;
            }
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_message_id(item.message_id.into());
            match ch
                .basic_publish(
                    exchange,
                    item.routing_key,
                    BasicPublishOptions::default(),
                    item.body,
                    props,
                )
                .await
            {
                Ok(confirm) => pending.push(Ok(confirm)),
                Err(e) => {
                    broken = Some(e.to_string());
                    pending.push(Err(BusError::Amqp(e)));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            let confirm = match p {
                Ok(c) => c,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            out.push(match tokio::time::timeout_at(deadline, confirm).await {
                Err(_) => Err(BusError::Timeout(CONFIRM_TIMEOUT)),
                Ok(Err(e)) => Err(e.into()),
                Ok(Ok(c)) if c.is_nack() => Err(BusError::Nacked),
                Ok(Ok(_)) => Ok(()),
            });
        }
        out
    }

    /// True when a connection is up or can be made now.
    pub async fn check(&self) -> Result<(), BusError> {
        self.publisher().await.map(|_| ())
    }

    /// Closes the connection (graceful shutdown).
    pub async fn close(&self) {
        if let Some(link) = self.inner.link.lock().await.take() {
            let _ = link.conn.close(200, "shutdown").await;
        }
    }
}

/// Declares a durable topic exchange.
pub async fn declare_topic(ch: &Channel, name: &str) -> Result<(), lapin::Error> {
    ch.exchange_declare(
        name,
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
}
