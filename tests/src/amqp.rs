//! A test consumer: an exclusive queue on the real broker bound to a test exchange, to observe
//! exactly what the services publish.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, Consumer};

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    /// Routing key it was published with.
    pub routing_key: String,
    /// AMQP `message_id`.
    pub message_id: Option<String>,
    /// `content_type`.
    pub content_type: Option<String>,
    /// Delivery mode (2 = persistent).
    pub delivery_mode: Option<u8>,
    /// Parsed JSON body.
    pub body: serde_json::Value,
}

/// A queue bound to an exchange with one or more patterns.
pub struct TestQueue {
    _conn: Connection,
    consumer: Consumer,
}

impl TestQueue {
    /// Declares the exchange (durable topic, as the services do) and binds a fresh exclusive
    /// queue with `patterns`.
    pub async fn bind(url: &str, exchange: &str, patterns: &[&str]) -> Self {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| panic!("connect to RabbitMQ: {e}"));
        let ch = conn
            .create_channel()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        chat3_core::bus::declare_topic(&ch, exchange)
            .await
            .unwrap_or_else(|e| panic!("declare {exchange}: {e}"));
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
            .unwrap_or_else(|e| panic!("declare queue: {e}"));
        for p in patterns {
            ch.queue_bind(
                q.name().as_str(),
                exchange,
                p,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        }
        let consumer = ch
            .basic_consume(
                q.name().as_str(),
                "test",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("consume: {e}"));
        Self {
            _conn: conn,
            consumer,
        }
    }

    /// The next message, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Received> {
        let delivery = tokio::time::timeout(timeout, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        let p = &delivery.properties;
        Some(Received {
            routing_key: delivery.routing_key.to_string(),
            message_id: p.message_id().as_ref().map(|s| s.to_string()),
            content_type: p.content_type().as_ref().map(|s| s.to_string()),
            delivery_mode: *p.delivery_mode(),
            body: serde_json::from_slice(&delivery.data).unwrap_or(serde_json::Value::Null),
        })
    }

    /// The body of the next message within 10 s, or a panic.
    pub async fn next_body(&mut self) -> serde_json::Value {
        self.next(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no message within 10 s"))
            .body
    }

    /// Everything that arrives until `quiet` passes without a message.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Received> {
        let mut out = Vec::new();
        while let Some(m) = self.next(quiet).await {
            out.push(m);
        }
        out
    }
}

/// Deletes durable queues a test created (best effort).
pub async fn delete_queues<S: AsRef<str>>(url: &str, names: &[S]) {
    let Ok(conn) = Connection::connect(url, ConnectionProperties::default()).await else {
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        for n in names {
            let _ = ch
                .queue_delete(n.as_ref(), lapin::options::QueueDeleteOptions::default())
                .await;
        }
    }
    let _ = conn.close(200, "done").await;
}

/// Deletes exchanges a test created (best effort), so test runs leave nothing on the broker.
pub async fn delete_exchanges<S: AsRef<str>>(url: &str, names: &[S]) {
    let Ok(conn) = Connection::connect(url, ConnectionProperties::default()).await else {
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        for n in names {
            let _ = ch
                .exchange_delete(n.as_ref(), lapin::options::ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = conn.close(200, "done").await;
}

/// Messages ready in `queue` (not counting unacked ones); 0 when the queue does not exist.
pub async fn queue_depth(url: &str, queue: &str) -> u32 {
    let Ok(conn) = Connection::connect(url, ConnectionProperties::default()).await else {
        return 0;
    };
    let mut depth = 0;
    if let Ok(ch) = conn.create_channel().await {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        if let Ok(q) = ch
            .queue_declare(queue, passive, FieldTable::default())
            .await
        {
            depth = q.message_count();
        }
    }
    let _ = conn.close(200, "done").await;
    depth
}

/// Deletes the queues and exchanges an update worker with `config` declared (best effort).
pub async fn delete_worker_objects(url: &str, config: &chat3_update_worker::Config) {
    delete_exchanges(url, &config.broker_exchanges()).await;
    delete_queues(url, &config.broker_queues()).await;
}
