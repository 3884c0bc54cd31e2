//! One message by id: read, edit (`message.changed`) and soft delete (`message.delete`).
//!
//! A soft delete keeps the message's seq and takes its content, meta and quote out of every
//! read; a countable message stops counting as unread, exactly: the dialog's `msgCount`, the
//! `countAt` of the message and every later one, and the `readCount` of each member whose
//! watermark is at or past it all drop by one in the same transaction, so that
//! `unread = msgCount − readCount` stays exact for every member. Its cost grows with the
//! messages after the deleted one (an index range of the dialog's messages). Every member
//! document is written by the delete, so that a concurrent read marker conflicts with it and
//! runs again on the new counts instead of writing a stale one.

use bson::{doc, Document};
use chat3_sdk::events::{MessageChanged, MessageDeleted};
use chat3_sdk::{EditMessage, Message, MessageId, TenantId};
use mongodb::ClientSession;

use crate::docs::{self, MessageDoc};
use crate::error::{Error, Result};
use crate::events::{event, Actor};
use crate::ids::now_ms;
use crate::plain;
use crate::store::{coll, scoped, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;

fn not_found(id: &MessageId) -> Error {
    Error::not_found(
        "message_not_found",
        format!("message '{id}' does not exist"),
    )
}

/// 404 `message_not_found` for a message of another dialog: never a write across dialogs.
fn not_in(id: &MessageId, dialog: &chat3_sdk::DialogId) -> Error {
    Error::not_found(
        "message_not_found",
        format!("message '{id}' is not in dialog '{dialog}'"),
    )
}

/// 409 `message_deleted`: the message was deleted, so it cannot be edited or quoted.
pub fn deleted(id: &MessageId) -> Error {
    Error::conflict("message_deleted", format!("message '{id}' was deleted"))
}

fn filter(tenant: &TenantId, id: &MessageId) -> Document {
    scoped(tenant, doc! {"messageId": id.as_str()})
}

/// One stored message, or 404 `message_not_found`.
#[tracing::instrument(skip_all, fields(tenant = %tenant, message = %id))]
pub async fn get(store: &Store, tenant: &TenantId, id: &MessageId) -> Result<Message> {
    let d = store
        .coll(coll::MESSAGES)
        .find_one(filter(tenant, id))
        .await?
        .ok_or_else(|| not_found(id))?;
    docs::message(&d)
}

/// The stored message inside a transaction, or 404.
pub(crate) async fn load_in(
    store: &Store,
    s: &mut ClientSession,
    tenant: &TenantId,
    id: &MessageId,
) -> Result<MessageDoc> {
    let d = store
        .coll(coll::MESSAGES)
        .find_one(filter(tenant, id))
        .session(&mut *s)
        .await?
        .ok_or_else(|| not_found(id))?;
    MessageDoc::from_doc(&d)
}

/// When `m` is its dialog's newest message, the inbox copy of it (`lastMessage`) follows.
pub(crate) async fn refresh_last(store: &Store, s: &mut ClientSession, m: &Message) -> Result<()> {
    store
        .coll(coll::DIALOGS)
        .update_one(
            scoped(
                &m.tenant_id,
                doc! {"dialogId": m.dialog_id.as_str(), "lastSeq": docs::stored_seq(m.seq)},
            ),
            doc! {"$set": {"lastMessage": plain::to_document(m)?}},
        )
        .session(&mut *s)
        .await?;
    Ok(())
}

/// Replaces a message's content (and meta, when given), sets `editedAt` and publishes
/// `message.changed`. A deleted message is 409 `message_deleted`.
#[tracing::instrument(skip_all, fields(tenant = %tenant, message = %id))]
pub async fn edit(
    ctx: &Ctx,
    tenant: &TenantId,
    id: &MessageId,
    req: &EditMessage,
) -> Result<Message> {
    let meta = req
        .meta
        .as_ref()
        .map(|m| docs::meta_doc(Some(m)))
        .transpose()?;
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let mut m = load_in(store, s, tenant, id).await?.message;
        if m.deleted_at.is_some() {
            return Err(deleted(id));
        }
        let now = now_ms();
        let mut set = doc! {"content": &req.content, "editedAt": now};
        m.content = req.content.clone();
        m.edited_at = Some(now);
        if let Some(meta) = &meta {
            set.insert("meta", meta.clone());
            m.meta = docs::meta_of(meta);
        }
        // Against the meta the message will have (a media message may lose its caption): a
        // conflict with the stored message, not a malformed request.
        if !super::content_fits(&m.content, &m.meta)? {
            return Err(Error::conflict("content_required", super::CONTENT_REQUIRED));
        }
        store
            .coll(coll::MESSAGES)
            .update_one(filter(tenant, id), doc! {"$set": set})
            .session(&mut *s)
            .await?;
        refresh_last(store, s, &m).await?;
        let e = event(
            tenant,
            id.as_str(),
            Some(&m.dialog_id),
            &Actor::user(m.sender_id.as_str()),
            &MessageChanged {
                message: m.clone(),
                changed: Vec::new(),
            },
        );
        Ok(Staged::new(m, vec![e]))
    })
    .await
}

/// Soft-deletes a message and publishes `message.delete`; deleting it again answers the same
/// deleted message and emits nothing.
#[tracing::instrument(skip_all, fields(tenant = %tenant, message = %id))]
pub async fn delete(ctx: &Ctx, tenant: &TenantId, id: &MessageId) -> Result<Message> {
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let mut m = load_in(store, s, tenant, id).await?.message;
        if m.deleted_at.is_some() {
            return Ok(Staged::new(m, Vec::new()));
        }
        let now = now_ms();
        m.content = String::new();
        m.meta = Default::default();
        m.quoted_message = None;
        m.deleted_at = Some(now);
        store
            .coll(coll::MESSAGES)
            .update_one(
                filter(tenant, id),
                doc! {
                    "$set": {"content": "", "meta": {}, "deletedAt": now},
                    "$unset": {"quotedMessage": ""},
                },
            )
            .session(&mut *s)
            .await?;
        let dialog = m.dialog_id.as_str();
        let seq = docs::stored_seq(m.seq);
        if !super::is_system(&m.message_type) {
            store
                .coll(coll::MESSAGES)
                .update_many(
                    scoped(tenant, doc! {"dialogId": dialog, "seq": {"$gte": seq}}),
                    doc! {"$inc": {"countAt": -1_i64}},
                )
                .session(&mut *s)
                .await?;
            store
                .coll(coll::DIALOGS)
                .update_one(
                    scoped(tenant, doc! {"dialogId": dialog}),
                    doc! {"$inc": {"msgCount": -1_i64}},
                )
                .session(&mut *s)
                .await?;
            let read_it = doc! {"$gte": [{"$ifNull": ["$lastReadSeq", 0_i64]}, seq]};
            store
                .coll(coll::MEMBERS)
                .update_many(
                    scoped(tenant, doc! {"dialogId": dialog}),
                    vec![doc! {"$set": {
                        "readCount": {"$cond": [
                            read_it,
                            {"$max": [0_i64, {"$subtract": [{"$ifNull": ["$readCount", 0_i64]}, 1_i64]}]},
                            {"$ifNull": ["$readCount", 0_i64]},
                        ]},
                        // Every member document changes, see the module docs.
                        "countsVersion": {"$add": [{"$ifNull": ["$countsVersion", 0_i64]}, 1_i64]},
                    }}],
                )
                .session(&mut *s)
                .await?;
        }
        refresh_last(store, s, &m).await?;
        let e = event(
            tenant,
            id.as_str(),
            Some(&m.dialog_id),
            &Actor::user(m.sender_id.as_str()),
            &MessageDeleted { message: m.clone() },
        );
        Ok(Staged::new(m, vec![e]))
    })
    .await
}

/// What a user's write about one message of a dialog works on: the user's membership and the
/// message, read in the transaction. 404 `dialog_not_found`,
/// `member_not_found` (the user is not a member) or `message_not_found` (no such message in
/// this dialog: never a write across dialogs); 409 `message_deleted`.
pub(crate) async fn user_target(
    store: &Store,
    s: &mut ClientSession,
    tenant: &TenantId,
    user: &chat3_sdk::UserId,
    dialog: &chat3_sdk::DialogId,
    id: &MessageId,
) -> Result<(docs::MemberDoc, MessageDoc)> {
    let member = store
        .coll(coll::MEMBERS)
        .find_one(scoped(
            tenant,
            doc! {"dialogId": dialog.as_str(), "userId": user.as_str()},
        ))
        .session(&mut *s)
        .await?;
    let Some(member) = member else {
        // 404 dialog_not_found first when there is no such dialog.
        crate::dialogs::load_in(store, s, tenant, dialog).await?;
        return Err(crate::members::member_not_found(user, dialog));
    };
    let m = load_in(store, s, tenant, id).await?;
    if &m.message.dialog_id != dialog {
        return Err(not_in(id, dialog));
    }
    if m.message.deleted_at.is_some() {
        return Err(deleted(id));
    }
    Ok((docs::MemberDoc::from_doc(&member)?, m))
}

/// The message if it belongs to `dialog`; 404 `message_not_found` otherwise.
pub async fn in_dialog(
    store: &Store,
    tenant: &TenantId,
    dialog: &chat3_sdk::DialogId,
    id: &MessageId,
) -> Result<Message> {
    let m = get(store, tenant, id).await?;
    if &m.dialog_id != dialog {
        return Err(not_in(id, dialog));
    }
    Ok(m)
}

/// One page of a message's rows in `collection` (receipts, reactions) matching `q`, oldest
/// first unless `q.sort` says otherwise, for a member of its dialog (403 `not_a_member`
/// otherwise; 404 when the message is not in the dialog). Ties in time are ordered by user,
/// then by `tie` (a client sort on time keeps both, so pages never overlap).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn rows_of(
    store: &Store,
    collection: &str,
    tie: &str,
    tenant: &TenantId,
    user: &chat3_sdk::UserId,
    dialog: &chat3_sdk::DialogId,
    message: &MessageId,
    q: &crate::filter::ListQuery,
    (page, limit): (u64, u64),
) -> Result<chat3_sdk::Page<Document>> {
    crate::members::require_member(store, tenant, dialog, user).await?;
    in_dialog(store, tenant, dialog, message).await?;
    let scope = scoped(tenant, doc! {"messageId": message.as_str()});
    let mut sort = q.order(doc! {"createdAt": 1}, ("userId", 1));
    if !sort.contains_key(tie) {
        sort.insert(tie, 1);
    }
    let (total, found) = crate::filter::fetch(
        &store.coll(collection),
        q.within(scope),
        sort,
        (page - 1) * limit,
        limit,
        q.max_time(),
    )
    .await?;
    Ok(chat3_sdk::Page {
        data: found,
        pagination: chat3_sdk::Pagination::new(page, limit, total),
    })
}
