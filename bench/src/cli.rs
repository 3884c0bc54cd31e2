//! Command line of `chat3-bench` and the plan it resolves to: every duration, rate and size of a
//! run, chosen by `--quick` or the full defaults and then overridden flag by flag. The plan is
//! printed before anything runs and stored in the JSON, so a figure is never without its setup.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};

/// Measures the raw store and broker, then chat3's core paths against real release binaries.
#[derive(Debug, Clone, Parser)]
#[command(name = "chat3-bench", version, about)]
pub struct Cli {
    /// The `chat3-api` binary to start (`chat3-api serve`).
    #[arg(long, env = "CHAT3_BENCH_API_BIN")]
    pub api_bin: PathBuf,
    /// The `update-worker` binary to start (`update-worker run`).
    #[arg(long, env = "CHAT3_BENCH_WORKER_BIN")]
    pub worker_bin: PathBuf,
    /// MongoDB (SecantusDB) the services and the raw store figures use.
    #[arg(
        long,
        env = "MONGODB_URI",
        default_value = "mongodb://127.0.0.1:27017/?directConnection=true"
    )]
    pub mongodb_uri: String,
    /// RabbitMQ.
    #[arg(
        long,
        env = "RABBITMQ_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub rabbitmq_url: String,
    /// Where the JSON results go (default `target/bench/bench-<timestamp>.json`); service logs go
    /// next to it, into `bench-<timestamp>-logs/`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Shorter run (≤ 2 minutes): shorter durations, fewer messages, smaller dialogs.
    #[arg(long)]
    pub quick: bool,
    /// User shards of the update workers (`CHAT3_UPDATE_WORKER_SHARDS`; 0: unsharded).
    #[arg(long, default_value_t = 8)]
    pub worker_shards: u16,
    /// A label stored in the JSON (e.g. `baseline`).
    #[arg(long)]
    pub label: Option<String>,
    /// Pid of the store process, to report the cores it uses.
    #[arg(long)]
    pub store_pid: Option<u32>,
    /// Pid of the broker process, to report the cores it uses.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// How the store was started (printed and stored only).
    #[arg(long)]
    pub store_desc: Option<String>,
    /// Store version (printed and stored only).
    #[arg(long)]
    pub store_version: Option<String>,
    /// Broker version (printed and stored only).
    #[arg(long)]
    pub broker_version: Option<String>,
    /// Closed-loop senders of the send-throughput workload.
    #[arg(long)]
    pub senders: Option<usize>,
    /// Two-member dialogs the senders write into.
    #[arg(long)]
    pub send_dialogs: Option<usize>,
    /// Measured seconds of the send-throughput workload (after a warm-up).
    #[arg(long)]
    pub send_secs: Option<f64>,
    /// Open-loop rates (msg/s) below capacity, comma-separated (run early in the run).
    #[arg(long, value_delimiter = ',')]
    pub e2e_rates: Option<Vec<u32>>,
    /// Seconds each rate below capacity runs.
    #[arg(long)]
    pub e2e_secs: Option<f64>,
    /// Open-loop rates (msg/s) meant to be beyond capacity, comma-separated; run last, each
    /// followed by a wait for the service to recover. An empty value runs none.
    #[arg(long, value_delimiter = ',')]
    pub overload_rates: Option<Vec<u32>>,
    /// One more overload rate: this factor × the measured send throughput (0 = none).
    #[arg(long)]
    pub overload_factor: Option<f64>,
    /// Seconds each overload rate runs.
    #[arg(long)]
    pub overload_secs: Option<f64>,
    /// Longest wait for the service to recover after an overload rate, seconds.
    #[arg(long)]
    pub recovery_secs: Option<f64>,
    /// Members of the fan-out dialog (at most 1,000: the API's limit).
    #[arg(long)]
    pub fanout_members: Option<usize>,
    /// Messages sent into the fan-out dialog.
    #[arg(long)]
    pub fanout_messages: Option<usize>,
    /// Two-member dialogs of the hot user.
    #[arg(long)]
    pub hot_dialogs: Option<usize>,
    /// Measured seconds of the inbox workload.
    #[arg(long)]
    pub inbox_secs: Option<f64>,
    /// Client timeout per HTTP request, seconds (a timeout counts as a transport error).
    #[arg(long, default_value_t = 10.0)]
    pub request_timeout_secs: f64,
    /// Most outstanding requests of an open-loop workload; a request due while at the cap is
    /// skipped and counted.
    #[arg(long, default_value_t = 4000)]
    pub max_outstanding: usize,
    /// Skip the raw store and broker figures (ratios are then left out).
    #[arg(long)]
    pub skip_raw: bool,
}

/// Everything a run does, resolved from the flags.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `quick` or `full`.
    pub mode: &'static str,
    /// Each raw store/broker measurement runs this long.
    pub raw_each: Duration,
    /// Batches of `raw_batch` documents in the insert_many measurement.
    pub raw_batches: usize,
    /// Documents per insert_many batch.
    pub raw_batch: usize,
    /// Concurrent tasks of the concurrent raw measurements.
    pub raw_tasks: usize,
    /// Closed-loop senders.
    pub senders: usize,
    /// Dialogs of the send workload.
    pub send_dialogs: usize,
    /// Warm-up before the send workload is measured.
    pub send_warmup: Duration,
    /// Measured duration of the send workload.
    pub send_duration: Duration,
    /// Open-loop rates below capacity.
    pub e2e_rates: Vec<u32>,
    /// Duration of each of them.
    pub e2e_duration: Duration,
    /// Open-loop rates beyond capacity.
    pub overload_rates: Vec<u32>,
    /// Factor × measured send throughput = one more overload rate (0 = none).
    pub overload_factor: f64,
    /// Duration of each overload rate.
    pub overload_duration: Duration,
    /// Longest wait for recovery after an overload rate.
    pub recovery_max: Duration,
    /// Dialogs of the open-loop workload.
    pub e2e_dialogs: usize,
    /// How long after the last POST updates may still arrive.
    pub update_deadline: Duration,
    /// Fan-out dialog size.
    pub fanout_members: usize,
    /// Fan-out messages.
    pub fanout_messages: usize,
    /// Hot user's dialogs.
    pub hot_dialogs: usize,
    /// Concurrency of setup calls and of the hot user's senders.
    pub burst_concurrency: usize,
    /// Inbox readers.
    pub inbox_readers: usize,
    /// Inbox duration.
    pub inbox_duration: Duration,
    /// Per-request client timeout.
    pub request_timeout: Duration,
    /// Outstanding-request cap of open-loop workloads.
    pub max_outstanding: usize,
    /// Whether the raw figures are measured.
    pub raw: bool,
}

impl Plan {
    /// The plan of `--quick` or of a full run, with the flags' overrides applied.
    pub fn from_cli(cli: &Cli) -> Self {
        let mut plan = if cli.quick {
            Self::quick()
        } else {
            Self::full()
        };
        if let Some(v) = cli.senders {
            plan.senders = v.max(1);
        }
        if let Some(v) = cli.send_dialogs {
            plan.send_dialogs = v.max(1);
        }
        if let Some(v) = cli.send_secs {
            plan.send_duration = secs(v);
        }
        if let Some(v) = &cli.e2e_rates {
            plan.e2e_rates = v.iter().copied().filter(|r| *r > 0).collect();
        }
        if let Some(v) = cli.e2e_secs {
            plan.e2e_duration = secs(v);
        }
        if let Some(v) = &cli.overload_rates {
            plan.overload_rates = v.iter().copied().filter(|r| *r > 0).collect();
        }
        if let Some(v) = cli.overload_factor {
            plan.overload_factor = v.max(0.0);
        }
        if let Some(v) = cli.overload_secs {
            plan.overload_duration = secs(v);
        }
        if let Some(v) = cli.recovery_secs {
            plan.recovery_max = secs(v);
        }
        if let Some(v) = cli.fanout_members {
            plan.fanout_members = v.clamp(2, 1000);
        }
        if let Some(v) = cli.fanout_messages {
            plan.fanout_messages = v.max(1);
        }
        if let Some(v) = cli.hot_dialogs {
            plan.hot_dialogs = v.max(1);
        }
        if let Some(v) = cli.inbox_secs {
            plan.inbox_duration = secs(v);
        }
        plan.request_timeout = secs(cli.request_timeout_secs);
        plan.max_outstanding = cli.max_outstanding.max(1);
        plan.raw = !cli.skip_raw;
        plan
    }

    fn full() -> Self {
        Self {
            mode: "full",
            raw_each: Duration::from_secs(4),
            raw_batches: 50,
            raw_batch: 1000,
            raw_tasks: 8,
            senders: 32,
            send_dialogs: 100,
            send_warmup: Duration::from_secs(3),
            send_duration: Duration::from_secs(30),
            e2e_rates: vec![10, 50],
            e2e_duration: Duration::from_secs(20),
            overload_rates: vec![200],
            overload_factor: 2.0,
            overload_duration: Duration::from_secs(15),
            recovery_max: Duration::from_secs(130),
            e2e_dialogs: 100,
            update_deadline: Duration::from_secs(30),
            fanout_members: 1000,
            fanout_messages: 20,
            hot_dialogs: 1000,
            burst_concurrency: 32,
            inbox_readers: 8,
            inbox_duration: Duration::from_secs(20),
            request_timeout: Duration::from_secs(10),
            max_outstanding: 4000,
            raw: true,
        }
    }

    fn quick() -> Self {
        Self {
            mode: "quick",
            raw_each: Duration::from_secs(1),
            raw_batches: 10,
            send_warmup: Duration::from_secs(1),
            send_duration: Duration::from_secs(8),
            e2e_duration: Duration::from_secs(5),
            overload_rates: vec![],
            overload_duration: Duration::from_secs(3),
            recovery_max: Duration::from_secs(20),
            update_deadline: Duration::from_secs(15),
            fanout_members: 1000,
            fanout_messages: 5,
            hot_dialogs: 200,
            inbox_duration: Duration::from_secs(6),
            ..Self::full()
        }
    }

    /// The plan as JSON (durations in seconds).
    pub fn to_json(&self) -> Value {
        json!({
            "mode": self.mode,
            "rawEachSecs": self.raw_each.as_secs_f64(),
            "rawInsertManyBatches": self.raw_batches,
            "rawInsertManyBatchSize": self.raw_batch,
            "rawTasks": self.raw_tasks,
            "senders": self.senders,
            "sendDialogs": self.send_dialogs,
            "sendWarmupSecs": self.send_warmup.as_secs_f64(),
            "sendSecs": self.send_duration.as_secs_f64(),
            "e2eRates": self.e2e_rates,
            "e2eSecs": self.e2e_duration.as_secs_f64(),
            "overloadRates": self.overload_rates,
            "overloadFactorOfSendThroughput": self.overload_factor,
            "overloadSecs": self.overload_duration.as_secs_f64(),
            "recoveryMaxSecs": self.recovery_max.as_secs_f64(),
            "e2eDialogs": self.e2e_dialogs,
            "updateDeadlineSecs": self.update_deadline.as_secs_f64(),
            "fanoutMembers": self.fanout_members,
            "fanoutMessages": self.fanout_messages,
            "hotDialogs": self.hot_dialogs,
            "burstConcurrency": self.burst_concurrency,
            "inboxReaders": self.inbox_readers,
            "inboxSecs": self.inbox_duration.as_secs_f64(),
            "requestTimeoutSecs": self.request_timeout.as_secs_f64(),
            "maxOutstanding": self.max_outstanding,
            "raw": self.raw,
        })
    }
}

fn secs(v: f64) -> Duration {
    Duration::from_secs_f64(v.max(0.1))
}
