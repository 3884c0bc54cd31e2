//! End-to-end test support: start the real services in-process against the real SecantusDB and
//! RabbitMQ, each test with its own database, exchange and queue names; talk to them through the
//! SDK; check responses against `openapi/openapi.yaml`.

pub mod amqp;
pub mod checked;
pub mod fixtures;
pub mod openapi;
pub mod proxy;
pub mod ws;

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
        idempotency_lease_secs: 15,
        request_timeout_secs: 10,
        send_writers: 2,
        send_batch: 256,
        send_queue: 1024,
        send_max_wait_ms: 2000,
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
        chat3_core::testing::init_logging();
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
    pub async fn tenant_with_scopes(
        &self,
        prefix: &str,
        scopes: Option<Vec<Scope>>,
    ) -> (TenantId, Client) {
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

    /// Stops the server (panics if it exited with an error) and leaves the broker objects, for
    /// another instance on the same exchanges to go on with.
    pub async fn halt(self) -> AmqpArgs {
        self.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(30), self.running.task).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("chat3-api did not stop cleanly: {other:?}"),
        }
        self.amqp
    }

    /// Graceful stop (panics if the server exited with an error), then removes the test's
    /// exchanges from the broker.
    pub async fn stop(self) {
        let amqp = self.halt().await;
        amqp::delete_exchanges(&amqp.url, &[&amqp.events_exchange, &amqp.updates_exchange]).await;
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

/// The whole stack for one test: API, update worker and BFF on one database/exchange set (the BFF
/// with its own database), the BFF acting for a fresh tenant through a real API key.
pub struct Stack {
    /// The API.
    pub api: TestApi,
    /// The tenant the BFF serves.
    pub tenant: TenantId,
    /// Tenant client (all scopes).
    pub client: Client,
    /// BFF base URL.
    pub bff_url: String,
    /// SMS outbox of the BFF, to read login codes.
    pub sms: chat3_bff::Outbox,
    worker: chat3_update_worker::Config,
    worker_shutdown: CancellationToken,
    workers: Vec<Running>,
    bff_shutdown: CancellationToken,
    bff: Running,
}

impl Stack {
    /// Starts API, one update worker and BFF.
    pub async fn start(name: &str) -> Self {
        Self::start_with_workers(name, 1).await
    }

    /// Starts API, `workers` update workers on one queue, and BFF.
    pub async fn start_with_workers(name: &str, workers: usize) -> Self {
        let api = TestApi::start(name).await;
        let (tenant, client) = api.tenant("tnt").await;
        let key = api
            .admin()
            .create_api_key(
                &tenant,
                &CreateApiKey {
                    name: Some("bff".to_owned()),
                    scopes: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("bff key: {e}"));

        let mut wc = chat3_update_worker::Config::new(api.mongo.clone(), api.amqp.clone());
        wc.queue = chat3_core::testing::unique_name("t_worker");
        // Workers started together rebalance their shards quickly.
        wc.heartbeat_ms = 200;
        let worker_shutdown = CancellationToken::new();
        let mut running = Vec::new();
        for _ in 0..workers.max(1) {
            running.push(
                chat3_update_worker::start(wc.clone(), worker_shutdown.clone())
                    .await
                    .unwrap_or_else(|e| panic!("worker start: {e:#}")),
            );
        }

        let bff_mongo = chat3_core::testing::mongo_args(&format!("{name}_bff"));
        let bc = chat3_bff::Config {
            bind: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
            workers: 1,
            api_url: api.url.clone(),
            api_key: Some(key.key),
            tenant_id: tenant.clone(),
            jwt_secret: format!("jwt-secret-{}", chat3_core::testing::unique_name("s")),
            token_ttl_secs: 48 * 3600,
            sms_provider: chat3_bff::SmsKind::Console,
            sms_http_url: None,
            code_ttl_secs: 300,
            code_length: 6,
            phone_codes_per_hour: 100,
            phone_codes_total_per_hour: 1000,
            ip_codes_per_hour: 1000,
            phone_verify_per_hour: 1000,
            ip_verify_per_hour: 1000,
            mongodb_uri: bff_mongo.uri,
            mongodb_db: bff_mongo.db,
            mongodb_timeout_ms: bff_mongo.timeout_ms,
            amqp: api.amqp.clone(),
            ws_heartbeat_secs: 20,
            ws_client_timeout_secs: 50,
            ws_buffer: 256,
            log: chat3_core::config::LogArgs {
                log_format: chat3_core::config::LogFormat::Text,
                log_level: "warn".to_owned(),
            },
        };
        let sms = chat3_bff::Outbox::new();
        let bff_shutdown = CancellationToken::new();
        let bff =
            chat3_bff::start_with_sms(bc, std::sync::Arc::new(sms.clone()), bff_shutdown.clone())
                .await
                .unwrap_or_else(|e| panic!("bff start: {e:#}"));
        let bff_client = Client::anonymous(bff.url());
        eventually(Duration::from_secs(15), "the BFF to be ready", || async {
            bff_client.ready().await.ok().filter(|r| r.status == "ok")
        })
        .await;
        Self {
            bff_url: bff.url(),
            api,
            tenant,
            client,
            sms,
            worker: wc,
            worker_shutdown,
            workers: running,
            bff_shutdown,
            bff,
        }
    }

    /// The update workers' settings (queue names and the like).
    pub fn worker(&self) -> &chat3_update_worker::Config {
        &self.worker
    }

    /// Stops everything gracefully, then deletes the durable test queues it left on the broker.
    pub async fn stop(self) {
        self.bff_shutdown.cancel();
        self.worker_shutdown.cancel();
        let tasks = std::iter::once(("bff", self.bff.task))
            .chain(self.workers.into_iter().map(|w| ("worker", w.task)));
        for (what, task) in tasks {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Ok(()))) => {}
                other => panic!("{what} did not stop cleanly: {other:?}"),
            }
        }
        amqp::delete_worker_objects(&self.api.amqp.url, &self.worker).await;
        self.api.stop().await;
    }
}
