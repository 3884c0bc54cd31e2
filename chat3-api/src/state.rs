//! Shared state of the HTTP workers.

use std::time::Duration;

use chat3_core::Ctx;

use crate::auth::{KeyCache, KnownTenants, Limiter};
use crate::config::ApiConfig;

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
}

impl AppState {
    /// State for `config` over `ctx`.
    pub fn new(ctx: Ctx, config: &ApiConfig) -> Self {
        Self {
            ctx,
            admin_api_key: config.admin_api_key.clone().filter(|k| !k.is_empty()),
            keys: KeyCache::new(Duration::from_secs(config.key_cache_seconds)),
            limiter: Limiter::new(config.rate_limit_per_second, config.rate_limit_burst),
            tenants: KnownTenants::default(),
        }
    }
}
