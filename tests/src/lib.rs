//! End-to-end test support: start the real services in-process against the real SecantusDB and
//! RabbitMQ, each test with its own database, exchange and queue names; talk to them through the
//! SDK; check responses against `openapi/openapi.yaml`.

pub mod amqp;
pub mod proxy;

use std::time::Duration;

use chat3_api::config::ApiConfig;
use chat3_core::config::{AmqpArgs, MongoArgs};
use chat3_core::service::Running;
use chat3_sdk::client::Client;
use chat3_sdk::{CreateApiKey, CreateTenant, Scope, TenantId};
use tokio_util::sync::CancellationToken;

/// The operator key the test API runs with.
pub const ADMIN_KEY: &str = "test-operator-key";

/// Settings for a test API on port 0.
pub fn api_config(mongo: &MongoArgs, amqp: &AmqpArgs) -> ApiConfig {
    ApiConfig {
        bind: "127.0.0.1:0".to_owned(),
        mongo: mongo.clone(),
        amqp: amqp.clone(),
        admin_api_key: Some(ADMIN_KEY.to_owned()),
        rate_limit_per_second: 10_000,
        rate_limit_burst: 10_000,
        body_limit_bytes: 64 * 1024,
        event_retention_hours: 24,
        key_cache_seconds: 1,
        workers: 1,
    }
}

/// A running API for one test.
pub struct TestApi {
    /// Storage settings (its own database).
    pub mongo: MongoArgs,
    /// Broker settings (its own exchanges).
    pub amqp: AmqpArgs,
    /// Base URL.
    pub url: String,
    shutdown: CancellationToken,
    running: Running,
}

impl TestApi {
    /// Starts an API with a fresh database and fresh exchange names derived from `name`.
    pub async fn start(name: &str) -> Self {
        let mongo = chat3_core::testing::mongo_args(name);
        let amqp = chat3_core::testing::amqp_args(name);
        Self::start_with(mongo, amqp).await
    }

    /// Starts an API on the given storage and broker settings.
    pub async fn start_with(mongo: MongoArgs, amqp: AmqpArgs) -> Self {
        Self::start_config(api_config(&mongo, &amqp)).await
    }

    /// Starts an API with a full configuration.
    pub async fn start_config(config: ApiConfig) -> Self {
        let shutdown = CancellationToken::new();
        let (mongo, amqp) = (config.mongo.clone(), config.amqp.clone());
        let running = match chat3_api::start(config, shutdown.clone()).await {
            Ok(r) => r,
            Err(e) => panic!("chat3-api failed to start: {e:#}"),
        };
        Self {
            url: running.url(),
            mongo,
            amqp,
            shutdown,
            running,
        }
    }

    /// A client with the operator key.
    pub fn admin(&self) -> Client {
        Client::new(&self.url, ADMIN_KEY)
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Client {
        Client::anonymous(&self.url)
    }

    /// Creates a tenant named `prefix_<random>` and an all-scopes key; returns both.
    pub async fn tenant(&self, prefix: &str) -> (TenantId, Client) {
        self.tenant_with_scopes(prefix, None).await
    }

    /// Like [`TestApi::tenant`] with chosen scopes.
    pub async fn tenant_with_scopes(&self, prefix: &str, scopes: Option<Vec<Scope>>) -> (TenantId, Client) {
        let id: TenantId = chat3_core::testing::unique_name(prefix)
            .parse()
            .unwrap_or_else(|e| panic!("bad tenant id: {e}"));
        let admin = self.admin();
        admin
            .create_tenant(&CreateTenant {
                tenant_id: id.clone(),
                name: None,
            })
            .await
            .unwrap_or_else(|e| panic!("create tenant: {e}"));
        let key = admin
            .create_api_key(&id, &CreateApiKey { name: None, scopes })
            .await
            .unwrap_or_else(|e| panic!("create key: {e}"));
        (id, Client::new(&self.url, key.key))
    }

    /// Graceful stop; panics if the server exited with an error.
    pub async fn stop(self) {
        self.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(30), self.running.task).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("chat3-api did not stop cleanly: {other:?}"),
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
