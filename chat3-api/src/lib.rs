//! chat3-api: the tenant REST API (actix-web). `start` wires the store, the bus, the outbox
//! sweeper and the HTTP server; `main.rs` only parses the command line and calls into here.

pub mod body;
pub mod caller;
pub mod cli;
pub mod config;
pub mod deletions;
pub mod error;
pub mod idempotency;
pub mod keys;
pub mod middleware;
pub mod rate_limit;
pub mod routes;
pub mod state;

use std::net::TcpListener;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use chat3_core::bus::Bus;
use chat3_core::outbox::{Sweeper, SweeperConfig};
use chat3_core::service::Running;
use chat3_core::store::Store;
use chat3_core::Ctx;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::config::ApiConfig;
use crate::state::AppState;

/// The contract this server implements, served at `/api-docs/openapi.yaml` and enforced on
/// request bodies.
pub const OPENAPI_YAML: &str = include_str!("../../openapi/openapi.yaml");

/// Connects to MongoDB (creating indexes) and RabbitMQ (lazily: the API starts while the broker
/// is down and the outbox catches up later), binds, and serves until `shutdown` is cancelled.
pub async fn start(config: ApiConfig, shutdown: CancellationToken) -> anyhow::Result<Running> {
    tracing::info!(?config, "starting chat3-api");
    let store = Store::connect(&config.mongo).await?;
    store.ensure_indexes(config.event_retention()).await?;
    let bus = Bus::lazy(config.amqp.clone());
    if let Err(e) = bus.check().await {
        tracing::warn!(error = %e, "RabbitMQ unreachable at start; events wait in the outbox");
    }
    let ctx = Ctx::with_sends(store, bus, config.sends());
    let contract = chat3_core::contract::Contract::from_yaml(OPENAPI_YAML)?;
    let (deletions, deletions_task) = deletions::spawn(
        ctx.store.clone(),
        config.deletion_grace(),
        shutdown.child_token(),
    );
    let state = web::Data::new(AppState::new(ctx.clone(), &config, contract, deletions));

    let listener = TcpListener::bind(&config.bind)?;
    let addr = listener.local_addr()?;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .wrap(from_fn(idempotency::middleware))
            .wrap(from_fn(middleware::known_query))
            .wrap(from_fn(middleware::deadline))
            .wrap(from_fn(middleware::rate_limit_headers))
            .wrap(from_fn(middleware::json_errors))
            .wrap(TracingLogger::default())
            .configure(routes::configure)
            .default_service(web::to(error::route_not_found))
    })
    .disable_signals()
    .shutdown_timeout(20);
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    let server = server.listen(listener)?.run();
    let handle = server.handle();
    tracing::info!(%addr, "chat3-api listening");

    let sweeper = Sweeper::new(ctx.store.clone(), ctx.bus.clone(), SweeperConfig::default());
    let sweeper_task = tokio::spawn(sweeper.run(shutdown.child_token()));
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        stopper.cancelled().await;
        // Stop accepting, let in-flight requests finish.
        handle.stop(true).await;
    });
    let task = tokio::spawn(async move {
        let served = server.await;
        shutdown.cancel();
        let _ = sweeper_task.await;
        let _ = deletions_task.await;
        // In-flight requests are done: publish what they committed, then close.
        ctx.shutdown().await;
        ctx.bus.close().await;
        tracing::info!("chat3-api stopped");
        served.map_err(anyhow::Error::from)
    });
    Ok(Running {
        addr: Some(addr),
        task,
    })
}
