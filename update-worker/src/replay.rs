//! `update-worker replay`: re-publishes stored updates (a tenant, optionally one user, a seq or
//! time range) exactly as stored, rate-limited, with a progress bar. Consumers deduplicate by
//! update id / seq, so replaying is safe.

use std::time::Duration;

use chat3_core::bus::Bus;
use chat3_core::store::Store;
use chat3_core::telemetry::progress_bar;
use chat3_core::updates::{self, Selection};
use futures_util::TryStreamExt;
use tokio_util::sync::CancellationToken;

use crate::config::ReplayArgs;
use crate::fanout;

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Stored updates matching the selection.
    pub matched: u64,
    /// Updates published (0 on a dry run).
    pub published: u64,
}

/// Runs a replay until done or `shutdown` is cancelled.
#[tracing::instrument(skip_all, fields(tenant = %args.tenant, user = ?args.user, dry_run = args.dry_run), err)]
pub async fn run(args: &ReplayArgs, shutdown: CancellationToken) -> anyhow::Result<ReplaySummary> {
    let store = Store::connect(&args.mongo).await?;
    let selection = Selection {
        tenant: args.tenant.clone(),
        user: args.user.clone(),
        from_seq: args.from_seq,
        to_seq: args.to_seq,
        from_ms: args.from_ms,
        to_ms: args.to_ms,
    };
    let matched = updates::count(&store, &selection).await?;
    tracing::info!(matched, "updates selected for replay");
    if args.dry_run || matched == 0 {
        return Ok(ReplaySummary {
            matched,
            published: 0,
        });
    }

    let bus = Bus::connect(args.amqp.clone()).await?;
    let bar = progress_bar(matched, args.quiet);
    let mut pace = pacer(args.rate);
    let mut published = 0;
    let mut stream = std::pin::pin!(updates::select(&store, &selection).await?);
    while let Some(update) = stream.try_next().await? {
        if shutdown.is_cancelled() {
            tracing::warn!(published, "replay interrupted");
            break;
        }
        if let Some(p) = pace.as_mut() {
            p.tick().await;
        }
        fanout::publish(&bus, std::slice::from_ref(&update)).await?;
        published += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    bus.close().await;
    tracing::info!(published, "replay finished");
    Ok(ReplaySummary { matched, published })
}

/// A ticker allowing `rate` items per second, or `None` for no limit.
pub(crate) fn pacer(rate: u32) -> Option<tokio::time::Interval> {
    if rate == 0 {
        return None;
    }
    let mut interval = tokio::time::interval(Duration::from_secs(1) / rate);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Some(interval)
}
