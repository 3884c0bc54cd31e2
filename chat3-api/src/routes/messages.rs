//! `/api/dialogs/{dialogId}/messages` and `/api/messages/{messageId}`.

use actix_web::{web, HttpResponse};
use chat3_core::messages;
use chat3_sdk::{CreateMessage, Data, DialogId, EditMessage, MessageId, MessageQuery, Scope};

use super::{page_limit, seq_param, ListParams};
use crate::body::Body;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/dialogs/{dialogId}/messages`: 201 when created, 200 with the original message
/// when `clientMessageId` matched an earlier one.
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DialogId>,
    body: Body<CreateMessage>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let (message, created) = messages::create(&state.ctx, tenant, &path, &body).await?;
    let body = Data::new(message);
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// `GET /api/dialogs/{dialogId}/messages?page=&limit=&beforeSeq=&afterSeq=`.
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DialogId>,
    q: web::Query<MessageQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (page, limit) = page_limit(q.page, q.limit, 50)?;
    seq_param("beforeSeq", q.before_seq)?;
    seq_param("afterSeq", q.after_seq)?;
    let found = messages::list(&state.ctx.store, tenant, &path, &q, page, limit).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// `GET /api/messages?filter=&sort=&page=&limit=`: the tenant's messages, newest first.
pub async fn search(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (page, limit, list) = q.resolve(&messages::SEARCH)?;
    let found = messages::search(&state.ctx.store, tenant, &list, page, limit).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// `GET /api/messages/{messageId}`.
pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<MessageId>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let m = messages::change::get(&state.ctx.store, tenant, &path).await?;
    Ok(HttpResponse::Ok().json(Data::new(m)))
}

/// `PUT /api/messages/{messageId}`: edit.
pub async fn edit(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<MessageId>,
    body: Body<EditMessage>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Write)?;
    let m = messages::change::edit(&state.ctx, tenant, &path, &body).await?;
    Ok(HttpResponse::Ok().json(Data::new(m)))
}

/// `DELETE /api/messages/{messageId}` (scope `delete`): soft delete.
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<MessageId>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Delete)?;
    let m = messages::change::delete(&state.ctx, tenant, &path).await?;
    Ok(HttpResponse::Ok().json(Data::new(m)))
}
