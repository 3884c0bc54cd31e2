//! Current state the updates carry, read straight from the API's collections: the dialog, the
//! recipients' memberships and the message, shaped into the per-recipient views clients get.

use bson::{doc, Document};
use chat3_core::docs;
use chat3_core::store::{coll, scoped, Store};
use chat3_sdk::{DialogId, Member, TenantId, UserId, UserType};
use futures_util::TryStreamExt;
use serde_json::{json, Value};

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

/// The user ids of the dialog's current members.
pub async fn member_ids(
    store: &Store,
    tenant: &TenantId,
    dialog: &DialogId,
) -> chat3_core::Result<Vec<UserId>> {
    let docs: Vec<Document> = store
        .coll(coll::MEMBERS)
        .find(scoped(tenant, doc! { "dialogId": dialog.as_str() }))
        .projection(doc! { "userId": 1 })
        .await?
        .try_collect()
        .await?;
    Ok(docs
        .iter()
        .filter_map(|d| d.get_str("userId").ok()?.parse().ok())
        .collect())
}

/// The dialog, or `None` when it does not exist (any more).
pub async fn dialog(
    store: &Store,
    tenant: &TenantId,
    dialog: &DialogId,
) -> chat3_core::Result<Option<DialogState>> {
    let found = store
        .coll(coll::DIALOGS)
        .find_one(scoped(tenant, doc! { "dialogId": dialog.as_str() }))
        .await?;
    Ok(found.map(|d| DialogState {
        dialog_id: dialog.clone(),
        name: d.get_str("name").ok().map(str::to_owned),
        last_seq: docs::u(&d, "lastSeq"),
        msg_count: docs::u(&d, "msgCount"),
    }))
}

/// The memberships of `users` in the dialog (users who are not members are left out).
pub async fn members(
    store: &Store,
    tenant: &TenantId,
    dialog: &DialogId,
    users: &[UserId],
) -> chat3_core::Result<Vec<MemberState>> {
    let ids: Vec<&str> = users.iter().map(UserId::as_str).collect();
    let docs: Vec<Document> = store
        .coll(coll::MEMBERS)
        .find(scoped(
            tenant,
            doc! { "dialogId": dialog.as_str(), "userId": { "$in": ids } },
        ))
        .await?
        .try_collect()
        .await?;
    Ok(docs
        .iter()
        .filter_map(|d| {
            let user_id = d.get_str("userId").ok()?.parse().ok()?;
            let user_type = d
                .get_str("userType")
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or_default();
            Some(MemberState {
                user_id,
                user_type,
                last_read_seq: docs::u(d, "lastReadSeq"),
                read_count: docs::u(d, "readCount"),
                joined_at: docs::ts(d, "joinedAt"),
            })
        })
        .collect())
}

/// The stored message as sdk `Message` JSON, or `None` when it is not stored (any more) or
/// cannot be read (the event's copy is used then).
pub async fn message(
    store: &Store,
    tenant: &TenantId,
    message_id: &str,
) -> chat3_core::Result<Option<Value>> {
    let Some(found) = store
        .coll(coll::MESSAGES)
        .find_one(scoped(tenant, doc! { "messageId": message_id }))
        .await?
    else {
        return Ok(None);
    };
    match docs::message(&found) {
        Ok(m) => Ok(Some(json!(m))),
        Err(e) => {
            tracing::warn!(message_id, error = %e, "stored message has an unexpected shape; using the event's copy");
            Ok(None)
        }
    }
}
