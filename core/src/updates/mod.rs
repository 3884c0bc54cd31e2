//! Per-user sequenced updates (DESIGN §6): the `updates` collection, the fan-out write that gives
//! each recipient the next seq of their own sequence, and the paged read behind
//! `GET /api/users/{u}/updates`.
//!
//! Seq assignment needs no transaction. Two unique indexes do the work: (tenant, user, seq) makes
//! a seq impossible to take twice, and (tenant, user, eventId) makes a second update for the same
//! event impossible. A writer reads the recipients' heads, then their current state, then inserts
//! everything with head + 1 and retries only the users whose seq was taken meanwhile. Because
//! seq N + 1 can only be inserted once seq N exists, seqs become visible in order; because state
//! is read after the head, a later seq never carries older state than an earlier one.
//!
//! Updates expire after the retention (TTL on `storedAt`). The highest seq handed out per user is
//! also kept in `update_heads`, which does not expire, so a user whose updates all expired does
//! not start again from 1.

use std::future::Future;
use std::time::Duration;

use bson::{doc, Document};
use chat3_sdk::{EventEnvelope, TenantId, Update, UpdateType, UpdatesPage, UserId, UserType};
use futures_util::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::{coll, scoped, Store};

mod batch;
mod selection;

pub use batch::{fan_out_batch, Work};
pub use selection::{count, select, Selection};

/// Collection of per-user heads: `{tenantId, userId, seq}`, the highest seq handed out. Never
/// expires.
pub const HEADS: &str = "update_heads";

/// Default retention of stored updates.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The BSON date field the TTL index watches.
const TTL_FIELD: &str = "storedAt";

/// How many times a fan-out retries users whose seq was taken by a concurrent writer. Every
/// collision means another writer made progress, so this only bounds pathological contention.
const MAX_SEQ_ATTEMPTS: u32 = 64;

/// Largest page `list_since` returns.
pub const MAX_PAGE: u64 = 1000;

/// MongoDB `IndexOptionsConflict` / `IndexKeySpecsConflict`: the index exists with other options.
const INDEX_OPTIONS_CONFLICT: [i32; 2] = [85, 86];

/// Who receives an update and the sections it carries, read after the recipient's head.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Recipient.
    pub user_id: UserId,
    /// Recipient's type (part of the routing key).
    pub user_type: UserType,
    /// The update's `data`.
    pub data: Value,
    /// Its kind when it differs from the event's other updates (a receipt is a `message`
    /// update for the sender and a `dialog` update for the reader).
    pub update_type: Option<UpdateType>,
}

/// `update.{tenantId}.{userType}.{userId}.{updateType}`.
pub fn routing_key(update: &Update) -> String {
    format!(
        "update.{}.{}.{}.{}",
        update.tenant_id,
        update.user_type,
        update.user_id,
        update.update_type.as_str()
    )
}

/// Creates the indexes of `updates` and `update_heads` (idempotent). A changed retention is
/// applied to the existing TTL index.
pub async fn ensure_indexes(store: &Store, retention: Duration) -> mongodb::error::Result<()> {
    let unique = || IndexOptions::builder().unique(true).build();
    let updates = store.coll(coll::UPDATES);
    updates
        .create_indexes([
            IndexModel::builder()
                .keys(doc! {"tenantId": 1, "userId": 1, "seq": 1})
                .options(unique())
                .build(),
            IndexModel::builder()
                .keys(doc! {"tenantId": 1, "userId": 1, "eventId": 1})
                .options(unique())
                .build(),
        ])
        .await?;
    store
        .coll(HEADS)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"tenantId": 1, "userId": 1})
                .options(unique())
                .build(),
        )
        .await?;
    let ttl = IndexModel::builder()
        .keys(doc! { TTL_FIELD: 1 })
        .options(IndexOptions::builder().expire_after(retention).build())
        .build();
    match updates.create_index(ttl).await {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e).is_some_and(|c| INDEX_OPTIONS_CONFLICT.contains(&c)) => {
            tracing::info!(?retention, "changing the retention of stored updates");
            store
                .db()
                .run_command(doc! {
                    "collMod": coll::UPDATES,
                    "index": { "keyPattern": { TTL_FIELD: 1 }, "expireAfterSeconds": retention.as_secs() as i64 },
                })
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

fn error_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(ce) => Some(ce.code),
        _ => None,
    }
}

/// Stores one update per recipient of `event` and returns every recipient's update, the ones
/// stored now and the ones a previous delivery of the same event already stored, ready to
/// (re)publish: [`fan_out_batch`] for one event.
///
/// `users` are the candidate recipients. `load` is called with the users whose heads were just
/// read and returns what each of them receives, read from current state; a user it leaves out
/// receives nothing (e.g. no longer a member). On a seq collision the head and `load` are read
/// again for the colliding users only.
#[tracing::instrument(skip_all, fields(event_id = %event.event_id, tenant = %event.tenant_id, recipients = users.len()))]
pub async fn fan_out<F, Fut>(
    store: &Store,
    event: &EventEnvelope,
    update_type: UpdateType,
    users: Vec<UserId>,
    load: F,
) -> Result<Vec<Update>>
where
    F: Fn(Vec<UserId>) -> Fut,
    Fut: Future<Output = Result<Vec<Planned>>>,
{
    let work = [Work {
        event,
        update_type,
        users,
    }];
    let load = |mut pending: Vec<Vec<UserId>>| {
        let users = pending.pop().unwrap_or_default();
        let planned = load(users);
        async move { Ok(vec![planned.await?]) }
    };
    Ok(fan_out_batch(store, &work, load)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// A random pause before retry `attempt`, growing up to 64 ms.
fn retry_jitter(attempt: u32) -> Duration {
    use rand::Rng;
    let cap = 1u64 << attempt.min(6);
    Duration::from_millis(rand::rng().random_range(0..=cap))
}

/// The highest seq handed out to `user` (0 when none).
async fn head_of(store: &Store, tenant: &TenantId, user: &UserId) -> Result<u64> {
    let filter = scoped(tenant, doc! { "userId": user.as_str() });
    let recorded = store.coll(HEADS).find_one(filter.clone()).await?;
    let newest = store
        .coll(coll::UPDATES)
        .find_one(filter)
        .sort(doc! { "seq": -1 })
        .projection(doc! { "seq": 1 })
        .await?;
    let head = [recorded, newest]
        .iter()
        .flatten()
        .map(|d| crate::docs::ts(d, "seq"))
        .max()
        .unwrap_or(0);
    Ok(head.max(0) as u64)
}

/// Stored updates of `user` after `since`, in seq order, at most `limit` (clamped to
/// 1..=[`MAX_PAGE`]).
///
/// `resync_required` is true when `since > 0` and the updates right after `since` are gone
/// (retention dropped them), or when `since` is beyond the user's head (the client's cursor does
/// not come from this server's log). 404 `user_not_found` for a user that does not exist (a
/// deleted user's feed goes with them).
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user, since, limit))]
pub async fn list_since(
    store: &Store,
    tenant: &TenantId,
    user: &UserId,
    since: u64,
    limit: u64,
) -> Result<UpdatesPage> {
    let limit = limit.clamp(1, MAX_PAGE);
    let docs: Vec<Document> = store
        .coll(coll::UPDATES)
        .find(scoped(
            tenant,
            doc! { "userId": user.as_str(), "seq": { "$gt": crate::docs::stored_seq(since) } },
        ))
        .sort(doc! { "seq": 1 })
        .limit(limit as i64 + 1)
        .await?
        .try_collect()
        .await?;
    // The head outlives a deleted user (seqs are not reused), so an empty page is what asks.
    if docs.is_empty() {
        crate::users::must_exist(store, tenant, user).await?;
    }
    // The head is read after the page, so it is at least every seq the page shows (a head read
    // first could lag behind an update stored in between, and ask a client that has just seen
    // that update live to resync).
    let newest = docs
        .iter()
        .map(|d| crate::docs::u(d, "seq"))
        .max()
        .unwrap_or(0);
    let head_seq = head_of(store, tenant, user).await?.max(newest);
    let has_more = docs.len() as u64 > limit;
    let first_seq = docs.first().map(|d| crate::docs::u(d, "seq"));
    let data = readable(docs.into_iter().take(limit as usize));
    let next_present = first_seq == Some(since.saturating_add(1));
    let resync_required = since > 0 && (since > head_seq || (since < head_seq && !next_present));
    Ok(UpdatesPage {
        data,
        has_more,
        resync_required,
        head_seq,
    })
}

fn to_document(update: &Update) -> Result<Document> {
    // Literally, so that client meta inside reads back as the same JSON (see `crate::plain`).
    let data = crate::plain::to_bson(&update.data);
    let seq = update.seq.map(|s| s as i64).unwrap_or(0);
    let mut d = doc! {
        "_id": &update.update_id,
        "updateId": &update.update_id,
        "tenantId": update.tenant_id.as_str(),
        "userId": update.user_id.as_str(),
        "userType": update.user_type.as_str(),
        "seq": seq,
        "updateType": update.update_type.as_str(),
        "eventType": update.event_type.as_str(),
        "eventId": &update.event_id,
        "createdAt": update.created_at,
        "data": data,
        TTL_FIELD: bson::DateTime::now(),
    };
    if let Some(dialog) = &update.dialog_id {
        d.insert("dialogId", dialog.as_str());
    }
    Ok(d)
}

pub(crate) fn from_document(d: Document) -> Result<Update> {
    crate::plain::from_document(&d).map_err(|e| {
        let id = d.get_str("_id").unwrap_or("?");
        Error::Internal(format!("stored update {id}: {e}"))
    })
}

/// The updates among `docs` that can be decoded. One that cannot (written by a defect, or by a
/// version that stored another shape) is logged and left out, so it cannot take the whole feed
/// down; its seq simply does not appear.
pub(crate) fn readable(docs: impl IntoIterator<Item = Document>) -> Vec<Update> {
    docs.into_iter()
        .filter_map(|d| match from_document(d) {
            Ok(u) => Some(u),
            Err(e) => {
                tracing::error!(error = %e, "skipping an unreadable stored update");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update() -> Update {
        Update {
            update_id: "upd_0000000000aaaaaaaaaaa".to_owned(),
            tenant_id: "acme".parse().unwrap_or_else(|_| unreachable!()),
            user_id: "alice".parse().unwrap_or_else(|_| unreachable!()),
            user_type: UserType::default(),
            seq: Some(7),
            update_type: UpdateType::Message,
            event_type: chat3_sdk::EventType::MessageCreate,
            event_id: "evt_1".to_owned(),
            dialog_id: None,
            created_at: 42,
            data: serde_json::json!({"message": {"seq": 3, "meta": {"a": [1, null, "x"]}}}),
        }
    }

    #[test]
    fn routing_key_names_tenant_user_type_user_and_update_type() {
        assert_eq!(routing_key(&update()), "update.acme.user.alice.message");
    }

    #[test]
    fn stored_documents_read_back_as_the_same_update() {
        let u = update();
        let d = to_document(&u).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.get_i64("seq").ok(), Some(7));
        assert!(d.get_datetime(TTL_FIELD).is_ok());
        assert_eq!(from_document(d).unwrap_or_else(|e| panic!("{e}")), u);
    }
}
