//! `/api/dialogs`.

use actix_web::{web, HttpResponse};
use chat3_core::{dialogs, members};
use chat3_sdk::{AddMembers, CreateDialog, Data, DialogId, Scope, TypingInput, UserId};

use super::ListParams;
use crate::body::Body;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/dialogs`.
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: Body<CreateDialog>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let dialog = dialogs::create(&state.ctx, tenant, &body).await?;
    Ok(HttpResponse::Created().json(Data::new(dialog)))
}

/// `GET /api/dialogs`.
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (page, limit, list) = q.resolve(&dialogs::LIST)?;
    let found = dialogs::list(&state.ctx.store, tenant, &list, page, limit).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// `GET /api/dialogs/{dialogId}`.
pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DialogId>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let dialog = dialogs::get(&state.ctx.store, tenant, &path).await?;
    Ok(HttpResponse::Ok().json(Data::new(dialog)))
}

/// `PATCH /api/dialogs/{dialogId}`: rename and/or merge meta.
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DialogId>,
    body: Body<chat3_sdk::UpdateDialog>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let dialog = dialogs::update(&state.ctx, tenant, &path, &body).await?;
    Ok(HttpResponse::Ok().json(Data::new(dialog)))
}

/// `DELETE /api/dialogs/{dialogId}` (scope `delete`).
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DialogId>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Delete)?;
    let deleted = dialogs::delete(&state.ctx, tenant, &path).await?;
    Ok(HttpResponse::Ok().json(Data::new(deleted)))
}

/// `GET /api/dialogs/{dialogId}/members`.
pub async fn members(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DialogId>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (page, limit, list) = q.resolve(&members::LIST)?;
    let found = members::list(&state.ctx.store, tenant, &path, &list, page, limit).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// `POST /api/dialogs/{dialogId}/members/add`: 201 when someone joined, 200 when every user
/// named was a member already.
pub async fn add_members(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DialogId>,
    body: Body<AddMembers>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let change = members::add(&state.ctx, tenant, &path, &body).await?;
    let body = Data::new(&change);
    Ok(if change.added.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::Created().json(body)
    })
}

/// `POST /api/dialogs/{dialogId}/members/{userId}/remove`.
pub async fn remove_member(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(DialogId, UserId)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let (dialog, user) = path.into_inner();
    let removed = members::remove(&state.ctx, tenant, &dialog, &user).await?;
    Ok(HttpResponse::Ok().json(Data::new(removed)))
}

/// `POST /api/dialogs/{dialogId}/member/{userId}/typing`: 202, published and never stored.
pub async fn typing(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(DialogId, UserId)>,
    body: Body<TypingInput>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let (dialog, user) = path.into_inner();
    let is_typing = body.is_typing.unwrap_or(true);
    let typing = members::typing(&state.ctx, tenant, &dialog, &user, is_typing).await?;
    Ok(HttpResponse::Accepted().json(Data::new(typing)))
}
