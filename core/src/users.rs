//! Users of a tenant: create (`user.add`), read, list, change (`user.changed`) and delete
//! (`user.remove`). A user is also created, with the member's type, when first added to a
//! dialog ([`ensure_in`], inside the dialog's own transaction).
//!
//! Deleting a user removes them from every dialog, each removal in its own transaction with
//! its own `dialog.member.remove` (exactly as `POST .../members/{u}/remove`, so the other
//! members' unread and member lists stay exact), then deletes the user and their stored updates
//! together with `user.remove`. A delete cut short (a crash, the request deadline) leaves the
//! user existing with fewer dialogs; calling it again finishes it. Deleting a user that does
//! not exist answers `deleted: false` and emits nothing.

use std::collections::HashSet;

use bson::{doc, Document};
use chat3_sdk::events::{UserAdded, UserChanged, UserRemoved};
use chat3_sdk::{
    CreateUser, DeletedUser, DialogId, EventEnvelope, Page, TenantId, UpdateUser, User, UserId,
    UserType,
};
use futures_util::TryStreamExt;
use mongodb::ClientSession;

use crate::docs::{self, UserDoc};
use crate::error::{Error, Result};
use crate::events::{event, Actor};
use crate::filter::{Field, Kind, ListQuery, Resource};
use crate::ids::now_ms;
use crate::store::{coll, scoped, tenant_filter, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;

/// Dialogs removed from per round of a user's deletion (each in its own transaction).
const DELETE_ROUND: i64 = 100;

/// 404 `user_not_found`.
pub(crate) fn user_not_found(user: &UserId) -> Error {
    Error::not_found("user_not_found", format!("user '{user}' does not exist"))
}

fn by_id(tenant: &TenantId, user: &UserId) -> Document {
    scoped(tenant, doc! {"userId": user.as_str()})
}

/// The `user.add` event of a user just created.
fn added(tenant: &TenantId, user: &UserDoc, actor: &Actor) -> EventEnvelope {
    event(
        tenant,
        user.user_id.as_str(),
        None,
        actor,
        &UserAdded { user: user.view() },
    )
}

/// Creates a user and publishes `user.add`; 409 `user_exists` when the id is taken.
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %req.user_id))]
pub async fn create(ctx: &Ctx, tenant: &TenantId, req: &CreateUser) -> Result<User> {
    crate::dialogs::check_name(req.name.as_deref())?;
    let mut user = UserDoc::created(
        tenant,
        &req.user_id,
        &req.user_type.clone().unwrap_or_default(),
        now_ms(),
    );
    user.name = req.name.clone();
    user.meta = docs::meta_doc(req.meta.as_ref())?;
    let store = &ctx.store;
    write::transact(ctx, Reply::Created, async |s| {
        let exists = store
            .coll(coll::USERS)
            .find_one(by_id(tenant, &user.user_id))
            .session(&mut *s)
            .await?;
        if exists.is_some() {
            return Err(Error::conflict(
                "user_exists",
                format!("user '{}' exists already", user.user_id),
            ));
        }
        store
            .coll(coll::USERS)
            .insert_one(user.to_doc())
            .session(&mut *s)
            .await?;
        Ok(Staged::new(
            user.view(),
            vec![added(tenant, &user, &Actor::api())],
        ))
    })
    .await
}

/// Inside a dialog write's transaction: creates the users among `members` that do not exist
/// yet (with the member's type) and returns their `user.add` events.
pub(crate) async fn ensure_in(
    store: &Store,
    s: &mut ClientSession,
    tenant: &TenantId,
    members: &[(&UserId, &UserType)],
    now: i64,
) -> Result<Vec<EventEnvelope>> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = members.iter().map(|(u, _)| u.as_str()).collect();
    let existing: HashSet<String> = store
        .coll(coll::USERS)
        .find(scoped(tenant, doc! {"userId": {"$in": &ids}}))
        .projection(doc! {"userId": 1})
        .session(&mut *s)
        .await?
        .stream(&mut *s)
        .try_collect::<Vec<Document>>()
        .await?
        .iter()
        .filter_map(|u| u.get_str("userId").ok().map(str::to_owned))
        .collect();
    let created: Vec<UserDoc> = members
        .iter()
        .filter(|(u, _)| !existing.contains(u.as_str()))
        .map(|(u, t)| UserDoc::created(tenant, u, t, now))
        .collect();
    if created.is_empty() {
        return Ok(Vec::new());
    }
    store
        .coll(coll::USERS)
        .insert_many(created.iter().map(UserDoc::to_doc))
        .session(&mut *s)
        .await?;
    Ok(created
        .iter()
        .map(|u| added(tenant, u, &Actor::api()))
        .collect())
}

/// Loads a user inside a transaction; 404 `user_not_found`.
pub(crate) async fn load_in(
    store: &Store,
    s: &mut ClientSession,
    tenant: &TenantId,
    user: &UserId,
) -> Result<UserDoc> {
    let found = store
        .coll(coll::USERS)
        .find_one(by_id(tenant, user))
        .session(s)
        .await?
        .ok_or_else(|| user_not_found(user))?;
    UserDoc::from_doc(&found)
}

/// One user; 404 `user_not_found`.
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
pub async fn get(store: &Store, tenant: &TenantId, user: &UserId) -> Result<User> {
    let found = store
        .coll(coll::USERS)
        .find_one(by_id(tenant, user))
        .await?
        .ok_or_else(|| user_not_found(user))?;
    Ok(UserDoc::from_doc(&found)?.view())
}

/// 404 `user_not_found` unless the user exists: the user's views (inbox, stats, update feed)
/// call it when they come back empty, so that an unknown or deleted user is not read as one
/// with nothing in it, at no cost to a user who has dialogs or updates (every member and every
/// recipient of an update exists as a user).
pub async fn must_exist(store: &Store, tenant: &TenantId, user: &UserId) -> Result<()> {
    store
        .coll(coll::USERS)
        .find_one(by_id(tenant, user))
        .projection(doc! {"_id": 1})
        .await?
        .map(|_| ())
        .ok_or_else(|| user_not_found(user))
}

/// What `GET /api/users` may filter and sort by. `userId` and `createdAt` are indexed
/// (`(tenantId, userId)`, `(tenantId, createdAt)`); the others scan the tenant's users under
/// [`filter::SCAN_MAX_TIME`].
pub const LIST: Resource = Resource {
    name: "users",
    fields: &[
        Field::indexed("userId", "userId", Kind::Str),
        Field::scanned("type", "type", Kind::Str),
        Field::scanned("name", "name", Kind::Str),
        Field::indexed("createdAt", "createdAt", Kind::Int),
        Field::scanned("updatedAt", "updatedAt", Kind::Int),
    ],
    meta: Some("meta"),
    sorts: &[("userId", "userId"), ("createdAt", "createdAt")],
};

/// The tenant's users matching `q`, in its order (by id by default).
#[tracing::instrument(skip_all, fields(tenant = %tenant))]
pub async fn list(
    store: &Store,
    tenant: &TenantId,
    q: &ListQuery,
    page: u64,
    limit: u64,
) -> Result<Page<User>> {
    let order = (doc! {"userId": 1}, ("userId", 1));
    q.page(
        &store.coll(coll::USERS),
        tenant_filter(tenant),
        order,
        (page, limit),
    )
    .await?
    .try_map(|u| Ok(UserDoc::from_doc(&u)?.view()))
}

/// Changes the fields given (type, name — `null` removes it —, meta keys merged, `null`
/// removes a key) and publishes `user.changed` with what changed; a change that changes
/// nothing answers the user and emits nothing. 404 `user_not_found`.
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
pub async fn update(ctx: &Ctx, tenant: &TenantId, user: &UserId, req: &UpdateUser) -> Result<User> {
    crate::dialogs::check_name(req.name.clone().flatten().as_deref())?;
    if let Some(m) = &req.meta {
        crate::plain::check_meta("meta", m)?;
    }
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let mut u = load_in(store, s, tenant, user).await?;
        let mut changed = Vec::new();
        if let Some(t) = &req.user_type {
            if *t != u.user_type {
                u.user_type = t.clone();
                changed.push("type".to_owned());
            }
        }
        if let Some(name) = &req.name {
            if *name != u.name {
                u.name = name.clone();
                changed.push("name".to_owned());
            }
        }
        if let Some(patch) = &req.meta {
            changed.extend(docs::merge_meta(&mut u.meta, patch)?);
        }
        staged_change(store, s, tenant, u, changed).await
    })
    .await
}

/// Inside a transaction: stores the changed user and stages `user.changed` (nothing when
/// `changed` is empty). Shared by `PUT /api/users/{u}` and the meta routes.
pub(crate) async fn staged_change(
    store: &Store,
    s: &mut ClientSession,
    tenant: &TenantId,
    mut u: UserDoc,
    changed: Vec<String>,
) -> Result<Staged<User>> {
    if changed.is_empty() {
        return Ok(Staged::new(u.view(), Vec::new()));
    }
    u.updated_at = now_ms();
    store
        .coll(coll::USERS)
        .update_one(
            by_id(tenant, &u.user_id),
            doc! {"$set": {"type": u.user_type.as_str(), "name": u.name.as_deref(), "meta": u.meta.clone(), "updatedAt": u.updated_at}},
        )
        .session(&mut *s)
        .await?;
    let view = u.view();
    let e = event(
        tenant,
        u.user_id.as_str(),
        None,
        &Actor::api(),
        &UserChanged {
            user: view.clone(),
            changed,
        },
    );
    Ok(Staged::new(view, vec![e]))
}

/// Deletes a user: removes them from every dialog (one `dialog.member.remove` each), then the
/// user and their stored updates with `user.remove`. Idempotent (see the module text).
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user))]
pub async fn delete(ctx: &Ctx, tenant: &TenantId, user: &UserId) -> Result<DeletedUser> {
    let store = &ctx.store;
    let mut removed_from: Vec<DialogId> = Vec::new();
    loop {
        let dialogs: Vec<DialogId> = store
            .coll(coll::MEMBERS)
            .find(by_id(tenant, user))
            .projection(doc! {"dialogId": 1})
            .limit(DELETE_ROUND)
            .await?
            .try_collect::<Vec<Document>>()
            .await?
            .iter()
            .filter_map(|m| m.get_str("dialogId").ok()?.parse().ok())
            .collect();
        if dialogs.is_empty() {
            break;
        }
        for d in dialogs {
            match crate::members::remove_with(ctx, tenant, &d, user, Reply::Step, true).await {
                Ok(_) => removed_from.push(d),
                // Removed (or the dialog deleted) concurrently: gone either way.
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let removed_from = &removed_from;
    write::transact(ctx, Reply::Ok, async |s| {
        let found = store
            .coll(coll::USERS)
            .find_one(by_id(tenant, user))
            .session(&mut *s)
            .await?;
        let Some(found) = found else {
            return Ok(Staged::new(
                DeletedUser {
                    user_id: user.clone(),
                    deleted: false,
                    removed_from: removed_from.clone(),
                },
                Vec::new(),
            ));
        };
        let was = UserDoc::from_doc(&found)?;
        let rejoined = store
            .coll(coll::MEMBERS)
            .find_one(by_id(tenant, user))
            .session(&mut *s)
            .await?;
        if rejoined.is_some() {
            // Added to a dialog while being removed from the others: not deleted; a retry
            // removes that membership too.
            return Err(Error::conflict(
                "user_in_use",
                format!("user '{user}' was added to a dialog while being deleted; retry"),
            ));
        }
        store
            .coll(coll::USERS)
            .delete_one(by_id(tenant, user))
            .session(&mut *s)
            .await?;
        store
            .coll(coll::UPDATES)
            .delete_many(by_id(tenant, user))
            .session(&mut *s)
            .await?;
        let e = event(
            tenant,
            user.as_str(),
            None,
            &Actor::api(),
            &UserRemoved {
                user: was.view(),
                removed_at: now_ms(),
            },
        );
        Ok(Staged::new(
            DeletedUser {
                user_id: user.clone(),
                deleted: true,
                removed_from: removed_from.clone(),
            },
            vec![e],
        ))
    })
    .await
}
