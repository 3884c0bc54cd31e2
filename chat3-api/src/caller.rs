//! Who is calling: the `X-API-Key` header resolved to a tenant key (through the key cache) or
//! to the operator key; `X-Tenant-ID` checked against it; the per-key rate limit applied. The
//! `Caller` extractor every tenant route takes.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use chat3_core::tenants::KeyRecord;
use chat3_sdk::{Scope, TenantId};
use futures_util::future::LocalBoxFuture;

use crate::error::ApiError;
use crate::state::AppState;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The operator key.
    Operator,
    /// A tenant key.
    Key(KeyRecord),
}

/// An authenticated caller acting for one tenant.
#[derive(Debug, Clone)]
pub struct Caller {
    tenant: Option<TenantId>,
    principal: Principal,
}

impl Caller {
    /// The tenant to act on, if the caller holds `scope` (the operator holds every scope).
    pub fn require(&self, scope: Scope) -> Result<&TenantId, ApiError> {
        let tenant = self.tenant.as_ref().ok_or_else(|| {
            ApiError::bad_request(
                "tenant_required",
                "the operator key must name a tenant with X-Tenant-ID",
            )
        })?;
        match &self.principal {
            Principal::Operator => Ok(tenant),
            Principal::Key(k) if k.scopes.contains(&scope) => Ok(tenant),
            Principal::Key(_) => Err(ApiError::Forbidden {
                code: "insufficient_scope",
                message: format!("this API key lacks the '{}' scope", scope.as_str()),
            }),
        }
    }

    /// The tenant acted on, if any (the operator may name none).
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// Ok for the operator key only.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self.principal {
            Principal::Operator => Ok(()),
            Principal::Key(_) => Err(ApiError::Forbidden {
                code: "operator_required",
                message: "this route needs the operator key".to_owned(),
            }),
        }
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Constant-time comparison, so the operator key cannot be guessed byte by byte.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn authenticate(req: HttpRequest) -> Result<Caller, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| chat3_core::Error::Internal("app state missing".to_owned()))?
        .clone();
    let Some(secret) = header(&req, "X-API-Key").filter(|s| !s.is_empty()) else {
        return Err(ApiError::Unauthorized {
            code: "missing_api_key",
            message: "send your API key in the X-API-Key header".to_owned(),
        });
    };
    let asked: Option<TenantId> = match header(&req, "X-Tenant-ID") {
        None => None,
        Some(t) => Some(t.parse().map_err(|e: chat3_sdk::IdError| {
            ApiError::bad_request("invalid_tenant_id", e.to_string())
        })?),
    };
    let is_operator = state
        .admin_api_key
        .as_deref()
        .is_some_and(|admin| same_secret(admin, secret));
    let (caller, limit_key) = if is_operator {
        // The operator may act on any tenant, but only an existing one: no orphan data.
        if let Some(t) = &asked {
            state.tenants.ensure_active(&state.ctx.store, t).await?;
        }
        (
            Caller {
                tenant: asked,
                principal: Principal::Operator,
            },
            "operator".to_owned(),
        )
    } else {
        let rec = state
            .keys
            .lookup(&state.ctx.store, secret)
            .await?
            .filter(|k| !k.revoked)
            .ok_or_else(|| ApiError::Unauthorized {
                code: "invalid_api_key",
                message: "the API key is unknown or revoked".to_owned(),
            })?;
        if asked.as_ref().is_some_and(|t| *t != rec.tenant_id) {
            return Err(ApiError::Forbidden {
                code: "tenant_mismatch",
                message: "X-Tenant-ID does not match the API key's tenant".to_owned(),
            });
        }
        let key_id = rec.key_id.clone();
        (
            Caller {
                tenant: Some(rec.tenant_id.clone()),
                principal: Principal::Key(rec),
            },
            key_id,
        )
    };
    let info = state.limiter.check(&limit_key)?;
    req.extensions_mut().insert(info);
    Ok(caller)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        // Already authenticated by the idempotency middleware: do not count the request twice.
        if let Some(caller) = req.extensions().get::<Caller>().cloned() {
            return Box::pin(async move { Ok(caller) });
        }
        Box::pin(authenticate(req.clone()))
    }
}
