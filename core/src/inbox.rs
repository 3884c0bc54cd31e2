//! The user's view: the inbox (dialogs with unread counts, newest activity first) and marking a
//! dialog read. Unread is a watermark difference (DESIGN §4), so both are O(1) per dialog.

use std::collections::HashMap;

use bson::{doc, Document};
use chat3_sdk::{DialogId, InboxDialog, Page, Pagination, ReadState, TenantId, UserId};
use futures_util::TryStreamExt;
use serde_json::json;

use crate::docs;
use crate::error::{Error, Result};
use crate::events::{envelope, types, Actor};
use crate::store::{coll, scoped, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;

/// The user's dialogs, most recent activity first, each with the user's unread count, watermark
/// and the newest message. A user with no dialogs has an empty inbox.
///
/// Reads every membership of the user to sort by dialog activity; fine for inboxes of thousands
/// of dialogs. (A denormalised activity key on memberships would make this index-only.)
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
pub async fn user_dialogs(
    store: &Store,
    tenant: &TenantId,
    user: &UserId,
    page: u64,
    limit: u64,
) -> Result<Page<InboxDialog>> {
    let members: Vec<Document> = store
        .coll(coll::MEMBERS)
        .find(scoped(tenant, doc! {"userId": user.as_str()}))
        .await?
        .try_collect()
        .await?;
    let by_dialog: HashMap<&str, &Document> = members
        .iter()
        .filter_map(|m| Some((m.get_str("dialogId").ok()?, m)))
        .collect();
    let ids: Vec<&str> = by_dialog.keys().copied().collect();
    let mut dialogs: Vec<Document> = store
        .coll(coll::DIALOGS)
        .find(scoped(tenant, doc! {"dialogId": {"$in": &ids}}))
        .await?
        .try_collect()
        .await?;
    dialogs.sort_by(|a, b| {
        (
            docs::ts(b, "updatedAt"),
            b.get_str("dialogId").unwrap_or_default(),
        )
            .cmp(&(
                docs::ts(a, "updatedAt"),
                a.get_str("dialogId").unwrap_or_default(),
            ))
    });
    let total = dialogs.len() as u64;
    let page_docs: Vec<&Document> = dialogs
        .iter()
        .skip(((page - 1) * limit) as usize)
        .take(limit as usize)
        .collect();
    let last_keys: Vec<Document> = page_docs
        .iter()
        .filter(|d| docs::u(d, "lastSeq") > 0)
        .map(|d| doc! {"dialogId": d.get_str("dialogId").unwrap_or_default(), "seq": docs::u(d, "lastSeq") as i64})
        .collect();
    let last_messages: Vec<Document> = if last_keys.is_empty() {
        Vec::new()
    } else {
        store
            .coll(coll::MESSAGES)
            .find(scoped(tenant, doc! {"$or": last_keys}))
            .await?
            .try_collect()
            .await?
    };
    let mut data = Vec::with_capacity(page_docs.len());
    for d in page_docs {
        let id = d.get_str("dialogId").unwrap_or_default();
        let Some(m) = by_dialog.get(id) else { continue };
        let last_message = last_messages
            .iter()
            .find(|lm| lm.get_str("dialogId").ok() == Some(id))
            .map(docs::message)
            .transpose()?;
        data.push(InboxDialog {
            dialog_id: docs::parse(d, "dialogId")?,
            name: d.get_str("name").ok().map(str::to_owned),
            meta: docs::meta(d),
            unread_count: docs::unread(d, m),
            last_read_seq: docs::u(m, "lastReadSeq"),
            last_seq: docs::u(d, "lastSeq"),
            last_message,
            last_interaction_at: docs::ts(d, "updatedAt"),
        });
    }
    Ok(Page {
        data,
        pagination: Pagination::new(page, limit, total),
    })
}

/// Moves the user's watermark to the newest message (never backwards) and publishes
/// `dialog.read` when it moved. Idempotent: a second call changes nothing and emits nothing.
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user, dialog = %dialog))]
pub async fn mark_all_read(
    ctx: &Ctx,
    tenant: &TenantId,
    user: &UserId,
    dialog: &DialogId,
) -> Result<ReadState> {
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let d = store
            .coll(coll::DIALOGS)
            .find_one(scoped(tenant, doc! {"dialogId": dialog.as_str()}))
            .session(&mut *s)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "dialog_not_found",
                    format!("dialog '{dialog}' does not exist"),
                )
            })?;
        let last_seq = docs::u(&d, "lastSeq") as i64;
        let count = docs::u(&d, "msgCount") as i64;
        let member_filter = scoped(
            tenant,
            doc! {"dialogId": dialog.as_str(), "userId": user.as_str()},
        );
        let m = store
            .coll(coll::MEMBERS)
            .find_one(member_filter.clone())
            .session(&mut *s)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "member_not_found",
                    format!("user '{user}' is not a member of dialog '{dialog}'"),
                )
            })?;
        let state = ReadState {
            dialog_id: dialog.clone(),
            user_id: user.clone(),
            last_read_seq: docs::u(&d, "lastSeq"),
            unread_count: 0,
        };
        if docs::u(&m, "lastReadSeq") >= last_seq as u64 && docs::unread(&d, &m) == 0 {
            return Ok(Staged::new(state, Vec::new()));
        }
        store
            .coll(coll::MEMBERS)
            .update_one(
                member_filter,
                doc! {"$max": {"lastReadSeq": last_seq, "readCount": count}},
            )
            .session(&mut *s)
            .await?;
        let event = envelope(
            tenant,
            types::DIALOG_READ,
            "dialog",
            dialog.as_str(),
            Some(dialog),
            &Actor::user(user.as_str()),
            json!({"userId": user, "lastReadSeq": last_seq, "unreadCount": 0}),
        );
        Ok(Staged::new(state, vec![event]))
    })
    .await
}
