//! The broker objects the worker consumes from: a durable queue bound to the events exchange for
//! the event families it handles, and a dead-letter exchange with `{queue}.dlq` behind it for
//! poison messages and deliveries whose retries ran out. No message TTL anywhere: an event waits
//! in the queue until a worker handles it.

use chat3_core::bus::declare_topic;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::config::Config;

/// Routing-key patterns the queue is bound with on the events exchange.
pub const BINDINGS: [&str; 2] = ["dialog.#", "message.#"];

/// Declares (idempotently) the dead-letter exchange and queue, the work queue and its bindings.
pub async fn declare(
    channel: &Channel,
    config: &Config,
    events_exchange: &str,
) -> Result<(), lapin::Error> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let dlx = config.dead_letter_exchange();
    let dlq = config.dead_letter_queue();
    channel
        .exchange_declare(
            &dlx,
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
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
    channel.queue_declare(&config.queue, durable, args).await?;
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
    Ok(())
}
