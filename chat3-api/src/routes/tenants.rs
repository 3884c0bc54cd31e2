//! Tenants and API keys (operator key only).

use actix_web::{web, HttpResponse};
use chat3_core::tenants;
use chat3_sdk::{CreateApiKey, CreateTenant, Data, KeyId, TenantId};

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
