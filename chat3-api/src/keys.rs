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

impl KeyCache {
    /// Drops the cached lookups of every key of `tenant` (its deletion revoked them all).
    pub fn forget_tenant(&self, tenant: &TenantId) {
        if let Ok(mut map) = self.entries.lock() {
            map.retain(|_, (rec, _)| rec.as_ref().is_none_or(|r| r.tenant_id != *tenant));
        }
    }
}

/// Tenants known to exist and be active, for operator requests naming one with `X-Tenant-ID`;
/// trusted for the key-cache TTL, like keys, so that a deletion started elsewhere stops the
/// operator's writes within the same window as the tenant's own keys.
pub struct KnownTenants {
    ttl: Duration,
    known: Mutex<HashMap<TenantId, Instant>>,
}

impl KnownTenants {
    /// A cache trusting entries for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Ok when `tenant` exists and is not being deleted: 404 `tenant_not_found` or
    /// `tenant_deleting` otherwise (the tenant is no longer there to act on, as every tenant
    /// route documents).
    pub async fn ensure_active(&self, store: &Store, tenant: &TenantId) -> Result<(), ApiError> {
        if self
            .known
            .lock()
            .is_ok_and(|k| k.get(tenant).is_some_and(|at| at.elapsed() < self.ttl))
        {
            return Ok(());
        }
        if tenants::require_active(&tenants::get_tenant(store, tenant).await?).is_err() {
            return Err(chat3_core::Error::not_found(
                "tenant_deleting",
                format!("tenant '{tenant}' is being deleted"),
            )
            .into());
        }
        if let Ok(mut k) = self.known.lock() {
            if k.len() >= CACHE_CAP {
                k.clear();
            }
            k.insert(tenant.clone(), Instant::now());
        }
        Ok(())
    }

    /// Forgets `tenant` (it is being deleted).
    pub fn forget(&self, tenant: &TenantId) {
        if let Ok(mut k) = self.known.lock() {
            k.remove(tenant);
        }
    }
}
