//! Messages: creation with a per-dialog `seq` assigned from the dialog's `lastSeq` inside a
//! transaction (so commit order = seq order), the sender's watermark moved to the new message,
//! the `message.create` event staged in the outbox, all through the group-commit writers of
//! [`send`]; and listing by page or by seq.

pub mod change;
pub mod send;

pub use change::deleted;

pub(crate) use send::BATCH_CONFLICT;

use bson::{doc, Document};

use chat3_sdk::{CreateMessage, DialogId, Message, MessageQuery, Page, Pagination, TenantId};
use futures_util::TryStreamExt;
use serde_json::json;

use crate::dialogs;
use crate::docs;
use crate::error::{Error, Result};
use crate::filter::{self, Field, Kind, ListQuery, Resource};
use crate::store::{coll, scoped, Store};
use crate::Ctx;

/// Longest message content, in characters.
pub const MAX_CONTENT_CHARS: usize = 10_000;
/// Longest `clientMessageId`.
pub const MAX_CLIENT_MESSAGE_ID: usize = 128;

/// Messages of `system.*` types do not count as unread and need no member sender.
pub fn is_system(message_type: &str) -> bool {
    message_type.starts_with("system.")
}

/// A media message: its meta names the media with a non-empty string `url` (any type:
/// `image`, `file`, `audio`, ...).
pub fn is_media(meta: &chat3_sdk::Meta) -> bool {
    meta.get("url")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|u| !u.is_empty())
}

/// Content of at most [`MAX_CONTENT_CHARS`] characters (a 400 otherwise), and whether it may
/// be what it is: not empty unless the message is a media message ([`is_media`] of the meta it
/// will have). Empty where it may not be is `false`, for the caller to answer (a new message:
/// 400; an edit, which depends on the stored meta: 409).
pub(crate) fn content_fits(content: &str, meta: &chat3_sdk::Meta) -> Result<bool> {
    let n = content.chars().count();
    if n > MAX_CONTENT_CHARS {
        return Err(Error::invalid(
            "validation_error",
            format!("content must be at most {MAX_CONTENT_CHARS} characters"),
        ));
    }
    Ok(n > 0 || is_media(meta))
}

/// What an empty content is told: only a media message (meta.url) may have none.
pub(crate) const CONTENT_REQUIRED: &str =
    "content must not be empty: only a media message, whose meta.url names the media, may have none";

fn validate(req: &CreateMessage) -> Result<String> {
    if !content_fits(
        &req.content,
        req.meta.as_ref().unwrap_or(&Default::default()),
    )? {
        return Err(Error::invalid("validation_error", CONTENT_REQUIRED));
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

/// The original of a repeated `clientMessageId` when the repeat asks for the same message; 409
/// `client_message_id_conflict` when it differs (another content, type, meta or quote), with
/// the original's id in `details`.
pub(crate) fn same_or_conflict(
    original: &Message,
    req: &CreateMessage,
    message_type: &str,
) -> Result<Message> {
    let same = original.content == req.content
        && original.message_type == message_type
        && original.meta == req.meta.clone().unwrap_or_default()
        && original.quoted_message_id == req.quoted_message_id;
    if !same {
        return Err(Error::Conflict {
            code: "client_message_id_conflict",
            message: format!(
                "clientMessageId '{}' was already used by message '{}' with other content",
                original.client_message_id.as_deref().unwrap_or_default(),
                original.message_id
            ),
            details: Some(json!({ "messageId": original.message_id })),
        });
    }
    Ok(original.clone())
}

/// Creates a message through this instance's send writers (group commit, see [`send`]).
/// Returns the message and whether it was created now (`false`: a retry with a known
/// `clientMessageId`, answered with the original).
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog))]
pub async fn create(
    ctx: &Ctx,
    tenant: &TenantId,
    dialog: &DialogId,
    req: &CreateMessage,
) -> Result<(Message, bool)> {
    let message_type = validate(req)?;
    let meta = docs::meta_doc(req.meta.as_ref())?;
    ctx.sends
        .submit(
            tenant.clone(),
            dialog.clone(),
            req.clone(),
            message_type,
            meta,
        )
        .await
}

/// Messages of a dialog: by page (newest first), before a seq (newest first), after a seq
/// (oldest first) or between two seqs (oldest first). In seq modes `pagination.total` counts
/// the messages within the bounds.
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog))]
pub async fn list(
    store: &Store,
    tenant: &TenantId,
    dialog: &DialogId,
    q: &MessageQuery,
    page: u64,
    limit: u64,
) -> Result<Page<Message>> {
    let listing = ListQuery::of(q.filter.as_deref(), q.sort.as_deref(), &LIST)?;
    if !listing.sort.is_empty() && (q.before_seq.is_some() || q.after_seq.is_some()) {
        return Err(Error::invalid(
            "invalid_sort",
            "sort applies to page mode; beforeSeq and afterSeq read in seq order",
        ));
    }
    dialogs::load_doc(store, tenant, dialog).await?;
    let (scope, sort, skip): (Document, Document, u64) = match (q.before_seq, q.after_seq) {
        (Some(b), Some(a)) => (
            scoped(
                tenant,
                doc! {"dialogId": dialog.as_str(), "seq": {"$gt": docs::stored_seq(a), "$lt": docs::stored_seq(b)}},
            ),
            doc! {"seq": 1},
            0,
        ),
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
            if listing.sort.is_empty() {
                doc! {"seq": -1}
            } else {
                listing.sort.clone()
            },
            (page - 1) * limit,
        ),
    };
    let c = store.coll(coll::MESSAGES);
    let query = listing.within(scope);
    let (total, found) = filter::fetch(&c, query, sort, skip, limit, listing.max_time()).await?;
    Ok(Page {
        data: found.iter().map(docs::message).collect::<Result<_>>()?,
        pagination: Pagination::new(page, limit, total),
    })
}

/// What the message lists of a dialog may filter and sort by. They are read within one dialog
/// through `(tenantId, dialogId, seq)`: `seq` and `messageId` conditions are index-backed, the
/// others scan the dialog's messages under [`filter::SCAN_MAX_TIME`]. `content` with `regex`
/// is a case-insensitive contains-text (see [`crate::filter`]).
pub const LIST: Resource = Resource {
    name: "messages",
    fields: &[
        Field::indexed("messageId", "messageId", Kind::Str),
        Field::indexed("seq", "seq", Kind::Int),
        Field::scanned("senderId", "senderId", Kind::Str),
        Field::scanned("type", "type", Kind::Str),
        Field::scanned("content", "content", Kind::Str),
        Field::scanned("createdAt", "createdAt", Kind::Int),
        Field::scanned("editedAt", "editedAt", Kind::Int),
        Field::scanned("deletedAt", "deletedAt", Kind::Int),
    ],
    meta: Some("meta"),
    sorts: &[("seq", "seq")],
};

/// What `GET /api/messages` (tenant-wide search) may filter and sort by. `senderId` and
/// `createdAt` are served by `(tenantId, senderId, createdAt)` and `(tenantId, createdAt,
/// messageId)`, `messageId` by its unique index; `dialogId` finds the dialog's messages through
/// its index but their order by time is sorted after reading, so it counts as a scan (one
/// dialog's history is paged by seq at `/api/dialogs/{d}/messages`). The others, `content`'s
/// contains-text included, scan under [`filter::SCAN_MAX_TIME`].
pub const SEARCH: Resource = Resource {
    name: "messages",
    fields: &[
        Field::indexed("messageId", "messageId", Kind::Str),
        Field::indexed("senderId", "senderId", Kind::Str),
        Field::indexed("createdAt", "createdAt", Kind::Int),
        Field::scanned("dialogId", "dialogId", Kind::Str),
        Field::scanned("seq", "seq", Kind::Int),
        Field::scanned("type", "type", Kind::Str),
        Field::scanned("content", "content", Kind::Str),
        Field::scanned("editedAt", "editedAt", Kind::Int),
        Field::scanned("deletedAt", "deletedAt", Kind::Int),
    ],
    meta: Some("meta"),
    sorts: &[("createdAt", "createdAt")],
};

/// Messages of the whole tenant matching `q`, newest first (or by `q.sort`), one page.
#[tracing::instrument(skip_all, fields(tenant = %tenant))]
pub async fn search(
    store: &Store,
    tenant: &TenantId,
    q: &ListQuery,
    page: u64,
    limit: u64,
) -> Result<Page<Message>> {
    let order = (doc! {"createdAt": -1}, ("messageId", -1));
    let scope = crate::store::tenant_filter(tenant);
    q.page(&store.coll(coll::MESSAGES), scope, order, (page, limit))
        .await?
        .try_map(|d| docs::message(&d))
}

/// The messages of a dialog as `user` sees them (403 `not_a_member` unless a member): the same
/// pages as [`list`], each message with `isMine` and `reactions[].me` from the user's side.
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user, dialog = %dialog))]
pub async fn user_list(
    store: &Store,
    tenant: &TenantId,
    user: &chat3_sdk::UserId,
    dialog: &DialogId,
    q: &MessageQuery,
    page: u64,
    limit: u64,
) -> Result<Page<chat3_sdk::UserMessage>> {
    crate::members::require_member(store, tenant, dialog, user).await?;
    let found = list(store, tenant, dialog, q, page, limit).await?;
    let reacted: Vec<&str> = found
        .data
        .iter()
        .filter(|m| !m.reactions.is_empty())
        .map(|m| m.message_id.as_str())
        .collect();
    let mut mine: std::collections::HashSet<(String, String)> = Default::default();
    if !reacted.is_empty() {
        let rows: Vec<Document> = store
            .coll(coll::REACTIONS)
            .find(scoped(
                tenant,
                doc! {"messageId": {"$in": &reacted}, "userId": user.as_str()},
            ))
            .projection(doc! {"messageId": 1, "reaction": 1})
            .await?
            .try_collect()
            .await?;
        for r in rows {
            mine.insert((docs::s(&r, "messageId")?, docs::s(&r, "reaction")?));
        }
    }
    let data = found
        .data
        .into_iter()
        .map(|mut m| {
            for r in &mut m.reactions {
                r.me = mine.contains(&(m.message_id.to_string(), r.reaction.clone()));
            }
            chat3_sdk::UserMessage {
                is_mine: &m.sender_id == user,
                message: m,
            }
        })
        .collect();
    Ok(Page {
        data,
        pagination: found.pagination,
    })
}
