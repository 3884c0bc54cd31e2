//! chat3 wire types, shared by the servers and their clients so the two cannot drift, and an
//! async HTTP client (feature `client`, on by default).

pub mod events;
pub mod ids;
pub mod types;

#[cfg(feature = "client")]
pub mod client;

pub use events::EventType;
pub use ids::{DialogId, IdError, KeyId, MessageId, Scope, TenantId, UserId, UserType};
pub use types::*;
