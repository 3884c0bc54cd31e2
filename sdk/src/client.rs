//! An async HTTP client for the tenant REST API and the BFF auth routes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chat3_sdk::client::Error> {
//! use chat3_sdk::{client::Client, CreateDialog, MemberInput};
//! let api = Client::new("http://127.0.0.1:3000", "c3k_...");
//! let dialog = api
//!     .create_dialog(&CreateDialog {
//!         members: vec![MemberInput { user_id: "alice".parse()?, user_type: Default::default() }],
//!         name: None,
//!         meta: None,
//!         created_by: None,
//!     })
//!     .await?;
//! # let _ = dialog; Ok(()) }
//! ```

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::ids::{DialogId, IdError, MessageId, TenantId, UserId};
use crate::types::*;

/// What can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error body.
    #[error("{status}: {} ({})", body.message, body.code)]
    Api {
        /// HTTP status.
        status: u16,
        /// The JSON error body.
        body: Box<ErrorBody>,
    },
    /// Transport failure or an unparseable response.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered with a body this client cannot read.
    #[error("unexpected response {status}: {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// Raw body.
        body: String,
    },
    /// An identifier given to the client is invalid.
    #[error(transparent)]
    Id(#[from] IdError),
}

impl Error {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Unexpected { status, .. } => Some(*status),
            Error::Http(e) => e.status().map(|s| s.as_u16()),
            Error::Id(_) => None,
        }
    }

    /// The stable `code` of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { body, .. } => Some(&body.code),
            _ => None,
        }
    }
}

/// A raw response, for callers that check status codes and bodies themselves.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Parsed JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

impl RawResponse {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A client of one chat3 API (or BFF) base URL, authenticated with one key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    tenant: Option<String>,
    bearer: Option<String>,
}

impl Client {
    /// A client for `base_url` (e.g. `http://127.0.0.1:3000`) sending `X-API-Key: api_key`.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        let mut c = Self::anonymous(base_url);
        c.api_key = Some(api_key.into());
        c
    }

    /// A client without credentials (health checks, BFF login).
    pub fn anonymous(base_url: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base_url.into().trim_end_matches('/').to_owned(),
            api_key: None,
            tenant: None,
            bearer: None,
        }
    }

    /// The same client sending `X-Tenant-ID: tenant` (required for the operator key).
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The same client sending `Authorization: Bearer token` (BFF end-user routes).
    pub fn with_bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(k) = &self.api_key {
            rb = rb.header("X-API-Key", k);
        }
        if let Some(t) = &self.tenant {
            rb = rb.header("X-Tenant-ID", t);
        }
        if let Some(b) = &self.bearer {
            rb = rb.bearer_auth(b);
        }
        rb
    }

    async fn send<T: DeserializeOwned>(&self, rb: reqwest::RequestBuilder) -> Result<T, Error> {
        let resp = rb.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|_| Error::Unexpected {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(Error::Api {
                status: status.as_u16(),
                body: Box::new(body),
            }),
            Err(_) => Err(Error::Unexpected {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            }),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.send(self.request(Method::GET, path)).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// Any request, returning status, headers and JSON body without interpreting them.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        extra_headers: &[(&str, &str)],
    ) -> Result<RawResponse, Error> {
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let mut rb = self.request(method, path);
        for (k, v) in extra_headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let bytes = resp.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// `GET /health`: true when the server answers 200.
    pub async fn health(&self) -> Result<bool, Error> {
        let resp = self.request(Method::GET, "/health").send().await?;
        Ok(resp.status() == StatusCode::OK)
    }

    /// `GET /ready`.
    pub async fn ready(&self) -> Result<Readiness, Error> {
        self.get("/ready").await
    }

    // ---- tenants and keys (operator key) ----

    /// `POST /api/tenants`.
    pub async fn create_tenant(&self, req: &CreateTenant) -> Result<Tenant, Error> {
        Ok(self
            .post::<_, Data<Tenant>>("/api/tenants", req)
            .await?
            .data)
    }

    /// `GET /api/tenants`.
    pub async fn list_tenants(&self, page: u64, limit: u64) -> Result<Page<Tenant>, Error> {
        self.get(&format!("/api/tenants?page={page}&limit={limit}"))
            .await
    }

    /// `GET /api/tenants/{id}`: with `status` and, while deleting, the progress.
    pub async fn get_tenant(&self, tenant: &TenantId) -> Result<Tenant, Error> {
        Ok(self
            .get::<Data<Tenant>>(&format!("/api/tenants/{tenant}"))
            .await?
            .data)
    }

    /// `PATCH /api/tenants/{id}`: rename and/or merge meta (`null` removes a key).
    pub async fn update_tenant(
        &self,
        tenant: &TenantId,
        req: &UpdateTenant,
    ) -> Result<Tenant, Error> {
        let path = format!("/api/tenants/{tenant}");
        Ok(self
            .send::<Data<Tenant>>(self.request(Method::PATCH, &path).json(req))
            .await?
            .data)
    }

    /// `DELETE /api/tenants/{id}`: revokes its keys and starts removing its data (202); the
    /// tenant as `deleting`. Poll [`Client::get_tenant`] until it is 404 to see it finish.
    pub async fn delete_tenant(&self, tenant: &TenantId) -> Result<Tenant, Error> {
        let path = format!("/api/tenants/{tenant}");
        Ok(self
            .send::<Data<Tenant>>(self.request(Method::DELETE, &path))
            .await?
            .data)
    }

    /// `POST /api/tenants/{id}/api-keys`: the response carries the secret, shown only once.
    pub async fn create_api_key(
        &self,
        tenant: &TenantId,
        req: &CreateApiKey,
    ) -> Result<CreatedApiKey, Error> {
        let path = format!("/api/tenants/{tenant}/api-keys");
        Ok(self.post::<_, Data<CreatedApiKey>>(&path, req).await?.data)
    }

    /// `GET /api/tenants/{id}/api-keys`: the first 100 keys, newest first.
    pub async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyInfo>, Error> {
        Ok(self.list_api_keys_page(tenant, 1, 100).await?.data)
    }

    /// `GET /api/tenants/{id}/api-keys?page=&limit=`.
    pub async fn list_api_keys_page(
        &self,
        tenant: &TenantId,
        page: u64,
        limit: u64,
    ) -> Result<Page<ApiKeyInfo>, Error> {
        let path = format!("/api/tenants/{tenant}/api-keys?page={page}&limit={limit}");
        self.get::<Page<ApiKeyInfo>>(&path).await
    }

    /// `DELETE /api/tenants/{id}/api-keys/{keyId}`.
    pub async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        key_id: &str,
    ) -> Result<ApiKeyInfo, Error> {
        let path = format!("/api/tenants/{tenant}/api-keys/{key_id}");
        Ok(self
            .send::<Data<ApiKeyInfo>>(self.request(Method::DELETE, &path))
            .await?
            .data)
    }

    // ---- dialogs and messages ----

    /// `POST /api/dialogs`.
    pub async fn create_dialog(&self, req: &CreateDialog) -> Result<Dialog, Error> {
        Ok(self
            .post::<_, Data<Dialog>>("/api/dialogs", req)
            .await?
            .data)
    }

    /// `GET /api/dialogs`.
    pub async fn list_dialogs(&self, page: u64, limit: u64) -> Result<Page<Dialog>, Error> {
        self.get(&format!("/api/dialogs?page={page}&limit={limit}"))
            .await
    }

    /// `GET /api/dialogs?page=&limit=&filter=&sort=`.
    pub async fn find_dialogs(&self, params: &ListParams) -> Result<Page<Dialog>, Error> {
        self.get(&format!("/api/dialogs?{}", query_string(params)))
            .await
    }

    /// `GET /api/dialogs/{id}`.
    pub async fn get_dialog(&self, dialog: &DialogId) -> Result<Dialog, Error> {
        Ok(self
            .get::<Data<Dialog>>(&format!("/api/dialogs/{dialog}"))
            .await?
            .data)
    }

    /// `POST /api/dialogs/{id}/messages`.
    pub async fn send_message(
        &self,
        dialog: &DialogId,
        req: &CreateMessage,
    ) -> Result<Message, Error> {
        let path = format!("/api/dialogs/{dialog}/messages");
        Ok(self.post::<_, Data<Message>>(&path, req).await?.data)
    }

    /// `GET /api/dialogs/{id}/messages`.
    pub async fn list_messages(
        &self,
        dialog: &DialogId,
        query: &MessageQuery,
    ) -> Result<Page<Message>, Error> {
        self.get(&format!(
            "/api/dialogs/{dialog}/messages?{}",
            query_string(query)
        ))
        .await
    }

    /// `PATCH /api/dialogs/{id}`: rename and/or merge meta (`null` removes a key).
    pub async fn update_dialog(
        &self,
        dialog: &DialogId,
        req: &UpdateDialog,
    ) -> Result<Dialog, Error> {
        let path = format!("/api/dialogs/{dialog}");
        Ok(self
            .send::<Data<Dialog>>(self.request(Method::PATCH, &path).json(req))
            .await?
            .data)
    }

    /// `DELETE /api/dialogs/{id}`.
    pub async fn delete_dialog(&self, dialog: &DialogId) -> Result<DeletedDialog, Error> {
        let path = format!("/api/dialogs/{dialog}");
        Ok(self
            .send::<Data<DeletedDialog>>(self.request(Method::DELETE, &path))
            .await?
            .data)
    }

    /// `POST /api/users`.
    pub async fn create_user(&self, req: &CreateUser) -> Result<User, Error> {
        Ok(self
            .send::<Data<User>>(self.request(Method::POST, "/api/users").json(req))
            .await?
            .data)
    }

    /// `GET /api/users?page=&limit=&filter=&sort=`.
    pub async fn list_users(&self, params: &ListParams) -> Result<Page<User>, Error> {
        self.get(&format!("/api/users?{}", query_string(params)))
            .await
    }

    /// `GET /api/messages?page=&limit=&filter=&sort=`: the tenant's messages, newest first.
    pub async fn search_messages(&self, params: &ListParams) -> Result<Page<Message>, Error> {
        self.get(&format!("/api/messages?{}", query_string(params)))
            .await
    }

    /// `GET /api/users/{id}`.
    pub async fn get_user(&self, user: &UserId) -> Result<User, Error> {
        Ok(self
            .get::<Data<User>>(&format!("/api/users/{}", encode_path(user.as_str())))
            .await?
            .data)
    }

    /// `PUT /api/users/{id}`.
    pub async fn update_user(&self, user: &UserId, req: &UpdateUser) -> Result<User, Error> {
        let path = format!("/api/users/{}", encode_path(user.as_str()));
        Ok(self
            .send::<Data<User>>(self.request(Method::PUT, &path).json(req))
            .await?
            .data)
    }

    /// `DELETE /api/users/{id}`.
    pub async fn delete_user(&self, user: &UserId) -> Result<DeletedUser, Error> {
        let path = format!("/api/users/{}", encode_path(user.as_str()));
        Ok(self
            .send::<Data<DeletedUser>>(self.request(Method::DELETE, &path))
            .await?
            .data)
    }

    /// `GET /api/dialogs/{id}/members`.
    pub async fn list_members(
        &self,
        dialog: &DialogId,
        page: u64,
        limit: u64,
    ) -> Result<Page<Member>, Error> {
        self.get(&format!(
            "/api/dialogs/{dialog}/members?page={page}&limit={limit}"
        ))
        .await
    }

    /// `POST /api/dialogs/{id}/members/add`.
    pub async fn add_members(
        &self,
        dialog: &DialogId,
        members: Vec<MemberInput>,
    ) -> Result<MembersChange, Error> {
        let path = format!("/api/dialogs/{dialog}/members/add");
        let body = AddMembers::Many { members };
        Ok(self
            .post::<_, Data<MembersChange>>(&path, &body)
            .await?
            .data)
    }

    /// `POST /api/dialogs/{id}/members/{u}/remove`.
    pub async fn remove_member(
        &self,
        dialog: &DialogId,
        user: &UserId,
    ) -> Result<RemovedMember, Error> {
        let path = format!(
            "/api/dialogs/{dialog}/members/{}/remove",
            encode_path(user.as_str())
        );
        Ok(self
            .post::<_, Data<RemovedMember>>(&path, &serde_json::json!({}))
            .await?
            .data)
    }

    /// `POST /api/dialogs/{id}/member/{u}/typing`.
    pub async fn typing(
        &self,
        dialog: &DialogId,
        user: &UserId,
        is_typing: bool,
    ) -> Result<TypingState, Error> {
        let path = format!(
            "/api/dialogs/{dialog}/member/{}/typing",
            encode_path(user.as_str())
        );
        let body = TypingInput {
            is_typing: Some(is_typing),
        };
        Ok(self.post::<_, Data<TypingState>>(&path, &body).await?.data)
    }

    /// `GET /api/messages/{m}`.
    pub async fn get_message(&self, message: &MessageId) -> Result<Message, Error> {
        Ok(self
            .get::<Data<Message>>(&format!("/api/messages/{message}"))
            .await?
            .data)
    }

    /// `PUT /api/messages/{m}`.
    pub async fn edit_message(
        &self,
        message: &MessageId,
        req: &EditMessage,
    ) -> Result<Message, Error> {
        let path = format!("/api/messages/{message}");
        Ok(self
            .send::<Data<Message>>(self.request(Method::PUT, &path).json(req))
            .await?
            .data)
    }

    /// `DELETE /api/messages/{m}` (soft delete).
    pub async fn delete_message(&self, message: &MessageId) -> Result<Message, Error> {
        let path = format!("/api/messages/{message}");
        Ok(self
            .send::<Data<Message>>(self.request(Method::DELETE, &path))
            .await?
            .data)
    }

    // ---- the user's view ----
    // Each is a 404 `user_not_found` for a user that does not exist (never created, or deleted).

    /// `GET /api/users/{u}/dialogs`: the inbox, newest activity first.
    pub async fn user_dialogs(
        &self,
        user: &UserId,
        page: u64,
        limit: u64,
    ) -> Result<Page<InboxDialog>, Error> {
        self.get(&format!(
            "/api/users/{}/dialogs?page={page}&limit={limit}",
            encode_path(user.as_str())
        ))
        .await
    }

    /// `GET /api/users/{u}/dialogs?page=&limit=&filter=&sort=`: the inbox narrowed, e.g.
    /// `(unreadCount,gt,0)`.
    pub async fn find_user_dialogs(
        &self,
        user: &UserId,
        params: &ListParams,
    ) -> Result<Page<InboxDialog>, Error> {
        self.get(&format!(
            "/api/users/{}/dialogs?{}",
            encode_path(user.as_str()),
            query_string(params)
        ))
        .await
    }

    /// `POST /api/users/{u}/dialogs/{d}/markAllRead`.
    pub async fn mark_all_read(
        &self,
        user: &UserId,
        dialog: &DialogId,
    ) -> Result<ReadState, Error> {
        let path = format!(
            "/api/users/{}/dialogs/{dialog}/markAllRead",
            encode_path(user.as_str())
        );
        Ok(self
            .post::<_, Data<ReadState>>(&path, &serde_json::json!({}))
            .await?
            .data)
    }

    /// `GET /api/users/{u}/dialogs/{d}/messages`: the dialog as the user sees it.
    pub async fn user_messages(
        &self,
        user: &UserId,
        dialog: &DialogId,
        query: &MessageQuery,
    ) -> Result<Page<UserMessage>, Error> {
        self.get(&format!(
            "/api/users/{}/dialogs/{dialog}/messages?{}",
            encode_path(user.as_str()),
            query_string(query)
        ))
        .await
    }

    fn user_message_path(user: &UserId, dialog: &DialogId, message: &MessageId) -> String {
        format!(
            "/api/users/{}/dialogs/{dialog}/messages/{message}",
            encode_path(user.as_str())
        )
    }

    /// `POST /api/users/{u}/dialogs/{d}/messages/{m}/status/{status}`.
    pub async fn set_status(
        &self,
        user: &UserId,
        dialog: &DialogId,
        message: &MessageId,
        status: &str,
    ) -> Result<MessageStatus, Error> {
        let path = format!(
            "{}/status/{}",
            Self::user_message_path(user, dialog, message),
            encode_path(status)
        );
        Ok(self
            .post::<_, Data<MessageStatus>>(&path, &serde_json::json!({}))
            .await?
            .data)
    }

    /// `GET /api/users/{u}/dialogs/{d}/messages/{m}/statuses`.
    pub async fn message_statuses(
        &self,
        user: &UserId,
        dialog: &DialogId,
        message: &MessageId,
        page: u64,
        limit: u64,
    ) -> Result<Page<MessageStatus>, Error> {
        self.get(&format!(
            "{}/statuses?page={page}&limit={limit}",
            Self::user_message_path(user, dialog, message)
        ))
        .await
    }

    /// `POST /api/users/{u}/dialogs/{d}/messages/{m}/reactions/{set|unset}` (`set`: true).
    pub async fn react(
        &self,
        user: &UserId,
        dialog: &DialogId,
        message: &MessageId,
        reaction: &str,
        set: bool,
    ) -> Result<MessageReactions, Error> {
        let path = format!(
            "{}/reactions/{}",
            Self::user_message_path(user, dialog, message),
            if set { "set" } else { "unset" }
        );
        let body = ReactionInput {
            reaction: reaction.to_owned(),
        };
        Ok(self
            .post::<_, Data<MessageReactions>>(&path, &body)
            .await?
            .data)
    }

    /// `GET /api/users/{u}/dialogs/{d}/messages/{m}/reactions`.
    pub async fn message_reactions(
        &self,
        user: &UserId,
        dialog: &DialogId,
        message: &MessageId,
        page: u64,
        limit: u64,
    ) -> Result<Page<ReactionEntry>, Error> {
        self.get(&format!(
            "{}/reactions?page={page}&limit={limit}",
            Self::user_message_path(user, dialog, message)
        ))
        .await
    }

    /// `GET /api/users/{u}/stats`.
    pub async fn user_stats(&self, user: &UserId) -> Result<UserStats, Error> {
        Ok(self
            .get::<Data<UserStats>>(&format!("/api/users/{}/stats", encode_path(user.as_str())))
            .await?
            .data)
    }

    /// `GET /api/users/{u}/updates?since=&limit=`.
    pub async fn user_updates(
        &self,
        user: &UserId,
        since: u64,
        limit: u64,
    ) -> Result<UpdatesPage, Error> {
        self.get(&format!(
            "/api/users/{}/updates?since={since}&limit={limit}",
            encode_path(user.as_str())
        ))
        .await
    }

    // ---- BFF ----

    /// BFF `POST /api/auth/request-code`.
    pub async fn request_code(&self, req: &RequestCode) -> Result<CodeSent, Error> {
        Ok(self
            .post::<_, Data<CodeSent>>("/api/auth/request-code", req)
            .await?
            .data)
    }

    /// BFF `POST /api/auth/verify-code`.
    pub async fn verify_code(&self, req: &VerifyCode) -> Result<Session, Error> {
        Ok(self
            .post::<_, Data<Session>>("/api/auth/verify-code", req)
            .await?
            .data)
    }
}

/// `k=v&...` of a query struct (numbers only, so nothing needs encoding).
fn query_string<Q: Serialize>(query: &Q) -> String {
    serde_json::to_value(query)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.iter()
                .map(|(k, v)| match v {
                    Value::String(text) => format!("{k}={}", encode_path(text)),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join("&")
        })
        .unwrap_or_default()
}

/// Percent-encodes a path segment (user ids may hold `@`, `+`, `%`, ...).
pub fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
