//! Receipts: a user records `delivered`, `read` or a custom status for one message of a dialog
//! they are a member of (`message.status.changed`). One receipt per (message, user, status):
//! recording it again changes nothing and emits nothing. The message keeps a count per status
//! of the receipts of users other than its sender (`statuses` in every read), updated in the
//! receipt's transaction, so the summary is exact for groups of any size without reading the
//! receipts. `read` also moves the user's watermark up to the message (never back), which is
//! what their unread count follows.

use bson::{doc, Document};
use chat3_sdk::events::StatusChanged;
use chat3_sdk::{DialogId, MessageId, MessageStatus, Page, TenantId, UserId};

use crate::docs;
use crate::error::{Error, Result};
use crate::events::{event, Actor};
use crate::filter::{Field, Kind, ListQuery, Resource};
use crate::ids::now_ms;
use crate::messages::change::{refresh_last, user_target};
use crate::store::{coll, scoped, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;

/// Longest status name.
pub const MAX_STATUS: usize = 64;

/// `[a-z0-9_-]{1,64}` (also what makes it safe as a key of the per-status counts).
pub fn check_status(status: &str) -> Result<()> {
    let ok = !status.is_empty()
        && status.len() <= MAX_STATUS
        && status
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_status",
            format!("a status is 1-{MAX_STATUS} characters a-z, 0-9, '_' or '-'"),
        ))
    }
}

fn view(d: &Document) -> Result<MessageStatus> {
    Ok(MessageStatus {
        message_id: docs::parse(d, "messageId")?,
        dialog_id: docs::parse(d, "dialogId")?,
        user_id: docs::parse(d, "userId")?,
        status: docs::s(d, "status")?,
        created_at: docs::ts(d, "createdAt"),
    })
}

/// Records a receipt. Returns it and whether it is new (201) or was recorded before (200).
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user, message = %message, status))]
pub async fn record(
    ctx: &Ctx,
    tenant: &TenantId,
    user: &UserId,
    dialog: &DialogId,
    message: &MessageId,
    status: &str,
) -> Result<(MessageStatus, bool)> {
    check_status(status)?;
    let _queued = ctx.message_locks.lock(format!("{tenant}/{message}")).await;
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let (member, stored) = user_target(store, s, tenant, user, dialog, message).await?;
        let mut m = stored.message;
        let key = scoped(
            tenant,
            doc! {"messageId": message.as_str(), "userId": user.as_str(), "status": status},
        );
        let statuses = store.coll(coll::MESSAGE_STATUSES);
        if let Some(existing) = statuses.find_one(key).session(&mut *s).await? {
            return Ok(Staged::new((view(&existing)?, false), Vec::new()).with_status(200));
        }
        let now = now_ms();
        let row = doc! {
            "tenantId": tenant.as_str(), "dialogId": dialog.as_str(), "messageId": message.as_str(),
            "userId": user.as_str(), "status": status, "createdAt": now,
        };
        statuses.insert_one(row.clone()).session(&mut *s).await?;
        if &m.sender_id != user {
            store
                .coll(coll::MESSAGES)
                .update_one(
                    scoped(tenant, doc! {"messageId": message.as_str()}),
                    doc! {"$inc": {format!("statusCounts.{status}"): 1_i64}},
                )
                .session(&mut *s)
                .await?;
            *m.statuses.entry(status.to_owned()).or_default() += 1;
            refresh_last(store, s, &m).await?;
        }
        if status == "read" {
            // Seen now (`lastSeenAt`), and the watermark up to this message unless past it.
            let mut change = doc! {"$set": {"lastReadAt": now}};
            if member.last_read_seq < m.seq {
                change.insert(
                    "$max",
                    doc! {"lastReadSeq": docs::stored_seq(m.seq), "readCount": docs::stored_seq(stored.count_at)},
                );
            }
            store
                .coll(coll::MEMBERS)
                .update_one(
                    scoped(tenant, doc! {"dialogId": dialog.as_str(), "userId": user.as_str()}),
                    change,
                )
                .session(&mut *s)
                .await?;
        }
        let e = event(
            tenant,
            message.as_str(),
            Some(dialog),
            &Actor::user(user.as_str()),
            &StatusChanged {
                message_id: message.clone(),
                sender_id: m.sender_id.clone(),
                user_id: user.clone(),
                status: status.to_owned(),
                at: now,
            },
        );
        Ok(Staged::new((view(&row)?, true), vec![e]).with_status(201))
    })
    .await
}

/// What the message statuses of a message may filter and sort by: they are read within the message
/// through `(tenantId, messageId, userId, ...)`, so `userId` is index-backed; the others scan
/// the message's rows (bounded by [`crate::filter::SCAN_MAX_TIME`]).
pub const LIST: Resource = Resource {
    name: "message statuses",
    fields: &[
        Field::indexed("userId", "userId", Kind::Str),
        Field::scanned("status", "status", Kind::Str),
        Field::scanned("createdAt", "createdAt", Kind::Int),
    ],
    meta: None,
    sorts: &[("createdAt", "createdAt")],
};

/// The receipts of a message, oldest first, for a member of its dialog (403 `not_a_member`
/// otherwise).
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user, message = %message))]
pub async fn list(
    store: &Store,
    tenant: &TenantId,
    user: &UserId,
    dialog: &DialogId,
    message: &MessageId,
    q: &ListQuery,
    (page, limit): (u64, u64),
) -> Result<Page<MessageStatus>> {
    crate::messages::change::rows_of(
        store,
        coll::MESSAGE_STATUSES,
        "status",
        tenant,
        user,
        dialog,
        message,
        q,
        (page, limit),
    )
    .await?
    .try_map(|d| view(&d))
}
