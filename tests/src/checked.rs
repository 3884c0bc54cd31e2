//! A client whose every response is checked against `openapi/openapi.yaml` (status documented,
//! body matching its schema): the conversation tests call the API only through it.

use std::sync::Arc;

use std::time::Duration;

use chat3_sdk::client::{Client, RawResponse};
use chat3_sdk::{Update, UpdateType};
use serde_json::{json, Value};

use crate::openapi::Spec;

/// A tenant client that validates each response against the API spec.
#[derive(Clone)]
pub struct Checked {
    /// The client (for typed calls whose responses are checked by serde only).
    pub client: Client,
    spec: Arc<Spec>,
}

impl Checked {
    /// Wraps `client`, loading the API spec.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            spec: Arc::new(Spec::load()),
        }
    }

    /// The same spec for another client (another key of the tenant).
    pub fn with_client(&self, client: Client) -> Self {
        Self {
            client,
            spec: self.spec.clone(),
        }
    }

    /// Calls the API; panics when the response does not match the spec.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> RawResponse {
        let r = self
            .client
            .raw(method, path, body.as_ref(), &[])
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        if let Err(problem) = self.spec.validate(method, path, r.status, &r.body) {
            panic!(
                "{method} {path} -> {} does not match the spec: {problem}\nbody: {}",
                r.status, r.body
            );
        }
        r
    }

    /// Calls the API and checks the status; returns the body.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let r = self.call(method, path, body).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        r.body
    }

    /// Calls the API and expects the documented error with `status` and `code`; returns the
    /// body.
    pub async fn expect_error(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) -> Value {
        let b = self.expect(method, path, body, status).await;
        assert_eq!(b["code"], code, "{method} {path}: {b}");
        b
    }
}

impl Checked {
    /// Creates a dialog of these users (201); returns its id.
    pub async fn dialog_of(&self, users: &[&str]) -> String {
        let members: Vec<Value> = users.iter().map(|u| json!({"userId": u})).collect();
        let d = self
            .expect(
                "POST",
                "/api/dialogs",
                Some(json!({"members": members})),
                201,
            )
            .await;
        d["data"]["dialogId"]
            .as_str()
            .unwrap_or_else(|| panic!("no dialogId in {d}"))
            .to_owned()
    }

    /// Posts a text message (201); returns it.
    pub async fn send(&self, dialog: &str, from: &str, content: &str) -> Value {
        self.expect(
            "POST",
            &format!("/api/dialogs/{dialog}/messages"),
            Some(json!({"senderId": from, "content": content})),
            201,
        )
        .await["data"]
            .clone()
    }

    /// The user's stored updates about their dialogs once there are at least `n` (polls for up
    /// to 20 s). Their own `user` updates (`user.add` when joining created them, ...) are left
    /// out: the users tests read those with [`Checked::all_updates_of`].
    pub async fn updates_of(&self, who: &str, n: usize) -> Vec<Update> {
        let user = crate::fixtures::user(who);
        crate::eventually(
            Duration::from_secs(20),
            &format!("{n} dialog updates of {who}"),
            || async {
                let mut p = self.client.user_updates(&user, 0, 100).await.ok()?.data;
                p.retain(|u| u.update_type != UpdateType::User);
                (p.len() >= n).then_some(p)
            },
        )
        .await
    }

    /// All the user's stored updates once there are at least `n` (polls for up to 20 s).
    pub async fn all_updates_of(&self, who: &str, n: usize) -> Vec<Update> {
        let user = crate::fixtures::user(who);
        crate::eventually(
            Duration::from_secs(20),
            &format!("{n} updates of {who}"),
            || async {
                let p = self.client.user_updates(&user, 0, 100).await.ok()?;
                (p.data.len() >= n).then_some(p.data)
            },
        )
        .await
    }
}
