//! Open-loop sends at fixed rates. For each rate: POST latency of accepted requests, latency
//! from the POST's scheduled start to the recipient's update arriving on the updates exchange,
//! outcome counts, and accepted messages whose update never arrived within the deadline. Rates
//! below capacity run early (the lowest doubles as the unloaded POST latency); rates beyond
//! capacity run last, each followed by a bounded wait until the service is quiet again, since
//! what an overload leaves behind would otherwise spoil every later figure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use super::{cores_json, pair_dialogs, Ctx, Outcome};
use crate::http::Api;
use crate::load::open_loop;
use crate::report::{Basis, Row};
use crate::stats::{rate, Summary, Tally};

/// The tenant and dialogs every rate writes into.
pub struct Setup {
    api: Api,
    /// (dialog, sender, recipient).
    dialogs: Arc<Vec<(String, String, String)>>,
}

/// Creates the open-loop workload's tenant and two-member dialogs.
pub async fn setup(ctx: &Ctx) -> Result<Setup> {
    let plan = &ctx.plan;
    let api = ctx.tenant("e2e").await?;
    let dialogs =
        Arc::new(pair_dialogs(&api, "e", plan.e2e_dialogs, plan.burst_concurrency).await?);
    ctx.settle().await;
    Ok(Setup { api, dialogs })
}

/// Figures of one rate.
struct RateResult {
    rate: u32,
    due: usize,
    cap_hits: u64,
    tally: Tally,
    post: Summary,
    refused: Summary,
    e2e: Summary,
    accepted: usize,
    accepted_per_sec: f64,
    missing: usize,
    recovery: Option<(Duration, bool)>,
    detail: Value,
}

async fn run_rate(ctx: &Ctx, setup: &Setup, r: u32, secs: f64) -> Result<RateResult> {
    let plan = &ctx.plan;
    let api = &setup.api;
    let mut listener = ctx
        .listen(&format!("update.{}.*.*.message", api.tenant))
        .await?;
    let count = ((f64::from(r) * secs).round() as usize).max(1);
    let before = ctx.snapshot();
    let started = Instant::now();
    let fired = open_loop(f64::from(r), count, plan.max_outstanding, |i| {
        let api = api.clone();
        let dialogs = setup.dialogs.clone();
        async move {
            let (d, a, b) = &dialogs[i % dialogs.len()];
            (api.send(d, a, "bench e2e").await, b.clone())
        }
    })
    .await;
    let sending = started.elapsed();
    let after = ctx.snapshot();

    let mut tally = Tally::default();
    let mut post = Vec::new();
    let mut refused = Vec::new();
    // message id -> (scheduled start, recipient)
    let mut waiting: HashMap<String, (Instant, String)> = HashMap::new();
    let mut accepted = 0usize;
    for f in &fired.fired {
        let (sent, recipient) = &f.value;
        tally.add(&sent.outcome);
        if sent.outcome.is_success() {
            accepted += 1;
            post.push(f.done - f.scheduled);
            if let Some(id) = &sent.message_id {
                waiting.insert(id.clone(), (f.scheduled, recipient.clone()));
            }
        } else if matches!(sent.outcome, crate::stats::Outcome::Status(429 | 503)) {
            refused.push(f.done - f.scheduled);
        }
    }
    let deadline = Instant::now() + plan.update_deadline;
    let mut e2e = Vec::with_capacity(waiting.len());
    while !waiting.is_empty() {
        let Some(a) = listener.next_until(deadline).await else {
            break;
        };
        let Some(id) = &a.message_id else { continue };
        if waiting.get(id).is_some_and(|(_, to)| *to == a.user_id) {
            if let Some((scheduled, _)) = waiting.remove(id) {
                e2e.push(a.at - scheduled);
            }
        }
    }
    let missing = accepted - e2e.len();
    let malformed = listener.malformed();
    listener.close().await;
    let cores = ctx.cores(&before, &after);
    let post = Summary::of(&post);
    let refused = Summary::of(&refused);
    let e2e = Summary::of(&e2e);
    // Accepted per second of offered load (the schedule), not of the tail of slow responses.
    let offered = fired.schedule_span + Duration::from_secs_f64(1.0 / f64::from(r));
    let accepted_per_sec = rate(accepted, offered);
    println!(
        "  {r}/s for {secs} s: {count} due, {} skipped at cap (start lag p99 {:.1} ms); POST p50 {:.1} ms p99 {:.1} ms; refusals p50 {:.1} ms p99 {:.1} ms; e2e p50 {:.1} ms p99 {:.1} ms; {}; {missing} updates missing",
        fired.cap_hits,
        fired.start_lag.p99.unwrap_or(f64::NAN),
        post.p50.unwrap_or(f64::NAN),
        post.p99.unwrap_or(f64::NAN),
        refused.p50.unwrap_or(f64::NAN),
        refused.p99.unwrap_or(f64::NAN),
        e2e.p50.unwrap_or(f64::NAN),
        e2e.p99.unwrap_or(f64::NAN),
        tally.line()
    );
    let detail = json!({
        "rate": r,
        "secs": secs,
        "due": count,
        "skippedAtCap": fired.cap_hits,
        "peakOutstanding": fired.peak_outstanding,
        "startLag": fired.start_lag.to_json(),
        "untilLastResponseSecs": sending.as_secs_f64(),
        "acceptedPerSec": accepted_per_sec,
        "outcomes": tally.to_json(),
        "post": post.to_json(),
        "refused": refused.to_json(),
        "e2e": e2e.to_json(),
        "accepted": accepted,
        "updatesMissing": missing,
        "updateDeadlineSecs": plan.update_deadline.as_secs_f64(),
        "malformedUpdates": malformed,
        "cores": cores_json(&cores),
    });
    Ok(RateResult {
        rate: r,
        due: count,
        cap_hits: fired.cap_hits,
        tally,
        post,
        refused,
        e2e,
        accepted,
        accepted_per_sec,
        missing,
        recovery: None,
        detail,
    })
}

/// The rates below capacity.
pub async fn below_capacity(ctx: &Ctx, setup: &Setup) -> Result<Outcome> {
    let mut results = Vec::new();
    for &r in &ctx.plan.e2e_rates {
        let res = run_rate(ctx, setup, r, ctx.plan.e2e_duration.as_secs_f64()).await?;
        let settle = ctx.settle().await;
        let mut res = res;
        res.detail["settleSecs"] = json!(settle.as_secs_f64());
        results.push(res);
    }
    let mut rows = Vec::new();
    if let Some(low) = results.iter().min_by_key(|r| r.rate) {
        let section = format!("single POST @{}/s", low.rate);
        let mut p50 = Row::new(&section, "POST p50", low.post.p50, "ms").vs(Basis::InsertOneP50);
        if low.rate == 10 {
            p50 = p50.issue("8.5 ms");
        }
        rows.push(p50);
        rows.push(Row::new(&section, "POST p99", low.post.p99, "ms").vs(Basis::InsertOneP50));
    }
    rows.extend(results.iter().flat_map(rate_rows));
    let detail = Value::Array(results.into_iter().map(|r| r.detail).collect());
    Ok((json!({ "rates": detail }), rows))
}

/// The overload rates: the plan's fixed ones and `overload_factor` × `send_rate`, each followed
/// by a wait for the service to be quiet again.
pub async fn beyond_capacity(ctx: &Ctx, setup: &Setup, send_rate: Option<f64>) -> Result<Outcome> {
    let plan = &ctx.plan;
    let mut rates = plan.overload_rates.clone();
    if let Some(derived) = send_rate
        .map(|s| (s * plan.overload_factor).round() as u32)
        .filter(|r| *r > 0)
    {
        if !rates.contains(&derived) {
            rates.push(derived);
        }
    }
    let mut results = Vec::new();
    for r in rates {
        let mut res = run_rate(ctx, setup, r, plan.overload_duration.as_secs_f64()).await?;
        let (took, quiet) = ctx.recover(plan.recovery_max).await;
        println!(
            "  after {r}/s: {} after {:.1} s",
            if quiet { "quiet again" } else { "still busy" },
            took.as_secs_f64()
        );
        res.detail["recoverySecs"] = json!(took.as_secs_f64());
        res.detail["recovered"] = json!(quiet);
        res.recovery = Some((took, quiet));
        results.push(res);
    }
    let rows = results.iter().flat_map(rate_rows).collect();
    let detail = Value::Array(results.into_iter().map(|r| r.detail).collect());
    Ok((json!({ "rates": detail, "sendRate": send_rate }), rows))
}

fn rate_rows(r: &RateResult) -> Vec<Row> {
    let section = format!("e2e @{}/s", r.rate);
    let mut rows = vec![
        Row::new(&section, "accepted", Some(r.accepted_per_sec), "msg/s").vs(Basis::InsertOneRate),
        Row::new(&section, "POST p50", r.post.p50, "ms").vs(Basis::InsertOneP50),
        Row::new(&section, "POST p99", r.post.p99, "ms").vs(Basis::InsertOneP50),
    ];
    if r.refused.count > 0 {
        rows.push(
            Row::new(&section, "refusal (429/503) p50", r.refused.p50, "ms")
                .vs(Basis::InsertOneP50),
        );
        rows.push(
            Row::new(&section, "refusal (429/503) p99", r.refused.p99, "ms")
                .vs(Basis::InsertOneP50),
        );
    }
    let mut p50 = Row::new(&section, "e2e p50", r.e2e.p50, "ms").vs(Basis::InsertOneP50);
    if r.rate == 10 {
        p50 = p50.issue("13.7 ms");
    }
    rows.push(p50);
    rows.push(Row::new(&section, "e2e p99", r.e2e.p99, "ms").vs(Basis::InsertOneP50));
    let mut outcomes = Row::text(
        &section,
        "outcomes",
        format!(
            "{}; accepted {} of {} due, {} skipped at cap, updates missing {}",
            r.tally.line(),
            r.accepted,
            r.due,
            r.cap_hits,
            r.missing
        ),
    );
    if r.rate == 200 {
        outcomes = outcomes.issue("337 of 4,000 transport errors");
    }
    rows.push(outcomes);
    if let Some((took, quiet)) = r.recovery {
        let mut row = Row::new(&section, "quiet again after", Some(took.as_secs_f64()), "s");
        if !quiet {
            row = row.note("not quiet when the wait ended".to_owned());
        }
        rows.push(row);
    }
    rows
}
