//! The route table. Its order mirrors `openapi/openapi.yaml`. Every resource answers other
//! methods with a JSON 405; unknown paths get a JSON 404.

mod dialogs;
mod messages;
mod meta;
mod ops;
mod tenants;
mod users;

use actix_web::{web, Resource};
use serde::Deserialize;

use crate::error::{method_not_allowed, ApiError};

/// Every (method, path template) served, in the order of `openapi/openapi.yaml`. The end-to-end
/// tests check this list against the spec and probe each entry on a live server, so neither the
/// spec nor this list can drift from [`configure`].
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/api-docs/openapi.yaml"),
    ("GET", "/api/tenants"),
    ("POST", "/api/tenants"),
    ("GET", "/api/tenants/{tenantId}"),
    ("PATCH", "/api/tenants/{tenantId}"),
    ("DELETE", "/api/tenants/{tenantId}"),
    ("GET", "/api/tenants/{tenantId}/api-keys"),
    ("POST", "/api/tenants/{tenantId}/api-keys"),
    ("DELETE", "/api/tenants/{tenantId}/api-keys/{keyId}"),
    ("GET", "/api/dialogs"),
    ("POST", "/api/dialogs"),
    ("GET", "/api/dialogs/{dialogId}"),
    ("PATCH", "/api/dialogs/{dialogId}"),
    ("DELETE", "/api/dialogs/{dialogId}"),
    ("GET", "/api/dialogs/{dialogId}/members"),
    ("POST", "/api/dialogs/{dialogId}/members/add"),
    ("POST", "/api/dialogs/{dialogId}/members/{userId}/remove"),
    ("POST", "/api/dialogs/{dialogId}/member/{userId}/typing"),
    ("GET", "/api/dialogs/{dialogId}/messages"),
    ("POST", "/api/dialogs/{dialogId}/messages"),
    ("GET", "/api/messages"),
    ("GET", "/api/messages/{messageId}"),
    ("PUT", "/api/messages/{messageId}"),
    ("DELETE", "/api/messages/{messageId}"),
    ("POST", "/api/users"),
    ("GET", "/api/users"),
    ("GET", "/api/users/{userId}"),
    ("PUT", "/api/users/{userId}"),
    ("DELETE", "/api/users/{userId}"),
    ("GET", "/api/users/{userId}/dialogs"),
    ("POST", "/api/users/{userId}/dialogs/{dialogId}/markAllRead"),
    ("GET", "/api/users/{userId}/dialogs/{dialogId}/messages"),
    (
        "POST",
        "/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/status/{status}",
    ),
    (
        "GET",
        "/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/statuses",
    ),
    (
        "POST",
        "/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/reactions/set",
    ),
    (
        "POST",
        "/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/reactions/unset",
    ),
    (
        "GET",
        "/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/reactions",
    ),
    ("GET", "/api/users/{userId}/stats"),
    ("GET", "/api/users/{userId}/updates"),
    ("GET", "/api/meta/{entityType}/{entityId}"),
    ("PUT", "/api/meta/{entityType}/{entityId}"),
    ("DELETE", "/api/meta/{entityType}/{entityId}"),
    ("GET", "/api/meta/{entityType}/{entityId}/{key}"),
    ("PUT", "/api/meta/{entityType}/{entityId}/{key}"),
    ("DELETE", "/api/meta/{entityType}/{entityId}/{key}"),
];

/// Largest page size.
pub const MAX_LIMIT: u64 = 100;
/// Largest page number: offset pages stay cheap for the store (deeper history is read by seq).
pub const MAX_PAGE: u64 = 10_000;
/// Largest seq a query may name: seqs are stored as int64.
pub const MAX_SEQ: u64 = i64::MAX as u64;

fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").get(ops::health))
        .service(resource("/ready").get(ops::ready))
        .service(resource("/api-docs/openapi.yaml").get(ops::openapi))
        .service(
            resource("/api/tenants")
                .get(tenants::list)
                .post(tenants::create),
        )
        .service(
            resource("/api/tenants/{tenantId}")
                .get(tenants::get)
                .patch(tenants::update)
                .delete(tenants::delete),
        )
        .service(
            resource("/api/tenants/{tenantId}/api-keys")
                .get(tenants::list_keys)
                .post(tenants::create_key),
        )
        .service(resource("/api/tenants/{tenantId}/api-keys/{keyId}").delete(tenants::revoke_key))
        .service(
            resource("/api/dialogs")
                .get(dialogs::list)
                .post(dialogs::create),
        )
        .service(
            resource("/api/dialogs/{dialogId}")
                .get(dialogs::get)
                .patch(dialogs::update)
                .delete(dialogs::delete),
        )
        .service(resource("/api/dialogs/{dialogId}/members").get(dialogs::members))
        .service(resource("/api/dialogs/{dialogId}/members/add").post(dialogs::add_members))
        .service(
            resource("/api/dialogs/{dialogId}/members/{userId}/remove")
                .post(dialogs::remove_member),
        )
        .service(resource("/api/dialogs/{dialogId}/member/{userId}/typing").post(dialogs::typing))
        .service(
            resource("/api/dialogs/{dialogId}/messages")
                .get(messages::list)
                .post(messages::create),
        )
        .service(resource("/api/messages").get(messages::search))
        .service(
            resource("/api/messages/{messageId}")
                .get(messages::get)
                .put(messages::edit)
                .delete(messages::delete),
        )
        .service(resource("/api/users").post(users::create).get(users::list))
        .service(
            resource("/api/users/{userId}")
                .get(users::get)
                .put(users::update)
                .delete(users::delete),
        )
        .service(resource("/api/users/{userId}/dialogs").get(users::dialogs))
        .service(
            resource("/api/users/{userId}/dialogs/{dialogId}/markAllRead")
                .post(users::mark_all_read),
        )
        .service(resource("/api/users/{userId}/dialogs/{dialogId}/messages").get(users::messages))
        .service(
            resource("/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/status/{status}")
                .post(users::set_status),
        )
        .service(
            resource("/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/statuses")
                .get(users::statuses),
        )
        .service(
            resource("/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/reactions/set")
                .post(users::set_reaction),
        )
        .service(
            resource("/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/reactions/unset")
                .post(users::unset_reaction),
        )
        .service(
            resource("/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/reactions")
                .get(users::reactions),
        )
        .service(resource("/api/users/{userId}/stats").get(users::stats))
        .service(resource("/api/users/{userId}/updates").get(users::updates))
        .service(
            resource("/api/meta/{entityType}/{entityId}")
                .get(meta::get)
                .put(meta::put)
                .delete(meta::delete),
        )
        .service(
            resource("/api/meta/{entityType}/{entityId}/{key}")
                .get(meta::get_key)
                .put(meta::put_key)
                .delete(meta::delete_key),
        );
}

/// `?page=&limit=` of offset-paginated lists.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1-based page, default 1.
    pub page: Option<u64>,
    /// Page size, default 20, at most 100.
    pub limit: Option<u64>,
}

/// `?page=&limit=&filter=&sort=` of the lists that filter (grammar: `chat3_core::filter`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// 1-based page, default 1.
    pub page: Option<u64>,
    /// Page size, default 20, at most 100.
    pub limit: Option<u64>,
    /// `(field,op,value)` conditions joined by `&` / `|`.
    pub filter: Option<String>,
    /// `(field,asc|desc)`, up to three.
    pub sort: Option<String>,
}

impl ListParams {
    /// `(page, limit)` validated, and the filter and sort compiled for `r`.
    pub fn resolve(
        &self,
        r: &chat3_core::filter::Resource,
    ) -> Result<(u64, u64, chat3_core::filter::ListQuery), ApiError> {
        let (page, limit) = page_limit(self.page, self.limit, 20)?;
        let q = chat3_core::filter::ListQuery::of(self.filter.as_deref(), self.sort.as_deref(), r)?;
        Ok((page, limit, q))
    }
}

impl PageQuery {
    /// `(page, limit)` validated.
    pub fn resolve(&self) -> Result<(u64, u64), ApiError> {
        page_limit(self.page, self.limit, 20)
    }
}

/// Validates `page` ≥ 1 and 1 ≤ `limit` ≤ 100.
pub fn page_limit(
    page: Option<u64>,
    limit: Option<u64>,
    default_limit: u64,
) -> Result<(u64, u64), ApiError> {
    let page = page.unwrap_or(1);
    let limit = limit.unwrap_or(default_limit);
    if page == 0 || page > MAX_PAGE {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("page must be between 1 and {MAX_PAGE}"),
        ));
    }
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok((page, limit))
}

/// A seq bound from the query (`since`, `beforeSeq`, `afterSeq`): at most [`MAX_SEQ`].
pub fn seq_param(name: &str, value: Option<u64>) -> Result<Option<u64>, ApiError> {
    match value {
        Some(v) if v > MAX_SEQ => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} must be between 0 and {MAX_SEQ}"),
        )),
        other => Ok(other),
    }
}
