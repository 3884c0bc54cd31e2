//! Command line and environment of `update-worker run|replay|reprocess` (DESIGN §9). Storage,
//! broker and logging come from the core fragments, so every binary reads the same variables.

use std::time::Duration;

use chat3_core::config::{AmqpArgs, LogArgs, LogFormat, MongoArgs};
use chat3_sdk::{TenantId, UserId};
use clap::{Args, Parser, Subcommand};

/// `update-worker`: turns events into per-user sequenced updates.
#[derive(Debug, Parser)]
#[command(name = "update-worker", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume events and write and publish updates until SIGTERM.
    Run(Config),
    /// Re-publish stored updates.
    Replay(ReplayArgs),
    /// Re-run the fan-out of journal events (idempotent).
    Reprocess(ReprocessArgs),
}

impl Command {
    /// Logging settings of whichever subcommand was chosen.
    pub fn log(&self) -> &LogArgs {
        match self {
            Command::Run(c) => &c.log,
            Command::Replay(r) => &r.log,
            Command::Reprocess(r) => &r.log,
        }
    }
}

/// Settings of the consumer (`update-worker run`).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Storage.
    #[command(flatten)]
    pub mongo: MongoArgs,
    /// Broker and exchange names.
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Durable queue bound to the events exchange; `{queue}.dlq` holds poison messages.
    #[arg(
        long,
        env = "CHAT3_UPDATE_WORKER_QUEUE",
        default_value = "chat3_update_worker"
    )]
    pub queue: String,
    /// Deliveries the broker sends ahead of the acks (AMQP prefetch).
    #[arg(long, env = "CHAT3_UPDATE_WORKER_PREFETCH", default_value_t = 512)]
    pub prefetch: u16,
    /// Most events fanned out together (one round of store writes for the batch).
    #[arg(long, env = "CHAT3_UPDATE_WORKER_BATCH", default_value_t = 256)]
    pub batch: usize,
    /// In-process attempts for an unexpected failure (neither an outage nor a malformed event)
    /// before the delivery is requeued once, then dead-lettered.
    #[arg(long, env = "CHAT3_UPDATE_WORKER_MAX_ATTEMPTS", default_value_t = 4)]
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubles on each further attempt up to
    /// `retry_backoff_max_ms`.
    #[arg(
        long,
        env = "CHAT3_UPDATE_WORKER_RETRY_BACKOFF_MS",
        default_value_t = 200
    )]
    pub retry_backoff_ms: u64,
    /// Longest delay between two retries, in milliseconds.
    #[arg(
        long,
        env = "CHAT3_UPDATE_WORKER_RETRY_BACKOFF_MAX_MS",
        default_value_t = 5000
    )]
    pub retry_backoff_max_ms: u64,
    /// How long a delivery that fails because the store or the broker is unavailable keeps
    /// being retried in process, in seconds (it outlasts a store restart or a broker cut);
    /// after that it is requeued, never dead-lettered.
    #[arg(
        long,
        env = "CHAT3_UPDATE_WORKER_RETRY_BUDGET_SECS",
        default_value_t = 300
    )]
    pub retry_budget_secs: u64,
    /// User shards (see `crate::shards`): each user's updates are written by the one worker
    /// that owns the user's shard, so N workers never contend for a user's seqs. 0 turns
    /// sharding off (events are fanned out where they are consumed; for a single worker).
    /// Change it only while the shard queues are empty.
    #[arg(
        long,
        env = "CHAT3_UPDATE_WORKER_SHARDS",
        default_value_t = 8,
        value_parser = clap::value_parser!(u16).range(0..=256)
    )]
    pub shards: u16,
    /// How often a worker records that it is alive and rebalances the shards, in
    /// milliseconds; a worker not heard of for four intervals is taken as gone and its shards
    /// move to the others.
    #[arg(
        long,
        env = "CHAT3_UPDATE_WORKER_HEARTBEAT_MS",
        default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(50..)
    )]
    pub heartbeat_ms: u64,
    /// Days stored updates are kept.
    #[command(flatten)]
    pub retention: RetentionArgs,
}

impl Config {
    /// Defaults for everything but storage and broker (tests start workers with this).
    pub fn new(mongo: MongoArgs, amqp: AmqpArgs) -> Self {
        Self {
            mongo,
            amqp,
            log: default_log(),
            queue: "chat3_update_worker".to_owned(),
            prefetch: 512,
            batch: 256,
            max_attempts: 4,
            retry_backoff_ms: 200,
            retry_backoff_max_ms: 5000,
            retry_budget_secs: 300,
            shards: 8,
            heartbeat_ms: 2000,
            retention: RetentionArgs::default(),
        }
    }

    /// The delay before retry `attempt` (1-based): exponential from `retry_backoff_ms`, capped
    /// at `retry_backoff_max_ms`.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let first = self.retry_backoff_ms.max(1);
        let cap = self.retry_backoff_max_ms.max(first);
        let factor = 1u64 << attempt.saturating_sub(1).min(20);
        Duration::from_millis(first.saturating_mul(factor).min(cap))
    }

    /// How long outage failures are retried in process.
    pub fn retry_budget(&self) -> Duration {
        Duration::from_secs(self.retry_budget_secs)
    }

    /// Name of the dead-letter queue.
    pub fn dead_letter_queue(&self) -> String {
        crate::topology::dead_letter_queue(&self.queue)
    }

    /// Name of the dead-letter exchange.
    pub fn dead_letter_exchange(&self) -> String {
        crate::topology::dead_letter_exchange(&self.queue)
    }

    /// Every queue the worker declares (to remove them).
    pub fn broker_queues(&self) -> Vec<String> {
        crate::topology::queues(&self.queue, self.shards)
    }

    /// Every exchange the worker declares besides the events exchange (to remove them).
    pub fn broker_exchanges(&self) -> Vec<String> {
        crate::topology::exchanges(&self.queue)
    }

    /// How often the worker beats and rebalances.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }
}

/// Retention of stored updates.
#[derive(Debug, Clone, Copy, Args)]
pub struct RetentionArgs {
    /// Days stored updates are kept (TTL index on the updates collection).
    #[arg(
        long = "updates-retention-days",
        env = "CHAT3_UPDATES_RETENTION_DAYS",
        default_value_t = 30
    )]
    pub days: u64,
}

impl Default for RetentionArgs {
    fn default() -> Self {
        Self { days: 30 }
    }
}

impl RetentionArgs {
    /// The retention as a duration.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.days.max(1) * 24 * 3600)
    }
}

/// `update-worker replay`: re-publish stored updates.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Storage.
    #[command(flatten)]
    pub mongo: MongoArgs,
    /// Broker and exchange names.
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Tenant whose updates to replay.
    #[arg(long)]
    pub tenant: TenantId,
    /// Only this user's updates.
    #[arg(long)]
    pub user: Option<UserId>,
    /// Lowest seq, inclusive.
    #[arg(long)]
    pub from_seq: Option<u64>,
    /// Highest seq, inclusive.
    #[arg(long)]
    pub to_seq: Option<u64>,
    /// Earliest creation time, milliseconds since the epoch, inclusive.
    #[arg(long)]
    pub from_ms: Option<i64>,
    /// Latest creation time, milliseconds since the epoch, exclusive.
    #[arg(long)]
    pub to_ms: Option<i64>,
    /// Count and list what would be published without publishing.
    #[arg(long)]
    pub dry_run: bool,
    /// Updates published per second at most (0: no limit).
    #[arg(long, default_value_t = 500)]
    pub rate: u32,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `update-worker reprocess`: re-run the fan-out of journal events.
#[derive(Debug, Clone, Args)]
pub struct ReprocessArgs {
    /// Storage.
    #[command(flatten)]
    pub mongo: MongoArgs,
    /// Broker and exchange names.
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Only this tenant's events.
    #[arg(long)]
    pub tenant: Option<TenantId>,
    /// Earliest journal time, milliseconds since the epoch, inclusive.
    #[arg(long)]
    pub from_ms: i64,
    /// Latest journal time, milliseconds since the epoch, exclusive (default: now).
    #[arg(long)]
    pub to_ms: Option<i64>,
    /// Count what would be reprocessed without writing or publishing.
    #[arg(long)]
    pub dry_run: bool,
    /// Events processed per second at most (0: no limit).
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Retention applied to the updates written.
    #[command(flatten)]
    pub retention: RetentionArgs,
}

fn default_log() -> LogArgs {
    LogArgs {
        log_format: LogFormat::Text,
        log_level: "info".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_parses_queue_and_log_format_flags() {
        let cli = Cli::try_parse_from([
            "update-worker",
            "run",
            "--queue",
            "q1",
            "--log-format",
            "json",
            "--prefetch",
            "8",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let Command::Run(c) = cli.command else {
            panic!("not run")
        };
        assert_eq!(c.queue, "q1");
        assert_eq!(c.prefetch, 8);
        assert_eq!(c.log.log_format, LogFormat::Json);
        assert_eq!(c.dead_letter_queue(), "q1.dlq");
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn replay_requires_a_tenant() {
        assert!(Cli::try_parse_from(["update-worker", "replay"]).is_err());
        assert!(
            Cli::try_parse_from(["update-worker", "replay", "--tenant", "acme", "--dry-run"])
                .is_ok()
        );
    }
}
