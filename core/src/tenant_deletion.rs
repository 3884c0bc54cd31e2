//! Deleting a tenant: [`begin`] revokes its keys and marks it `deleting`, in one transaction;
//! [`run`] then counts what it holds, removes its data in batches, recording progress in the
//! tenant's document, and finally its keys and the tenant itself.
//!
//! Every removal is by `tenantId` (through an index that starts with it, but for the journal,
//! which is scanned once per pass rather than given an index every send would pay for), so
//! nothing of another tenant is touched. [`run`] is idempotent and resumable: after a crash it
//! starts again where the data ends ([`pending`] lists the tenants to resume), and two runs over
//! the same tenant only share the work (each counts what it removed itself).
//!
//! Writes admitted just before the revocation (another API instance whose key cache has not
//! expired yet, a request already past authentication, events still queued for the update
//! worker) may land after a first pass; [`run`] therefore waits a grace period after its first
//! pass and makes a second one before it removes the tenant.

use std::collections::BTreeMap;
use std::time::Duration;

use bson::{doc, Bson, Document};
use chat3_sdk::{DeletionCount, Tenant, TenantDeletion, TenantId};
use futures_util::TryStreamExt;

use crate::error::{Error, Result};
use crate::ids::now_ms;
use crate::store::{coll, scoped, tenant_filter, Store};
use crate::tenants::{get_tenant, tenant_from_doc, tenant_not_found};
use crate::write::{self, Reply, Staged};

/// Documents removed per round trip.
const BATCH: i64 = 1000;

/// Field of the tenant document holding the deletion's progress.
const FIELD: &str = "deletion";

/// The grace period of a deletion for API instances trusting a looked-up key for
/// `key_cache_seconds` and answering every request within `request_timeout_secs`: a write
/// admitted before the revocation has committed by then.
pub fn grace(key_cache_seconds: u64, request_timeout_secs: u64) -> Duration {
    Duration::from_secs(key_cache_seconds + request_timeout_secs + 1)
}

/// How many documents `tenant` holds in each collection of [`coll::TENANT_DATA`].
pub async fn census(store: &Store, tenant: &TenantId) -> Result<BTreeMap<String, u64>> {
    let mut counts = BTreeMap::new();
    for name in coll::TENANT_DATA {
        let total = store
            .coll(name)
            .count_documents(tenant_filter(tenant))
            .await?;
        counts.insert((*name).to_owned(), total);
    }
    Ok(counts)
}

/// Marks `tenant` deleting and revokes all its keys, in one transaction; idempotent (a tenant
/// already deleting is returned as it is). The counts are made by [`run`] as it starts. 404
/// `tenant_not_found` for an unknown tenant.
#[tracing::instrument(skip_all, fields(tenant = %tenant))]
pub async fn begin(store: &Store, tenant: &TenantId) -> Result<Tenant> {
    let found = get_tenant(store, tenant).await?;
    if found.deletion.is_some() {
        return Ok(found);
    }
    let now = now_ms();
    let staged = write::commit(store, Reply::Ok, async |s| {
        let tenants = store.coll(coll::TENANTS);
        tenants
            .update_one(
                scoped(tenant, doc! {FIELD: {"$exists": false}}),
                doc! {"$set": {FIELD: {"startedAt": now, "collections": {}}}},
            )
            .session(&mut *s)
            .await?;
        store
            .coll(coll::API_KEYS)
            .update_many(
                scoped(tenant, doc! {"revokedAt": {"$exists": false}}),
                doc! {"$set": {"revokedAt": now}},
            )
            .session(&mut *s)
            .await?;
        let d = tenants
            .find_one(tenant_filter(tenant))
            .session(&mut *s)
            .await?
            .ok_or_else(|| tenant_not_found(tenant))?;
        Ok(Staged::new(tenant_from_doc(&d)?, Vec::new()).with_status(202))
    })
    .await?;
    tracing::info!(
        total = staged.value.deletion.as_ref().map(|d| d.total),
        "tenant deletion accepted"
    );
    Ok(staged.value)
}

/// The deletion progress stored in a tenant document, if it is being deleted.
pub(crate) fn progress_of(d: &Document) -> Option<TenantDeletion> {
    let del = d.get_document(FIELD).ok()?;
    let count = |v: &Document, k: &str| match v.get(k) {
        Some(Bson::Int64(n)) => (*n).max(0) as u64,
        Some(Bson::Int32(n)) => (*n).max(0) as u64,
        _ => 0,
    };
    let collections: BTreeMap<String, DeletionCount> = del
        .get_document("collections")
        .map(|c| {
            c.iter()
                .filter_map(|(k, v)| v.as_document().map(|v| (k, v)))
                .map(|(k, v)| {
                    (
                        k.clone(),
                        DeletionCount {
                            total: count(v, "total"),
                            deleted: count(v, "deleted"),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Some(TenantDeletion {
        started_at: del.get_i64("startedAt").unwrap_or(0),
        total: collections.values().map(|c| c.total).sum(),
        deleted: collections.values().map(|c| c.deleted).sum(),
        collections,
    })
}

/// Tenants marked deleting whose data is not gone yet (to resume after a restart).
pub async fn pending(store: &Store) -> Result<Vec<TenantId>> {
    let docs: Vec<Document> = store
        .coll(coll::TENANTS)
        .find(doc! {FIELD: {"$exists": true}})
        .projection(doc! {"tenantId": 1})
        .await?
        .try_collect()
        .await?;
    docs.iter()
        .map(|d| crate::docs::parse(d, "tenantId"))
        .collect()
}

/// Removes the data of a tenant that [`begin`] marked deleting: every collection of
/// [`coll::TENANT_DATA`] in batches, then (after `grace`) once more, then its keys and the
/// tenant document. `progress` sees the state after every batch. Returns the final progress;
/// 404 `tenant_not_found` if the tenant is unknown (or already gone), 409
/// `tenant_not_deleting` if it was never marked.
#[tracing::instrument(skip_all, fields(tenant = %tenant))]
pub async fn run(
    store: &Store,
    tenant: &TenantId,
    grace: Duration,
    mut progress: impl FnMut(&TenantDeletion),
) -> Result<TenantDeletion> {
    let found = store
        .coll(coll::TENANTS)
        .find_one(tenant_filter(tenant))
        .await?
        .ok_or_else(|| tenant_not_found(tenant))?;
    let Some(mut state) = progress_of(&found) else {
        return Err(Error::conflict(
            "tenant_not_deleting",
            format!("tenant '{tenant}' is not being deleted"),
        ));
    };
    let counted = found
        .get_document(FIELD)
        .is_ok_and(|d| d.get_bool("counted").unwrap_or(false));
    if !counted {
        // Counted here rather than when the deletion is accepted: the journal (`events`) has
        // no index by tenant, so counting it is a scan that a request should not wait for.
        let mut set = doc! {format!("{FIELD}.counted"): true};
        for (name, total) in census(store, tenant).await? {
            set.insert(format!("{FIELD}.collections.{name}.total"), total as i64);
            state.collections.entry(name).or_default().total = total;
        }
        state.total = state.collections.values().map(|c| c.total).sum();
        store
            .coll(coll::TENANTS)
            .update_one(tenant_filter(tenant), doc! {"$set": set})
            .await?;
    }
    progress(&state);
    for pass in 0..2 {
        if pass == 1 {
            tokio::time::sleep(grace).await;
        }
        for name in coll::TENANT_DATA {
            sweep(store, tenant, name, &mut state, &mut progress).await?;
        }
    }
    store
        .coll(coll::API_KEYS)
        .delete_many(tenant_filter(tenant))
        .await?;
    store
        .coll(coll::TENANTS)
        .delete_one(scoped(tenant, doc! {FIELD: {"$exists": true}}))
        .await?;
    tracing::info!(deleted = state.deleted, "tenant deleted");
    Ok(state)
}

/// Removes every document of `tenant` in collection `name`: one pass of a cursor over its
/// documents (an index range where the collection has one by tenant, a single scan of the
/// journal otherwise), deleting a batch at a time.
async fn sweep(
    store: &Store,
    tenant: &TenantId,
    name: &str,
    state: &mut TenantDeletion,
    progress: &mut impl FnMut(&TenantDeletion),
) -> Result<()> {
    let c = store.coll(name);
    let mut cursor = c
        .find(tenant_filter(tenant))
        .projection(doc! {"_id": 1})
        .batch_size(BATCH as u32)
        .await?;
    let mut ids: Vec<Bson> = Vec::with_capacity(BATCH as usize);
    while let Some(d) = cursor.try_next().await? {
        ids.extend(d.get("_id").cloned());
        if ids.len() >= BATCH as usize {
            remove(
                store,
                tenant,
                name,
                std::mem::take(&mut ids),
                state,
                progress,
            )
            .await?;
        }
    }
    if !ids.is_empty() {
        remove(store, tenant, name, ids, state, progress).await?;
    }
    Ok(())
}

/// Deletes the documents `ids` of `tenant` in collection `name` and counts them as removed.
async fn remove(
    store: &Store,
    tenant: &TenantId,
    name: &str,
    ids: Vec<Bson>,
    state: &mut TenantDeletion,
    progress: &mut impl FnMut(&TenantDeletion),
) -> Result<()> {
    let removed = store
        .coll(name)
        .delete_many(scoped(tenant, doc! {"_id": {"$in": ids}}))
        .await?
        .deleted_count;
    store
        .coll(coll::TENANTS)
        .update_one(
            tenant_filter(tenant),
            doc! {"$inc": {format!("{FIELD}.collections.{name}.deleted"): removed as i64}},
        )
        .await?;
    let entry = state.collections.entry(name.to_owned()).or_default();
    entry.deleted += removed;
    state.deleted += removed;
    progress(state);
    Ok(())
}
