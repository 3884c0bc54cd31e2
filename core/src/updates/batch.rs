//! The fan-out of many events at once. For a whole batch of events (any tenants, any users)
//! the store is asked a fixed number of times: the recipients' heads in one query, their
//! current state through `load` (a few queries), one ordered `insert_many` of every update, and
//! one multi-statement upsert of the heads. A user who appears in several events of the batch
//! gets consecutive seqs in event order, so a hot user costs one round of writes per batch, not
//! one per event.
//!
//! The rules of the module docs of [`super`] hold for the batch: heads are read before state;
//! the documents are inserted in order, sorted by (tenant, user, seq), so a user's seqs become
//! visible in seq order; a duplicate stops the ordered insert, and the users from that point on
//! are read again (their heads precisely) and retried, while an update already stored for its
//! (event, user) — a redelivery — is taken as it is.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use bson::{doc, Document};
use chat3_sdk::{EventEnvelope, TenantId, Update, UpdateType, UserId};
use futures_util::{StreamExt, TryStreamExt};

use super::{readable, retry_jitter, to_document, Planned, HEADS, MAX_SEQ_ATTEMPTS};
use crate::error::{Error, Result};
use crate::ids;
use crate::store::{coll, Store};

/// One event's share of a batch.
#[derive(Debug, Clone)]
pub struct Work<'a> {
    /// The event.
    pub event: &'a EventEnvelope,
    /// The kind of its updates.
    pub update_type: UpdateType,
    /// Candidate recipients (repeats are ignored).
    pub users: Vec<UserId>,
}

type UserKey = (TenantId, UserId);

/// Stores the updates of every work item and returns them per item, in item order: the ones
/// stored now and the ones an earlier delivery of the same event already stored, ready to
/// (re)publish.
///
/// `load` receives, per item, the users whose heads were just read and returns, per item, what
/// each of them receives, read from current state; a user it leaves out receives nothing.
pub async fn fan_out_batch<F, Fut>(
    store: &Store,
    work: &[Work<'_>],
    load: F,
) -> Result<Vec<Vec<Update>>>
where
    F: Fn(Vec<Vec<UserId>>) -> Fut,
    Fut: Future<Output = Result<Vec<Vec<Planned>>>>,
{
    let mut pending: Vec<Vec<UserId>> = work
        .iter()
        .map(|w| {
            let mut seen = HashSet::new();
            w.users
                .iter()
                .filter(|u| seen.insert((*u).clone()))
                .cloned()
                .collect()
        })
        .collect();
    let mut out: Vec<Vec<Update>> = vec![Vec::new(); work.len()];
    let mut attempt = 0;
    while pending.iter().any(|p| !p.is_empty()) {
        attempt += 1;
        if attempt > MAX_SEQ_ATTEMPTS {
            return Err(Error::conflict(
                "update_seq_contention",
                format!("users still contended after {MAX_SEQ_ATTEMPTS} attempts"),
            ));
        }
        let keys: HashSet<UserKey> = work
            .iter()
            .zip(&pending)
            .flat_map(|(w, users)| users.iter().map(|u| (w.event.tenant_id.clone(), u.clone())))
            .collect();
        // Head first, state second. The first pass trusts `update_heads`; after a collision the
        // newest stored update of each user is consulted too.
        let heads = if attempt == 1 {
            heads_fast(store, &keys).await?
        } else {
            heads_precise(store, &keys).await?
        };
        let planned = load(pending.clone()).await?;
        let now = ids::now_ms();
        let mut next = heads;
        let mut batch: Vec<(usize, Update)> = Vec::new();
        for (i, (w, users)) in work.iter().zip(&pending).enumerate() {
            let asked: HashSet<&UserId> = users.iter().collect();
            let mut once = HashSet::new();
            for p in planned.get(i).into_iter().flatten() {
                if !asked.contains(&p.user_id) || !once.insert(p.user_id.clone()) {
                    continue;
                }
                let key = (w.event.tenant_id.clone(), p.user_id.clone());
                let seq = next.entry(key).or_insert(0);
                *seq += 1;
                batch.push((
                    i,
                    Update {
                        update_id: ids::update_id(),
                        tenant_id: w.event.tenant_id.clone(),
                        user_id: p.user_id.clone(),
                        user_type: p.user_type.clone(),
                        seq: Some(*seq as u64),
                        update_type: p.update_type.unwrap_or(w.update_type),
                        event_type: w.event.event_type.clone(),
                        event_id: w.event.event_id.clone(),
                        dialog_id: w.event.dialog_id.clone(),
                        created_at: now,
                        data: p.data.clone(),
                    },
                ));
            }
        }
        if batch.is_empty() {
            break;
        }
        batch.sort_by(|(_, a), (_, b)| {
            (a.tenant_id.as_str(), a.user_id.as_str(), a.seq).cmp(&(
                b.tenant_id.as_str(),
                b.user_id.as_str(),
                b.seq,
            ))
        });
        let docs = batch
            .iter()
            .map(|(_, u)| to_document(u))
            .collect::<Result<Vec<_>>>()?;
        let stored_upto = match store
            .coll(coll::UPDATES)
            .insert_many(docs)
            .ordered(true)
            .await
        {
            Ok(_) => batch.len(),
            Err(e) => first_duplicate(&e).ok_or(Error::Storage(e))?,
        };
        let mut rest = batch.split_off(stored_upto);
        for (i, u) in batch {
            out[i].push(u);
        }
        if rest.is_empty() {
            break;
        }
        // From the duplicate on, nothing was stored: either this event is already stored for
        // the user (a redelivery), or another writer took the seq.
        let already = find_stored(store, work, &rest).await?;
        rest.retain(|(i, u)| {
            match already.get(&(
                work[*i].event.event_id.clone(),
                u.tenant_id.clone(),
                u.user_id.clone(),
            )) {
                Some(stored) => {
                    out[*i].push(stored.clone());
                    false
                }
                None => true,
            }
        });
        pending = vec![Vec::new(); work.len()];
        for (i, u) in &rest {
            pending[*i].push(u.user_id.clone());
        }
        if !rest.is_empty() {
            tracing::debug!(
                users = rest.len(),
                attempt,
                "seqs taken concurrently; retrying"
            );
            tokio::time::sleep(retry_jitter(attempt)).await;
        }
    }
    let all: Vec<&Update> = out.iter().flatten().collect();
    bump_heads(store, &all).await?;
    Ok(out)
}

/// Where an ordered `insert_many` stopped on a unique-index violation (the documents before it
/// were stored), or `None` when it failed otherwise.
fn first_duplicate(e: &mongodb::error::Error) -> Option<usize> {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::InsertMany(im) if im.write_concern_error.is_none() => {
            let errs = im.write_errors.as_ref()?;
            if errs.iter().all(|w| w.code == 11000) {
                errs.iter().map(|w| w.index).min()
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `{$or: [{tenantId, userId: {$in}}...]}` over `keys`, one branch per tenant.
fn users_filter<'a>(keys: impl IntoIterator<Item = &'a UserKey>) -> Option<Document> {
    let mut by_tenant: HashMap<&str, Vec<&str>> = HashMap::new();
    for (t, u) in keys {
        by_tenant.entry(t.as_str()).or_default().push(u.as_str());
    }
    let parts: Vec<Document> = by_tenant
        .into_iter()
        .map(|(t, users)| doc! { "tenantId": t, "userId": { "$in": users } })
        .collect();
    (!parts.is_empty()).then(|| doc! { "$or": parts })
}

async fn heads_fast(store: &Store, keys: &HashSet<UserKey>) -> Result<HashMap<UserKey, i64>> {
    let Some(filter) = users_filter(keys) else {
        return Ok(HashMap::new());
    };
    let docs: Vec<Document> = store.coll(HEADS).find(filter).await?.try_collect().await?;
    Ok(docs
        .iter()
        .filter_map(|d| {
            let tenant = d.get_str("tenantId").ok()?.parse().ok()?;
            let user = d.get_str("userId").ok()?.parse().ok()?;
            Some(((tenant, user), crate::docs::ts(d, "seq")))
        })
        .collect())
}

/// Heads from both `update_heads` and each user's newest stored update (a few at a time).
async fn heads_precise(store: &Store, keys: &HashSet<UserKey>) -> Result<HashMap<UserKey, i64>> {
    // Owned keys: a closure over borrowed ones makes the future not `Send` for every lifetime.
    let owned: Vec<UserKey> = keys.iter().cloned().collect();
    let lookups = owned.into_iter().map(|(t, u)| async move {
        let h = super::head_of(store, &t, &u).await?;
        Ok::<_, Error>(((t, u), h as i64))
    });
    futures_util::stream::iter(lookups)
        .buffer_unordered(16)
        .try_collect()
        .await
}

/// The stored updates of the events of `rest` for its users, by (event, tenant, user).
async fn find_stored(
    store: &Store,
    work: &[Work<'_>],
    rest: &[(usize, Update)],
) -> Result<HashMap<(String, TenantId, UserId), Update>> {
    let mut by_event: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for (i, u) in rest {
        by_event
            .entry((
                work[*i].event.tenant_id.as_str(),
                work[*i].event.event_id.as_str(),
            ))
            .or_default()
            .push(u.user_id.as_str());
    }
    let parts: Vec<Document> = by_event
        .into_iter()
        .map(|((t, e), users)| doc! { "tenantId": t, "eventId": e, "userId": { "$in": users } })
        .collect();
    let docs: Vec<Document> = store
        .coll(coll::UPDATES)
        .find(doc! { "$or": parts })
        .await?
        .try_collect()
        .await?;
    Ok(readable(docs)
        .into_iter()
        .map(|u| {
            (
                (u.event_id.clone(), u.tenant_id.clone(), u.user_id.clone()),
                u,
            )
        })
        .collect())
}

/// Raises each user's recorded head to their highest seq in `updates` (never lowers it): one
/// `update` command with an upsert per user. A first upsert that raced another writer's is
/// retried once (the document exists then, and `$max` applies).
async fn bump_heads(store: &Store, updates: &[&Update]) -> Result<()> {
    let mut max: HashMap<(&str, &str), i64> = HashMap::new();
    for u in updates {
        if let Some(seq) = u.seq {
            let e = max
                .entry((u.tenant_id.as_str(), u.user_id.as_str()))
                .or_insert(0);
            *e = (*e).max(seq as i64);
        }
    }
    if max.is_empty() {
        return Ok(());
    }
    let statements: Vec<Document> = max
        .iter()
        .map(|((t, u), s)| {
            doc! {
                "q": { "tenantId": *t, "userId": *u },
                "u": { "$max": { "seq": *s } },
                "upsert": true,
            }
        })
        .collect();
    for round in 0..2 {
        let reply = store
            .db()
            .run_command(doc! { "update": HEADS, "updates": statements.clone(), "ordered": false })
            .await?;
        let errors = reply.get_array("writeErrors").map(|a| a.len()).unwrap_or(0);
        if errors == 0 {
            return Ok(());
        }
        if round == 1 {
            return Err(Error::Internal(format!(
                "raising update heads failed for {errors} users"
            )));
        }
    }
    Ok(())
}
