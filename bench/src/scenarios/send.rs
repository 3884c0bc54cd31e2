//! Send throughput: closed-loop senders writing into two-member dialogs for a fixed window, with
//! the CPU each process used during the window (where the time goes).

use std::sync::Arc;

use anyhow::Result;
use serde_json::json;

use super::{cores_json, cores_line, pair_dialogs, Ctx, Outcome};
use crate::load::closed_loop;
use crate::raw::closed_json;
use crate::report::{Basis, Row};

/// Runs the send-throughput workload.
pub async fn throughput(ctx: &Ctx) -> Result<Outcome> {
    let plan = &ctx.plan;
    let api = ctx.tenant("send").await?;
    let dialogs =
        Arc::new(pair_dialogs(&api, "s", plan.send_dialogs, plan.burst_concurrency).await?);
    // Let the worker finish the dialogs' own updates before measuring.
    ctx.settle().await;
    let senders = plan.senders;
    let mut snaps = Vec::new();
    let result = {
        let api = api.clone();
        let dialogs = dialogs.clone();
        closed_loop(
            senders,
            plan.send_warmup,
            plan.send_duration,
            move |task, i| {
                let api = api.clone();
                let dialogs = dialogs.clone();
                async move {
                    let n = dialogs.len();
                    let (d, a, b) = &dialogs[(task + i as usize * senders) % n];
                    let sender = if i % 2 == 0 { a } else { b };
                    api.send(d, sender, "bench send").await.outcome
                }
            },
            |_| snaps.push(ctx.snapshot()),
        )
        .await
    };
    let cores = match snaps.as_slice() {
        [a, b] => ctx.cores(a, b),
        _ => Default::default(),
    };
    let summary = result.summary();
    println!(
        "  send: {:.1} msg/s, p50 {:.1} ms, p99 {:.1} ms; {}",
        result.rate(),
        summary.p50.unwrap_or(f64::NAN),
        summary.p99.unwrap_or(f64::NAN),
        result.tally.line()
    );
    println!("  cores during send: {}", cores_line(&cores));
    let backlog = ctx.settle().await;
    let section = format!("send ({senders} senders)");
    let mut rows = vec![
        Row::new(&section, "throughput", Some(result.rate()), "msg/s")
            .vs(Basis::InsertOneRate)
            .issue("263–280 msg/s"),
        Row::new(&section, "latency p50", summary.p50, "ms")
            .vs(Basis::InsertOneP50)
            .issue("110 ms"),
        Row::new(&section, "latency p99", summary.p99, "ms").vs(Basis::InsertOneP50),
        Row::text(&section, "outcomes", result.tally.line()),
    ];
    for (name, used) in &cores {
        rows.push(Row::new("cores during send", name, Some(*used), "cores"));
    }
    let detail = json!({
        "senders": senders,
        "dialogs": dialogs.len(),
        "result": closed_json(&result),
        "cores": cores_json(&cores),
        "workerCatchUpSecs": backlog.as_secs_f64(),
    });
    Ok((detail, rows))
}
