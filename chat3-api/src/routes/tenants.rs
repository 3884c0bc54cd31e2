//! Tenants and API keys (operator key only).

use actix_web::{web, HttpResponse};
use chat3_core::{tenant_deletion, tenants};
use chat3_sdk::{CreateApiKey, CreateTenant, Data, KeyId, TenantId, UpdateTenant};

use super::{ListParams, PageQuery};
use crate::body::Body;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/tenants`.
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: Body<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let t = tenants::create_tenant(&state.ctx.store, &body.tenant_id, body.name.as_deref()).await?;
    Ok(HttpResponse::Created().json(Data::new(t)))
}

/// `GET /api/tenants`.
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let (page, limit, list) = q.resolve(&tenants::LIST)?;
    let found = tenants::list_tenants(&state.ctx.store, &list, page, limit).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// `GET /api/tenants/{tenantId}`: the tenant, with `status` and, while it is being deleted,
/// the deletion's progress.
pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let t = tenants::get_tenant(&state.ctx.store, &path).await?;
    Ok(HttpResponse::Ok().json(Data::new(t)))
}

/// `PATCH /api/tenants/{tenantId}`.
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<TenantId>,
    body: Body<UpdateTenant>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let t = tenants::update_tenant(&state.ctx, &path, &body).await?;
    Ok(HttpResponse::Ok().json(Data::new(t)))
}

/// `DELETE /api/tenants/{tenantId}`: revokes every key of the tenant (at once on this
/// instance, within the key-cache TTL on others) and hands the removal of its data to the
/// background job; 202 with the tenant as `deleting`. Repeating it while the deletion runs
/// answers the same with the progress so far.
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let t = tenant_deletion::begin(&state.ctx.store, &path).await?;
    state.keys.forget_tenant(&t.tenant_id);
    state.tenants.forget(&t.tenant_id);
    state.deletions.request(t.tenant_id.clone());
    Ok(HttpResponse::Accepted().json(Data::new(t)))
}

/// `POST /api/tenants/{tenantId}/api-keys`.
pub async fn create_key(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<TenantId>,
    body: Body<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let key = tenants::create_key(&state.ctx.store, &path, &body).await?;
    Ok(HttpResponse::Created().json(Data::new(key)))
}

/// `GET /api/tenants/{tenantId}/api-keys?page=&limit=`.
pub async fn list_keys(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<TenantId>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let (page, limit) = q.resolve()?;
    Ok(HttpResponse::Ok().json(tenants::list_keys(&state.ctx.store, &path, page, limit).await?))
}

/// `DELETE /api/tenants/{tenantId}/api-keys/{keyId}`.
pub async fn revoke_key(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(TenantId, KeyId)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let (tenant, key_id) = path.into_inner();
    let info = tenants::revoke_key(&state.ctx.store, &tenant, key_id.as_str()).await?;
    state.keys.forget_key(&info.key_id);
    Ok(HttpResponse::Ok().json(Data::new(info)))
}
