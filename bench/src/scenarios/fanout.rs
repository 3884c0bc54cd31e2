//! Fan-out: one dialog with many members, a few messages into it, and every member's update
//! counted as it arrives on the updates exchange. Gives updates/s of the worker(s) and how long
//! the first message takes to reach its first recipient. The backlog variant freezes the workers
//! while the messages are posted and times the drain from the moment they are thawed: the
//! workers' own rate, whatever the POST rate.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::{await_dialog_updates, cores_json, Ctx, Outcome};
use crate::report::{Basis, Row};
use crate::stats::{ms, rate, Tally};

/// Runs the fan-out workload; `workers` only labels the figures.
pub async fn fanout(ctx: &Ctx, workers: usize, backlog: bool) -> Result<Outcome> {
    let plan = &ctx.plan;
    let members = plan.fanout_members;
    let k = plan.fanout_messages;
    let api = ctx
        .tenant(&format!("fan{workers}w{}", if backlog { "b" } else { "" }))
        .await?;
    let mut listener = ctx.listen(&format!("update.{}.#", api.tenant)).await?;
    let users: Vec<String> = (0..members).map(|i| format!("f{i}")).collect();
    let created = Instant::now();
    let dialog = api.create_dialog(&users).await?;
    let setup = await_dialog_updates(&mut listener, members, plan.update_deadline * 2).await?;
    let setup_total = created.elapsed();
    ctx.settle().await;

    if backlog {
        ctx.freeze_workers(true);
    }
    let before = ctx.snapshot();
    let mut first_post = Instant::now();
    let mut tally = Tally::default();
    let mut ids: Vec<String> = Vec::with_capacity(k);
    for i in 0..k {
        let sent = api.send(&dialog, &users[0], &format!("fan-out {i}")).await;
        tally.add(&sent.outcome);
        if let Some(id) = sent.message_id {
            ids.push(id);
        }
    }
    let posted = first_post.elapsed();
    if backlog {
        // Everything is queued; the clock starts when the workers may go.
        first_post = Instant::now();
        ctx.freeze_workers(false);
    }
    let expected = ids.len() * members;
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let first_id = ids.first().cloned();
    let mut per_message: HashMap<String, usize> = HashMap::new();
    let mut first_update = None;
    let mut first_message_complete = None;
    let mut last = None;
    let mut arrived = 0usize;
    let deadline = Instant::now() + plan.update_deadline * 2;
    while arrived < expected {
        let Some(a) = listener.next_until(deadline).await else {
            break;
        };
        let Some(id) = a.message_id.as_deref().filter(|id| wanted.contains(id)) else {
            continue;
        };
        if !a.is_message() {
            continue;
        }
        arrived += 1;
        last = Some(a.at);
        let n = per_message.entry(id.to_owned()).or_default();
        *n += 1;
        if first_id.as_deref() == Some(id) {
            if first_update.is_none() {
                first_update = Some(a.at - first_post);
            }
            if *n == members {
                first_message_complete = Some(a.at - first_post);
            }
        }
    }
    let after = ctx.snapshot();
    listener.close().await;
    let span = last.map(|l| l - first_post).unwrap_or_default();
    let per_sec = rate(arrived, span);
    let cores = ctx.cores(&before, &after);
    println!(
        "  fan-out ({workers} worker(s)): {arrived} of {expected} updates in {:.2} s = {per_sec:.0} updates/s; first update after {:.1} ms; {}",
        span.as_secs_f64(),
        first_update.map(ms).unwrap_or(f64::NAN),
        tally.line()
    );
    let section = if backlog {
        format!("fan-out backlog, {k} messages to {members} members, {workers} worker(s)")
    } else {
        format!("fan-out {members} members, {workers} worker(s)")
    };
    let mut throughput =
        Row::new(&section, "updates/s", Some(per_sec), "updates/s").vs(Basis::InsertManyRate);
    let mut first = Row::new(&section, "first update after", first_update.map(ms), "ms")
        .vs(Basis::InsertOneP50);
    if workers == 1 && members == 1000 && !backlog {
        throughput = throughput.issue("4,000 updates/s");
        first = first.issue("171 ms");
    }
    let rows = vec![
        throughput,
        first,
        Row::new(
            &section,
            "first message fully fanned out",
            first_message_complete.map(ms),
            "ms",
        )
        .vs(Basis::InsertOneP50),
        Row::text(
            &section,
            "counts",
            format!(
                "{k} messages ({}), {arrived} of {expected} updates arrived",
                tally.line()
            ),
        ),
    ];
    let detail = json!({
        "workers": workers,
        "backlog": backlog,
        "members": members,
        "messages": k,
        "outcomes": tally.to_json(),
        "postingSecs": posted.as_secs_f64(),
        "expectedUpdates": expected,
        "arrivedUpdates": arrived,
        "spanSecs": span.as_secs_f64(),
        "updatesPerSec": per_sec,
        "firstUpdateMs": first_update.map(ms),
        "firstMessageCompleteMs": first_message_complete.map(ms),
        "dialogSetupUpdatesSecs": setup.as_secs_f64(),
        "dialogSetupTotalSecs": setup_total.as_secs_f64(),
        "cores": cores_json(&cores),
    });
    Ok((detail, rows))
}
