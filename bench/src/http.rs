//! The REST calls the workloads make, over one shared connection-pooling HTTP client: operator
//! setup (tenant and key), dialog creation, sending a message, reading an inbox. Each call
//! returns how it ended as an [`Outcome`] so failures are counted by kind, not hidden.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::stats::Outcome;

/// One HTTP client for the whole run (connections are reused across workloads).
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        // Below actix-web's 5 s keep-alive, so a pooled connection is not reused just as the
        // server closes it (which would show up as a spurious reset).
        .pool_idle_timeout(Duration::from_secs(3))
        .build()?)
}

/// Maps a transport error to its kind (the cause chain is searched for an I/O error).
pub fn classify(err: &reqwest::Error) -> Outcome {
    if err.is_timeout() {
        return Outcome::Timeout;
    }
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return match io.kind() {
                ConnectionRefused | AddrNotAvailable | NotConnected => Outcome::Connect,
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => Outcome::Reset,
                TimedOut => Outcome::Timeout,
                other => Outcome::Transport(format!("io:{other:?}")),
            };
        }
        source = e.source();
    }
    if err.is_connect() {
        Outcome::Connect
    } else if err.is_request() || err.is_body() {
        // hyper reports a closed connection without an I/O cause.
        Outcome::Reset
    } else {
        Outcome::Transport("other".to_owned())
    }
}

/// A message send: how it ended and, when accepted, the message id.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Status or transport failure.
    pub outcome: Outcome,
    /// `data.messageId` of a 2xx response.
    pub message_id: Option<String>,
}

/// A tenant's view of the API.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Arc<str>,
    key: Arc<str>,
    /// The tenant.
    pub tenant: String,
}

impl Api {
    /// Creates `tenant` and an API key for it with the operator key.
    pub async fn create_tenant(
        http: &reqwest::Client,
        base: &str,
        admin_key: &str,
        tenant: &str,
    ) -> Result<Self> {
        let resp = http
            .post(format!("{base}/api/tenants"))
            .header("X-API-Key", admin_key)
            .json(&json!({ "tenantId": tenant, "name": tenant }))
            .send()
            .await?;
        expect_success(resp, "creating tenant").await?;
        let resp = http
            .post(format!("{base}/api/tenants/{tenant}/api-keys"))
            .header("X-API-Key", admin_key)
            .json(&json!({ "name": "bench" }))
            .send()
            .await?;
        let body = expect_success(resp, "creating api key").await?;
        let key = body["data"]["key"]
            .as_str()
            .context("api key response without data.key")?;
        Ok(Self {
            http: http.clone(),
            base: base.into(),
            key: key.into(),
            tenant: tenant.to_owned(),
        })
    }

    /// Creates a dialog with these members; returns its id.
    pub async fn create_dialog(&self, members: &[String]) -> Result<String> {
        let members: Vec<Value> = members.iter().map(|m| json!({ "userId": m })).collect();
        let resp = self
            .http
            .post(format!("{}/api/dialogs", self.base))
            .header("X-API-Key", &*self.key)
            .json(&json!({ "members": members }))
            .send()
            .await?;
        let body = expect_success(resp, "creating dialog").await?;
        Ok(body["data"]["dialogId"]
            .as_str()
            .context("dialog response without data.dialogId")?
            .to_owned())
    }

    /// `POST /api/dialogs/{dialog}/messages`.
    pub async fn send(&self, dialog: &str, sender: &str, content: &str) -> Sent {
        let req = self
            .http
            .post(format!("{}/api/dialogs/{dialog}/messages", self.base))
            .header("X-API-Key", &*self.key)
            .json(&json!({ "senderId": sender, "content": content }));
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Sent {
                    outcome: classify(&e),
                    message_id: None,
                }
            }
        };
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            // Drain the body so the connection can be reused.
            let _ = resp.bytes().await;
            return Sent {
                outcome: Outcome::Status(status),
                message_id: None,
            };
        }
        match resp.json::<Value>().await {
            Ok(body) => Sent {
                outcome: Outcome::Status(status),
                message_id: body["data"]["messageId"].as_str().map(str::to_owned),
            },
            Err(e) => Sent {
                outcome: classify(&e),
                message_id: None,
            },
        }
    }

    /// `GET /api/users/{user}/dialogs?limit={limit}` (body read, not parsed).
    pub async fn inbox(&self, user: &str, limit: u32) -> Outcome {
        let req = self
            .http
            .get(format!("{}/api/users/{user}/dialogs", self.base))
            .query(&[("limit", limit)])
            .header("X-API-Key", &*self.key);
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(_) => Outcome::Status(status),
                    Err(e) => classify(&e),
                }
            }
            Err(e) => classify(&e),
        }
    }
}

async fn expect_success(resp: reqwest::Response, what: &str) -> Result<Value> {
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{what}: HTTP {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: response is not JSON"))
}
