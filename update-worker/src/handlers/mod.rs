//! What each event family means for the fan-out, in one place per family: which events it
//! handles, who receives an update, and what the update carries. The fan-out itself
//! (`crate::fanout`) only reads state and stores and publishes what these decide.
//!
//! - `dialog`: `dialog.create`, `dialog.member.add`, `dialog.read`;
//! - `message`: `message.create`.

pub mod dialog;
pub mod message;

use chat3_sdk::{EventEnvelope, EventType, UpdateType, UserId};
use serde_json::{Map, Value};

use crate::fanout::ProcessError;
use chat3_core::docs::{DialogDoc, MemberDoc};

/// A handled event, read from its typed payload.
#[derive(Debug, Clone)]
pub enum Handling {
    /// A dialog event (see [`dialog`]).
    Dialog(dialog::DialogEvent),
    /// A message event (see [`message`]).
    Message(message::MessageEvent),
}

/// Who receives an update of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// Every member of the event's dialog, as current state has them.
    Members,
    /// This user only.
    Only(UserId),
}

/// The event types the worker turns into updates.
pub const HANDLED: [EventType; 4] = [
    EventType::DialogCreate,
    EventType::DialogMemberAdd,
    EventType::DialogRead,
    EventType::MessageCreate,
];

impl Handling {
    /// What `event` means for the fan-out: `None` for types not handled, `Poison` when its
    /// payload lacks what its type needs.
    pub fn of(event: &EventEnvelope) -> Result<Option<Self>, ProcessError> {
        if let Some(d) = dialog::DialogEvent::of(event)? {
            return Ok(Some(Handling::Dialog(d)));
        }
        Ok(message::MessageEvent::of(event)?.map(Handling::Message))
    }

    /// Who receives an update.
    pub fn recipients(&self) -> Recipients {
        match self {
            Handling::Dialog(d) => d.recipients(),
            Handling::Message(m) => m.recipients(),
        }
    }

    /// The kind of the updates.
    pub fn update_type(&self) -> UpdateType {
        match self {
            Handling::Dialog(_) => UpdateType::Dialog,
            Handling::Message(_) => UpdateType::Message,
        }
    }

    /// The message whose current state the updates carry, if any.
    pub fn message(&self) -> Option<&message::MessageEvent> {
        match self {
            Handling::Message(m) => Some(m),
            Handling::Dialog(_) => None,
        }
    }

    /// The dialog the event names in its payload (when the envelope does not).
    pub fn dialog_in_payload(&self) -> Option<&chat3_sdk::DialogId> {
        match self {
            Handling::Message(m) => Some(&m.message.dialog_id),
            Handling::Dialog(_) => None,
        }
    }

    /// The update's `data` for `member`: the dialog as they see it, plus the family's sections.
    /// `message` is the message's current state (the event's copy when it is gone).
    pub fn data(
        &self,
        dialog: &DialogDoc,
        member: &MemberDoc,
        message: Option<&chat3_sdk::Message>,
    ) -> Value {
        let mut data = Map::new();
        data.insert("dialog".into(), crate::state::dialog_view(dialog, member));
        match self {
            Handling::Dialog(d) => d.sections(&mut data, dialog, member),
            Handling::Message(m) => m.sections(&mut data, message),
        }
        Value::Object(data)
    }
}

/// A payload error as a poison failure.
fn poison(e: chat3_sdk::events::PayloadError) -> ProcessError {
    ProcessError::Poison(e.to_string())
}
