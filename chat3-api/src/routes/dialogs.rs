//! `/api/dialogs`.

use actix_web::{web, HttpResponse};
use chat3_core::dialogs;
use chat3_sdk::{CreateDialog, Data, DialogId, Scope};

use super::PageQuery;
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
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.require(Scope::Read)?;
    let (page, limit) = q.resolve()?;
    Ok(HttpResponse::Ok().json(dialogs::list(&state.ctx.store, tenant, page, limit).await?))
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
