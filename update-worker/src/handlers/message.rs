//! Message events: `message.create`, `message.changed` and `message.delete` go to every member,
//! carrying the message's current state (with `reactions[].me` from each recipient's side).

use std::collections::HashSet;

use chat3_sdk::events::{MessageChanged, MessageCreated, MessageDeleted};
use chat3_sdk::{EventEnvelope, EventType, Message};
use serde_json::{json, Map, Value};

use super::{poison, Recipients};
use crate::fanout::ProcessError;

/// A handled message event: the message as the event carries it (updates carry its current
/// state; this copy is the fallback when it is gone).
#[derive(Debug, Clone)]
pub struct MessageEvent {
    /// The event's copy of the message.
    pub message: Box<Message>,
}

impl MessageEvent {
    /// The message event `event` is, `None` when it is not one handled here.
    pub fn of(event: &EventEnvelope) -> Result<Option<Self>, ProcessError> {
        let message = match event.event_type {
            EventType::MessageCreate => event.payload::<MessageCreated>().map_err(poison)?.message,
            EventType::MessageChanged => event.payload::<MessageChanged>().map_err(poison)?.message,
            EventType::MessageDelete => event.payload::<MessageDeleted>().map_err(poison)?.message,
            _ => return Ok(None),
        };
        Ok(Some(MessageEvent {
            message: Box::new(message),
        }))
    }

    /// Who receives an update.
    pub fn recipients(&self) -> Recipients {
        Recipients::Members
    }

    /// The `message` section: `current` (the stored one) or the event's copy, with `me` on the
    /// reactions the recipient set (`mine`).
    pub fn sections(
        &self,
        data: &mut Map<String, Value>,
        current: Option<&Message>,
        mine: &HashSet<String>,
    ) {
        data.insert(
            "message".into(),
            json!(as_seen(current.unwrap_or(&self.message), mine)),
        );
    }
}

/// A message with `reactions[].me` from the side of a user who set `mine`.
pub fn as_seen(m: &Message, mine: &HashSet<String>) -> Message {
    let mut m = m.clone();
    for r in &mut m.reactions {
        r.me = mine.contains(&r.reaction);
    }
    m
}
