//! chat3-bff: the backend-for-frontend. End users log in with a phone and an SMS code, get an
//! HS256 session token, and open a WebSocket that turns their chat3 updates into socket events
//! (with resume after `since`). `main.rs` only parses the configuration and calls [`start`].

// Unit tests may unwrap; the library itself may not (workspace lints).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod body;
pub mod config;
pub mod db;
pub mod error;
pub mod frames;
pub mod hub;
pub mod limits;
pub mod login;
pub mod phone;
pub mod resume;
pub mod routes;
pub mod sms;
pub mod socket;
pub mod state;
pub mod token;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use chat3_core::bus::Bus;
use chat3_core::service::Running;
use chat3_core::store::Store;
use chat3_sdk::client::Client;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

pub use config::{Cli, Command, Config, SmsKind};
pub use sms::{Outbox, SmsProvider};

use crate::hub::Hub;
use crate::limits::CodeLimits;
use crate::login::Login;
use crate::socket::WsSettings;
use crate::state::AppState;
use crate::token::Tokens;

/// The BFF's contract (`openapi/bff.yaml`), enforced on request bodies.
pub const OPENAPI_YAML: &str = include_str!("../../openapi/bff.yaml");

/// How often idle rate-limit keys are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long in-flight requests get after shutdown begins.
const SHUTDOWN_GRACE_SECS: u64 = 10;

/// Starts the BFF with the SMS provider named by the configuration (`console` by default).
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let sms = sms::from_config(&config)?;
    start_with_sms(config, sms, shutdown).await
}

/// Starts the BFF with a given SMS provider (tests pass an [`Outbox`]): creates the indexes,
/// starts the updates consumer, binds (port 0 works) and serves until `shutdown` is cancelled.
/// The returned task ends after the server stopped, sockets closed and the consumer ended.
pub async fn start_with_sms(
    config: Config,
    sms: Arc<dyn SmsProvider>,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    config.validate()?;
    let store = Store::connect(&config.mongo()).await?;
    db::ensure_indexes(&store).await?;
    let bus = Bus::lazy(config.amqp.clone());
    let hub = Hub::new(
        config.tenant_id.clone(),
        config.amqp.updates_exchange.clone(),
    );
    let consumer = tokio::spawn(hub.clone().run(bus.clone(), shutdown.clone()));

    let mut api = match &config.api_key {
        Some(key) => Client::new(config.api_url.clone(), key.clone()),
        None => Client::anonymous(config.api_url.clone()),
    };
    api = api.with_tenant(config.tenant_id.to_string());
    let tokens = Tokens::new(
        config.jwt_secret.as_bytes(),
        Duration::from_secs(config.token_ttl_secs),
    );
    let login = Login::new(
        store.clone(),
        sms,
        tokens,
        config.jwt_secret.as_bytes(),
        config.code_ttl(),
        config.code_length,
    );
    let state = web::Data::new(AppState {
        login,
        limits: CodeLimits::new(config.budgets()),
        hub,
        store,
        bus: bus.clone(),
        source: Arc::new(api),
        ws: WsSettings {
            heartbeat: Duration::from_secs(config.ws_heartbeat_secs),
            client_timeout: Duration::from_secs(config.ws_client_timeout_secs),
            buffer: config.ws_buffer,
        },
        shutdown: shutdown.clone(),
        contract: chat3_core::contract::Contract::from_yaml(OPENAPI_YAML)?,
    });
    let pruner = tokio::spawn(prune_limits(state.clone(), shutdown.clone()));

    let listener = TcpListener::bind(config.bind)?;
    let addr = listener.local_addr()?;
    let app_state = state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(routes::known_query))
            .wrap(TracingLogger::default())
            .app_data(app_state.clone())
            .configure(routes::configure)
    })
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_GRACE_SECS);
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    let server = server.listen(listener)?.run();
    let handle = server.handle();
    tracing::info!(%addr, "bff listening");

    let task = tokio::spawn(async move {
        let mut server = tokio::spawn(server);
        let served = tokio::select! {
            r = &mut server => r,
            _ = shutdown.cancelled() => {
                tracing::info!("bff shutting down");
                handle.stop(true).await;
                server.await
            }
        };
        // Whatever ended the server, stop the sockets, the consumer and the pruner too.
        shutdown.cancel();
        let _ = consumer.await;
        let _ = pruner.await;
        bus.close().await;
        tracing::info!("bff stopped");
        served??;
        Ok(())
    });
    Ok(Running {
        addr: Some(addr),
        task,
    })
}

async fn prune_limits(state: web::Data<AppState>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(PRUNE_EVERY) => state.limits.prune(),
        }
    }
}
