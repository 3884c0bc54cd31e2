//! The workloads against the running services, over HTTP and AMQP only. Each takes the shared
//! [`Ctx`], creates its own tenant so workloads cannot see each other's updates, and returns its
//! detail as JSON plus the rows of the summary table.

pub mod e2e;
pub mod fanout;
pub mod hot;
pub mod send;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::cli::Plan;
use crate::http::Api;
use crate::listen::Listener;
use crate::procs::{cores_between, CpuSnapshot, Watched};
use crate::report::Row;

/// What every workload needs.
pub struct Ctx {
    /// The shared HTTP client.
    pub http: reqwest::Client,
    /// `http://127.0.0.1:<port>` of the API.
    pub base: String,
    /// Operator key.
    pub admin_key: String,
    /// The bench's own broker connection (listeners).
    pub amqp: std::sync::Arc<lapin::Connection>,
    /// Updates exchange of this run.
    pub updates_exchange: String,
    /// The worker queues of this run, events queue first (to wait for them to drain).
    pub work_queues: Vec<String>,
    /// Durations and sizes.
    pub plan: Plan,
    /// Processes whose CPU use is reported.
    pub watched: Watched,
    /// `/proc` ticks per second.
    pub ticks: f64,
    /// Cores of the machine.
    pub ncpu: usize,
    /// Run-unique prefix of tenant ids.
    pub prefix: String,
}

/// A workload's detail and table rows.
pub type Outcome = (Value, Vec<Row>);

impl Ctx {
    /// A fresh tenant named `{prefix}-{name}` with its own key.
    pub async fn tenant(&self, name: &str) -> Result<Api> {
        let tenant = format!("{}-{name}", self.prefix);
        Api::create_tenant(&self.http, &self.base, &self.admin_key, &tenant).await
    }

    /// A listener on this run's updates exchange.
    pub async fn listen(&self, pattern: &str) -> Result<Listener> {
        Listener::bind(&self.amqp, &self.updates_exchange, pattern).await
    }

    /// CPU counters now.
    pub fn snapshot(&self) -> CpuSnapshot {
        self.watched.snapshot()
    }

    /// Cores used per process between two snapshots.
    pub fn cores(&self, a: &CpuSnapshot, b: &CpuSnapshot) -> BTreeMap<String, f64> {
        cores_between(a, b, self.ticks, self.ncpu)
    }

    /// Freezes (`true`) or thaws (`false`) the update workers, to let a backlog build up and
    /// then time how fast they drain it.
    pub fn freeze_workers(&self, frozen: bool) {
        for (name, pid) in &self.watched.procs {
            if name.starts_with("worker") {
                crate::procs::signal(*pid, if frozen { "STOP" } else { "CONT" });
            }
        }
    }

    /// Waits (bounded) until the workers have consumed everything queued; returns the wait.
    pub async fn settle(&self) -> Duration {
        let t = Instant::now();
        if !crate::procs::wait_queue_empty(&self.amqp, &self.work_queues, Duration::from_secs(90))
            .await
        {
            eprintln!("  warning: the worker queue did not drain within 90 s");
        }
        t.elapsed()
    }
}

impl Ctx {
    /// Waits until the service is quiet (API and store nearly idle, worker queue empty, twice
    /// in a row half a second apart), at most `max`; returns the wait and whether it got quiet.
    /// After an overload, abandoned requests may still be retrying inside the API.
    pub async fn recover(&self, max: Duration) -> (Duration, bool) {
        let t = Instant::now();
        let deadline = t + max;
        let mut quiet_in_a_row = 0;
        let mut prev = self.snapshot();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.snapshot();
            let cores = self.cores(&prev, &now);
            prev = now;
            let idle = |name: &str, limit: f64| cores.get(name).is_none_or(|c| *c < limit);
            let queue_empty = crate::procs::pending(&self.amqp, &self.work_queues).await == Some(0);
            if idle("api", 0.05) && idle("store", 0.10) && queue_empty {
                quiet_in_a_row += 1;
                if quiet_in_a_row >= 2 {
                    return (t.elapsed(), true);
                }
            } else {
                quiet_in_a_row = 0;
            }
            if Instant::now() >= deadline {
                return (t.elapsed(), false);
            }
        }
    }
}

/// `n` two-member dialogs `{tag}{i}-a` / `{tag}{i}-b`, created `concurrency` at a time; returns
/// (dialog id, member a, member b).
pub async fn pair_dialogs(
    api: &Api,
    tag: &str,
    n: usize,
    concurrency: usize,
) -> Result<Vec<(String, String, String)>> {
    let made = crate::load::bounded(n, concurrency, |i| {
        let api = api.clone();
        let a = format!("{tag}{i}-a");
        let b = format!("{tag}{i}-b");
        async move {
            let id = api.create_dialog(&[a.clone(), b.clone()]).await?;
            Ok::<_, anyhow::Error>((id, a, b))
        }
    })
    .await;
    made.into_iter().collect()
}

/// Waits until `count` `dialog` updates have arrived (the worker finished a setup's fan-out).
pub async fn await_dialog_updates(
    listener: &mut Listener,
    count: usize,
    within: Duration,
) -> Result<Duration> {
    let t = Instant::now();
    let deadline = t + within;
    let mut seen = 0usize;
    while seen < count {
        match listener.next_until(deadline).await {
            Some(a) if a.update_type == "dialog" => seen += 1,
            Some(_) => {}
            None => bail!("only {seen} of {count} dialog updates arrived within {within:?}"),
        }
    }
    Ok(t.elapsed())
}

/// Cores per process as JSON.
pub fn cores_json(cores: &BTreeMap<String, f64>) -> Value {
    json!(cores
        .iter()
        .map(|(k, v)| (k.clone(), json!(crate::stats::round3(*v))))
        .collect::<serde_json::Map<_, _>>())
}

/// `name=1.23 …` for a log line.
pub fn cores_line(cores: &BTreeMap<String, f64>) -> String {
    cores
        .iter()
        .map(|(k, v)| format!("{k}={v:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}
