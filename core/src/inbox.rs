//! The user's view: the inbox (dialogs with unread counts, newest activity first) and marking a
//! dialog read. Unread is a watermark difference (DESIGN §4), so both are O(1) per dialog.

use std::collections::HashMap;

use bson::{doc, Document};
use chat3_sdk::{
    DialogId, InboxContext, InboxDialog, Message, Page, Pagination, ReadState, TenantId, UserId,
    UserStats,
};
use futures_util::TryStreamExt;

use crate::docs::{self, DialogDoc, MemberDoc};
use crate::error::Result;
use crate::events::{event, Actor};
use crate::plain;
use crate::store::{coll, scoped, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;
use chat3_sdk::events::DialogRead;

/// The user's dialogs, most recent activity first, each with the user's unread count, watermark
/// and the newest message. A user with no dialogs has an empty inbox.
///
/// Index-backed: every membership carries its dialog's last activity (`lastActivityAt`, raised
/// for all members by each send), so a page is an index range of the user's memberships, then
/// one read of those dialogs, whose documents carry their newest message. Cost: O(page), plus a
/// count of the user's memberships.
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
pub async fn user_dialogs(
    store: &Store,
    tenant: &TenantId,
    user: &UserId,
    page: u64,
    limit: u64,
) -> Result<Page<InboxDialog>> {
    let mine = scoped(tenant, doc! {"userId": user.as_str()});
    let members = store.coll(coll::MEMBERS);
    let count = async { members.count_documents(mine.clone()).await };
    let find = async {
        members
            .find(mine.clone())
            .sort(doc! {"lastActivityAt": -1, "dialogId": -1})
            .skip((page - 1) * limit)
            .limit(limit as i64)
            .await?
            .try_collect::<Vec<Document>>()
            .await
    };
    let (total, memberships) = futures_util::try_join!(count, find)?;
    let ids: Vec<&str> = memberships
        .iter()
        .filter_map(|m| m.get_str("dialogId").ok())
        .collect();
    let dialogs: HashMap<String, Document> = if ids.is_empty() {
        HashMap::new()
    } else {
        store
            .coll(coll::DIALOGS)
            .find(scoped(tenant, doc! {"dialogId": {"$in": &ids}}))
            .await?
            .try_collect::<Vec<Document>>()
            .await?
            .into_iter()
            .filter_map(|d| Some((d.get_str("dialogId").ok()?.to_owned(), d)))
            .collect()
    };
    let mut data = Vec::with_capacity(memberships.len());
    for m in &memberships {
        let Some(d) = m.get_str("dialogId").ok().and_then(|id| dialogs.get(id)) else {
            continue;
        };
        let dialog = DialogDoc::from_doc(d)?;
        let member = MemberDoc::from_doc(m)?;
        let unread = member.unread(&dialog);
        let last_message = last_message(store, tenant, d).await?;
        data.push(InboxDialog {
            dialog_id: dialog.dialog_id.clone(),
            name: dialog.name.clone(),
            meta: docs::meta(d),
            unread_count: unread,
            last_read_seq: member.last_read_seq,
            last_seq: dialog.last_seq,
            last_interaction_at: dialog.updated_at,
            members_count: dialog.members_count,
            context: InboxContext {
                user_id: user.clone(),
                unread_count: unread,
                last_seen_at: member.last_read_at,
                last_message_at: last_message.as_ref().map(|m| m.created_at),
                joined_at: member.joined_at,
            },
            last_message,
        });
    }
    Ok(Page {
        data,
        pagination: Pagination::new(page, limit, total),
    })
}

/// The dialog's newest message: the copy its document carries (written with each send), or,
/// for a dialog written before that copy existed, a read of the message itself.
async fn last_message(store: &Store, tenant: &TenantId, d: &Document) -> Result<Option<Message>> {
    if let Ok(last) = d.get_document("lastMessage") {
        return Ok(Some(plain::from_document(last)?));
    }
    let seq = docs::u(d, "lastSeq");
    if seq == 0 {
        return Ok(None);
    }
    let found = store
        .coll(coll::MESSAGES)
        .find_one(scoped(
            tenant,
            doc! {"dialogId": d.get_str("dialogId").unwrap_or_default(), "seq": seq as i64},
        ))
        .await?;
    found.as_ref().map(docs::message).transpose()
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
        let d = crate::dialogs::load_in(store, s, tenant, dialog).await?;
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
            .ok_or_else(|| crate::members::member_not_found(user, dialog))?;
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
                doc! {
                    "$max": {"lastReadSeq": last_seq, "readCount": count},
                    "$set": {"lastReadAt": crate::ids::now_ms()},
                },
            )
            .session(&mut *s)
            .await?;
        let event = event(
            tenant,
            dialog.as_str(),
            Some(dialog),
            &Actor::user(user.as_str()),
            &DialogRead {
                user_id: user.clone(),
                last_read_seq: last_seq as u64,
                unread_count: 0,
            },
        );
        Ok(Staged::new(state, vec![event]))
    })
    .await
}

/// `{dialogCount, unreadDialogs, totalUnread}` over the user's memberships: one index range of
/// their memberships and one read of those dialogs (O(dialogs of the user), no message read),
/// both in one snapshot, so the figures agree with each other.
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
pub async fn stats(store: &Store, tenant: &TenantId, user: &UserId) -> Result<UserStats> {
    let mut s = store.client().start_session().await?;
    s.start_transaction().await?;
    let memberships: Vec<MemberDoc> = store
        .coll(coll::MEMBERS)
        .find(scoped(tenant, doc! {"userId": user.as_str()}))
        .projection(
            doc! {"tenantId": 1, "dialogId": 1, "userId": 1, "readCount": 1, "lastReadSeq": 1},
        )
        .session(&mut s)
        .await?
        .stream(&mut s)
        .try_collect::<Vec<Document>>()
        .await?
        .iter()
        .map(MemberDoc::from_doc)
        .collect::<Result<_>>()?;
    let ids: Vec<&str> = memberships.iter().map(|m| m.dialog_id.as_str()).collect();
    let counts: HashMap<String, u64> = if ids.is_empty() {
        HashMap::new()
    } else {
        store
            .coll(coll::DIALOGS)
            .find(scoped(tenant, doc! {"dialogId": {"$in": &ids}}))
            .projection(doc! {"dialogId": 1, "msgCount": 1})
            .session(&mut s)
            .await?
            .stream(&mut s)
            .try_collect::<Vec<Document>>()
            .await?
            .iter()
            .filter_map(|d| {
                Some((
                    d.get_str("dialogId").ok()?.to_owned(),
                    docs::u(d, "msgCount"),
                ))
            })
            .collect()
    };
    let _ = s.commit_transaction().await;
    let mut out = UserStats {
        user_id: user.clone(),
        dialog_count: 0,
        unread_dialogs: 0,
        total_unread: 0,
    };
    for m in &memberships {
        let Some(count) = counts.get(m.dialog_id.as_str()) else {
            continue;
        };
        let unread = count.saturating_sub(m.read_count);
        out.dialog_count += 1;
        out.total_unread += unread;
        if unread > 0 {
            out.unread_dialogs += 1;
        }
    }
    Ok(out)
}
