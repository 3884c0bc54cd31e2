//! `/api/meta/{entityType}/{entityId}[/{key}]`: the meta of any entity, read and changed in
//! place. Meta stays embedded in its entity (DESIGN §4): these routes change the same field the
//! entity's own writes do, in one transaction with the entity's change event, which reaches the
//! recipients of every other change of that entity (`tenant.changed`: nobody; `user.changed`: the
//! user; `dialog.changed`, `dialog.member.changed`, `message.changed`: the dialog's members).

use bson::{doc, Document};
use chat3_sdk::events::{MemberChanged, MessageChanged};
use chat3_sdk::{DialogId, EntityMeta, MessageId, TenantId, UserId};
use serde_json::Value;

use crate::docs::{self, DialogDoc, MemberDoc, MetaChange};
use crate::error::{Error, Result};
use crate::events::{event, Actor};
use crate::store::{coll, scoped, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;

/// An entity that carries meta.
#[derive(Debug, Clone, PartialEq)]
pub enum Entity {
    /// The caller's tenant.
    Tenant,
    /// A user.
    User(UserId),
    /// A dialog.
    Dialog(DialogId),
    /// A membership: `{dialogId}:{userId}`.
    Member(DialogId, UserId),
    /// A message.
    Message(MessageId),
}

fn invalid(message: String) -> Error {
    Error::invalid("invalid_path_parameter", message)
}

impl Entity {
    /// The entity named by a path. `tenant` must name the caller's own tenant (404
    /// `tenant_not_found` otherwise: another tenant's is never reached). An id that cannot name
    /// an entity of the type (`message/0`, a membership without `:`) names none: 404 with the
    /// type's code, as for an id of the right form that does not exist.
    pub fn parse(tenant: &TenantId, entity_type: &str, id: &str) -> Result<Self> {
        let none = |code: &'static str, what: &str| {
            Error::not_found(code, format!("{what} '{id}' does not exist"))
        };
        Ok(match entity_type {
            "tenant" => {
                if id != tenant.as_str() {
                    return Err(none("tenant_not_found", "tenant"));
                }
                Entity::Tenant
            }
            "user" => Entity::User(id.parse().map_err(|_| none("user_not_found", "user"))?),
            "dialog" => Entity::Dialog(id.parse().map_err(|_| none("dialog_not_found", "dialog"))?),
            "message" => Entity::Message(
                id.parse()
                    .map_err(|_| none("message_not_found", "message"))?,
            ),
            "dialogMember" => {
                let parsed = id
                    .split_once(':')
                    .and_then(|(d, u)| Some((d.parse().ok()?, u.parse().ok()?)));
                let (d, u) = parsed.ok_or_else(|| none("member_not_found", "membership"))?;
                Entity::Member(d, u)
            }
            other => {
                return Err(invalid(format!(
                    "entityType '{other}' is not one of tenant, user, dialog, dialogMember, message"
                )))
            }
        })
    }

    /// The wire name of the type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Entity::Tenant => "tenant",
            Entity::User(_) => "user",
            Entity::Dialog(_) => "dialog",
            Entity::Member(..) => "dialogMember",
            Entity::Message(_) => "message",
        }
    }

    fn id(&self, tenant: &TenantId) -> String {
        match self {
            Entity::Tenant => tenant.to_string(),
            Entity::User(u) => u.to_string(),
            Entity::Dialog(d) => d.to_string(),
            Entity::Member(d, u) => format!("{d}:{u}"),
            Entity::Message(m) => m.to_string(),
        }
    }

    fn view(&self, tenant: &TenantId, meta: chat3_sdk::Meta) -> EntityMeta {
        EntityMeta {
            entity_type: self.type_name().to_owned(),
            entity_id: self.id(tenant),
            meta,
        }
    }
}

/// A meta key as the routes take it: `^[A-Za-z0-9_]{1,100}$` (400 otherwise).
pub fn check_key(key: &str) -> Result<()> {
    let ok = (1..=100).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "key: a meta key is 1-100 characters A-Z, a-z, 0-9 or '_'".to_owned(),
        ))
    }
}

fn member_filter(tenant: &TenantId, d: &DialogId, u: &UserId) -> Document {
    scoped(tenant, doc! {"dialogId": d.as_str(), "userId": u.as_str()})
}

/// The entity's meta; 404 when the entity does not exist.
#[tracing::instrument(skip_all, fields(tenant = %tenant, entity = e.type_name()))]
pub async fn get(store: &Store, tenant: &TenantId, e: &Entity) -> Result<EntityMeta> {
    let meta = match e {
        Entity::Tenant => crate::tenants::get_tenant(store, tenant).await?.meta,
        Entity::User(u) => crate::users::get(store, tenant, u).await?.meta,
        Entity::Dialog(d) => {
            let found = crate::dialogs::load_doc(store, tenant, d).await?;
            docs::meta_of(&DialogDoc::from_doc(&found)?.meta)
        }
        Entity::Member(d, u) => {
            let found = store
                .coll(coll::MEMBERS)
                .find_one(member_filter(tenant, d, u))
                .await?;
            match found {
                Some(m) => docs::meta_of(&MemberDoc::from_doc(&m)?.meta),
                None => {
                    crate::dialogs::load_doc(store, tenant, d).await?;
                    return Err(crate::members::member_not_found(u, d));
                }
            }
        }
        Entity::Message(m) => crate::messages::change::get(store, tenant, m).await?.meta,
    };
    Ok(e.view(tenant, meta))
}

/// One key of the entity's meta; 404 `meta_key_not_found` when it has none.
pub async fn get_key(
    store: &Store,
    tenant: &TenantId,
    e: &Entity,
    key: &str,
) -> Result<(EntityMeta, Value)> {
    check_key(key)?;
    let all = get(store, tenant, e).await?;
    let value = all.meta.get(key).cloned().ok_or_else(|| {
        Error::not_found(
            "meta_key_not_found",
            format!(
                "{} '{}' has no meta key '{key}'",
                all.entity_type, all.entity_id
            ),
        )
    })?;
    Ok((all, value))
}

/// Changes the entity's meta and stages its change event (none when nothing changed), in one
/// transaction; returns the meta after the change.
#[tracing::instrument(skip_all, fields(tenant = %tenant, entity = e.type_name()))]
pub async fn change(
    ctx: &Ctx,
    tenant: &TenantId,
    e: &Entity,
    change: &MetaChange,
) -> Result<EntityMeta> {
    if let MetaChange::Merge(patch) = change {
        crate::plain::check_meta("meta", patch)?;
    }
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let (meta, events) = match e {
            Entity::Tenant => {
                let found = crate::tenants::load_in(store, s, tenant).await?;
                let mut meta = found.get_document("meta").cloned().unwrap_or_default();
                let changed = change.apply(&mut meta)?;
                let t = crate::tenants::tenant_from_doc(&found)?;
                let staged = crate::tenants::staged_change(store, s, t, meta, changed).await?;
                (staged.value.meta, staged.events)
            }
            Entity::User(u) => {
                let mut user = crate::users::load_in(store, s, tenant, u).await?;
                let changed = change.apply(&mut user.meta)?;
                let staged = crate::users::staged_change(store, s, tenant, user, changed).await?;
                (staged.value.meta, staged.events)
            }
            Entity::Dialog(d) => {
                let mut dialog =
                    DialogDoc::from_doc(&crate::dialogs::load_in(store, s, tenant, d).await?)?;
                let changed = change.apply(&mut dialog.meta)?;
                let staged =
                    crate::dialogs::staged_change(store, s, tenant, dialog, changed).await?;
                (staged.value.meta, staged.events)
            }
            Entity::Member(d, u) => {
                let dialog =
                    DialogDoc::from_doc(&crate::dialogs::load_in(store, s, tenant, d).await?)?;
                let found = store
                    .coll(coll::MEMBERS)
                    .find_one(member_filter(tenant, d, u))
                    .session(&mut *s)
                    .await?
                    .ok_or_else(|| crate::members::member_not_found(u, d))?;
                let mut member = MemberDoc::from_doc(&found)?;
                let changed = change.apply(&mut member.meta)?;
                let mut events = Vec::new();
                if !changed.is_empty() {
                    store
                        .coll(coll::MEMBERS)
                        .update_one(
                            member_filter(tenant, d, u),
                            doc! {"$set": {"meta": member.meta.clone()}},
                        )
                        .session(&mut *s)
                        .await?;
                    events.push(event(
                        tenant,
                        &format!("{d}:{u}"),
                        Some(d),
                        &Actor::api(),
                        &MemberChanged {
                            member: member.view(&dialog),
                            changed,
                        },
                    ));
                }
                (docs::meta_of(&member.meta), events)
            }
            Entity::Message(id) => {
                let mut m = crate::messages::change::load_in(store, s, tenant, id)
                    .await?
                    .message;
                if m.deleted_at.is_some() {
                    return Err(crate::messages::change::deleted(id));
                }
                let mut meta: Document = m
                    .meta
                    .iter()
                    .map(|(k, v)| (k.clone(), crate::plain::to_bson(v)))
                    .collect();
                let changed = change.apply(&mut meta)?;
                let mut events = Vec::new();
                if !changed.is_empty() {
                    store
                        .coll(coll::MESSAGES)
                        .update_one(
                            scoped(tenant, doc! {"messageId": id.as_str()}),
                            doc! {"$set": {"meta": meta.clone()}},
                        )
                        .session(&mut *s)
                        .await?;
                    m.meta = docs::meta_of(&meta);
                    crate::messages::change::refresh_last(store, s, &m).await?;
                    events.push(event(
                        tenant,
                        id.as_str(),
                        Some(&m.dialog_id),
                        &Actor::api(),
                        &MessageChanged {
                            message: m.clone(),
                            changed,
                        },
                    ));
                }
                (m.meta, events)
            }
        };
        Ok(Staged::new(e.view(tenant, meta), events))
    })
    .await
}
