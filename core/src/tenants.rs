//! Tenants and their API keys. A key belongs to one tenant, carries scopes, is shown once at
//! creation and stored only as a SHA-256 hash (keys are 200+ bits of randomness, so a fast hash
//! is enough; nothing else can be derived from it).

use bson::{doc, Document};
use chat3_sdk::{
    ApiKeyInfo, CreateApiKey, CreatedApiKey, Page, Pagination, Scope, Tenant, TenantId,
    TenantStatus, UpdateTenant,
};
use futures_util::TryStreamExt;
use mongodb::ClientSession;
use sha2::{Digest, Sha256};

use crate::docs;
use crate::error::{is_duplicate_key, Error, Result};
use crate::filter::{Field, Kind, ListQuery, Resource};
use crate::ids::{now_ms, random_base36};
use crate::store::{coll, scoped, tenant_filter, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;

/// Prefix of every API key secret.
pub const KEY_PREFIX: &str = "c3k_";

/// SHA-256 of a key secret, hex.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Longest tenant or key name.
pub const MAX_NAME_CHARS: usize = 200;

fn check_name(field: &str, name: Option<&str>) -> Result<()> {
    if name.is_some_and(|n| n.chars().count() > MAX_NAME_CHARS) {
        return Err(Error::invalid(
            "validation_error",
            format!("{field} must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Creates a tenant. 409 `tenant_exists` if the id is taken.
#[tracing::instrument(skip_all, fields(tenant = %tenant_id))]
pub async fn create_tenant(
    store: &Store,
    tenant_id: &TenantId,
    name: Option<&str>,
) -> Result<Tenant> {
    check_name("name", name)?;
    let tenant = Tenant {
        tenant_id: tenant_id.clone(),
        name: name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(tenant_id.as_str())
            .to_owned(),
        created_at: now_ms(),
        meta: Default::default(),
        status: TenantStatus::Active,
        deletion: None,
    };
    let doc = doc! {
        "tenantId": tenant.tenant_id.as_str(),
        "name": &tenant.name,
        "createdAt": tenant.created_at,
    };
    let res = write::commit(store, Reply::Created, async |s| {
        store
            .coll(coll::TENANTS)
            .insert_one(doc.clone())
            .session(&mut *s)
            .await?;
        Ok(Staged::new(tenant.clone(), Vec::new()))
    })
    .await;
    match res {
        Ok(staged) => Ok(staged.value),
        Err(Error::Storage(e)) if is_duplicate_key(&e) => Err(Error::conflict(
            "tenant_exists",
            format!("tenant '{tenant_id}' already exists"),
        )),
        Err(e) => Err(e),
    }
}

pub(crate) fn tenant_from_doc(d: &Document) -> Result<Tenant> {
    let deletion = crate::tenant_deletion::progress_of(d);
    Ok(Tenant {
        tenant_id: docs::parse(d, "tenantId")?,
        name: docs::s(d, "name")?,
        created_at: d.get_i64("createdAt").unwrap_or(0),
        meta: d
            .get_document("meta")
            .map(docs::meta_of)
            .unwrap_or_default(),
        status: if deletion.is_some() {
            TenantStatus::Deleting
        } else {
            TenantStatus::Active
        },
        deletion,
    })
}

/// 409 `tenant_deleting` when `t` is being deleted: nothing new may be written for it.
pub fn require_active(t: &Tenant) -> Result<()> {
    match t.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::Deleting => Err(Error::conflict(
            "tenant_deleting",
            format!("tenant '{}' is being deleted", t.tenant_id),
        )),
    }
}

/// `PATCH /api/tenants/{id}`: changes the name and merges `meta` (a `null` value removes a
/// key), in one transaction with a `tenant.changed` event naming the changed fields (none when
/// nothing changed). 404 `tenant_not_found`, 409 `tenant_deleting`.
#[tracing::instrument(skip_all, fields(tenant = %tenant_id))]
pub async fn update_tenant(ctx: &Ctx, tenant_id: &TenantId, req: &UpdateTenant) -> Result<Tenant> {
    check_name("name", req.name.as_deref())?;
    if let Some(meta) = &req.meta {
        crate::plain::check_meta("meta", meta)?;
    }
    let name = match req.name.as_deref().map(str::trim) {
        Some("") => return Err(Error::invalid("validation_error", "name must not be empty")),
        other => other,
    };
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let found = load_in(store, s, tenant_id).await?;
        let mut t = tenant_from_doc(&found)?;
        require_active(&t)?;
        let mut meta = found.get_document("meta").cloned().unwrap_or_default();
        let mut changed = Vec::new();
        if let Some(n) = name.filter(|n| *n != t.name) {
            t.name = n.to_owned();
            changed.push("name".to_owned());
        }
        if let Some(patch) = &req.meta {
            changed.extend(docs::merge_meta(&mut meta, patch)?);
        }
        staged_change(store, s, t, meta, changed).await
    })
    .await
}

/// Inside a transaction: the tenant's stored document, or 404 `tenant_not_found`.
pub(crate) async fn load_in(
    store: &Store,
    s: &mut ClientSession,
    tenant: &TenantId,
) -> Result<Document> {
    store
        .coll(coll::TENANTS)
        .find_one(tenant_filter(tenant))
        .session(&mut *s)
        .await?
        .ok_or_else(|| tenant_not_found(tenant))
}

/// Inside a transaction: stores `t`'s name and `meta` and stages `tenant.changed` (nothing
/// when `changed` is empty). Shared by `PATCH /api/tenants/{id}` and the meta routes.
pub(crate) async fn staged_change(
    store: &Store,
    s: &mut ClientSession,
    mut t: Tenant,
    meta: Document,
    changed: Vec<String>,
) -> Result<Staged<Tenant>> {
    t.meta = docs::meta_of(&meta);
    if changed.is_empty() {
        return Ok(Staged::new(t, Vec::new()));
    }
    store
        .coll(coll::TENANTS)
        .update_one(
            tenant_filter(&t.tenant_id),
            doc! {"$set": {"name": &t.name, "meta": meta}},
        )
        .session(&mut *s)
        .await?;
    let e = crate::events::event(
        &t.tenant_id,
        t.tenant_id.as_str(),
        None,
        &crate::events::Actor::api(),
        &chat3_sdk::events::TenantChanged {
            tenant: t.clone(),
            changed,
        },
    );
    Ok(Staged::new(t, vec![e]))
}

/// 404 `tenant_not_found`.
pub(crate) fn tenant_not_found(tenant: &TenantId) -> Error {
    Error::not_found(
        "tenant_not_found",
        format!("tenant '{tenant}' does not exist"),
    )
}

/// One tenant, or 404 `tenant_not_found`.
pub async fn get_tenant(store: &Store, tenant_id: &TenantId) -> Result<Tenant> {
    match store
        .coll(coll::TENANTS)
        .find_one(tenant_filter(tenant_id))
        .await?
    {
        Some(d) => tenant_from_doc(&d),
        None => Err(tenant_not_found(tenant_id)),
    }
}

/// What `GET /api/tenants` may filter and sort by: `tenantId` is indexed; `name` and
/// `createdAt` scan the tenants under [`filter::SCAN_MAX_TIME`].
pub const LIST: Resource = Resource {
    name: "tenants",
    fields: &[
        Field::indexed("tenantId", "tenantId", Kind::Str),
        Field::scanned("name", "name", Kind::Str),
        Field::scanned("createdAt", "createdAt", Kind::Int),
    ],
    meta: None,
    sorts: &[("tenantId", "tenantId")],
};

/// Tenants matching `q`, by id, one page.
pub async fn list_tenants(
    store: &Store,
    q: &ListQuery,
    page: u64,
    limit: u64,
) -> Result<Page<Tenant>> {
    let order = (doc! {"tenantId": 1}, ("tenantId", 1));
    q.page(&store.coll(coll::TENANTS), doc! {}, order, (page, limit))
        .await?
        .try_map(|d| tenant_from_doc(&d))
}

/// A stored key, as authentication sees it.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// Key id.
    pub key_id: String,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// Revoked keys authenticate nobody.
    pub revoked: bool,
}

fn key_info_from_doc(d: &Document) -> Result<ApiKeyInfo> {
    let scopes = d
        .get_array("scopes")
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    Ok(ApiKeyInfo {
        key_id: docs::s(d, "keyId")?,
        tenant_id: docs::parse(d, "tenantId")?,
        name: docs::s(d, "name")?,
        scopes,
        prefix: docs::s(d, "prefix")?,
        created_at: d.get_i64("createdAt").unwrap_or(0),
        revoked_at: d.get_i64("revokedAt").ok(),
    })
}

/// Creates a key for an existing tenant; the secret is in the result and nowhere else.
#[tracing::instrument(skip_all, fields(tenant = %tenant))]
pub async fn create_key(
    store: &Store,
    tenant: &TenantId,
    req: &CreateApiKey,
) -> Result<CreatedApiKey> {
    check_name("name", req.name.as_deref())?;
    require_active(&get_tenant(store, tenant).await?)?;
    let mut scopes = req.scopes.clone().unwrap_or_else(|| Scope::ALL.to_vec());
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(Error::invalid(
            "validation_error",
            "scopes must not be empty",
        ));
    }
    let secret = format!("{KEY_PREFIX}{}", random_base36(40));
    let info = ApiKeyInfo {
        key_id: format!("key_{}", random_base36(12)),
        tenant_id: tenant.clone(),
        name: req.name.clone().unwrap_or_else(|| "default".to_owned()),
        scopes,
        prefix: secret[..KEY_PREFIX.len() + 6].to_owned(),
        created_at: now_ms(),
        revoked_at: None,
    };
    let doc = doc! {
        "keyId": &info.key_id,
        "tenantId": tenant.as_str(),
        "name": &info.name,
        "scopes": info.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "prefix": &info.prefix,
        "keyHash": hash_key(&secret),
        "createdAt": info.created_at,
    };
    // The secret is shown once: an idempotent retry learns which key was made, not its secret.
    let reply = Reply::Fixed {
        status: 409,
        body: serde_json::json!({
            "error": "Conflict",
            "message": format!(
                "this request already created API key '{}'; its secret is shown only once: \
                 revoke that key if the secret was lost, and create another",
                info.key_id
            ),
            "code": "api_key_secret_not_replayed",
        }),
    };
    let created = CreatedApiKey { info, key: secret };
    write::commit(store, reply, async |s| {
        store
            .coll(coll::API_KEYS)
            .insert_one(doc.clone())
            .session(&mut *s)
            .await?;
        Ok(Staged::new(created.clone(), Vec::new()))
    })
    .await
    .map(|staged| staged.value)
}

/// One page of the tenant's keys, newest first; 404 `tenant_not_found` for an unknown tenant.
pub async fn list_keys(
    store: &Store,
    tenant: &TenantId,
    page: u64,
    limit: u64,
) -> Result<Page<ApiKeyInfo>> {
    get_tenant(store, tenant).await?;
    let c = store.coll(coll::API_KEYS);
    let total = c.count_documents(tenant_filter(tenant)).await?;
    let docs: Vec<Document> = c
        .find(tenant_filter(tenant))
        .sort(doc! {"createdAt": -1, "keyId": -1})
        .skip((page - 1) * limit)
        .limit(limit as i64)
        .await?
        .try_collect()
        .await?;
    Ok(Page {
        data: docs.iter().map(key_info_from_doc).collect::<Result<_>>()?,
        pagination: Pagination::new(page, limit, total),
    })
}

/// Revokes a key (idempotent). 404 `api_key_not_found` when it is not the tenant's.
#[tracing::instrument(skip_all, fields(tenant = %tenant, key_id))]
pub async fn revoke_key(store: &Store, tenant: &TenantId, key_id: &str) -> Result<ApiKeyInfo> {
    let c = store.coll(coll::API_KEYS);
    let filter = scoped(tenant, doc! {"keyId": key_id});
    c.update_one(
        scoped(
            tenant,
            doc! {"keyId": key_id, "revokedAt": {"$exists": false}},
        ),
        doc! {"$set": {"revokedAt": now_ms()}},
    )
    .await?;
    match c.find_one(filter).await? {
        Some(d) => key_info_from_doc(&d),
        None => Err(Error::not_found(
            "api_key_not_found",
            format!("API key '{key_id}' does not exist"),
        )),
    }
}

/// Looks a secret up by its hash. `None` when unknown.
pub async fn find_key(store: &Store, secret: &str) -> Result<Option<KeyRecord>> {
    let Some(d) = store
        .coll(coll::API_KEYS)
        .find_one(doc! {"keyHash": hash_key(secret)})
        .await?
    else {
        return Ok(None);
    };
    let info = key_info_from_doc(&d)?;
    Ok(Some(KeyRecord {
        key_id: info.key_id,
        tenant_id: info.tenant_id,
        scopes: info.scopes,
        revoked: info.revoked_at.is_some(),
    }))
}
