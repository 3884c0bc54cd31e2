//! Load shapes. Closed loop: N tasks each issue the next operation when the previous one ends,
//! for a warm-up and then a measured window. Open loop: operations are started on a fixed
//! schedule whatever is still outstanding (one task per operation, bounded by a cap that is
//! counted when hit), and latency is taken from the scheduled start so queueing is not hidden.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::stats::{Outcome, Summary, Tally};

/// What a closed loop measured inside its window.
#[derive(Debug, Clone, Default)]
pub struct ClosedResult {
    /// Latencies of successful operations that completed in the window.
    pub latencies: Vec<Duration>,
    /// Outcomes of every operation that completed in the window.
    pub tally: Tally,
    /// Length of the window.
    pub window: Duration,
}

impl ClosedResult {
    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        crate::stats::rate(self.latencies.len(), self.window)
    }

    /// Latency summary of the successful operations.
    pub fn summary(&self) -> Summary {
        Summary::of(&self.latencies)
    }
}

/// Runs `op(task, iteration)` in `tasks` closed loops for `warmup + window`; only operations
/// completing inside the window count. `on_window` is called when the window opens and
/// closes (e.g. to take CPU snapshots).
pub async fn closed_loop<F, Fut>(
    tasks: usize,
    warmup: Duration,
    window: Duration,
    op: F,
    mut on_window: impl FnMut(bool),
) -> ClosedResult
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let op = Arc::new(op);
    let begin = Instant::now();
    let open = begin + warmup;
    let close = open + window;
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            let mut local = ClosedResult::default();
            let mut i = 0u64;
            loop {
                let start = Instant::now();
                if start >= close {
                    break;
                }
                let outcome = op(task, i).await;
                i += 1;
                let end = Instant::now();
                if end >= open && end <= close {
                    if outcome.is_success() {
                        local.latencies.push(end - start);
                    }
                    local.tally.add(&outcome);
                }
            }
            local
        }));
    }
    tokio::time::sleep_until(open.into()).await;
    on_window(true);
    tokio::time::sleep_until(close.into()).await;
    on_window(false);
    let mut total = ClosedResult {
        window,
        ..Default::default()
    };
    for h in handles {
        if let Ok(local) = h.await {
            total.latencies.extend(local.latencies);
            total.tally.merge(&local.tally);
        }
    }
    total
}

/// One operation of an open loop.
#[derive(Debug, Clone)]
pub struct Fired<T> {
    /// When it was due.
    pub scheduled: Instant,
    /// When it ended.
    pub done: Instant,
    /// What it returned.
    pub value: T,
}

/// What an open loop did.
#[derive(Debug, Clone)]
pub struct OpenResult<T> {
    /// Every operation started, in no particular order.
    pub fired: Vec<Fired<T>>,
    /// Operations skipped because `cap` were outstanding.
    pub cap_hits: u64,
    /// How late operations were started relative to their schedule.
    pub start_lag: Summary,
    /// From the first scheduled start to the last one.
    pub schedule_span: Duration,
    /// Most operations outstanding at once.
    pub peak_outstanding: usize,
}

/// Starts `op(i)` for `i in 0..count` at `rate` per second, at most `cap` outstanding.
pub async fn open_loop<F, Fut, T>(rate: f64, count: usize, cap: usize, op: F) -> OpenResult<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let outstanding = Arc::new(AtomicUsize::new(0));
    let mut lags = Vec::with_capacity(count);
    let mut cap_hits = 0u64;
    let mut peak = 0usize;
    let t0 = Instant::now() + Duration::from_millis(20);
    for i in 0..count {
        let scheduled = t0 + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        lags.push(Instant::now().saturating_duration_since(scheduled));
        let now_out = outstanding.load(Ordering::Relaxed);
        if now_out >= cap {
            cap_hits += 1;
            continue;
        }
        peak = peak.max(now_out + 1);
        outstanding.fetch_add(1, Ordering::Relaxed);
        let fut = op(i);
        let tx = tx.clone();
        let outstanding = outstanding.clone();
        tokio::spawn(async move {
            let value = fut.await;
            let done = Instant::now();
            outstanding.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(Fired {
                scheduled,
                done,
                value,
            });
        });
    }
    drop(tx);
    let mut fired = Vec::with_capacity(count);
    while let Some(f) = rx.recv().await {
        fired.push(f);
    }
    OpenResult {
        fired,
        cap_hits,
        start_lag: Summary::of(&lags),
        schedule_span: interval.mul_f64(count.saturating_sub(1) as f64),
        peak_outstanding: peak,
    }
}

/// Runs `op(i)` for `i in 0..count` with at most `concurrency` at once; returns the values in
/// index order.
pub async fn bounded<F, Fut, T>(count: usize, concurrency: usize, op: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T>,
{
    use futures_util::StreamExt;
    let mut out: Vec<(usize, T)> = futures_util::stream::iter(0..count)
        .map(|i| {
            let fut = op(i);
            async move { (i, fut.await) }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, v)| v).collect()
}
