//! Message events: `message.create` goes to every member, carrying the message's current state.

use chat3_sdk::events::MessageCreated;
use chat3_sdk::{EventEnvelope, EventType, Message};
use serde_json::{json, Map, Value};

use super::{poison, Recipients};
use crate::fanout::ProcessError;

/// A handled message event.
#[derive(Debug, Clone)]
pub struct MessageEvent {
    /// The message as the event carries it (updates carry its current state; this copy is the
    /// fallback when the stored one is gone).
    pub message: Message,
}

impl MessageEvent {
    /// The message event `event` is, `None` when it is not one handled here.
    pub fn of(event: &EventEnvelope) -> Result<Option<Self>, ProcessError> {
        match event.event_type {
            EventType::MessageCreate => Ok(Some(MessageEvent {
                message: event.payload::<MessageCreated>().map_err(poison)?.message,
            })),
            _ => Ok(None),
        }
    }

    /// Who receives an update.
    pub fn recipients(&self) -> Recipients {
        Recipients::Members
    }

    /// The `message` section: `current` (the stored message) or the event's copy.
    pub fn sections(&self, data: &mut Map<String, Value>, current: Option<&Message>) {
        data.insert("message".into(), json!(current.unwrap_or(&self.message)));
    }
}
