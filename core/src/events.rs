//! Event envelopes (DESIGN §5): construction, routing keys and the event type names.

use chat3_sdk::{DialogId, EventEnvelope, TenantId};
use serde_json::Value;

use crate::ids;

/// Event type names.
pub mod types {
    /// A dialog was created (its initial members are in `data.members`).
    pub const DIALOG_CREATE: &str = "dialog.create";
    /// Members joined a dialog.
    pub const DIALOG_MEMBER_ADD: &str = "dialog.member.add";
    /// A message was created.
    pub const MESSAGE_CREATE: &str = "message.create";
    /// A member's read watermark moved.
    pub const DIALOG_READ: &str = "dialog.read";
}

/// Who caused an event.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Id (a user id, a key id, `system`).
    pub id: String,
    /// `user`, `api` or `system`.
    pub kind: &'static str,
}

impl Actor {
    /// An end user acting through the API.
    pub fn user(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            kind: "user",
        }
    }
}

/// A new envelope with a fresh id and the current time.
pub fn envelope(
    tenant: &TenantId,
    event_type: &str,
    entity_type: &str,
    entity_id: &str,
    dialog_id: Option<&DialogId>,
    actor: &Actor,
    data: Value,
) -> EventEnvelope {
    EventEnvelope {
        event_id: ids::event_id(),
        tenant_id: tenant.clone(),
        event_type: event_type.to_owned(),
        entity_type: entity_type.to_owned(),
        entity_id: entity_id.to_owned(),
        dialog_id: dialog_id.cloned(),
        actor_id: actor.id.clone(),
        actor_type: actor.kind.to_owned(),
        occurred_at: ids::now_ms(),
        data,
    }
}

/// `{eventType}.{tenantId}`.
pub fn routing_key(event: &EventEnvelope) -> String {
    format!("{}.{}", event.event_type, event.tenant_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_key_is_event_type_then_tenant() {
        let t: TenantId = "tnt_acme".parse().unwrap_or_else(|_| unreachable!());
        let e = envelope(
            &t,
            types::MESSAGE_CREATE,
            "message",
            "m",
            None,
            &Actor::user("u"),
            Value::Null,
        );
        assert_eq!(routing_key(&e), "message.create.tnt_acme");
        assert!(e.event_id.starts_with("evt_"));
    }
}
