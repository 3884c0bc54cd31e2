//! Dialogs and their members: creation (dialog, members and `dialog.create` event in one
//! transaction), reads and lists, all scoped by tenant.

use bson::{doc, Document};
use chat3_sdk::events::{DialogChanged, DialogDeleted};
use chat3_sdk::{
    CreateDialog, DeletedDialog, Dialog, DialogId, Page, TenantId, UpdateDialog, UserId, UserType,
};
use futures_util::TryStreamExt;
use mongodb::ClientSession;

use crate::docs;
use crate::error::{Error, Result};
use crate::events::{event, Actor};
use crate::filter::{Field, Kind, ListQuery, Resource};
use crate::ids::{self, now_ms};
use crate::store::{coll, scoped, tenant_filter, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;
use chat3_sdk::events::DialogCreated;

/// Most members a dialog may be created with.
pub const MAX_INITIAL_MEMBERS: usize = 1000;
/// Longest display name of a dialog or a user.
pub const MAX_NAME_CHARS: usize = 200;

/// A display name (dialog or user) is at most [`MAX_NAME_CHARS`] characters.
pub(crate) fn check_name(name: Option<&str>) -> Result<()> {
    if name.is_some_and(|n| n.chars().count() > MAX_NAME_CHARS) {
        return Err(Error::invalid(
            "validation_error",
            format!("name must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Creates a dialog with its initial members and publishes `dialog.create`.
#[tracing::instrument(skip_all, fields(tenant = %tenant))]
pub async fn create(ctx: &Ctx, tenant: &TenantId, req: &CreateDialog) -> Result<Dialog> {
    if req.members.is_empty() {
        return Err(Error::invalid(
            "validation_error",
            "members must not be empty",
        ));
    }
    if req.members.len() > MAX_INITIAL_MEMBERS {
        return Err(Error::invalid(
            "validation_error",
            format!("at most {MAX_INITIAL_MEMBERS} members"),
        ));
    }
    check_name(req.name.as_deref())?;
    // A user listed twice is one member, with the type of the first mention.
    let mut seen = std::collections::HashSet::new();
    let members: Vec<&chat3_sdk::MemberInput> = req
        .members
        .iter()
        .filter(|m| seen.insert(&m.user_id))
        .collect();
    let created_by = req
        .created_by
        .clone()
        .unwrap_or_else(|| req.members[0].user_id.clone());
    let dialog_id = ids::dialog_id();
    let now = now_ms();
    let mut created = docs::DialogDoc::created(
        tenant,
        &dialog_id,
        req.name.clone(),
        docs::meta_doc(req.meta.as_ref())?,
        &created_by,
        now,
    );
    created.members_count = members.len() as u64;
    let dialog_doc = created.to_doc();
    let member_docs: Vec<Document> = members
        .iter()
        .map(|m| {
            docs::MemberDoc::joined(tenant, &dialog_id, &m.user_id, &m.user_type, now).to_doc()
        })
        .collect();
    let dialog = docs::dialog(&dialog_doc, &member_docs)?;
    let event = event(
        tenant,
        dialog_id.as_str(),
        Some(&dialog_id),
        &Actor::user(created_by.as_str()),
        &DialogCreated {
            dialog: dialog.clone(),
        },
    );
    let store = &ctx.store;
    let listed: Vec<(&UserId, &UserType)> =
        members.iter().map(|m| (&m.user_id, &m.user_type)).collect();
    write::transact(ctx, Reply::Created, async |s| {
        let new_users = crate::users::ensure_in(store, s, tenant, &listed, now).await?;
        store
            .coll(coll::DIALOGS)
            .insert_one(dialog_doc.clone())
            .session(&mut *s)
            .await?;
        store
            .coll(coll::MEMBERS)
            .insert_many(member_docs.clone())
            .session(&mut *s)
            .await?;
        let mut events = new_users;
        events.push(event.clone());
        Ok(Staged::new(dialog.clone(), events))
    })
    .await
}

pub(crate) fn not_found(dialog: &DialogId) -> Error {
    Error::not_found(
        "dialog_not_found",
        format!("dialog '{dialog}' does not exist"),
    )
}

/// The stored dialog document, or 404 `dialog_not_found`.
pub async fn load_doc(store: &Store, tenant: &TenantId, dialog: &DialogId) -> Result<Document> {
    store
        .coll(coll::DIALOGS)
        .find_one(scoped(tenant, doc! {"dialogId": dialog.as_str()}))
        .await?
        .ok_or_else(|| not_found(dialog))
}

/// The stored dialog inside a transaction, or 404 `dialog_not_found`.
pub(crate) async fn load_in(
    store: &Store,
    s: &mut ClientSession,
    tenant: &TenantId,
    dialog: &DialogId,
) -> Result<Document> {
    store
        .coll(coll::DIALOGS)
        .find_one(scoped(tenant, doc! {"dialogId": dialog.as_str()}))
        .session(&mut *s)
        .await?
        .ok_or_else(|| not_found(dialog))
}

/// The member documents of a dialog inside a transaction, in join order.
pub(crate) async fn members_in(
    store: &Store,
    s: &mut ClientSession,
    tenant: &TenantId,
    dialog: &DialogId,
) -> Result<Vec<Document>> {
    Ok(store
        .coll(coll::MEMBERS)
        .find(scoped(tenant, doc! {"dialogId": dialog.as_str()}))
        .sort(doc! {"joinedAt": 1, "userId": 1})
        .session(&mut *s)
        .await?
        .stream(&mut *s)
        .try_collect()
        .await?)
}

/// Renames a dialog and/or merges keys into its meta (a key given as `null` is removed) and
/// publishes `dialog.changed` with what changed. A change that changes nothing emits nothing.
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog))]
pub async fn update(
    ctx: &Ctx,
    tenant: &TenantId,
    dialog: &DialogId,
    req: &UpdateDialog,
) -> Result<Dialog> {
    check_name(req.name.as_deref())?;
    if let Some(m) = &req.meta {
        crate::plain::check_meta("meta", m)?;
    }
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let mut d = docs::DialogDoc::from_doc(&load_in(store, s, tenant, dialog).await?)?;
        let mut changed = Vec::new();
        if let Some(name) = &req.name {
            if d.name.as_deref() != Some(name) {
                d.name = Some(name.clone());
                changed.push("name".to_owned());
            }
        }
        if let Some(patch) = &req.meta {
            changed.extend(docs::merge_meta(&mut d.meta, patch)?);
        }
        staged_change(store, s, tenant, d, changed).await
    })
    .await
}

/// Inside a transaction: stores the changed dialog (name, meta) and stages `dialog.changed`
/// (nothing when `changed` is empty). Shared by `PATCH /api/dialogs/{d}` and the meta routes.
pub(crate) async fn staged_change(
    store: &Store,
    s: &mut ClientSession,
    tenant: &TenantId,
    mut d: docs::DialogDoc,
    changed: Vec<String>,
) -> Result<Staged<Dialog>> {
    let dialog = &d.dialog_id.clone();
    let meta = docs::meta_of(&d.meta);
    if !changed.is_empty() {
        d.updated_at = now_ms();
        store
            .coll(coll::DIALOGS)
            .update_one(
                scoped(tenant, doc! {"dialogId": dialog.as_str()}),
                doc! {"$set": {"name": d.name.as_deref(), "meta": d.meta.clone(), "updatedAt": d.updated_at}},
            )
            .session(&mut *s)
            .await?;
    }
    let view = docs::dialog(&d.to_doc(), &members_in(store, s, tenant, dialog).await?)?;
    if changed.is_empty() {
        return Ok(Staged::new(view, Vec::new()));
    }
    let e = event(
        tenant,
        dialog.as_str(),
        Some(dialog),
        &Actor::api(),
        &DialogChanged {
            name: d.name.clone(),
            meta,
            changed,
        },
    );
    Ok(Staged::new(view, vec![e]))
}

/// Deletes a dialog with its memberships, messages, receipts and reactions in one transaction
/// and publishes `dialog.delete` naming the members it had (each gets a final update).
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog))]
pub async fn delete(ctx: &Ctx, tenant: &TenantId, dialog: &DialogId) -> Result<DeletedDialog> {
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let d = docs::DialogDoc::from_doc(&load_in(store, s, tenant, dialog).await?)?;
        let members = members_in(store, s, tenant, dialog).await?;
        let members = members
            .iter()
            .map(|m| Ok(docs::MemberDoc::from_doc(m)?.view(&d)))
            .collect::<Result<Vec<_>>>()?;
        let mine = scoped(tenant, doc! {"dialogId": dialog.as_str()});
        store
            .coll(coll::DIALOGS)
            .delete_one(mine.clone())
            .session(&mut *s)
            .await?;
        for c in [
            coll::MEMBERS,
            coll::MESSAGES,
            coll::MESSAGE_STATUSES,
            coll::REACTIONS,
        ] {
            store
                .coll(c)
                .delete_many(mine.clone())
                .session(&mut *s)
                .await?;
        }
        let deleted = DeletedDialog {
            dialog_id: dialog.clone(),
            deleted_at: now_ms(),
        };
        let e = event(
            tenant,
            dialog.as_str(),
            Some(dialog),
            &Actor::api(),
            &DialogDeleted {
                dialog_id: dialog.clone(),
                name: d.name.clone(),
                members,
                deleted_at: deleted.deleted_at,
            },
        );
        Ok(Staged::new(deleted, vec![e]))
    })
    .await
}

/// The member documents of the given dialogs, in join order.
async fn member_docs(store: &Store, tenant: &TenantId, dialogs: &[&str]) -> Result<Vec<Document>> {
    Ok(store
        .coll(coll::MEMBERS)
        .find(scoped(tenant, doc! {"dialogId": {"$in": dialogs}}))
        .sort(doc! {"dialogId": 1, "joinedAt": 1, "userId": 1})
        .await?
        .try_collect()
        .await?)
}

/// One dialog with its members (each with their unread count).
#[tracing::instrument(skip_all, fields(tenant = %tenant, dialog = %dialog))]
pub async fn get(store: &Store, tenant: &TenantId, dialog: &DialogId) -> Result<Dialog> {
    let d = load_doc(store, tenant, dialog).await?;
    let members = member_docs(store, tenant, &[dialog.as_str()]).await?;
    docs::dialog(&d, &members)
}

/// What `GET /api/dialogs` may filter and sort by. `dialogId`, `createdAt` and `updatedAt`
/// are indexed; the others scan the tenant's dialogs under [`filter::SCAN_MAX_TIME`].
pub const LIST: Resource = Resource {
    name: "dialogs",
    fields: &[
        Field::indexed("dialogId", "dialogId", Kind::Str),
        Field::scanned("name", "name", Kind::Str),
        Field::scanned("createdBy", "createdBy", Kind::Str),
        Field::indexed("createdAt", "createdAt", Kind::Int),
        Field::indexed("updatedAt", "updatedAt", Kind::Int),
        Field::scanned("lastSeq", "lastSeq", Kind::Int),
        Field::scanned("messageCount", "msgCount", Kind::Int),
        Field::scanned("membersCount", "membersCount", Kind::Int),
    ],
    meta: Some("meta"),
    sorts: &[("updatedAt", "updatedAt"), ("createdAt", "createdAt")],
};

/// The tenant's dialogs matching `q`, most recently active first unless `q` orders them.
#[tracing::instrument(skip_all, fields(tenant = %tenant))]
pub async fn list(
    store: &Store,
    tenant: &TenantId,
    q: &ListQuery,
    page: u64,
    limit: u64,
) -> Result<Page<Dialog>> {
    let order = (doc! {"updatedAt": -1}, ("dialogId", -1));
    let found = q
        .page(
            &store.coll(coll::DIALOGS),
            tenant_filter(tenant),
            order,
            (page, limit),
        )
        .await?;
    let ids: Vec<&str> = found
        .data
        .iter()
        .filter_map(|d| d.get_str("dialogId").ok())
        .collect();
    let members = member_docs(store, tenant, &ids).await?;
    found.try_map(|d| {
        let id = d.get_str("dialogId").unwrap_or_default();
        let mine: Vec<Document> = members
            .iter()
            .filter(|m| m.get_str("dialogId").ok() == Some(id))
            .cloned()
            .collect();
        docs::dialog(&d, &mine)
    })
}
