//! `/api/meta/{entityType}/{entityId}[/{key}]`.

use actix_web::{web, HttpResponse};
use chat3_core::docs::MetaChange;
use chat3_core::meta::{self, Entity};
use chat3_sdk::{Data, Meta, MetaEntry, MetaValueInput, Scope};

use crate::body::Body;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /api/meta/{entityType}/{entityId}`.
pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let e = Entity::parse(tenant, &path.0, &path.1)?;
    let found = meta::get(&state.ctx.store, tenant, &e).await?;
    Ok(HttpResponse::Ok().json(Data::new(found)))
}

/// `PUT /api/meta/{entityType}/{entityId}`: merge keys (`null` removes one).
pub async fn put(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Body<Meta>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let e = Entity::parse(tenant, &path.0, &path.1)?;
    let change = MetaChange::Merge(body.0);
    let after = meta::change(&state.ctx, tenant, &e, &change).await?;
    Ok(HttpResponse::Ok().json(Data::new(after)))
}

/// `DELETE /api/meta/{entityType}/{entityId}`: every key.
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let e = Entity::parse(tenant, &path.0, &path.1)?;
    let after = meta::change(&state.ctx, tenant, &e, &MetaChange::Clear).await?;
    Ok(HttpResponse::Ok().json(Data::new(after)))
}

/// `GET /api/meta/{entityType}/{entityId}/{key}`.
pub async fn get_key(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (entity_type, id, key) = path.into_inner();
    let e = Entity::parse(tenant, &entity_type, &id)?;
    let (all, value) = meta::get_key(&state.ctx.store, tenant, &e, &key).await?;
    Ok(HttpResponse::Ok().json(Data::new(MetaEntry {
        entity_type: all.entity_type,
        entity_id: all.entity_id,
        key,
        value,
    })))
}

/// `PUT /api/meta/{entityType}/{entityId}/{key}` `{value}` (`null` removes the key).
pub async fn put_key(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    body: Body<MetaValueInput>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let (entity_type, id, key) = path.into_inner();
    let e = Entity::parse(tenant, &entity_type, &id)?;
    meta::check_key(&key)?;
    let change = MetaChange::Merge(Meta::from([(key, body.0.value)]));
    let after = meta::change(&state.ctx, tenant, &e, &change).await?;
    Ok(HttpResponse::Ok().json(Data::new(after)))
}

/// `DELETE /api/meta/{entityType}/{entityId}/{key}` (idempotent).
pub async fn delete_key(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let (entity_type, id, key) = path.into_inner();
    let e = Entity::parse(tenant, &entity_type, &id)?;
    meta::check_key(&key)?;
    let change = MetaChange::Merge(Meta::from([(key, serde_json::Value::Null)]));
    let after = meta::change(&state.ctx, tenant, &e, &change).await?;
    Ok(HttpResponse::Ok().json(Data::new(after)))
}
