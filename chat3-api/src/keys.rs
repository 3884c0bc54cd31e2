//! Caches of the lookups behind authentication: API keys by hash (a short TTL, so auth costs no
//! store round trip and a revocation lands within seconds) and tenants known to exist.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chat3_core::store::Store;
use chat3_core::tenants::{self, KeyRecord};
use chat3_sdk::TenantId;

use crate::error::ApiError;

/// Most cached key lookups kept (unknown keys are cached too, so the map is bounded).
const CACHE_CAP: usize = 10_000;

/// Key lookups with a short TTL.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Option<KeyRecord>, Instant)>>,
}

impl KeyCache {
    /// A cache trusting entries for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub async fn lookup(&self, store: &Store, secret: &str) -> Result<Option<KeyRecord>, ApiError> {
        let hash = tenants::hash_key(secret);
        if let Ok(map) = self.entries.lock() {
            if let Some((rec, at)) = map.get(&hash) {
                if at.elapsed() < self.ttl {
                    return Ok(rec.clone());
                }
            }
        }
        let rec = tenants::find_key(store, secret).await?;
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= CACHE_CAP {
                map.clear();
            }
            map.insert(hash, (rec.clone(), Instant::now()));
        }
        Ok(rec)
    }
}

impl KeyCache {
    /// Drops the cached lookup of `key_id`, so that its revocation through this instance takes
    /// effect at once (other instances notice within the cache TTL).
    pub fn forget_key(&self, key_id: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.retain(|_, (rec, _)| rec.as_ref().is_none_or(|r| r.key_id != key_id));
        }
    }
}

/// Tenants known to exist, for operator requests naming one with `X-Tenant-ID`. Tenants are
/// never deleted yet, so a positive answer can be kept.
#[derive(Default)]
pub struct KnownTenants {
    known: Mutex<std::collections::HashSet<TenantId>>,
}

impl KnownTenants {
    pub async fn ensure_exists(&self, store: &Store, tenant: &TenantId) -> Result<(), ApiError> {
        if self.known.lock().is_ok_and(|k| k.contains(tenant)) {
            return Ok(());
        }
        tenants::get_tenant(store, tenant).await?;
        if let Ok(mut k) = self.known.lock() {
            if k.len() >= CACHE_CAP {
                k.clear();
            }
            k.insert(tenant.clone());
        }
        Ok(())
    }
}
