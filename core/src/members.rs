//! Dialog membership after creation: list, add (`dialog.member.add`), remove
//! (`dialog.member.remove`), and the typing signal of a member (`dialog.typing`, published and
//! never stored).
//!
//! A member added to a dialog that already has messages starts with the watermark at its
//! newest message: what was sent before they joined is not unread for them. Adding and removing
//! write the dialog document (`membersCount`), so they serialize with concurrent sends and the
//! new member's watermark and count agree with the messages they are measured against.

use std::collections::HashSet;

use bson::{doc, Document};
use chat3_sdk::events::{MemberRemoved, MembersAdded, Typing};
use chat3_sdk::{
    AddMembers, DialogId, Member, MembersChange, Page, RemovedMember, TenantId, TypingState, UserId,
};
use futures_util::TryStreamExt;

use crate::dialogs::{self, load_doc, load_in};
use crate::docs::{DialogDoc, MemberDoc};
use crate::error::{Error, Result};
use crate::events::{event, routing_key, Actor};
use crate::filter::{Field, Kind, ListQuery, Resource};
use crate::ids::now_ms;
use crate::store::{coll, scoped, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;

/// Most members one call may add.
pub const MAX_ADD: usize = dialogs::MAX_INITIAL_MEMBERS;

/// How long a typing start holds without a new one.
pub const TYPING_EXPIRES_MS: u64 = 5_000;

/// 404 `member_not_found`: `user` is not a member of `dialog`.
pub(crate) fn member_not_found(user: &UserId, dialog: &DialogId) -> Error {
    Error::not_found(
        "member_not_found",
        format!("user '{user}' is not a member of dialog '{dialog}'"),
    )
}

/// What `GET /api/dialogs/{d}/members` may filter and sort by. The list is read within one
/// dialog; `userId` conditions use its `(tenantId, dialogId, userId)` index, the others scan
/// the dialog's members under [`filter::SCAN_MAX_TIME`].
pub const LIST: Resource = Resource {
    name: "members",
    fields: &[
        Field::indexed("userId", "userId", Kind::Str),
        Field::scanned("type", "userType", Kind::Str),
        Field::scanned("joinedAt", "joinedAt", Kind::Int),
        Field::scanned("lastReadSeq", "lastReadSeq", Kind::Int),
    ],
    meta: None,
    sorts: &[("joinedAt", "joinedAt"), ("userId", "userId")],
};

/// The dialog's members matching `q`, in join order unless `q` orders them, each with their
/// read state.
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog))]
pub async fn list(
    store: &Store,
    tenant: &TenantId,
    dialog: &DialogId,
    q: &ListQuery,
    page: u64,
    limit: u64,
) -> Result<Page<Member>> {
    let d = DialogDoc::from_doc(&load_doc(store, tenant, dialog).await?)?;
    let mine = scoped(tenant, doc! {"dialogId": dialog.as_str()});
    let order = (doc! {"joinedAt": 1}, ("userId", 1));
    q.page(&store.coll(coll::MEMBERS), mine, order, (page, limit))
        .await?
        .try_map(|m| Ok(MemberDoc::from_doc(&m)?.view(&d)))
}

/// Adds members (a user listed twice is added once, with the first type); those who are
/// members already stay as they are. Publishes `dialog.member.add` with the new members when
/// there are any. Returns the change and whether anyone joined.
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog))]
pub async fn add(
    ctx: &Ctx,
    tenant: &TenantId,
    dialog: &DialogId,
    req: &AddMembers,
) -> Result<MembersChange> {
    let asked = req.members();
    if asked.is_empty() || asked.len() > MAX_ADD {
        return Err(Error::invalid(
            "validation_error",
            format!("members must list 1-{MAX_ADD} users"),
        ));
    }
    let mut seen = HashSet::new();
    let asked: Vec<_> = asked
        .into_iter()
        .filter(|m| seen.insert(m.user_id.clone()))
        .collect();
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let d = DialogDoc::from_doc(&load_in(store, s, tenant, dialog).await?)?;
        let ids: Vec<&str> = asked.iter().map(|m| m.user_id.as_str()).collect();
        let existing: HashSet<String> = store
            .coll(coll::MEMBERS)
            .find(scoped(
                tenant,
                doc! {"dialogId": dialog.as_str(), "userId": {"$in": &ids}},
            ))
            .projection(doc! {"userId": 1})
            .session(&mut *s)
            .await?
            .stream(&mut *s)
            .try_collect::<Vec<Document>>()
            .await?
            .iter()
            .filter_map(|m| m.get_str("userId").ok().map(str::to_owned))
            .collect();
        let now = now_ms();
        let joined: Vec<MemberDoc> = asked
            .iter()
            .filter(|m| !existing.contains(m.user_id.as_str()))
            .map(|m| {
                MemberDoc::joined(tenant, dialog, &m.user_id, &m.user_type, now).at_watermark_of(&d)
            })
            .collect();
        let change = MembersChange {
            dialog_id: dialog.clone(),
            added: joined.iter().map(|m| m.view(&d)).collect(),
            existing: asked
                .iter()
                .filter(|m| existing.contains(m.user_id.as_str()))
                .map(|m| m.user_id.clone())
                .collect(),
        };
        if joined.is_empty() {
            return Ok(Staged::new(change, Vec::new()).with_status(200));
        }
        let listed: Vec<(&UserId, &chat3_sdk::UserType)> =
            joined.iter().map(|m| (&m.user_id, &m.user_type)).collect();
        let mut events = crate::users::ensure_in(store, s, tenant, &listed, now).await?;
        store
            .coll(coll::MEMBERS)
            .insert_many(joined.iter().map(MemberDoc::to_doc))
            .session(&mut *s)
            .await?;
        store
            .coll(coll::DIALOGS)
            .update_one(
                scoped(tenant, doc! {"dialogId": dialog.as_str()}),
                doc! {"$inc": {"membersCount": joined.len() as i64}, "$set": {"updatedAt": now}},
            )
            .session(&mut *s)
            .await?;
        let e = event(
            tenant,
            dialog.as_str(),
            Some(dialog),
            &Actor::api(),
            &MembersAdded {
                members: change.added.clone(),
            },
        );
        events.push(e);
        Ok(Staged::new(change, events).with_status(201))
    })
    .await
}

/// Removes a member and publishes `dialog.member.remove`: the removed user gets one update about
/// it, and nothing from the dialog afterwards. 404 `member_not_found` when they are not one.
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog, user = %user))]
pub async fn remove(
    ctx: &Ctx,
    tenant: &TenantId,
    dialog: &DialogId,
    user: &UserId,
) -> Result<RemovedMember> {
    remove_with(ctx, tenant, dialog, user, Reply::Ok, false).await
}

/// [`remove`] as one step of deleting the user (`user_deleted`: the event says so, and the
/// user gets no update about it) or of another multi-step write (`reply`).
pub(crate) async fn remove_with(
    ctx: &Ctx,
    tenant: &TenantId,
    dialog: &DialogId,
    user: &UserId,
    reply: Reply,
    user_deleted: bool,
) -> Result<RemovedMember> {
    let store = &ctx.store;
    write::transact(ctx, reply, async |s| {
        let d = DialogDoc::from_doc(&load_in(store, s, tenant, dialog).await?)?;
        let filter = scoped(
            tenant,
            doc! {"dialogId": dialog.as_str(), "userId": user.as_str()},
        );
        let m = store
            .coll(coll::MEMBERS)
            .find_one(filter.clone())
            .session(&mut *s)
            .await?
            .ok_or_else(|| member_not_found(user, dialog))?;
        let member = MemberDoc::from_doc(&m)?;
        store
            .coll(coll::MEMBERS)
            .delete_one(filter)
            .session(&mut *s)
            .await?;
        let now = now_ms();
        store
            .coll(coll::DIALOGS)
            .update_one(
                scoped(tenant, doc! {"dialogId": dialog.as_str()}),
                doc! {"$inc": {"membersCount": -1_i64}, "$set": {"updatedAt": now}},
            )
            .session(&mut *s)
            .await?;
        let e = event(
            tenant,
            &format!("{dialog}:{user}"),
            Some(dialog),
            &Actor::api(),
            &MemberRemoved {
                member: member.view(&d),
                name: d.name.clone(),
                last_seq: d.last_seq,
                removed_at: now,
                user_deleted,
            },
        );
        Ok(Staged::new(
            RemovedMember {
                dialog_id: dialog.clone(),
                user_id: user.clone(),
                removed_at: now,
            },
            vec![e],
        ))
    })
    .await
}

/// The membership of `user` in `dialog`: 404 `dialog_not_found` when the dialog does not
/// exist, 403 `not_a_member` when they are not in it.
pub async fn require_member(
    store: &Store,
    tenant: &TenantId,
    dialog: &DialogId,
    user: &UserId,
) -> Result<MemberDoc> {
    let found = store
        .coll(coll::MEMBERS)
        .find_one(scoped(
            tenant,
            doc! {"dialogId": dialog.as_str(), "userId": user.as_str()},
        ))
        .await?;
    match found {
        Some(m) => MemberDoc::from_doc(&m),
        None => {
            load_doc(store, tenant, dialog).await?;
            Err(Error::forbidden(
                "not_a_member",
                format!("user '{user}' is not a member of dialog '{dialog}'"),
            ))
        }
    }
}

/// Publishes `dialog.typing` for a member (never stored, no seq): the other members get a
/// `typing` update. A start holds for [`TYPING_EXPIRES_MS`] unless renewed.
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog, user = %user))]
pub async fn typing(
    ctx: &Ctx,
    tenant: &TenantId,
    dialog: &DialogId,
    user: &UserId,
    is_typing: bool,
) -> Result<TypingState> {
    require_member(&ctx.store, tenant, dialog, user).await?;
    let state = TypingState {
        dialog_id: dialog.clone(),
        user_id: user.clone(),
        is_typing,
        expires_in_ms: TYPING_EXPIRES_MS,
    };
    let e = event(
        tenant,
        &format!("{dialog}:{user}"),
        Some(dialog),
        &Actor::user(user.as_str()),
        &Typing {
            state: state.clone(),
        },
    );
    let body = serde_json::to_vec(&e).map_err(|e| Error::Internal(e.to_string()))?;
    ctx.bus
        .publish_json(
            ctx.bus.events_exchange(),
            &routing_key(&e),
            &e.event_id,
            &body,
        )
        .await
        .map_err(|e| Error::Unavailable {
            code: "broker_unavailable",
            message: format!("the typing signal could not be published: {e}"),
        })?;
    Ok(state)
}
