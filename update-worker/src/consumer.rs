//! The consume loops: one on the events queue (stage 1, splitting events by user shard, see
//! [`crate::shards`]) and one per shard the worker owns (stage 2, writing and publishing the
//! updates), rebalanced at every heartbeat. Deliveries are taken in batches (whatever has
//! arrived, up to the batch size), handled together, each acked only after its work is done
//! (published to the shard queues, or updates stored and published), and settled exactly once:
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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chat3_core::bus::Bus;
use chat3_core::store::Store;
use chat3_sdk::{EventEnvelope, UserId};
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::Channel;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::fanout::{prepare, process_batch, process_for, split, Prepared, ProcessError, Retry};
use crate::shards::{self, ShardWork};
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
    /// This worker's id among the workers of its queue.
    pub id: String,
}

/// Where a consume loop takes its deliveries from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The events queue (stage 1).
    Events,
    /// Shard `k`'s queue (stage 2).
    Shard(u16),
}

impl Source {
    fn queue(self, config: &Config) -> String {
        match self {
            Source::Events => config.queue.clone(),
            Source::Shard(k) => topology::shard_queue(&config.queue, k),
        }
    }
}

/// A delivery's event, checked, with the recipients it is for when it comes from a shard.
#[derive(Debug, Clone)]
struct Item {
    prepared: Prepared,
    users: Option<Vec<UserId>>,
}

/// How a delivery is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ack,
    Requeue,
    DeadLetter,
}

/// Consumes until `shutdown` is cancelled: the events queue, and the shards this worker owns.
pub(crate) async fn run(ctx: Arc<Ctx>) -> anyhow::Result<()> {
    let events = tokio::spawn(consume(ctx.clone(), Source::Events, ctx.shutdown.clone()));
    if ctx.config.shards > 0 {
        manage_shards(&ctx).await;
    }
    if let Err(e) = events.await {
        tracing::error!(error = %e, "events consumer panicked");
    }
    ctx.publisher.close().await;
    ctx.consumer.close().await;
    tracing::info!("update worker stopped");
    Ok(())
}

/// Keeps one consume loop per owned shard, rebalancing at every heartbeat, until shutdown;
/// then drains them and removes this worker's heartbeat.
async fn manage_shards(ctx: &Arc<Ctx>) {
    let config = &ctx.config;
    let mut running: BTreeMap<u16, (CancellationToken, JoinHandle<()>)> = BTreeMap::new();
    let mut stopping: Vec<JoinHandle<()>> = Vec::new();
    let mut tick = tokio::time::interval(config.heartbeat());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let want = match shards::beat(&ctx.store, &ctx.id, &config.queue, config.heartbeat()).await
        {
            Ok(live) => shards::owned(&ctx.id, &live, &config.queue, config.shards),
            // Without the store nobody can write updates; a worker that starts then owns every
            // shard (the single active consumer keeps one writer per shard), one that runs keeps
            // what it has.
            Err(e) if running.is_empty() => {
                tracing::warn!(error = %e, "heartbeat failed; taking every shard for now");
                (0..config.shards).collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed; keeping the shards owned");
                continue;
            }
        };
        let gone: Vec<u16> = running
            .keys()
            .filter(|k| !want.contains(k))
            .copied()
            .collect();
        let changed = !gone.is_empty() || want.iter().any(|k| !running.contains_key(k));
        for k in gone {
            if let Some((stop, task)) = running.remove(&k) {
                stop.cancel();
                stopping.push(task);
            }
        }
        for k in want {
            running.entry(k).or_insert_with(|| {
                let stop = ctx.shutdown.child_token();
                let task = tokio::spawn(consume(ctx.clone(), Source::Shard(k), stop.clone()));
                (stop, task)
            });
        }
        stopping.retain(|t| !t.is_finished());
        if changed {
            tracing::info!(worker = %ctx.id, shards = ?running.keys().collect::<Vec<_>>(), of = config.shards, "shards owned");
        }
    }
    for task in running.into_values().map(|(_, t)| t).chain(stopping) {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "shard consumer panicked");
        }
    }
    if let Err(e) = shards::leave(&ctx.store, &ctx.id).await {
        tracing::warn!(error = %e, "removing the heartbeat failed; the others take over when it expires");
    }
}

/// Consumes `source` until `stop` is cancelled, reconnecting after broker failures.
async fn consume(ctx: Arc<Ctx>, source: Source, stop: CancellationToken) {
    let mut delay = Duration::from_millis(250);
    loop {
        match session(&ctx, source, &stop).await {
            Ok(()) => break,
            Err(e) if stop.is_cancelled() => {
                tracing::warn!(error = %e, ?source, "consumer ended with an error during shutdown");
                break;
            }
            Err(e) => {
                tracing::error!(error = %e, ?source, retry_in = ?delay, "consumer failed; reconnecting");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_RECONNECT_DELAY);
            }
        }
    }
}

/// One channel's lifetime: declare, consume in batches, and on shutdown drain and close.
async fn session(ctx: &Arc<Ctx>, source: Source, stop: &CancellationToken) -> anyhow::Result<()> {
    let channel = ctx.consumer.channel().await?;
    if source == Source::Events {
        topology::declare(&channel, &ctx.config, ctx.consumer.events_exchange()).await?;
    }
    channel
        .basic_qos(ctx.config.prefetch, BasicQosOptions::default())
        .await?;
    let queue = source.queue(&ctx.config);
    let tag = format!(
        "update-worker-{}-{}",
        ctx.id,
        chat3_core::ids::random_base36(6)
    );
    let mut consumer = channel
        .basic_consume(
            &queue,
            &tag,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %queue, prefetch = ctx.config.prefetch, batch = ctx.config.batch, "consuming");

    let max_batch = ctx.config.batch.max(1);
    let result = loop {
        let first = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
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
        handle_batch(ctx, &channel, source, stop, batch).await;
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
                handle_batch(
                    ctx,
                    &channel,
                    source,
                    stop,
                    std::mem::replace(&mut rest, tail),
                )
                .await;
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

/// Handles one batch of deliveries and settles each exactly once. Deliveries that cannot be
/// read or lack what their event type needs are dead-lettered on their own; the others are
/// handled together. When the batch fails for a reason retrying cannot fix, its deliveries are
/// tried one by one, so that one bad event does not take the others with it.
#[tracing::instrument(skip_all, fields(?source, deliveries = deliveries.len()))]
async fn handle_batch(
    ctx: &Ctx,
    channel: &Channel,
    source: Source,
    stop: &CancellationToken,
    deliveries: Vec<Delivery>,
) {
    let mut ready: Vec<(Delivery, Item)> = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let (event, users) = match read(source, &delivery.data) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, routing_key = %delivery.routing_key, "unparseable delivery; dead-lettering");
                settle(&delivery, Outcome::DeadLetter).await;
                continue;
            }
        };
        match prepare(event) {
            Ok(Some(prepared)) => ready.push((delivery, Item { prepared, users })),
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
    let items: Vec<Item> = ready.iter().map(|(_, i)| i.clone()).collect();
    match attempt(ctx, channel, stop, &items).await {
        Attempt::Done => settle_all(&ready, Outcome::Ack).await,
        Attempt::Requeue => settle_all(&ready, Outcome::Requeue).await,
        Attempt::Failed(e) if ready.len() == 1 => {
            let (delivery, item) = &ready[0];
            settle(
                delivery,
                give_up(&item.prepared.event, &e, delivery.redelivered),
            )
            .await;
        }
        Attempt::Failed(e) => {
            tracing::warn!(error = %e, deliveries = ready.len(), "batch failed; trying its deliveries one by one");
            for (delivery, item) in &ready {
                let outcome = match attempt(ctx, channel, stop, std::slice::from_ref(item)).await {
                    Attempt::Done => Outcome::Ack,
                    Attempt::Requeue => Outcome::Requeue,
                    Attempt::Failed(e) => give_up(&item.prepared.event, &e, delivery.redelivered),
                };
                settle(delivery, outcome).await;
            }
        }
    }
}

/// The event of a delivery, and from a shard queue the recipients it is for.
fn read(source: Source, body: &[u8]) -> serde_json::Result<(EventEnvelope, Option<Vec<UserId>>)> {
    match source {
        Source::Events => Ok((serde_json::from_slice(body)?, None)),
        Source::Shard(_) => {
            let work: ShardWork = serde_json::from_slice(body)?;
            Ok((work.event, Some(work.users)))
        }
    }
}

/// Does the work of `items` once: split events onto the shard queues (or fan them out here when
/// sharding is off), or write and publish a shard's updates.
async fn work(ctx: &Ctx, items: &[Item]) -> Result<usize, ProcessError> {
    let prepared: Vec<Prepared> = items.iter().map(|i| i.prepared.clone()).collect();
    let users: Option<Vec<Vec<UserId>>> = items.iter().map(|i| i.users.clone()).collect();
    match users {
        Some(users) => process_for(&ctx.store, &ctx.publisher, &prepared, users).await,
        None if ctx.config.shards == 0 => {
            process_batch(&ctx.store, &ctx.publisher, &prepared).await
        }
        None => {
            let exchange = topology::shard_exchange(&ctx.config.queue);
            split(
                &ctx.store,
                &ctx.publisher,
                &exchange,
                ctx.config.shards,
                &prepared,
            )
            .await
        }
    }
}

/// What came of handling a batch (with its retries).
enum Attempt {
    /// Done.
    Done,
    /// Give it back to the broker (outage past the budget, shutdown, channel lost).
    Requeue,
    /// Failed for a reason retrying did not fix.
    Failed(ProcessError),
}

/// Handles `items`, retrying as the failure's class says (see the module docs).
async fn attempt(
    ctx: &Ctx,
    channel: &Channel,
    stop: &CancellationToken,
    items: &[Item],
) -> Attempt {
    let started = tokio::time::Instant::now();
    let mut bounded_failures = 0;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let failure = match work(ctx, items).await {
            Ok(n) => {
                tracing::debug!(deliveries = items.len(), out = n, attempt, "batch handled");
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
        if stop.is_cancelled() {
            tracing::warn!(error = %failure, "stopping during retries; requeueing");
            return Attempt::Requeue;
        }
        if !channel.status().connected() {
            // The deliveries can no longer be settled here; the broker redelivers them.
            tracing::info!("consumer channel lost; the broker redelivers");
            return Attempt::Requeue;
        }
        tokio::select! {
            _ = stop.cancelled() => {
                tracing::warn!(error = %failure, "stopping during retries; requeueing");
                return Attempt::Requeue;
            }
            _ = tokio::time::sleep(ctx.config.retry_delay(attempt)) => {}
        }
    }
}

async fn settle_all(items: &[(Delivery, Item)], outcome: Outcome) {
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
