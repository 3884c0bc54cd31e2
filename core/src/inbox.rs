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
use crate::filter::{self, Field, Kind, ListQuery, Resource};
use crate::plain;
use crate::store::{coll, scoped, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;
use chat3_sdk::events::DialogRead;

/// What the inbox (`GET /api/users/{u}/dialogs`) may filter and sort by, named as in its
/// entries. A filtered or sorted inbox joins each of the user's memberships with its dialog and
/// computes `unreadCount` in the store (one aggregation, [`filter::SCAN_MAX_TIME`]-bounded: its
/// cost grows with the user's dialogs, not the tenant's); the unfiltered inbox stays an index
/// range. `meta.<key>` is the dialog's meta.
pub const LIST: Resource = Resource {
    name: "user dialogs",
    fields: &[
        Field::scanned("dialogId", "dialogId", Kind::Str),
        Field::scanned("name", "dialog.name", Kind::Str),
        Field::scanned("unreadCount", "unreadCount", Kind::Int),
        Field::scanned("lastReadSeq", "lastReadSeq", Kind::Int),
        Field::scanned("lastSeq", "dialog.lastSeq", Kind::Int),
        Field::scanned("membersCount", "dialog.membersCount", Kind::Int),
        Field::scanned("lastInteractionAt", "dialog.updatedAt", Kind::Int),
        Field::scanned("lastSeenAt", "lastReadAt", Kind::Int),
        Field::scanned("joinedAt", "joinedAt", Kind::Int),
    ],
    meta: Some("dialog.meta"),
    sorts: &[
        ("lastInteractionAt", "dialog.updatedAt"),
        ("unreadCount", "unreadCount"),
        ("joinedAt", "joinedAt"),
    ],
};

/// The user's dialogs, most recent activity first (or by `q.sort`), narrowed by `q.filter`,
/// each with the user's unread count, watermark and the newest message. A user with no dialogs
/// has an empty inbox; a user that does not exist is a 404 `user_not_found`.
///
/// Unfiltered, it is index-backed: every membership carries its dialog's last activity
/// (`lastActivityAt`, raised for all members by each send), so a page is an index range of the
/// user's memberships, then one read of those dialogs, whose documents carry their newest
/// message. Cost: O(page), plus a count of the user's memberships. Filtered or sorted, see
/// [`LIST`].
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
pub async fn user_dialogs(
    store: &Store,
    tenant: &TenantId,
    user: &UserId,
    q: &ListQuery,
    page: u64,
    limit: u64,
) -> Result<Page<InboxDialog>> {
    let (total, rows) = if q.filter.is_empty() && q.sort.is_empty() {
        memberships_by_activity(store, tenant, user, page, limit).await?
    } else {
        memberships_joined(store, tenant, user, q, page, limit).await?
    };
    if total == 0 {
        crate::users::must_exist(store, tenant, user).await?;
    }
    let mut data = Vec::with_capacity(rows.len());
    for (m, d) in &rows {
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

/// (membership, dialog) documents of one inbox page, with the total.
type Rows = (u64, Vec<(Document, Document)>);

/// The unfiltered inbox: an index range of the user's memberships, then their dialogs.
async fn memberships_by_activity(
    store: &Store,
    tenant: &TenantId,
    user: &UserId,
    page: u64,
    limit: u64,
) -> Result<Rows> {
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
    let mut dialogs: HashMap<String, Document> = if ids.is_empty() {
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
    let rows = memberships
        .into_iter()
        .filter_map(|m| {
            let d = dialogs.remove(m.get_str("dialogId").ok()?)?;
            Some((m, d))
        })
        .collect();
    Ok((total, rows))
}

/// The filtered or sorted inbox: the user's memberships joined with their dialogs (of the same
/// tenant) and `unreadCount` computed as [`MemberDoc::unread`] does, then the client's filter,
/// order and page, all in one aggregation under [`filter::SCAN_MAX_TIME`].
async fn memberships_joined(
    store: &Store,
    tenant: &TenantId,
    user: &UserId,
    q: &ListQuery,
    page: u64,
    limit: u64,
) -> Result<Rows> {
    let mut pipeline = vec![
        doc! {"$match": scoped(tenant, doc! {"userId": user.as_str()})},
        doc! {"$lookup": {
            "from": coll::DIALOGS,
            "localField": "dialogId",
            "foreignField": "dialogId",
            "pipeline": [{"$match": crate::store::tenant_filter(tenant)}],
            "as": "dialog",
        }},
        doc! {"$unwind": "$dialog"},
        doc! {"$addFields": {"unreadCount": {"$max": [0_i64, {"$subtract": [
            {"$ifNull": ["$dialog.msgCount", 0_i64]},
            {"$ifNull": ["$readCount", 0_i64]},
        ]}]}}},
    ];
    if !q.filter.is_empty() {
        pipeline.push(doc! {"$match": q.filter.clone()});
    }
    pipeline.push(doc! {"$sort": q.order(doc! {"lastActivityAt": -1}, ("dialogId", -1))});
    pipeline.push(doc! {"$facet": {
        "total": [{"$count": "n"}],
        "page": [{"$skip": ((page - 1) * limit) as i64}, {"$limit": limit as i64}],
    }});
    let out: Vec<Document> = store
        .coll(coll::MEMBERS)
        .aggregate(pipeline)
        .max_time(filter::SCAN_MAX_TIME)
        .await
        .map_err(filter::bounded)?
        .try_collect()
        .await
        .map_err(filter::bounded)?;
    let Some(facet) = out.first() else {
        return Ok((0, Vec::new()));
    };
    let total = facet
        .get_array("total")
        .ok()
        .and_then(|t| t.first())
        .and_then(|t| t.as_document())
        .map_or(0, |t| docs::u(t, "n"));
    let rows = facet
        .get_array("page")
        .map(|p| {
            p.iter()
                .filter_map(|row| {
                    let mut m = row.as_document()?.clone();
                    let d = m.remove("dialog")?.as_document()?.clone();
                    m.remove("unreadCount");
                    Some((m, d))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((total, rows))
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
/// both in one snapshot, so the figures agree with each other. 404 `user_not_found` for a user
/// that does not exist.
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
    if memberships.is_empty() {
        crate::users::must_exist(store, tenant, user).await?;
    }
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
