//! A client whose every response is checked against `openapi/openapi.yaml` (status documented,
//! body matching its schema): the conversation tests call the API only through it.

use std::sync::Arc;

use chat3_sdk::client::{Client, RawResponse};
use serde_json::Value;

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
