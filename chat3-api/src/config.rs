//! Command line and environment: `chat3-api serve`, `chat3-api tenant ...`, `chat3-api key ...`.

use std::time::Duration;

use chat3_core::config::{redact_opt, AmqpArgs, LogArgs, MongoArgs};
use clap::{Args, Parser, Subcommand};

/// chat3 tenant REST API.
#[derive(Debug, Parser)]
#[command(name = "chat3-api", version, about)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API.
    Serve(Box<ApiConfig>),
    /// Manage tenants directly in the database.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys directly in the database.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `chat3-api tenant ...`.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// Tenant id (`^[a-z0-9_-]{1,64}$`).
        tenant_id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Storage.
        #[command(flatten)]
        mongo: MongoArgs,
    },
    /// List tenants.
    List {
        /// Storage.
        #[command(flatten)]
        mongo: MongoArgs,
    },
    /// Delete a tenant: revoke its keys at once, then remove all its data, showing progress.
    /// Without `--yes` it only prints what the tenant holds.
    Delete {
        /// Tenant id.
        tenant_id: String,
        /// Really delete (otherwise only count).
        #[arg(long)]
        yes: bool,
        /// How long running API instances trust a looked-up key (their
        /// `CHAT3_KEY_CACHE_SECONDS`): the deletion waits that long, plus their request
        /// timeout, for writes admitted before the revocation, then sweeps again.
        #[arg(long, env = "CHAT3_KEY_CACHE_SECONDS", default_value_t = 5)]
        key_cache_seconds: u64,
        /// The API instances' `CHAT3_REQUEST_TIMEOUT_SECS`.
        #[arg(long, env = "CHAT3_REQUEST_TIMEOUT_SECS", default_value_t = 10)]
        request_timeout_secs: u64,
        /// Storage.
        #[command(flatten)]
        mongo: MongoArgs,
    },
}

/// `chat3-api key ...`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a tenant; prints the secret once.
    Create {
        /// Tenant id.
        tenant_id: String,
        /// Label.
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated scopes (read,write,delete); all by default.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Storage.
        #[command(flatten)]
        mongo: MongoArgs,
    },
    /// List a tenant's keys (never the secrets).
    List {
        /// Tenant id.
        tenant_id: String,
        /// Storage.
        #[command(flatten)]
        mongo: MongoArgs,
    },
    /// Revoke a key.
    Revoke {
        /// Tenant id.
        tenant_id: String,
        /// Key id (`key_...`).
        key_id: String,
        /// Storage.
        #[command(flatten)]
        mongo: MongoArgs,
    },
}

/// Settings of `chat3-api serve`.
#[derive(Clone, Args)]
pub struct ApiConfig {
    /// Address to listen on.
    #[arg(long, env = "CHAT3_API_BIND", default_value = "127.0.0.1:3000")]
    pub bind: String,
    /// Storage.
    #[command(flatten)]
    pub mongo: MongoArgs,
    /// Broker.
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// The operator key: manages tenants and keys, acts on any tenant via `X-Tenant-ID`.
    #[arg(long, env = "CHAT3_ADMIN_API_KEY")]
    pub admin_api_key: Option<String>,
    /// Requests per second allowed per API key (sustained).
    #[arg(long, env = "CHAT3_RATE_LIMIT_PER_SECOND", default_value_t = 500)]
    pub rate_limit_per_second: u32,
    /// Burst size per API key.
    #[arg(long, env = "CHAT3_RATE_LIMIT_BURST", default_value_t = 2000)]
    pub rate_limit_burst: u32,
    /// Largest accepted JSON body, in bytes.
    #[arg(long, env = "CHAT3_BODY_LIMIT_BYTES", default_value_t = 256 * 1024)]
    pub body_limit_bytes: usize,
    /// How long published events stay in the journal, in hours.
    #[arg(long, env = "CHAT3_EVENT_RETENTION_HOURS", default_value_t = 24 * 7)]
    pub event_retention_hours: u64,
    /// How long a looked-up API key is trusted before it is read again (revocation delay).
    #[arg(long, env = "CHAT3_KEY_CACHE_SECONDS", default_value_t = 5)]
    pub key_cache_seconds: u64,
    /// How long a pending `X-Idempotency-Key` claim is held before a retry may take it over
    /// (a request that crashed or hung), in seconds. Longer than the request timeout.
    #[arg(long, env = "CHAT3_IDEMPOTENCY_LEASE_SECS", default_value_t = 15)]
    pub idempotency_lease_secs: u64,
    /// Longest a request may take before it is answered 503 `request_timeout`, in seconds.
    #[arg(long, env = "CHAT3_REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,
    /// Writer tasks that commit message sends (group commit; a dialog always uses the same one).
    #[arg(long, env = "CHAT3_SEND_WRITERS", default_value_t = 2)]
    pub send_writers: usize,
    /// Most sends committed in one transaction.
    #[arg(long, env = "CHAT3_SEND_BATCH", default_value_t = 256)]
    pub send_batch: usize,
    /// Sends waiting per writer before new ones are answered 503 `overloaded`.
    #[arg(long, env = "CHAT3_SEND_QUEUE", default_value_t = 1024)]
    pub send_queue: usize,
    /// A send that waited longer than this (ms) is answered 503 `overloaded` instead of being
    /// written, so that accepted sends stay fast when the store cannot keep up.
    #[arg(long, env = "CHAT3_SEND_MAX_WAIT_MS", default_value_t = 250)]
    pub send_max_wait_ms: u64,
    /// HTTP worker threads (0 = one per core).
    #[arg(long, env = "CHAT3_API_WORKERS", default_value_t = 0)]
    pub workers: usize,
}

impl ApiConfig {
    /// Settings of the send writers.
    pub fn sends(&self) -> chat3_core::messages::send::SendConfig {
        chat3_core::messages::send::SendConfig {
            writers: self.send_writers.max(1),
            max_batch: self.send_batch.max(1),
            queue: self.send_queue.max(1),
            max_wait: Duration::from_millis(self.send_max_wait_ms.max(1)),
        }
    }

    /// How long a tenant deletion waits for writes admitted before its keys' revocation.
    pub fn deletion_grace(&self) -> Duration {
        chat3_core::tenant_deletion::grace(self.key_cache_seconds, self.request_timeout_secs)
    }

    /// Journal retention as a duration.
    pub fn event_retention(&self) -> Duration {
        Duration::from_secs(self.event_retention_hours * 3600)
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("bind", &self.bind)
            .field("mongo", &self.mongo)
            .field("amqp", &self.amqp)
            .field("admin_api_key", &redact_opt(&self.admin_api_key))
            .field("rate_limit_per_second", &self.rate_limit_per_second)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("event_retention_hours", &self.event_retention_hours)
            .field("key_cache_seconds", &self.key_cache_seconds)
            .field("idempotency_lease_secs", &self.idempotency_lease_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("send_writers", &self.send_writers)
            .field("send_batch", &self.send_batch)
            .field("send_queue", &self.send_queue)
            .field("send_max_wait_ms", &self.send_max_wait_ms)
            .field("workers", &self.workers)
            .finish()
    }
}
