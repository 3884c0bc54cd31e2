//! `X-Idempotency-Key`: the first response to a (tenant, key, method, path) is stored for 24 h
//! and replayed to retries; the same key with a different body is refused.
//!
//! A request claims its key before running (a unique index decides races) and holds the claim
//! under a short lease, identified by an owner token. The reply is recorded either inside the
//! write's own transaction ([`record_in`], through [`crate::write::transact`]) or, for requests
//! that wrote nothing transactional, after the handler ([`complete`]). Every state change is a
//! compare-and-set on (owner, state = pending), so:
//!
//! - a request that crashed before committing leaves a pending claim whose lease expires; the
//!   next retry takes it over ([`claim`]) and runs the request, once;
//! - a request that committed has its reply stored atomically with the write: retries replay it;
//! - a slow request whose claim was taken over cannot commit any more (its `record_in` matches
//!   nothing and aborts the transaction), so two runs never both write.

use std::future::Future;
use std::time::Duration;

use bson::{doc, Document};
use mongodb::ClientSession;
use sha2::{Digest, Sha256};

use crate::error::{is_duplicate_key, Error, Result};
use crate::ids::random_base36;
use crate::store::{coll, Store};

/// How long a stored response is replayed.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Default lease of a pending claim: after it, a retry may take the claim over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// Tenant scope used for operator requests that name no tenant.
pub const OPERATOR_SCOPE: &str = "_operator";

/// How many times [`claim`] re-reads a key that changed under it before answering in-flight.
const CLAIM_ROUNDS: usize = 4;

/// A claim held by the current request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    scope: String,
    key: String,
    method: String,
    path: String,
    owner: String,
}

impl Claimed {
    /// The claim document while this request still holds it.
    pub(crate) fn filter(&self) -> Document {
        let mut f = key_filter(&self.scope, &self.key, &self.method, &self.path);
        f.insert("owner", &self.owner);
        f.insert("state", "pending");
        f
    }
}

impl Claimed {
    /// True when `stored` is this claim, still pending and still held by this request.
    pub(crate) fn matches(&self, stored: &Document) -> bool {
        stored.get_str("tenantId") == Ok(self.scope.as_str())
            && stored.get_str("key") == Ok(self.key.as_str())
            && stored.get_str("method") == Ok(self.method.as_str())
            && stored.get_str("path") == Ok(self.path.as_str())
            && stored.get_str("owner") == Ok(self.owner.as_str())
            && stored.get_str("state") == Ok("pending")
    }
}

/// What a request holding an idempotency key should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use (or a takeover after an expired lease): run the request inside
    /// [`with_claim`], then [`complete`] or [`release`].
    New(Claimed),
    /// Already answered: send this status and body again.
    Replay {
        /// HTTP status of the first response.
        status: u16,
        /// Its JSON body.
        body: String,
    },
    /// Same key, different request body.
    Mismatch,
    /// The first request with this key is still running (its lease has not expired).
    InFlight,
}

/// SHA-256 of a request body, hex.
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn key_filter(scope: &str, key: &str, method: &str, path: &str) -> Document {
    doc! { "tenantId": scope, "key": key, "method": method, "path": path }
}

fn lease_until(lease: Duration) -> bson::DateTime {
    let ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis().saturating_add(ms))
}

/// Claims `key` for this request, or says how the earlier one went.
pub async fn claim(
    store: &Store,
    scope: &str,
    key: &str,
    method: &str,
    path: &str,
    hash: &str,
    lease: Duration,
) -> Result<Claim> {
    let claimed = Claimed {
        scope: scope.to_owned(),
        key: key.to_owned(),
        method: method.to_owned(),
        path: path.to_owned(),
        owner: random_base36(16),
    };
    let c = store.coll(coll::IDEMPOTENCY_KEYS);
    for _ in 0..CLAIM_ROUNDS {
        let mut d = key_filter(scope, key, method, path);
        d.insert("bodyHash", hash);
        d.insert("state", "pending");
        d.insert("owner", &claimed.owner);
        d.insert("leaseUntil", lease_until(lease));
        d.insert("createdAt", bson::DateTime::now());
        match c.insert_one(d).await {
            Ok(_) => return Ok(Claim::New(claimed)),
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let Some(found) = c.find_one(key_filter(scope, key, method, path)).await? else {
            continue; // released meanwhile: claim it again
        };
        if found.get_str("bodyHash").ok() != Some(hash) {
            return Ok(Claim::Mismatch);
        }
        if found.get_str("state") == Ok("done") {
            return Ok(match (found.get_i32("status"), found.get_str("body")) {
                (Ok(status), Ok(body)) => Claim::Replay {
                    status: u16::try_from(status).unwrap_or(200),
                    body: body.to_owned(),
                },
                _ => Claim::InFlight,
            });
        }
        // Claims written before leases existed have none: they are stale by definition.
        let expired = found
            .get_datetime("leaseUntil")
            .map_or(true, |until| *until <= bson::DateTime::now());
        if !expired {
            return Ok(Claim::InFlight);
        }
        // The holder crashed or hung: it can no longer commit (see the module docs). Take over.
        let mut stale = key_filter(scope, key, method, path);
        stale.insert("state", "pending");
        match found.get_str("owner") {
            Ok(owner) => stale.insert("owner", owner),
            Err(_) => stale.insert("owner", doc! {"$exists": false}),
        };
        let taken = c
            .update_one(
                stale,
                doc! {"$set": {"owner": &claimed.owner, "leaseUntil": lease_until(lease)}},
            )
            .await?;
        if taken.modified_count == 1 {
            tracing::info!(
                key,
                method,
                path,
                "took over an idempotency key whose lease expired"
            );
            return Ok(Claim::New(claimed));
        }
    }
    Ok(Claim::InFlight)
}

tokio::task_local! {
    static CURRENT: Claimed;
}

/// Runs `fut` (the request's handler) holding `claimed`, so that transactional writes inside
/// it record their reply atomically ([`record_in`]).
pub async fn with_claim<F: Future>(claimed: Claimed, fut: F) -> F::Output {
    CURRENT.scope(claimed, fut).await
}

/// The claim the current request holds, if any (to hand to a task that writes for it).
pub fn current() -> Option<Claimed> {
    CURRENT.try_with(Claimed::clone).ok()
}

/// The error of a request whose claim a retry took over: it must not write.
pub(crate) fn taken_over(claim: Option<&Claimed>) -> Error {
    let key = claim.map(|c| c.key.as_str()).unwrap_or_default();
    Error::conflict(
        "idempotency_key_in_use",
        format!(
            "a retry with X-Idempotency-Key '{key}' took this request over; it was not applied"
        ),
    )
}

/// Inside a transaction: stores the reply of `claim` (see [`record_in`]); a claim no longer held
/// fails with a batch conflict, so the batch is read again and this request left out.
pub(crate) async fn record_claimed(
    store: &Store,
    session: &mut ClientSession,
    claim: &Claimed,
    status: u16,
    body: &str,
) -> Result<()> {
    let done = store
        .coll(coll::IDEMPOTENCY_KEYS)
        .update_one(
            claim.filter(),
            doc! {"$set": {"state": "done", "status": i32::from(status), "body": body}},
        )
        .session(session)
        .await?;
    if done.matched_count == 0 {
        return Err(Error::conflict(
            crate::messages::BATCH_CONFLICT,
            "an idempotency claim of the batch was taken over",
        ));
    }
    Ok(())
}

/// Inside a write's transaction: stores `status` and `body` as the reply of the current
/// request's claim, if it holds one. Fails (aborting the transaction) when the claim was taken
/// over by a retry, so that only one run of a request ever commits.
pub async fn record_in(
    store: &Store,
    session: &mut ClientSession,
    status: u16,
    body: &str,
) -> mongodb::error::Result<()> {
    let Ok(claimed) = CURRENT.try_with(Claimed::clone) else {
        return Ok(());
    };
    let done = store
        .coll(coll::IDEMPOTENCY_KEYS)
        .update_one(
            claimed.filter(),
            doc! {"$set": {"state": "done", "status": i32::from(status), "body": body}},
        )
        .session(session)
        .await?;
    if done.matched_count == 0 {
        return Err(taken_over(Some(&claimed)).into_txn());
    }
    Ok(())
}

/// Stores the response of a claimed request that did not record it in a transaction (a
/// request whose reply was recorded already is left as it is).
pub async fn complete(store: &Store, claimed: &Claimed, status: u16, body: &str) -> Result<()> {
    store
        .coll(coll::IDEMPOTENCY_KEYS)
        .update_one(
            claimed.filter(),
            doc! {"$set": {"state": "done", "status": i32::from(status), "body": body}},
        )
        .await?;
    Ok(())
}

/// Gives a claim up (the request failed on our side before writing), so a retry runs again.
/// A claim whose reply was committed is never released.
pub async fn release(store: &Store, claimed: &Claimed) -> Result<()> {
    store
        .coll(coll::IDEMPOTENCY_KEYS)
        .delete_one(claimed.filter())
        .await?;
    Ok(())
}
