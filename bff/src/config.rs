//! The BFF's configuration: one typed struct parsed by clap, every field with an env twin,
//! secrets redacted in `Debug`. Nothing else in the crate reads the environment.

use std::net::SocketAddr;
use std::time::Duration;

use chat3_core::config::{redact_opt, redact_url, AmqpArgs, LogArgs, MongoArgs};
use chat3_sdk::TenantId;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// `bff`: the chat3 backend-for-frontend.
#[derive(Debug, Parser)]
#[command(name = "bff", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands of `bff`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the login routes, `/health`, `/ready` and the WebSocket.
    Serve(Box<Config>),
}

/// Which SMS provider sends login codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SmsKind {
    /// Log and print the text (development).
    #[default]
    Console,
    /// POST `{"to", "text"}` as JSON to `BFF_SMS_HTTP_URL`.
    Http,
}

/// Everything `bff serve` needs.
#[derive(Clone, Args)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(
        long = "bind",
        env = "CHAT3_BFF_BIND",
        default_value = "127.0.0.1:8080"
    )]
    pub bind: SocketAddr,
    /// HTTP worker threads (0: one per CPU).
    #[arg(long, env = "CHAT3_BFF_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Base URL of the tenant REST API (used to replay stored updates on resume).
    #[arg(long, env = "CHAT3_API_URL", default_value = "http://127.0.0.1:3000")]
    pub api_url: String,
    /// Tenant API key of the BFF (needs the `read` scope).
    #[arg(long, env = "CHAT3_API_KEY")]
    pub api_key: Option<String>,
    /// The tenant the BFF's end users belong to.
    #[arg(long, env = "CHAT3_TENANT_ID")]
    pub tenant_id: TenantId,

    /// HS256 secret for session tokens (at least 16 bytes); also peppers stored code hashes.
    #[arg(long, env = "BFF_JWT_SECRET")]
    pub jwt_secret: String,
    /// Lifetime of session tokens, in seconds (48 h).
    #[arg(long, env = "BFF_TOKEN_TTL_SECS", default_value_t = 48 * 3600)]
    pub token_ttl_secs: u64,

    /// `console` or `http`.
    #[arg(long, env = "BFF_SMS_PROVIDER", value_enum, default_value_t = SmsKind::Console)]
    pub sms_provider: SmsKind,
    /// Where the `http` provider posts messages.
    #[arg(long, env = "BFF_SMS_HTTP_URL")]
    pub sms_http_url: Option<String>,
    /// How long a login code stays valid, in seconds.
    #[arg(long, env = "BFF_CODE_TTL_SECS", default_value_t = 300)]
    pub code_ttl_secs: u64,
    /// Digits in a login code (4-6).
    #[arg(long, env = "BFF_CODE_LENGTH", default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(4..=6))]
    pub code_length: u32,
    /// Codes one phone may request per hour from one client IP (burst; refills evenly).
    #[arg(long, env = "BFF_PHONE_CODES_PER_HOUR", default_value_t = 5)]
    pub phone_codes_per_hour: u32,
    /// Codes one phone may request per hour over all client IPs (bounds SMS cost).
    #[arg(long, env = "BFF_PHONE_CODES_TOTAL_PER_HOUR", default_value_t = 20)]
    pub phone_codes_total_per_hour: u32,
    /// Codes one client IP may request per hour (burst; refills evenly).
    #[arg(long, env = "BFF_IP_CODES_PER_HOUR", default_value_t = 60)]
    pub ip_codes_per_hour: u32,
    /// Verification attempts per phone per hour (on top of the 5 a code survives).
    #[arg(long, env = "BFF_PHONE_VERIFY_PER_HOUR", default_value_t = 30)]
    pub phone_verify_per_hour: u32,
    /// Verification attempts per client IP per hour.
    #[arg(long, env = "BFF_IP_VERIFY_PER_HOUR", default_value_t = 120)]
    pub ip_verify_per_hour: u32,

    /// MongoDB connection string.
    #[arg(
        long = "mongodb-uri",
        env = "MONGODB_URI",
        default_value = "mongodb://127.0.0.1:27017/?directConnection=true"
    )]
    pub mongodb_uri: String,
    /// The BFF's own database.
    #[arg(
        long = "mongodb-db",
        env = "CHAT3_BFF_MONGODB_DB",
        default_value = "chat3_bff"
    )]
    pub mongodb_db: String,
    /// How long a store operation waits for a usable server before failing (503), in ms.
    #[arg(
        long = "mongodb-timeout-ms",
        env = "CHAT3_MONGODB_TIMEOUT_MS",
        default_value_t = chat3_core::config::DEFAULT_MONGODB_TIMEOUT_MS
    )]
    pub mongodb_timeout_ms: u64,
    /// RabbitMQ URL and exchange names (only the updates exchange is used).
    #[command(flatten)]
    pub amqp: AmqpArgs,

    /// Seconds between WebSocket pings.
    #[arg(long, env = "BFF_WS_HEARTBEAT_SECS", default_value_t = 20)]
    pub ws_heartbeat_secs: u64,
    /// A socket silent for this many seconds (no pong, no frame) is closed.
    #[arg(long, env = "BFF_WS_CLIENT_TIMEOUT_SECS", default_value_t = 50)]
    pub ws_client_timeout_secs: u64,
    /// Updates buffered per socket before a slow client is disconnected.
    #[arg(long, env = "BFF_WS_BUFFER", default_value_t = 256)]
    pub ws_buffer: usize,

    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

impl Config {
    /// The storage settings as the core store expects them.
    pub fn mongo(&self) -> MongoArgs {
        MongoArgs {
            uri: self.mongodb_uri.clone(),
            db: self.mongodb_db.clone(),
            timeout_ms: self.mongodb_timeout_ms,
        }
    }

    /// The login routes' rate-limit budgets.
    pub fn budgets(&self) -> crate::limits::Budgets {
        crate::limits::Budgets {
            codes_per_phone_ip: self.phone_codes_per_hour,
            codes_per_phone: self.phone_codes_total_per_hour,
            codes_per_ip: self.ip_codes_per_hour,
            verify_per_phone: self.phone_verify_per_hour,
            verify_per_ip: self.ip_verify_per_hour,
        }
    }

    /// Validity of a login code.
    pub fn code_ttl(&self) -> Duration {
        Duration::from_secs(self.code_ttl_secs)
    }

    /// Checks what clap cannot: secret length, the HTTP provider's URL, sane timeouts.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.jwt_secret.len() < 16 {
            anyhow::bail!("BFF_JWT_SECRET must be at least 16 bytes");
        }
        if self.sms_provider == SmsKind::Http && self.sms_http_url.is_none() {
            anyhow::bail!("BFF_SMS_PROVIDER=http needs BFF_SMS_HTTP_URL");
        }
        if self.code_ttl_secs == 0 || self.token_ttl_secs == 0 {
            anyhow::bail!("code and token lifetimes must be positive");
        }
        let b = self.budgets();
        if [
            b.codes_per_phone_ip,
            b.codes_per_phone,
            b.codes_per_ip,
            b.verify_per_phone,
            b.verify_per_ip,
        ]
        .contains(&0)
        {
            anyhow::bail!("login rate limits must be positive");
        }
        if self.ws_heartbeat_secs == 0 || self.ws_client_timeout_secs <= self.ws_heartbeat_secs {
            anyhow::bail!("BFF_WS_CLIENT_TIMEOUT_SECS must exceed BFF_WS_HEARTBEAT_SECS (> 0)");
        }
        if self.ws_buffer == 0 {
            anyhow::bail!("BFF_WS_BUFFER must be positive");
        }
        Ok(())
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("workers", &self.workers)
            .field("api_url", &self.api_url)
            .field("api_key", &redact_opt(&self.api_key))
            .field("tenant_id", &self.tenant_id)
            .field("jwt_secret", &"***")
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("sms_provider", &self.sms_provider)
            .field(
                "sms_http_url",
                &self.sms_http_url.as_deref().map(redact_url),
            )
            .field("code_ttl_secs", &self.code_ttl_secs)
            .field("code_length", &self.code_length)
            .field("phone_codes_per_hour", &self.phone_codes_per_hour)
            .field(
                "phone_codes_total_per_hour",
                &self.phone_codes_total_per_hour,
            )
            .field("ip_codes_per_hour", &self.ip_codes_per_hour)
            .field("phone_verify_per_hour", &self.phone_verify_per_hour)
            .field("ip_verify_per_hour", &self.ip_verify_per_hour)
            .field("mongodb_uri", &redact_url(&self.mongodb_uri))
            .field("mongodb_db", &self.mongodb_db)
            .field("mongodb_timeout_ms", &self.mongodb_timeout_ms)
            .field("amqp", &self.amqp)
            .field("ws_heartbeat_secs", &self.ws_heartbeat_secs)
            .field("ws_client_timeout_secs", &self.ws_client_timeout_secs)
            .field("ws_buffer", &self.ws_buffer)
            .field("log", &self.log)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let mut all = vec![
            "bff",
            "serve",
            "--tenant-id",
            "acme",
            "--jwt-secret",
            "0123456789abcdef-secret",
        ];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
    }

    #[test]
    fn serve_parses_with_defaults_and_debug_hides_secrets() {
        let cli = parse(&["--api-key", "c3k_supersecret"]).unwrap();
        let Command::Serve(cfg) = cli.command;
        assert_eq!(cfg.code_ttl_secs, 300);
        assert_eq!(cfg.sms_provider, SmsKind::Console);
        assert!(cfg.validate().is_ok());
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
        assert!(!dbg.contains("0123456789abcdef-secret"), "{dbg}");
    }

    #[test]
    fn code_length_outside_four_to_six_is_rejected() {
        assert!(parse(&["--code-length", "3"]).is_err());
        assert!(parse(&["--code-length", "7"]).is_err());
        assert!(parse(&["--code-length", "4"]).is_ok());
    }

    #[test]
    fn http_provider_without_url_fails_validation() {
        let cli = parse(&["--sms-provider", "http"]).unwrap();
        let Command::Serve(cfg) = cli.command;
        assert!(cfg.validate().is_err());
    }
}
