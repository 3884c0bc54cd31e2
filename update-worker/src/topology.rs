//! The broker objects of a worker queue `{queue}` (all durable, no message TTL anywhere: a
//! message waits until a worker handles it):
//!
//! - `{queue}`, bound to the events exchange for the event families the worker handles;
//! - `{queue}.shards`, a direct exchange, and behind it one queue per user shard,
//!   `{queue}.shard.{k}` bound with key `{k}`, each with a single active consumer (see
//!   [`crate::shards`]);
//! - `{queue}.dlx`, a fanout exchange that every queue above dead-letters to, and
//!   `{queue}.dlq` behind it, for poison messages and deliveries whose retries ran out.

use chat3_core::bus::declare_topic;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::config::Config;

/// Routing-key patterns the queue is bound with on the events exchange.
pub const BINDINGS: [&str; 3] = ["dialog.#", "message.#", "user.#"];

/// The dead-letter queue of `queue`.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// The dead-letter exchange of `queue`.
pub fn dead_letter_exchange(queue: &str) -> String {
    format!("{queue}.dlx")
}

/// The exchange the events of `queue` are split onto, by user shard.
pub fn shard_exchange(queue: &str) -> String {
    format!("{queue}.shards")
}

/// The queue of shard `k` of `queue`.
pub fn shard_queue(queue: &str, k: u16) -> String {
    format!("{queue}.shard.{k}")
}

/// The routing key of shard `k` on [`shard_exchange`].
pub fn shard_key(k: u16) -> String {
    k.to_string()
}

/// Every queue a worker on `queue` with `shards` shards declares (to remove them).
pub fn queues(queue: &str, shards: u16) -> Vec<String> {
    let mut all = vec![queue.to_owned(), dead_letter_queue(queue)];
    all.extend((0..shards).map(|k| shard_queue(queue, k)));
    all
}

/// Every exchange a worker on `queue` declares besides the events exchange (to remove them).
pub fn exchanges(queue: &str) -> Vec<String> {
    vec![dead_letter_exchange(queue), shard_exchange(queue)]
}

/// Declares (idempotently) the dead-letter exchange and queue, the work queue and its bindings,
/// and the shard exchange and queues.
pub async fn declare(
    channel: &Channel,
    config: &Config,
    events_exchange: &str,
) -> Result<(), lapin::Error> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let exchange = |name: String, kind: ExchangeKind| async move {
        channel
            .exchange_declare(
                &name,
                kind,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
    };
    let dlx = config.dead_letter_exchange();
    let dlq = config.dead_letter_queue();
    exchange(dlx.clone(), ExchangeKind::Fanout).await?;
    channel
        .queue_declare(&dlq, durable, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            &dlq,
            &dlx,
            "",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    declare_topic(channel, events_exchange).await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(dlx.as_str().into()),
    );
    channel
        .queue_declare(&config.queue, durable, args.clone())
        .await?;
    for pattern in BINDINGS {
        channel
            .queue_bind(
                &config.queue,
                events_exchange,
                pattern,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }

    if config.shards == 0 {
        return Ok(());
    }
    let shards = shard_exchange(&config.queue);
    exchange(shards.clone(), ExchangeKind::Direct).await?;
    let mut shard_args = args;
    shard_args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    for k in 0..config.shards {
        let q = shard_queue(&config.queue, k);
        channel
            .queue_declare(&q, durable, shard_args.clone())
            .await?;
        channel
            .queue_bind(
                &q,
                &shards,
                &shard_key(k),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handled_event_type_reaches_the_queue() {
        for t in crate::handlers::HANDLED {
            let bound = BINDINGS
                .iter()
                .any(|p| p.strip_suffix(".#") == Some(t.family()));
            assert!(bound, "{t} is handled but its family is not bound");
        }
    }
}
