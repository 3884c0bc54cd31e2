//! Event envelopes (DESIGN §5): construction and routing keys. Event types and their payloads
//! are `chat3_sdk::events`.

use chat3_sdk::events::{to_data, Payload};
use chat3_sdk::{DialogId, EventEnvelope, EventType, TenantId};
use serde_json::Value;

use crate::ids;

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

    /// The tenant's application, through its API key (writes that name no user).
    pub fn api() -> Self {
        Self {
            id: "api".to_owned(),
            kind: "api",
        }
    }
}

/// A new envelope of `payload`'s type with a fresh id and the current time.
pub fn event<P: Payload>(
    tenant: &TenantId,
    entity_id: &str,
    dialog_id: Option<&DialogId>,
    actor: &Actor,
    payload: &P,
) -> EventEnvelope {
    envelope(
        tenant,
        P::TYPE,
        entity_id,
        dialog_id,
        actor,
        to_data(payload),
    )
}

/// A new envelope with a fresh id and the current time (`entityType` from the event type).
pub fn envelope(
    tenant: &TenantId,
    event_type: EventType,
    entity_id: &str,
    dialog_id: Option<&DialogId>,
    actor: &Actor,
    data: Value,
) -> EventEnvelope {
    EventEnvelope {
        event_id: ids::event_id(),
        tenant_id: tenant.clone(),
        entity_type: event_type.entity_type().to_owned(),
        event_type,
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
            EventType::MessageCreate,
            "m",
            None,
            &Actor::user("u"),
            Value::Null,
        );
        assert_eq!(routing_key(&e), "message.create.tnt_acme");
        assert!(e.event_id.starts_with("evt_"));
    }
}
