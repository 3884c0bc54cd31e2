//! `X-Idempotency-Key`: the first response to a (tenant, key, method, path) is stored for 24 h
//! and replayed to retries; the same key with a different body is refused. A request claims its
//! key before running (a unique index decides races), so two concurrent retries never both run.

use std::time::Duration;

use bson::{doc, Document};
use sha2::{Digest, Sha256};

use crate::error::{is_duplicate_key, Result};
use crate::store::{coll, Store};

/// How long a stored response is replayed.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Tenant scope used for operator requests that name no tenant.
pub const OPERATOR_SCOPE: &str = "_operator";

/// What a request holding an idempotency key should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use: run the request, then [`complete`] or [`release`].
    New,
    /// Already answered: send this status and body again.
    Replay {
        /// HTTP status of the first response.
        status: u16,
        /// Its JSON body.
        body: String,
    },
    /// Same key, different request body.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

/// SHA-256 of a request body, hex.
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn key_filter(scope: &str, key: &str, method: &str, path: &str) -> Document {
    doc! { "tenantId": scope, "key": key, "method": method, "path": path }
}

/// Claims `key` for this request, or says how the earlier one went.
pub async fn claim(
    store: &Store,
    scope: &str,
    key: &str,
    method: &str,
    path: &str,
    hash: &str,
) -> Result<Claim> {
    let mut d = key_filter(scope, key, method, path);
    d.insert("bodyHash", hash);
    d.insert("state", "pending");
    d.insert("createdAt", bson::DateTime::now());
    let c = store.coll(coll::IDEMPOTENCY_KEYS);
    match c.insert_one(d).await {
        Ok(_) => return Ok(Claim::New),
        Err(e) if is_duplicate_key(&e) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(found) = c.find_one(key_filter(scope, key, method, path)).await? else {
        // Released between our insert and read: treat as in flight; the client retries.
        return Ok(Claim::InFlight);
    };
    if found.get_str("bodyHash").ok() != Some(hash) {
        return Ok(Claim::Mismatch);
    }
    match (
        found.get_str("state"),
        found.get_i32("status"),
        found.get_str("body"),
    ) {
        (Ok("done"), Ok(status), Ok(body)) => Ok(Claim::Replay {
            status: u16::try_from(status).unwrap_or(200),
            body: body.to_owned(),
        }),
        _ => Ok(Claim::InFlight),
    }
}

/// Stores the response of a claimed request.
pub async fn complete(
    store: &Store,
    scope: &str,
    key: &str,
    method: &str,
    path: &str,
    status: u16,
    body: &str,
) -> Result<()> {
    store
        .coll(coll::IDEMPOTENCY_KEYS)
        .update_one(
            key_filter(scope, key, method, path),
            doc! {"$set": {"state": "done", "status": i32::from(status), "body": body}},
        )
        .await?;
    Ok(())
}

/// Gives a claim up (the request failed on our side), so a retry runs again.
pub async fn release(
    store: &Store,
    scope: &str,
    key: &str,
    method: &str,
    path: &str,
) -> Result<()> {
    store
        .coll(coll::IDEMPOTENCY_KEYS)
        .delete_one(key_filter(scope, key, method, path))
        .await?;
    Ok(())
}
