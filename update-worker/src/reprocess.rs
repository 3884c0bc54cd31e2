//! `update-worker reprocess`: re-runs the fan-out of events from the journal (`events`
//! collection) in a time range, oldest first. Idempotent: recipients who already have the update
//! get the stored one re-published; only missing updates are created. Recipients are the
//! dialog's members now, as in the live path.

use chat3_core::bus::Bus;
use chat3_core::store::Store;
use chat3_core::{journal, updates};
use tokio_util::sync::CancellationToken;

use crate::config::ReprocessArgs;
use crate::fanout::process_event;
use crate::handlers;
use chat3_core::telemetry::progress_bar;

use crate::replay::pacer;

/// What a reprocess run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReprocessSummary {
    /// Journal events of handled types in the range.
    pub matched: u64,
    /// Events fanned out successfully.
    pub processed: u64,
    /// Updates published for them.
    pub published: u64,
    /// Events that failed (logged) or could not be read.
    pub failed: u64,
}

/// Runs a reprocess until done or `shutdown` is cancelled. Fails when any event failed.
#[tracing::instrument(skip_all, fields(tenant = ?args.tenant, from_ms = args.from_ms, to_ms = ?args.to_ms, dry_run = args.dry_run), err)]
pub async fn run(
    args: &ReprocessArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<ReprocessSummary> {
    let store = Store::connect(&args.mongo).await?;
    let to_ms = args.to_ms.unwrap_or_else(chat3_core::ids::now_ms);
    let range = journal::Range {
        tenant: args.tenant.clone(),
        types: handlers::HANDLED
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        from_ms: args.from_ms,
        to_ms,
    };
    let matched = journal::count(&store, &range).await?;
    tracing::info!(matched, "journal events selected for reprocessing");
    let mut summary = ReprocessSummary {
        matched,
        processed: 0,
        published: 0,
        failed: 0,
    };
    if args.dry_run || matched == 0 {
        return Ok(summary);
    }

    updates::ensure_indexes(&store, args.retention.duration()).await?;
    let bus = Bus::connect(args.amqp.clone()).await?;
    let bar = progress_bar(matched, args.quiet);
    let mut pace = pacer(args.rate);
    let mut events = journal::Events::open(&store, &range).await?;
    while let Some(entry) = events.next().await? {
        if shutdown.is_cancelled() {
            tracing::warn!(processed = summary.processed, "reprocess interrupted");
            break;
        }
        if let Some(p) = pace.as_mut() {
            p.tick().await;
        }
        bar.inc(1);
        let Some(event) = entry else {
            summary.failed += 1;
            continue;
        };
        match process_event(&store, &bus, &event).await {
            Ok(n) => {
                summary.processed += 1;
                summary.published += n as u64;
            }
            // Logged by `process_event`'s instrumentation.
            Err(_) => summary.failed += 1,
        }
    }
    bar.finish_and_clear();
    bus.close().await;
    tracing::info!(?summary, "reprocess finished");
    if summary.failed > 0 {
        anyhow::bail!("{} of {} events failed", summary.failed, summary.matched);
    }
    Ok(summary)
}
