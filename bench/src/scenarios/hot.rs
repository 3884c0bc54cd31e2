//! The hot user: one user in many two-member dialogs. A burst of one message per dialog (each
//! from the other member) measures how fast that one user's updates arrive; then closed-loop
//! readers of the hot user's inbox measure the inbox query.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::{await_dialog_updates, cores_json, Ctx, Outcome};
use crate::http::Api;
use crate::load::{bounded, closed_loop};
use crate::raw::closed_json;
use crate::report::{Basis, Row};
use crate::stats::{rate, Tally};

/// The hot user's tenant and dialogs.
pub struct HotUser {
    api: Api,
    user: String,
    /// (dialog id, the other member).
    dialogs: Arc<Vec<(String, String)>>,
    rounds: usize,
}

/// Creates the hot user's dialogs and waits for their setup updates.
pub async fn setup(ctx: &Ctx) -> Result<(HotUser, serde_json::Value)> {
    let plan = &ctx.plan;
    let api = ctx.tenant("hot").await?;
    let user = "hot".to_owned();
    let mut listener = ctx.listen(&format!("update.{}.#", api.tenant)).await?;
    let started = Instant::now();
    let made = bounded(plan.hot_dialogs, plan.burst_concurrency, |i| {
        let api = api.clone();
        let hot = user.clone();
        let other = format!("h{i}");
        async move {
            let id = api.create_dialog(&[hot, other.clone()]).await?;
            Ok::<_, anyhow::Error>((id, other))
        }
    })
    .await;
    let dialogs: Vec<(String, String)> = made.into_iter().collect::<Result<_>>()?;
    let created = started.elapsed();
    await_dialog_updates(&mut listener, 2 * dialogs.len(), plan.update_deadline * 3).await?;
    let total = started.elapsed();
    listener.close().await;
    ctx.settle().await;
    println!(
        "  hot user: {} dialogs created in {:.2} s ({:.0} dialogs/s), their updates done after {:.2} s",
        dialogs.len(),
        created.as_secs_f64(),
        rate(dialogs.len(), created),
        total.as_secs_f64()
    );
    let detail = json!({
        "dialogs": dialogs.len(),
        "createSecs": created.as_secs_f64(),
        "dialogsPerSec": rate(dialogs.len(), created),
        "setupUpdatesDoneSecs": total.as_secs_f64(),
    });
    Ok((
        HotUser {
            api,
            user,
            dialogs: Arc::new(dialogs),
            rounds: 0,
        },
        detail,
    ))
}

/// One message into each of the hot user's dialogs, `burst_concurrency` at a time; measures
/// the hot user's updates. `workers` only labels the figures. With `backlog`, the workers are
/// frozen while the messages are posted and the drain is timed from their thaw: the workers'
/// own rate for one hot user, whatever the POST rate.
pub async fn burst(ctx: &Ctx, hot: &mut HotUser, workers: usize, backlog: bool) -> Result<Outcome> {
    let plan = &ctx.plan;
    hot.rounds += 1;
    let round = hot.rounds;
    let mut listener = ctx
        .listen(&format!("update.{}.*.{}.message", hot.api.tenant, hot.user))
        .await?;
    if backlog {
        ctx.freeze_workers(true);
    }
    let before = ctx.snapshot();
    let mut t0 = Instant::now();
    let sent = bounded(hot.dialogs.len(), plan.burst_concurrency, |i| {
        let api = hot.api.clone();
        let dialogs = hot.dialogs.clone();
        async move {
            let (d, other) = &dialogs[i];
            api.send(d, other, &format!("hot round {round}")).await
        }
    })
    .await;
    let posted = t0.elapsed();
    if backlog {
        t0 = Instant::now();
        ctx.freeze_workers(false);
    }
    let mut tally = Tally::default();
    let mut wanted: HashSet<String> = HashSet::new();
    for s in &sent {
        tally.add(&s.outcome);
        if let Some(id) = &s.message_id {
            wanted.insert(id.clone());
        }
    }
    let expected = wanted.len();
    let mut arrived = 0usize;
    let mut first = None;
    let mut last = None;
    let deadline = Instant::now() + plan.update_deadline * 2;
    while !wanted.is_empty() {
        let Some(a) = listener.next_until(deadline).await else {
            break;
        };
        if a.user_id != hot.user {
            continue;
        }
        if let Some(id) = &a.message_id {
            if wanted.remove(id) {
                arrived += 1;
                first.get_or_insert(a.at);
                last = Some(a.at);
            }
        }
    }
    let after = ctx.snapshot();
    listener.close().await;
    let drain = last.map(|l| l - t0).unwrap_or_default();
    let per_sec = rate(arrived, drain);
    let cores = ctx.cores(&before, &after);
    println!(
        "  hot user ({workers} worker(s){}): {arrived} of {expected} updates, drained {:.2} s after the {} ({per_sec:.0} updates/s); POSTs took {:.2} s; {}",
        if backlog { ", backlog" } else { "" },
        drain.as_secs_f64(),
        if backlog { "thaw" } else { "first POST" },
        posted.as_secs_f64(),
        tally.line()
    );
    ctx.settle().await;
    let section = format!(
        "hot user {}{} dialogs, {workers} worker(s)",
        if backlog { "backlog, " } else { "" },
        hot.dialogs.len()
    );
    let mut throughput = Row::new(
        &section,
        "updates/s for the user",
        Some(per_sec),
        "updates/s",
    )
    .vs(Basis::InsertOneRate);
    if workers == 1 && hot.dialogs.len() == 1000 && backlog {
        throughput = throughput.issue("190 updates/s");
    }
    let rows = vec![
        throughput,
        Row::new(&section, "drain time", Some(drain.as_secs_f64()), "s"),
        Row::new(
            &section,
            "POST rate of the burst",
            Some(rate(tally.ok() as usize, posted)),
            "msg/s",
        )
        .vs(Basis::InsertOneRate),
        Row::text(
            &section,
            "counts",
            format!("{}; {arrived} of {expected} updates arrived", tally.line()),
        ),
    ];
    let detail = json!({
        "workers": workers,
        "backlog": backlog,
        "round": round,
        "dialogs": hot.dialogs.len(),
        "outcomes": tally.to_json(),
        "postingSecs": posted.as_secs_f64(),
        "expectedUpdates": expected,
        "arrivedUpdates": arrived,
        "drainSecs": drain.as_secs_f64(),
        "firstUpdateAfterMs": first.map(|f| (f - t0).as_secs_f64() * 1000.0),
        "updatesPerSec": per_sec,
        "cores": cores_json(&cores),
    });
    Ok((detail, rows))
}

/// Closed-loop readers of the hot user's inbox (`limit=20`).
pub async fn inbox(ctx: &Ctx, hot: &HotUser) -> Result<Outcome> {
    let plan = &ctx.plan;
    let mut snaps = Vec::new();
    let result = {
        let api = hot.api.clone();
        let user: Arc<str> = hot.user.as_str().into();
        closed_loop(
            plan.inbox_readers,
            std::time::Duration::from_secs(1),
            plan.inbox_duration,
            move |_, _| {
                let api = api.clone();
                let user = user.clone();
                async move { api.inbox(&user, 20).await }
            },
            |_| snaps.push(ctx.snapshot()),
        )
        .await
    };
    let cores = match snaps.as_slice() {
        [a, b] => ctx.cores(a, b),
        _ => Default::default(),
    };
    let s = result.summary();
    println!(
        "  inbox: {:.1} req/s, p50 {:.1} ms, p99 {:.1} ms; {}",
        result.rate(),
        s.p50.unwrap_or(f64::NAN),
        s.p99.unwrap_or(f64::NAN),
        result.tally.line()
    );
    let section = format!(
        "inbox of the hot user ({} dialogs), {} readers",
        hot.dialogs.len(),
        plan.inbox_readers
    );
    let mut throughput =
        Row::new(&section, "throughput", Some(result.rate()), "req/s").vs(Basis::FindRate);
    let mut p50 = Row::new(&section, "latency p50", s.p50, "ms").vs(Basis::InsertOneP50);
    if hot.dialogs.len() == 1000 {
        throughput = throughput.issue("39 req/s");
        p50 = p50.issue("198 ms");
    }
    let rows = vec![
        throughput,
        p50,
        Row::new(&section, "latency p99", s.p99, "ms").vs(Basis::InsertOneP50),
        Row::text(&section, "outcomes", result.tally.line()),
    ];
    let detail = json!({
        "readers": plan.inbox_readers,
        "dialogs": hot.dialogs.len(),
        "result": closed_json(&result),
        "cores": cores_json(&cores),
    });
    Ok((detail, rows))
}
