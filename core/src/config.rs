//! Configuration fragments shared by the binaries. Every field has a flag and an env twin;
//! secrets are redacted in `Debug`. Nothing outside these structs reads the environment.

use clap::{Args, ValueEnum};

/// MongoDB connection.
#[derive(Clone, Args)]
pub struct MongoArgs {
    /// MongoDB connection string (a replica set: transactions need it).
    #[arg(
        long = "mongodb-uri",
        env = "MONGODB_URI",
        default_value = "mongodb://127.0.0.1:27017/?directConnection=true"
    )]
    pub uri: String,
    /// Database name.
    #[arg(long = "mongodb-db", env = "CHAT3_MONGODB_DB", default_value = "chat3")]
    pub db: String,
    /// How long an operation waits for a usable server (and a connection attempt may take)
    /// before it fails as unavailable, in milliseconds. Bounds how long requests hang while the
    /// store is down.
    #[arg(
        long = "mongodb-timeout-ms",
        env = "CHAT3_MONGODB_TIMEOUT_MS",
        default_value_t = DEFAULT_MONGODB_TIMEOUT_MS
    )]
    pub timeout_ms: u64,
}

/// Default of [`MongoArgs::timeout_ms`].
pub const DEFAULT_MONGODB_TIMEOUT_MS: u64 = 2000;

impl MongoArgs {
    /// `uri` and database `db` with the default timeout.
    pub fn new(uri: impl Into<String>, db: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            db: db.into(),
            timeout_ms: DEFAULT_MONGODB_TIMEOUT_MS,
        }
    }

    /// [`MongoArgs::timeout_ms`] as a duration.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms.max(1))
    }
}

impl std::fmt::Debug for MongoArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoArgs")
            .field("uri", &redact_url(&self.uri))
            .field("db", &self.db)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// RabbitMQ connection and exchange names.
#[derive(Clone, Args)]
pub struct AmqpArgs {
    /// AMQP URL.
    #[arg(
        long = "rabbitmq-url",
        env = "RABBITMQ_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub url: String,
    /// Topic exchange the API publishes events on.
    #[arg(long, env = "CHAT3_EVENTS_EXCHANGE", default_value = "chat3_events")]
    pub events_exchange: String,
    /// Topic exchange the update worker publishes updates on.
    #[arg(long, env = "CHAT3_UPDATES_EXCHANGE", default_value = "chat3_updates")]
    pub updates_exchange: String,
}

impl std::fmt::Debug for AmqpArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpArgs")
            .field("url", &redact_url(&self.url))
            .field("events_exchange", &self.events_exchange)
            .field("updates_exchange", &self.updates_exchange)
            .finish()
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// `text` or `json`.
    #[arg(long, env = "CHAT3_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Filter in `RUST_LOG` syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
}

/// Replaces the password of `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((creds, host)) => match creds.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Debug-prints an optional secret as `Some("***")`.
pub fn redact_opt(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_url("mongodb://127.0.0.1:27017"),
            "mongodb://127.0.0.1:27017"
        );
    }
}
