//! Current state the updates carry, read straight from the API's collections for a whole batch
//! of events at once (one query per collection): dialogs, memberships and messages, shaped into
//! the per-recipient views clients get.

use std::collections::HashMap;

use bson::{doc, Document};
use chat3_core::docs;
use chat3_core::store::{coll, Store};
use chat3_sdk::{DialogId, Member, TenantId, UserId, UserType};
use futures_util::TryStreamExt;
use serde_json::{json, Value};

/// A dialog of a tenant.
pub type DialogKey = (TenantId, DialogId);

/// The fields of a `dialogs` document an update needs.
#[derive(Debug, Clone)]
pub struct DialogState {
    /// Id.
    pub dialog_id: DialogId,
    /// Display name.
    pub name: Option<String>,
    /// Seq of the newest message.
    pub last_seq: u64,
    /// Running count of countable messages.
    pub msg_count: u64,
}

/// The fields of a `members` document an update needs.
#[derive(Debug, Clone)]
pub struct MemberState {
    /// The member.
    pub user_id: UserId,
    /// Their type.
    pub user_type: UserType,
    /// Read watermark.
    pub last_read_seq: u64,
    /// Countable messages up to the watermark.
    pub read_count: u64,
    /// When they joined.
    pub joined_at: i64,
}

impl MemberState {
    /// Unread = dialog count − member count (never negative, even when the two reads straddle a
    /// concurrent send).
    pub fn unread(&self, dialog: &DialogState) -> u64 {
        dialog.msg_count.saturating_sub(self.read_count)
    }

    fn from_doc(d: &Document) -> Option<Self> {
        Some(MemberState {
            user_id: d.get_str("userId").ok()?.parse().ok()?,
            user_type: d
                .get_str("userType")
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or_default(),
            last_read_seq: docs::u(d, "lastReadSeq"),
            read_count: docs::u(d, "readCount"),
            joined_at: docs::ts(d, "joinedAt"),
        })
    }
}

/// `{dialogId, name, lastSeq, unreadCount, lastReadSeq}` as seen by `member`.
pub fn dialog_view(dialog: &DialogState, member: &MemberState) -> Value {
    json!({
        "dialogId": dialog.dialog_id,
        "name": dialog.name,
        "lastSeq": dialog.last_seq,
        "unreadCount": member.unread(dialog),
        "lastReadSeq": member.last_read_seq,
    })
}

/// The member in the sdk `Member` shape.
pub fn member_view(dialog: &DialogState, member: &MemberState) -> Value {
    json!(Member {
        user_id: member.user_id.clone(),
        user_type: member.user_type.clone(),
        last_read_seq: member.last_read_seq,
        unread_count: member.unread(dialog),
        joined_at: member.joined_at,
    })
}

async fn find(
    store: &Store,
    collection: &str,
    parts: Vec<Document>,
) -> chat3_core::Result<Vec<Document>> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    Ok(store
        .coll(collection)
        .find(doc! { "$or": parts })
        .await?
        .try_collect()
        .await?)
}

fn dialog_key(d: &Document) -> Option<DialogKey> {
    Some((
        d.get_str("tenantId").ok()?.parse().ok()?,
        d.get_str("dialogId").ok()?.parse().ok()?,
    ))
}

/// The user ids of the current members of each of `dialogs`.
pub async fn member_ids(
    store: &Store,
    dialogs: &[DialogKey],
) -> chat3_core::Result<HashMap<DialogKey, Vec<UserId>>> {
    let parts: Vec<Document> = by_tenant(dialogs)
        .into_iter()
        .map(|(t, ds)| doc! { "tenantId": t, "dialogId": { "$in": ds } })
        .collect();
    let mut out: HashMap<DialogKey, Vec<UserId>> = HashMap::new();
    let docs = store
        .coll(coll::MEMBERS)
        .find(doc! { "$or": parts })
        .projection(doc! { "tenantId": 1, "dialogId": 1, "userId": 1 })
        .await?
        .try_collect::<Vec<Document>>()
        .await?;
    for d in docs {
        let (Some(k), Some(u)) = (
            dialog_key(&d),
            d.get_str("userId").ok().and_then(|u| u.parse().ok()),
        ) else {
            continue;
        };
        out.entry(k).or_default().push(u);
    }
    Ok(out)
}

fn by_tenant(dialogs: &[DialogKey]) -> HashMap<&str, Vec<&str>> {
    let mut m: HashMap<&str, Vec<&str>> = HashMap::new();
    for (t, d) in dialogs {
        m.entry(t.as_str()).or_default().push(d.as_str());
    }
    m
}

/// The dialogs that exist (any more) among `dialogs`.
pub async fn dialogs(
    store: &Store,
    dialogs: &[DialogKey],
) -> chat3_core::Result<HashMap<DialogKey, DialogState>> {
    let parts = by_tenant(dialogs)
        .into_iter()
        .map(|(t, ds)| doc! { "tenantId": t, "dialogId": { "$in": ds } })
        .collect();
    Ok(find(store, coll::DIALOGS, parts)
        .await?
        .iter()
        .filter_map(|d| {
            let key = dialog_key(d)?;
            let state = DialogState {
                dialog_id: key.1.clone(),
                name: d.get_str("name").ok().map(str::to_owned),
                last_seq: docs::u(d, "lastSeq"),
                msg_count: docs::u(d, "msgCount"),
            };
            Some((key, state))
        })
        .collect())
}

/// The memberships of the given users in the given dialogs (users who are not members are
/// left out).
pub async fn members(
    store: &Store,
    wanted: &HashMap<DialogKey, Vec<UserId>>,
) -> chat3_core::Result<HashMap<(DialogKey, UserId), MemberState>> {
    let parts = wanted
        .iter()
        .filter(|(_, users)| !users.is_empty())
        .map(|((t, d), users)| {
            let ids: Vec<&str> = users.iter().map(UserId::as_str).collect();
            doc! { "tenantId": t.as_str(), "dialogId": d.as_str(), "userId": { "$in": ids } }
        })
        .collect();
    Ok(find(store, coll::MEMBERS, parts)
        .await?
        .iter()
        .filter_map(|d| {
            let m = MemberState::from_doc(d)?;
            Some(((dialog_key(d)?, m.user_id.clone()), m))
        })
        .collect())
}

/// The stored messages among `ids` (tenant, message id) as sdk `Message` JSON; one that is not
/// stored (any more) or cannot be read is left out (the event's copy is used then).
pub async fn messages(
    store: &Store,
    ids: &[(TenantId, String)],
) -> chat3_core::Result<HashMap<(TenantId, String), Value>> {
    let mut m: HashMap<&str, Vec<&str>> = HashMap::new();
    for (t, id) in ids {
        m.entry(t.as_str()).or_default().push(id.as_str());
    }
    let parts = m
        .into_iter()
        .map(|(t, ids)| doc! { "tenantId": t, "messageId": { "$in": ids } })
        .collect();
    Ok(find(store, coll::MESSAGES, parts)
        .await?
        .iter()
        .filter_map(|d| match docs::message(d) {
            Ok(msg) => Some(((msg.tenant_id.clone(), msg.message_id.to_string()), json!(msg))),
            Err(e) => {
                tracing::warn!(error = %e, "stored message has an unexpected shape; using the event's copy");
                None
            }
        })
        .collect())
}
