//! `/api/dialogs/{dialogId}/messages`.

use actix_web::{web, HttpResponse};
use chat3_core::messages;
use chat3_sdk::{CreateMessage, Data, DialogId, MessageQuery, Scope};

use super::{page_limit, seq_param};
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
