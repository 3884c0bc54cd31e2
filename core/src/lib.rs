//! chat3-core: domain rules, the MongoDB store, the transactional outbox, the AMQP bus, event
//! envelopes, configuration fragments, telemetry and shutdown, shared by the three services.

pub mod bus;
pub mod config;
pub mod contract;
pub mod dialogs;
pub mod docs;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod ids;
pub mod inbox;
pub mod messages;
pub mod outbox;
pub mod plain;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod stripes;
pub mod telemetry;
pub mod tenants;
pub mod testing;
pub mod updates;
pub mod write;

pub use error::{Error, Result};

/// What domain operations need: the store, the bus, and the in-process locks of this instance.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// MongoDB.
    pub store: store::Store,
    /// RabbitMQ.
    pub bus: bus::Bus,
    /// Serializes sends into the same dialog within this process (see [`stripes`]).
    pub dialogs: std::sync::Arc<stripes::Stripes>,
}

impl Ctx {
    /// A context over `store` and `bus`.
    pub fn new(store: store::Store, bus: bus::Bus) -> Self {
        Self {
            store,
            bus,
            dialogs: std::sync::Arc::new(stripes::Stripes::default()),
        }
    }
}
