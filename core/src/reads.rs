//! Batch reads of current state, tenant-scoped, one query per collection whatever the number of
//! tenants and dialogs asked for: what the update worker needs to fan a batch of events out
//! (and any reader that needs many dialogs at once). Documents that cannot be read are logged
//! and left out, so that one damaged document does not fail a whole batch.

use std::collections::{HashMap, HashSet};

use bson::{doc, Document};
use chat3_sdk::{DialogId, Message, TenantId, UserId};
use futures_util::TryStreamExt;

use crate::docs::{self, DialogDoc, MemberDoc};
use crate::error::Result;
use crate::store::{coll, Store};

/// A dialog of a tenant.
pub type DialogKey = (TenantId, DialogId);

/// `[{tenantId, <field>: {$in}}...]`, one branch per tenant of `pairs` (tenant, value).
fn in_by_tenant<'a, I>(field: &str, pairs: I) -> Vec<Document>
where
    I: IntoIterator<Item = (&'a TenantId, &'a str)>,
{
    let mut m: HashMap<&str, Vec<&str>> = HashMap::new();
    for (t, x) in pairs {
        m.entry(t.as_str()).or_default().push(x);
    }
    m.into_iter()
        .map(|(t, xs)| doc! { "tenantId": t, field: { "$in": xs } })
        .collect()
}

async fn find(
    store: &Store,
    collection: &str,
    parts: Vec<Document>,
    projection: Option<Document>,
) -> Result<Vec<Document>> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let c = store.coll(collection);
    let mut find = c.find(doc! { "$or": parts });
    if let Some(p) = projection {
        find = find.projection(p);
    }
    Ok(find.await?.try_collect().await?)
}

fn readable<T>(what: &str, d: &Document, read: fn(&Document) -> Result<T>) -> Option<T> {
    match read(d) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, id = ?d.get("_id"), "unreadable {what} document left out");
            None
        }
    }
}

/// The dialogs that exist (any more) among `keys`.
pub async fn dialogs(store: &Store, keys: &[DialogKey]) -> Result<HashMap<DialogKey, DialogDoc>> {
    let parts = in_by_tenant("dialogId", keys.iter().map(|(t, d)| (t, d.as_str())));
    Ok(find(store, coll::DIALOGS, parts, None)
        .await?
        .iter()
        .filter_map(|d| readable("dialog", d, DialogDoc::from_doc))
        .map(|d| ((d.tenant_id.clone(), d.dialog_id.clone()), d))
        .collect())
}

/// The user ids of the current members of each of `keys`.
pub async fn member_ids(
    store: &Store,
    keys: &[DialogKey],
) -> Result<HashMap<DialogKey, Vec<UserId>>> {
    let parts = in_by_tenant("dialogId", keys.iter().map(|(t, d)| (t, d.as_str())));
    let projection = doc! { "tenantId": 1, "dialogId": 1, "userId": 1 };
    let mut out: HashMap<DialogKey, Vec<UserId>> = HashMap::new();
    for d in find(store, coll::MEMBERS, parts, Some(projection)).await? {
        let read = |d: &Document| -> Result<(DialogKey, UserId)> {
            Ok((
                (docs::parse(d, "tenantId")?, docs::parse(d, "dialogId")?),
                docs::parse(d, "userId")?,
            ))
        };
        if let Some((k, u)) = readable("membership", &d, read) {
            out.entry(k).or_default().push(u);
        }
    }
    Ok(out)
}

/// The memberships of the given users in the given dialogs (users who are not members are left
/// out).
pub async fn memberships(
    store: &Store,
    wanted: &HashMap<DialogKey, Vec<UserId>>,
) -> Result<HashMap<(DialogKey, UserId), MemberDoc>> {
    let parts = wanted
        .iter()
        .filter(|(_, users)| !users.is_empty())
        .map(|((t, d), users)| {
            let ids: Vec<&str> = users.iter().map(UserId::as_str).collect();
            doc! { "tenantId": t.as_str(), "dialogId": d.as_str(), "userId": { "$in": ids } }
        })
        .collect();
    Ok(find(store, coll::MEMBERS, parts, None)
        .await?
        .iter()
        .filter_map(|d| readable("membership", d, MemberDoc::from_doc))
        .map(|m| {
            (
                (
                    (m.tenant_id.clone(), m.dialog_id.clone()),
                    m.user_id.clone(),
                ),
                m,
            )
        })
        .collect())
}

/// The stored messages among `ids` (tenant, message id).
pub async fn messages(
    store: &Store,
    ids: &[(TenantId, String)],
) -> Result<HashMap<(TenantId, String), Message>> {
    let parts = in_by_tenant("messageId", ids.iter().map(|(t, id)| (t, id.as_str())));
    Ok(find(store, coll::MESSAGES, parts, None)
        .await?
        .iter()
        .filter_map(|d| readable("message", d, docs::message))
        .map(|m| ((m.tenant_id.clone(), m.message_id.to_string()), m))
        .collect())
}

/// The reactions each user set on the given messages (tenant, message id):
/// (tenant, message id, user) → reactions.
pub async fn reactions_by_user(
    store: &Store,
    ids: &[(TenantId, String)],
) -> Result<HashMap<(TenantId, String, UserId), HashSet<String>>> {
    let parts = in_by_tenant("messageId", ids.iter().map(|(t, id)| (t, id.as_str())));
    let projection = doc! { "tenantId": 1, "messageId": 1, "userId": 1, "reaction": 1 };
    let mut out: HashMap<(TenantId, String, UserId), HashSet<String>> = HashMap::new();
    for d in find(store, coll::REACTIONS, parts, Some(projection)).await? {
        let read = |d: &Document| -> Result<((TenantId, String, UserId), String)> {
            Ok((
                (
                    docs::parse(d, "tenantId")?,
                    docs::s(d, "messageId")?,
                    docs::parse(d, "userId")?,
                ),
                docs::s(d, "reaction")?,
            ))
        };
        if let Some((k, r)) = readable("reaction", &d, read) {
            out.entry(k).or_default().insert(r);
        }
    }
    Ok(out)
}
