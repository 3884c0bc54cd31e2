//! The consume loop: deliveries are taken in batches (whatever has arrived, up to the batch
//! size), fanned out together, each acked only after its updates are stored and published, and
//! settled exactly once:
//!
//! - unparseable or malformed events are rejected without requeue (to `{queue}.dlq`);
//! - failures because the store or the broker is unavailable are retried in process with
//!   capped exponential backoff for the retry budget (minutes: longer than a store restart or a
//!   broker cut), then requeued; they are never dead-lettered;
//! - other failures get a few attempts, are requeued once, and dead-lettered if they fail again
//!   on the redelivery;
//! - event types not handled are acked.
//!
//! When the consumer channel is lost, a batch still retrying stops at once (its deliveries can
//! no longer be settled; the broker redelivers them to the next consumer).
//!
//! On shutdown the consumer is cancelled, deliveries already received are still handled, and the
//! channel is closed once all of them are settled. A lost connection is re-established.

use std::sync::Arc;
use std::time::Duration;

use chat3_core::bus::Bus;
use chat3_core::store::Store;
use chat3_sdk::EventEnvelope;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::Channel;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::fanout::{prepare, process_batch, Prepared, ProcessError, Retry};
use crate::topology;

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

/// One channel's lifetime: declare, consume in batches, and on shutdown drain and close.
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
    tracing::info!(queue = %ctx.config.queue, prefetch = ctx.config.prefetch, batch = ctx.config.batch, "consuming events");

    let max_batch = ctx.config.batch.max(1);
    let result = loop {
        let first = tokio::select! {
            _ = ctx.shutdown.cancelled() => break Ok(()),
            next = consumer.next() => match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => break Err(anyhow::Error::from(e)),
                None => break Err(anyhow::anyhow!("the broker cancelled the consumer")),
            },
        };
        // Everything that is already here goes into the same batch.
        let mut batch = vec![first];
        let mut ended = None;
        while batch.len() < max_batch {
            match consumer.next().now_or_never() {
                Some(Some(Ok(delivery))) => batch.push(delivery),
                Some(Some(Err(e))) => {
                    ended = Some(anyhow::Error::from(e));
                    break;
                }
                Some(None) => {
                    ended = Some(anyhow::anyhow!("the broker cancelled the consumer"));
                    break;
                }
                None => break,
            }
        }
        handle_batch(ctx, &channel, batch).await;
        if let Some(e) = ended {
            break Err(e);
        }
    };

    if result.is_ok() {
        // Stop intake; deliveries the broker already sent arrive before the end of the stream
        // and are handled like the others.
        if let Err(e) = channel
            .basic_cancel(&tag, BasicCancelOptions::default())
            .await
        {
            tracing::warn!(error = %e, "cancelling the consumer failed");
        } else {
            let mut rest = Vec::new();
            while let Some(Ok(delivery)) = consumer.next().await {
                rest.push(delivery);
            }
            while !rest.is_empty() {
                let tail = rest.split_off(rest.len().min(max_batch));
                handle_batch(ctx, &channel, std::mem::replace(&mut rest, tail)).await;
            }
        }
    }
    if channel.status().connected() {
        if let Err(e) = channel.close(200, "shutdown").await {
            tracing::warn!(error = %e, "closing the consumer channel failed");
        }
    }
    result
}

/// Handles one batch of deliveries and settles each exactly once. Events that cannot be read
/// or lack what their type needs are dead-lettered on their own; the others are fanned out
/// together. When the batch fails for a reason retrying cannot fix, its events are tried one by
/// one, so that one bad event does not take the others with it.
#[tracing::instrument(skip_all, fields(deliveries = deliveries.len()))]
async fn handle_batch(ctx: &Ctx, channel: &Channel, deliveries: Vec<Delivery>) {
    let mut ready: Vec<(Delivery, Prepared)> = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let event: EventEnvelope = match serde_json::from_slice(&delivery.data) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, routing_key = %delivery.routing_key, "unparseable event; dead-lettering");
                settle(&delivery, Outcome::DeadLetter).await;
                continue;
            }
        };
        match prepare(event) {
            Ok(Some(p)) => ready.push((delivery, p)),
            Ok(None) => settle(&delivery, Outcome::Ack).await,
            Err(e) => {
                tracing::warn!(error = %e, "event cannot be processed; dead-lettering");
                settle(&delivery, Outcome::DeadLetter).await;
            }
        }
    }
    if ready.is_empty() {
        return;
    }
    let events: Vec<Prepared> = ready.iter().map(|(_, p)| p.clone()).collect();
    match attempt(ctx, channel, &events).await {
        Attempt::Done => settle_all(&ready, Outcome::Ack).await,
        Attempt::Requeue => settle_all(&ready, Outcome::Requeue).await,
        Attempt::Failed(e) if ready.len() == 1 => {
            let (delivery, p) = &ready[0];
            settle(delivery, give_up(&p.event, &e, delivery.redelivered)).await;
        }
        Attempt::Failed(e) => {
            tracing::warn!(error = %e, events = ready.len(), "batch failed; trying its events one by one");
            for (delivery, p) in &ready {
                let outcome = match attempt(ctx, channel, std::slice::from_ref(p)).await {
                    Attempt::Done => Outcome::Ack,
                    Attempt::Requeue => Outcome::Requeue,
                    Attempt::Failed(e) => give_up(&p.event, &e, delivery.redelivered),
                };
                settle(delivery, outcome).await;
            }
        }
    }
}

/// What came of fanning out a batch (with its retries).
enum Attempt {
    /// Stored and published.
    Done,
    /// Give it back to the broker (outage past the budget, shutdown, channel lost).
    Requeue,
    /// Failed for a reason retrying did not fix.
    Failed(ProcessError),
}

/// Fans out `events`, retrying as the failure's class says (see the module docs).
async fn attempt(ctx: &Ctx, channel: &Channel, events: &[Prepared]) -> Attempt {
    let started = tokio::time::Instant::now();
    let mut bounded_failures = 0;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let failure = match process_batch(&ctx.store, &ctx.publisher, events).await {
            Ok(n) => {
                tracing::debug!(
                    events = events.len(),
                    updates = n,
                    attempt,
                    "batch fanned out"
                );
                return Attempt::Done;
            }
            Err(e) => e,
        };
        match failure.retry() {
            Retry::Never => return Attempt::Failed(failure),
            Retry::UntilAvailable if started.elapsed() >= ctx.config.retry_budget() => {
                tracing::warn!(error = %failure, "still unavailable after the retry budget; requeueing");
                return Attempt::Requeue;
            }
            Retry::UntilAvailable => {
                tracing::info!(error = %failure, attempt, "unavailable; retrying");
            }
            Retry::Bounded => {
                bounded_failures += 1;
                if bounded_failures >= ctx.config.max_attempts.max(1) {
                    return Attempt::Failed(failure);
                }
            }
        }
        if ctx.shutdown.is_cancelled() {
            tracing::warn!(error = %failure, "shutting down during retries; requeueing");
            return Attempt::Requeue;
        }
        if !channel.status().connected() {
            // The deliveries can no longer be settled here; the broker redelivers them.
            tracing::info!("consumer channel lost; the broker redelivers");
            return Attempt::Requeue;
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => {
                tracing::warn!(error = %failure, "shutting down during retries; requeueing");
                return Attempt::Requeue;
            }
            _ = tokio::time::sleep(ctx.config.retry_delay(attempt)) => {}
        }
    }
}

async fn settle_all(items: &[(Delivery, Prepared)], outcome: Outcome) {
    for (delivery, _) in items {
        settle(delivery, outcome).await;
    }
}

/// Settles one delivery exactly once.
async fn settle(delivery: &Delivery, outcome: Outcome) {
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

fn give_up(event: &EventEnvelope, failure: &ProcessError, redelivered: bool) -> Outcome {
    if matches!(failure.retry(), Retry::Never) {
        tracing::warn!(event_id = %event.event_id, error = %failure, "event cannot be processed; dead-lettering");
        return Outcome::DeadLetter;
    }
    if redelivered {
        tracing::error!(event_id = %event.event_id, error = %failure, "retries exhausted on a redelivery; dead-lettering");
        Outcome::DeadLetter
    } else {
        tracing::warn!(event_id = %event.event_id, error = %failure, "retries exhausted; requeueing once");
        Outcome::Requeue
    }
}
