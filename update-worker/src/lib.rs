//! chat3 update worker (DESIGN §6): consumes events, stores one update per recipient with a
//! per-user seq, and publishes each on the updates exchange. Also the operator commands `replay`
//! (re-publish stored updates) and `reprocess` (re-run the fan-out of journal events).

pub mod config;
mod consumer;
pub mod fanout;
pub mod handlers;
pub mod replay;
pub mod reprocess;
pub mod shards;
mod state;
pub mod topology;

use std::sync::Arc;

use chat3_core::bus::Bus;
use chat3_core::service::Running;
use chat3_core::store::Store;
use chat3_core::updates;
use tokio_util::sync::CancellationToken;

pub use config::{Cli, Command, Config, ReplayArgs, ReprocessArgs};

/// Connects, creates the update indexes, declares the queues and starts consuming. Returns once
/// consumption has begun; the returned task ends (with `Ok`) after `shutdown` is cancelled and
/// every in-flight delivery is settled.
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let store = Store::connect(&config.mongo).await?;
    updates::ensure_indexes(&store, config.retention.duration()).await?;
    shards::ensure_indexes(&store).await?;
    let publisher = Bus::connect(config.amqp.clone()).await?;
    let consumer = Bus::connect(config.amqp.clone()).await?;
    // Declare before returning so events published right after `start` are queued.
    let channel = consumer.channel().await?;
    topology::declare(&channel, &config, consumer.events_exchange()).await?;
    channel.close(200, "declared").await?;
    let ctx = Arc::new(consumer::Ctx {
        store,
        publisher,
        consumer,
        config,
        shutdown,
        id: chat3_core::ids::random_base36(10),
    });
    let task = tokio::spawn(consumer::run(ctx));
    Ok(Running { addr: None, task })
}

/// Runs one subcommand to completion (the binary's whole job after logging is set up).
pub async fn run(command: Command, shutdown: CancellationToken) -> anyhow::Result<()> {
    match command {
        Command::Run(config) => start(config, shutdown).await?.task.await?,
        Command::Replay(args) => replay::run(&args, shutdown).await.map(|_| ()),
        Command::Reprocess(args) => reprocess::run(&args, shutdown).await.map(|_| ()),
    }
}
