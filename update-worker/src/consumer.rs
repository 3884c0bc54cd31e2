//! The consume loop: deliveries are handled concurrently up to the prefetch, each acked only after
//! its updates are stored and published, and settled exactly once:
//!
//! - unparseable or malformed events are rejected without requeue (to `{queue}.dlq`);
//! - failures because the store or the broker is unavailable are retried in process with
//!   capped exponential backoff for the retry budget (minutes: longer than a store restart or a
//!   broker cut), then requeued; they are never dead-lettered;
//! - other failures get a few attempts, are requeued once, and dead-lettered if they fail again
//!   on the redelivery;
//! - event types not handled are acked.
//!
//! When the consumer channel is lost, deliveries still retrying stop at once (they can no
//! longer be settled; the broker redelivers them to the next consumer).
//!
//! On shutdown the consumer is cancelled, deliveries already received are still handled, and the
//! channel is closed once all of them are settled. A lost connection is re-established.

use std::sync::Arc;
use std::time::Duration;

use chat3_core::bus::Bus;
use chat3_core::store::Store;
use chat3_sdk::EventEnvelope;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::fanout::{process_event, Kind, ProcessError, Retry};
use crate::topology;
use chat3_core::stripes::Stripes;

/// Longest wait between two reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(10);

/// What a worker shares between its deliveries.
pub(crate) struct Ctx {
    pub store: Store,
    /// Publishes updates (its own connection, so a publish failure that resets it does not take
    /// the consumer channel down).
    pub publisher: Bus,
    /// Owns the consumer channel.
    pub consumer: Bus,
    pub config: Config,
    pub shutdown: CancellationToken,
    pub locks: Stripes,
}

/// How a delivery is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ack,
    Requeue,
    DeadLetter,
}

/// Consumes until `shutdown` is cancelled, reconnecting after broker failures.
pub(crate) async fn run(ctx: Arc<Ctx>) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(250);
    loop {
        match session(&ctx).await {
            Ok(()) => break,
            Err(e) if ctx.shutdown.is_cancelled() => {
                tracing::warn!(error = %e, "consumer ended with an error during shutdown");
                break;
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?delay, "consumer failed; reconnecting");
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_RECONNECT_DELAY);
            }
        }
    }
    ctx.publisher.close().await;
    ctx.consumer.close().await;
    tracing::info!("update worker stopped");
    Ok(())
}

/// One channel's lifetime: declare, consume, and on shutdown drain and close.
async fn session(ctx: &Arc<Ctx>) -> anyhow::Result<()> {
    let channel = ctx.consumer.channel().await?;
    topology::declare(&channel, &ctx.config, ctx.consumer.events_exchange()).await?;
    channel
        .basic_qos(ctx.config.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("update-worker-{}", chat3_core::ids::random_base36(8));
    let mut consumer = channel
        .basic_consume(
            &ctx.config.queue,
            &tag,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %ctx.config.queue, prefetch = ctx.config.prefetch, "consuming events");

    let mut inflight = JoinSet::new();
    // Cancelled when this channel is gone: its deliveries can no longer be settled.
    let lost = CancellationToken::new();
    let result = loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break Ok(()),
            next = consumer.next() => match next {
                Some(Ok(delivery)) => { inflight.spawn(handle(ctx.clone(), delivery, lost.clone())); }
                Some(Err(e)) => break Err(anyhow::Error::from(e)),
                None => break Err(anyhow::anyhow!("the broker cancelled the consumer")),
            },
            Some(done) = inflight.join_next(), if !inflight.is_empty() => log_join(done),
        }
    };
    if result.is_err() {
        lost.cancel();
    }

    if result.is_ok() {
        // Stop intake; deliveries the broker already sent arrive before the end of the stream
        // and are handled like the others.
        if let Err(e) = channel
            .basic_cancel(&tag, BasicCancelOptions::default())
            .await
        {
            tracing::warn!(error = %e, "cancelling the consumer failed");
        } else {
            while let Some(Ok(delivery)) = consumer.next().await {
                inflight.spawn(handle(ctx.clone(), delivery, lost.clone()));
            }
        }
    }
    while let Some(done) = inflight.join_next().await {
        log_join(done);
    }
    if channel.status().connected() {
        if let Err(e) = channel.close(200, "shutdown").await {
            tracing::warn!(error = %e, "closing the consumer channel failed");
        }
    }
    result
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "delivery task panicked");
    }
}

/// Handles one delivery and settles it exactly once.
#[tracing::instrument(skip_all, fields(delivery_tag = delivery.delivery_tag, redelivered = delivery.redelivered))]
async fn handle(ctx: Arc<Ctx>, delivery: Delivery, lost: CancellationToken) {
    let outcome = decide(&ctx, &delivery, &lost).await;
    let settled = match outcome {
        Outcome::Ack => delivery.ack(BasicAckOptions::default()).await,
        Outcome::Requeue => {
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
        }
        Outcome::DeadLetter => delivery.reject(BasicRejectOptions { requeue: false }).await,
    };
    if let Err(e) = settled {
        // The channel is gone; the broker redelivers the message elsewhere.
        tracing::warn!(error = %e, ?outcome, "settling the delivery failed");
    }
}

async fn decide(ctx: &Ctx, delivery: &Delivery, lost: &CancellationToken) -> Outcome {
    let event: EventEnvelope = match serde_json::from_slice(&delivery.data) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, routing_key = %delivery.routing_key, "unparseable event; dead-lettering");
            return Outcome::DeadLetter;
        }
    };
    if Kind::of(&event.event_type).is_none() {
        tracing::debug!(event_id = %event.event_id, event_type = %event.event_type, "event type not handled; acking");
        return Outcome::Ack;
    }
    let started = tokio::time::Instant::now();
    let mut bounded_failures = 0;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let failure = match process_event(&ctx.store, &ctx.publisher, &ctx.locks, &event).await {
            Ok(n) => {
                tracing::debug!(event_id = %event.event_id, updates = n, attempt, "event fanned out");
                return Outcome::Ack;
            }
            Err(e) => e,
        };
        match failure.retry() {
            Retry::Never => {
                tracing::warn!(event_id = %event.event_id, error = %failure, "event cannot be processed; dead-lettering");
                return Outcome::DeadLetter;
            }
            Retry::UntilAvailable if started.elapsed() >= ctx.config.retry_budget() => {
                tracing::warn!(event_id = %event.event_id, error = %failure, "still unavailable after the retry budget; requeueing");
                return Outcome::Requeue;
            }
            Retry::UntilAvailable => {
                tracing::info!(event_id = %event.event_id, error = %failure, attempt, "unavailable; retrying");
            }
            Retry::Bounded => {
                bounded_failures += 1;
                if bounded_failures >= ctx.config.max_attempts.max(1) {
                    return give_up(&event, &failure, delivery.redelivered);
                }
            }
        }
        if ctx.shutdown.is_cancelled() {
            return requeue_on_shutdown(&event, &failure);
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return requeue_on_shutdown(&event, &failure),
            _ = lost.cancelled() => {
                tracing::info!(event_id = %event.event_id, "consumer channel lost; the broker redelivers");
                return Outcome::Requeue;
            }
            _ = tokio::time::sleep(ctx.config.retry_delay(attempt)) => {}
        }
    }
}

fn requeue_on_shutdown(event: &EventEnvelope, failure: &ProcessError) -> Outcome {
    tracing::warn!(event_id = %event.event_id, error = %failure, "shutting down during retries; requeueing");
    Outcome::Requeue
}

fn give_up(event: &EventEnvelope, failure: &ProcessError, redelivered: bool) -> Outcome {
    if redelivered {
        tracing::error!(event_id = %event.event_id, error = %failure, "retries exhausted on a redelivery; dead-lettering");
        Outcome::DeadLetter
    } else {
        tracing::warn!(event_id = %event.event_id, error = %failure, "retries exhausted; requeueing once");
        Outcome::Requeue
    }
}
