//! chat3-core: domain rules, the MongoDB store, the transactional outbox, the AMQP bus, event
//! envelopes, configuration fragments, telemetry and shutdown, shared by the three services.

pub mod bus;
pub mod config;
pub mod error;
pub mod events;
pub mod ids;
pub mod outbox;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod testing;
pub mod updates;

pub use error::{Error, Result};
