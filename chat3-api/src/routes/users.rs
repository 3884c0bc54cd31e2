//! The user's view: `/api/users/{userId}/...`.

use actix_web::{web, HttpResponse};
use chat3_core::{inbox, updates};
use chat3_sdk::{Data, DialogId, Scope, UserId};
use serde::Deserialize;

use super::{page_limit, seq_param, PageQuery};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /api/users/{userId}/dialogs`: the inbox.
pub async fn dialogs(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (page, limit) = q.resolve()?;
    let inbox = inbox::user_dialogs(&state.ctx.store, tenant, &path, page, limit).await?;
    Ok(HttpResponse::Ok().json(inbox))
}

/// `POST /api/users/{userId}/dialogs/{dialogId}/markAllRead`.
pub async fn mark_all_read(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(UserId, DialogId)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let (user, dialog) = path.into_inner();
    let read = inbox::mark_all_read(&state.ctx, tenant, &user, &dialog).await?;
    Ok(HttpResponse::Ok().json(Data::new(read)))
}

/// `?since=&limit=` of the updates feed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatesQuery {
    /// Return updates with a seq above this (default 0: from the start).
    pub since: Option<u64>,
    /// At most this many (default and maximum 100).
    pub limit: Option<u64>,
}

/// `GET /api/users/{userId}/updates?since=&limit=`.
pub async fn updates(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
    q: web::Query<UpdatesQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (_, limit) = page_limit(None, q.limit, 100)?;
    let since = seq_param("since", q.since)?.unwrap_or(0);
    let page = updates::list_since(&state.ctx.store, tenant, &path, since, limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/users/{userId}/stats`.
pub async fn stats(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let stats = inbox::stats(&state.ctx.store, tenant, &path).await?;
    Ok(HttpResponse::Ok().json(Data::new(stats)))
}
