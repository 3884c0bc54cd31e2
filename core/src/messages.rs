//! Messages: creation with a per-dialog `seq` assigned by incrementing the dialog's `lastSeq`
//! inside the transaction (so commit order = seq order), the sender's watermark moved to the new
//! message, the `message.create` event staged in the outbox; and listing by page or by seq.

use bson::{doc, Document};

use chat3_sdk::{CreateMessage, DialogId, Message, MessageQuery, Page, Pagination, TenantId};
use futures_util::TryStreamExt;
use mongodb::options::ReturnDocument;
use serde_json::json;

use crate::dialogs;
use crate::docs;
use crate::error::{is_duplicate_key, Error, Result};
use crate::events::{envelope, types, Actor};
use crate::ids::{self, now_ms};
use crate::store::{coll, scoped, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;

/// Longest message content, in characters.
pub const MAX_CONTENT_CHARS: usize = 10_000;
/// Longest `clientMessageId`.
pub const MAX_CLIENT_MESSAGE_ID: usize = 128;

/// Messages of `system.*` types do not count as unread and need no member sender.
pub fn is_system(message_type: &str) -> bool {
    message_type.starts_with("system.")
}

fn validate(req: &CreateMessage) -> Result<String> {
    let n = req.content.chars().count();
    if n == 0 || n > MAX_CONTENT_CHARS {
        return Err(Error::invalid(
            "validation_error",
            format!("content must be 1-{MAX_CONTENT_CHARS} characters"),
        ));
    }
    let t = req
        .message_type
        .clone()
        .unwrap_or_else(|| "text".to_owned());
    let ok_type = !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !ok_type {
        return Err(Error::invalid(
            "validation_error",
            "type must be 1-64 characters a-z, 0-9, '.', '_' or '-'",
        ));
    }
    if let Some(c) = &req.client_message_id {
        if c.is_empty() || c.chars().count() > MAX_CLIENT_MESSAGE_ID {
            return Err(Error::invalid(
                "validation_error",
                format!("clientMessageId must be 1-{MAX_CLIENT_MESSAGE_ID} characters"),
            ));
        }
    }
    Ok(t)
}

/// The message an earlier request created with the same `clientMessageId`, if any; 409
/// `client_message_id_conflict` when that message differs from this request (another content,
/// type, meta or quote), with the original's id in `details`.
async fn find_by_client_id(
    store: &Store,
    tenant: &TenantId,
    dialog: &DialogId,
    req: &CreateMessage,
    message_type: &str,
) -> Result<Option<Message>> {
    let Some(cmid) = &req.client_message_id else {
        return Ok(None);
    };
    let found = store
        .coll(coll::MESSAGES)
        .find_one(scoped(
            tenant,
            doc! {"dialogId": dialog.as_str(), "senderId": req.sender_id.as_str(), "clientMessageId": cmid},
        ))
        .await?;
    let Some(original) = found.as_ref().map(docs::message).transpose()? else {
        return Ok(None);
    };
    let same = original.content == req.content
        && original.message_type == message_type
        && original.meta == req.meta.clone().unwrap_or_default()
        && original.quoted_message_id == req.quoted_message_id;
    if !same {
        return Err(Error::Conflict {
            code: "client_message_id_conflict",
            message: format!(
                "clientMessageId '{cmid}' was already used by message '{}' with other content",
                original.message_id
            ),
            details: Some(json!({ "messageId": original.message_id })),
        });
    }
    Ok(Some(original))
}

/// Creates a message. Returns the message and whether it was created now (`false`: a retry with
/// a known `clientMessageId`, answered with the original).
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog))]
pub async fn create(
    ctx: &Ctx,
    tenant: &TenantId,
    dialog: &DialogId,
    req: &CreateMessage,
) -> Result<(Message, bool)> {
    let message_type = validate(req)?;
    if let Some(original) =
        find_by_client_id(&ctx.store, tenant, dialog, req, &message_type).await?
    {
        return Ok((original, false));
    }
    let countable = !is_system(&message_type);
    let meta = docs::meta_doc(req.meta.as_ref())?;
    let store = &ctx.store;
    // Sends into one dialog queue up here instead of conflicting on its `lastSeq` in the store.
    let _turn = ctx.dialogs.lock([(tenant, dialog)]).await;
    let result = write::transact(ctx, Reply::Created, async |s| {
        let now = now_ms();
        let dialog_doc = store
            .coll(coll::DIALOGS)
            .find_one_and_update(
                scoped(tenant, doc! {"dialogId": dialog.as_str()}),
                doc! {
                    "$inc": {"lastSeq": 1_i64, "msgCount": if countable { 1_i64 } else { 0_i64 }},
                    "$set": {"updatedAt": now},
                },
            )
            .return_document(ReturnDocument::After)
            .session(&mut *s)
            .await?
            .ok_or_else(|| {
                Error::not_found("dialog_not_found", format!("dialog '{dialog}' does not exist"))
            })?;
        let seq = docs::u(&dialog_doc, "lastSeq") as i64;
        let count_at = docs::u(&dialog_doc, "msgCount") as i64;
        let member_filter = scoped(
            tenant,
            doc! {"dialogId": dialog.as_str(), "userId": req.sender_id.as_str()},
        );
        // Sending moves the sender's watermark to the message (never backwards).
        let moved = store
            .coll(coll::MEMBERS)
            .update_one(
                member_filter,
                doc! {"$max": {"lastReadSeq": seq, "readCount": count_at}, "$set": {"lastActivityAt": now}},
            )
            .session(&mut *s)
            .await?;
        if moved.matched_count == 0 && countable {
            return Err(Error::forbidden(
                "sender_not_member",
                format!("sender '{}' is not a member of dialog '{dialog}'", req.sender_id),
            ));
        }
        if let Some(q) = &req.quoted_message_id {
            let quoted = store
                .coll(coll::MESSAGES)
                .find_one(scoped(tenant, doc! {"dialogId": dialog.as_str(), "messageId": q.as_str()}))
                .session(&mut *s)
                .await?;
            if quoted.is_none() {
                return Err(Error::not_found(
                    "quoted_message_not_found",
                    format!("quoted message '{q}' is not in this dialog"),
                ));
            }
        }
        let message_id = ids::message_id();
        let mut msg_doc = doc! {
            "tenantId": tenant.as_str(),
            "messageId": message_id.as_str(),
            "dialogId": dialog.as_str(),
            "seq": seq,
            "senderId": req.sender_id.as_str(),
            "content": &req.content,
            "type": &message_type,
            "meta": meta.clone(),
            "createdAt": now,
            "countAt": count_at,
        };
        if let Some(q) = &req.quoted_message_id {
            msg_doc.insert("quotedMessageId", q.as_str());
        }
        if let Some(c) = &req.client_message_id {
            msg_doc.insert("clientMessageId", c);
        }
        let message = docs::message(&msg_doc)?;
        store
            .coll(coll::MESSAGES)
            .insert_one(msg_doc)
            .session(&mut *s)
            .await?;
        let event = envelope(
            tenant,
            types::MESSAGE_CREATE,
            "message",
            message_id.as_str(),
            Some(dialog),
            &Actor::user(req.sender_id.as_str()),
            json!({ "message": message }),
        );
        Ok(Staged::new(message, vec![event]))
    })
    .await;
    match result {
        Ok(message) => Ok((message, true)),
        // A concurrent request with the same clientMessageId committed first.
        Err(Error::Storage(e)) if is_duplicate_key(&e) && req.client_message_id.is_some() => {
            match find_by_client_id(store, tenant, dialog, req, &message_type).await? {
                Some(original) => Ok((original, false)),
                None => Err(Error::Storage(e)),
            }
        }
        Err(e) => Err(e),
    }
}

/// Messages of a dialog: by page (newest first), before a seq (newest first) or after a seq
/// (oldest first). In seq modes `pagination.total` counts the messages matching the seq bound.
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog))]
pub async fn list(
    store: &Store,
    tenant: &TenantId,
    dialog: &DialogId,
    q: &MessageQuery,
    page: u64,
    limit: u64,
) -> Result<Page<Message>> {
    dialogs::load_doc(store, tenant, dialog).await?;
    let (filter, sort, skip): (Document, Document, u64) = match (q.before_seq, q.after_seq) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "validation_error",
                "beforeSeq and afterSeq cannot be combined",
            ))
        }
        (Some(b), None) => (
            scoped(
                tenant,
                doc! {"dialogId": dialog.as_str(), "seq": {"$lt": docs::stored_seq(b)}},
            ),
            doc! {"seq": -1},
            0,
        ),
        (None, Some(a)) => (
            scoped(
                tenant,
                doc! {"dialogId": dialog.as_str(), "seq": {"$gt": docs::stored_seq(a)}},
            ),
            doc! {"seq": 1},
            0,
        ),
        (None, None) => (
            scoped(tenant, doc! {"dialogId": dialog.as_str()}),
            doc! {"seq": -1},
            (page - 1) * limit,
        ),
    };
    let c = store.coll(coll::MESSAGES);
    let total = c.count_documents(filter.clone()).await?;
    let found: Vec<Document> = c
        .find(filter)
        .sort(sort)
        .skip(skip)
        .limit(limit as i64)
        .await?
        .try_collect()
        .await?;
    Ok(Page {
        data: found.iter().map(docs::message).collect::<Result<_>>()?,
        pagination: Pagination::new(page, limit, total),
    })
}
