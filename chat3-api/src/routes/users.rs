//! Users (`/api/users`, `/api/users/{userId}`) and the user's view: `/api/users/{userId}/...`.

use actix_web::{web, HttpResponse};
use chat3_core::reactions::{self, Action};
use chat3_core::{inbox, messages, receipts, updates, users};
use chat3_sdk::{
    CreateUser, Data, DialogId, MessageId, MessageQuery, ReactionInput, Scope, UpdateUser, UserId,
};
use serde::Deserialize;

use super::{page_limit, seq_param, ListParams};
use crate::body::Body;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/users`.
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: Body<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let user = users::create(&state.ctx, tenant, &body).await?;
    Ok(HttpResponse::Created().json(Data::new(user)))
}

/// `GET /api/users`.
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (page, limit, list) = q.resolve(&users::LIST)?;
    let found = users::list(&state.ctx.store, tenant, &list, page, limit).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// `GET /api/users/{userId}`.
pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let user = users::get(&state.ctx.store, tenant, &path).await?;
    Ok(HttpResponse::Ok().json(Data::new(user)))
}

/// `PUT /api/users/{userId}`: the fields given change.
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
    body: Body<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let user = users::update(&state.ctx, tenant, &path, &body).await?;
    Ok(HttpResponse::Ok().json(Data::new(user)))
}

/// `DELETE /api/users/{userId}` (scope `delete`).
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Delete)?;
    let deleted = users::delete(&state.ctx, tenant, &path).await?;
    Ok(HttpResponse::Ok().json(Data::new(deleted)))
}

/// `GET /api/users/{userId}/dialogs`: the inbox.
pub async fn dialogs(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (page, limit, list) = q.resolve(&inbox::LIST)?;
    let inbox = inbox::user_dialogs(&state.ctx.store, tenant, &path, &list, page, limit).await?;
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

/// `GET /api/users/{userId}/dialogs/{dialogId}/messages`: the dialog as the user sees it.
pub async fn messages(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(UserId, DialogId)>,
    q: web::Query<MessageQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (user, dialog) = path.into_inner();
    let (page, limit) = page_limit(q.page, q.limit, 50)?;
    seq_param("beforeSeq", q.before_seq)?;
    seq_param("afterSeq", q.after_seq)?;
    let found =
        messages::user_list(&state.ctx.store, tenant, &user, &dialog, &q, page, limit).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// A message of a dialog, named by a user: `/api/users/{u}/dialogs/{d}/messages/{m}/...`.
type UserMessagePath = (UserId, DialogId, MessageId);

/// `POST .../messages/{messageId}/status/{status}`: 201 when recorded now, 200 when it was
/// recorded before.
pub async fn set_status(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(UserId, DialogId, MessageId, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let (user, dialog, message, status) = path.into_inner();
    let (receipt, created) =
        receipts::record(&state.ctx, tenant, &user, &dialog, &message, &status).await?;
    let body = Data::new(receipt);
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// `GET .../messages/{messageId}/statuses`.
pub async fn statuses(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserMessagePath>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (page, limit, list) = q.resolve(&receipts::LIST)?;
    let (user, dialog, message) = path.into_inner();
    let found = receipts::list(
        &state.ctx.store,
        tenant,
        &user,
        &dialog,
        &message,
        &list,
        (page, limit),
    )
    .await?;
    Ok(HttpResponse::Ok().json(found))
}

async fn react(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserMessagePath>,
    body: Body<ReactionInput>,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let (user, dialog, message) = path.into_inner();
    let r = reactions::change(
        &state.ctx,
        tenant,
        &user,
        &dialog,
        &message,
        action,
        &body.reaction,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Data::new(r)))
}

/// `POST .../messages/{messageId}/reactions/set`.
pub async fn set_reaction(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserMessagePath>,
    body: Body<ReactionInput>,
) -> Result<HttpResponse, ApiError> {
    react(caller, state, path, body, Action::Set).await
}

/// `POST .../messages/{messageId}/reactions/unset`.
pub async fn unset_reaction(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserMessagePath>,
    body: Body<ReactionInput>,
) -> Result<HttpResponse, ApiError> {
    react(caller, state, path, body, Action::Unset).await
}

/// `GET .../messages/{messageId}/reactions`.
pub async fn reactions(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<UserMessagePath>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (page, limit, list) = q.resolve(&reactions::LIST)?;
    let (user, dialog, message) = path.into_inner();
    let found = reactions::list(
        &state.ctx.store,
        tenant,
        &user,
        &dialog,
        &message,
        &list,
        (page, limit),
    )
    .await?;
    Ok(HttpResponse::Ok().json(found))
}
