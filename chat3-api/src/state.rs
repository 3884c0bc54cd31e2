//! Shared state of the HTTP workers.

use std::time::Duration;

use chat3_core::contract::Contract;
use chat3_core::Ctx;

use crate::config::ApiConfig;
use crate::deletions::Deletions;
use crate::keys::{KeyCache, KnownTenants};
use crate::rate_limit::Limiter;

/// What every handler can reach.
pub struct AppState {
    /// Store and bus for domain calls.
    pub ctx: Ctx,
    /// The operator key, if configured.
    pub admin_api_key: Option<String>,
    /// API key lookups.
    pub keys: KeyCache,
    /// Per-key rate limits.
    pub limiter: Limiter,
    /// Tenants the operator may act on.
    pub tenants: KnownTenants,
    /// Largest accepted body.
    pub body_limit: usize,
    /// Lease of pending idempotency claims.
    pub idempotency_lease: Duration,
    /// Deadline of every request.
    pub request_timeout: Duration,
    /// Request-body schemas of the spec.
    pub contract: Contract,
    /// The tenant deletion job.
    pub deletions: Deletions,
}

impl AppState {
    /// State for `config` over `ctx`.
    pub fn new(ctx: Ctx, config: &ApiConfig, contract: Contract, deletions: Deletions) -> Self {
        let key_ttl = Duration::from_secs(config.key_cache_seconds);
        Self {
            ctx,
            admin_api_key: config.admin_api_key.clone().filter(|k| !k.is_empty()),
            keys: KeyCache::new(key_ttl),
            limiter: Limiter::new(config.rate_limit_per_second, config.rate_limit_burst),
            tenants: KnownTenants::new(key_ttl),
            body_limit: config.body_limit_bytes,
            idempotency_lease: Duration::from_secs(config.idempotency_lease_secs.max(1)),
            request_timeout: Duration::from_secs(config.request_timeout_secs.max(1)),
            contract,
            deletions,
        }
    }
}
