//! chat3-core: domain rules, the MongoDB store, the transactional outbox, the AMQP bus, event
//! envelopes, configuration fragments, telemetry and shutdown, shared by the three services.

pub mod bus;
pub mod config;
pub mod contract;
pub mod dialogs;
pub mod docs;
pub mod error;
pub mod events;
pub mod filter;
pub mod idempotency;
pub mod ids;
pub mod inbox;
pub mod journal;
pub mod locks;
pub mod members;
pub mod messages;
pub mod meta;
pub mod outbox;
pub mod plain;
pub mod reactions;
pub mod reads;
pub mod receipts;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tenant_deletion;
pub mod tenants;
pub mod testing;
pub mod updates;
pub mod users;
pub mod write;

pub use error::{Error, Result};

/// What domain operations need: the store, the bus, and this instance's background writers
/// and publisher. Cheap to clone; [`Ctx::shutdown`] on any clone stops the background tasks.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// MongoDB.
    pub store: store::Store,
    /// RabbitMQ.
    pub bus: bus::Bus,
    /// Publishes committed events right after commit.
    pub publisher: outbox::Publisher,
    /// The group-commit writers of message sends.
    pub sends: messages::send::SendQueue,
    /// Per-message queues of this instance's reaction and receipt writes.
    pub message_locks: locks::KeyLocks,
    background: std::sync::Arc<Background>,
}

#[derive(Debug)]
struct Background {
    shutdown: tokio_util::sync::CancellationToken,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Ctx {
    /// A context over `store` and `bus`; starts the background publisher (call inside a Tokio
    /// runtime).
    pub fn new(store: store::Store, bus: bus::Bus) -> Self {
        Self::with_sends(store, bus, messages::send::SendConfig::default())
    }

    /// [`Ctx::new`] with chosen settings of the send writers.
    pub fn with_sends(
        store: store::Store,
        bus: bus::Bus,
        sends: messages::send::SendConfig,
    ) -> Self {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (publisher, task) =
            outbox::Publisher::start(store.clone(), bus.clone(), shutdown.clone());
        let (sends, mut tasks) = messages::send::SendQueue::start(
            store.clone(),
            publisher.clone(),
            sends,
            shutdown.child_token(),
        );
        tasks.push(task);
        Self {
            store,
            bus,
            publisher,
            sends,
            message_locks: locks::KeyLocks::default(),
            background: std::sync::Arc::new(Background {
                shutdown,
                tasks: std::sync::Mutex::new(tasks),
            }),
        }
    }

    /// Stops the background tasks after they finished what was handed to them.
    pub async fn shutdown(&self) {
        self.background.shutdown.cancel();
        let tasks: Vec<_> = match self.background.tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for t in tasks {
            let _ = t.await;
        }
    }
}
