//! Watching the updates exchange the way a client of chat3 would: an exclusive, auto-deleted
//! queue bound with a routing-key pattern, consumed without acks. Each update is stamped with its
//! arrival time and handed to the workload, which matches it to the POST that caused it by
//! `data.message.messageId`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One update as it arrived.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// When the delivery reached the bench.
    pub at: Instant,
    /// Recipient.
    pub user_id: String,
    /// `message`, `dialog`, ...
    pub update_type: String,
    /// `data.message.messageId`, when present.
    pub message_id: Option<String>,
}

impl Arrival {
    /// True for a `message` update.
    pub fn is_message(&self) -> bool {
        self.update_type == "message"
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUpdate {
    user_id: String,
    update_type: String,
    #[serde(default)]
    data: WireData,
}

#[derive(Deserialize, Default)]
struct WireData {
    #[serde(default)]
    message: Option<WireMessage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    message_id: String,
}

/// A live subscription to the updates exchange.
pub struct Listener {
    rx: mpsc::UnboundedReceiver<Arrival>,
    channel: Channel,
    task: JoinHandle<()>,
    malformed: Arc<AtomicU64>,
}

impl Listener {
    /// Binds a fresh exclusive queue to `exchange` with `pattern` and starts consuming. Updates
    /// published after this returns are seen.
    pub async fn bind(conn: &Connection, exchange: &str, pattern: &str) -> Result<Self> {
        let channel = conn.create_channel().await?;
        let queue = channel
            .queue_declare(
                "",
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let name = queue.name().as_str().to_owned();
        channel
            .queue_bind(
                &name,
                exchange,
                pattern,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut consumer = channel
            .basic_consume(
                &name,
                "chat3-bench",
                BasicConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let malformed = Arc::new(AtomicU64::new(0));
        let bad = malformed.clone();
        let task = tokio::spawn(async move {
            while let Some(delivery) = consumer.next().await {
                let Ok(delivery) = delivery else { break };
                let at = Instant::now();
                match serde_json::from_slice::<WireUpdate>(&delivery.data) {
                    Ok(u) => {
                        let arrival = Arrival {
                            at,
                            user_id: u.user_id,
                            update_type: u.update_type,
                            message_id: u.data.message.map(|m| m.message_id),
                        };
                        if tx.send(arrival).is_err() {
                            break;
                        }
                    }
                    Err(_) => {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Ok(Self {
            rx,
            channel,
            task,
            malformed,
        })
    }

    /// The next arrival, or `None` when `until` passes first.
    pub async fn next_until(&mut self, until: Instant) -> Option<Arrival> {
        let now = Instant::now();
        if until <= now {
            return self.rx.try_recv().ok();
        }
        tokio::time::timeout(until - now, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Updates that were not the JSON shape expected.
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Stops consuming; the queue goes away with its channel.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.channel.close(200, "done")).await;
        self.task.abort();
    }
}
