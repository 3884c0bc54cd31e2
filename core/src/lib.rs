//! chat3-core: domain rules, the MongoDB store, the transactional outbox, the AMQP bus, event
//! envelopes, configuration fragments, telemetry and shutdown, shared by the three services.

pub mod bus;
pub mod config;
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
pub mod telemetry;
pub mod tenants;
pub mod testing;
pub mod updates;
pub mod write;

pub use error::{Error, Result};

/// What domain operations need: the store and the bus.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// MongoDB.
    pub store: store::Store,
    /// RabbitMQ.
    pub bus: bus::Bus,
}
