//! What each event family means for the fan-out, in one place per family: which events it
//! handles, who receives an update, and what the update carries. The fan-out itself
//! (`crate::fanout`) only reads state and stores and publishes what these decide.
//!
//! - `dialog` ([`dialog`]): `dialog.create`, `dialog.changed`, `dialog.delete`, `dialog.read`;
//! - members ([`member`]): `dialog.member.add`, `dialog.member.remove`, `dialog.member.changed`;
//! - `message` ([`message`]): `message.create`, `message.changed`, `message.delete`;
//! - receipts and reactions ([`receipt`]): `message.status.changed`, `message.reaction.changed`;
//! - typing ([`typing`]): `dialog.typing`, ephemeral (no store, no seq) to the other members;
//! - users ([`user`]): `user.add`, `user.changed`, to the user, concerning no dialog.

pub mod dialog;
pub mod member;
pub mod message;
pub mod receipt;
pub mod typing;
pub mod user;

use std::collections::HashSet;

use chat3_sdk::{EventEnvelope, EventType, Member, TypingState, UpdateType, UserId, UserType};
use serde_json::{Map, Value};

use crate::fanout::ProcessError;
use chat3_core::docs::{DialogDoc, MemberDoc};

/// A handled event, read from its typed payload.
#[derive(Debug, Clone)]
pub enum Handling {
    /// A dialog event (see [`dialog`]).
    Dialog(dialog::DialogEvent),
    /// A member event (see [`member`]).
    Member(member::MemberEvent),
    /// A message event (see [`message`]).
    Message(message::MessageEvent),
    /// A receipt or reaction (see [`receipt`]).
    Receipt(receipt::ReceiptEvent),
    /// A typing signal (see [`typing`]): published to the other members, never stored.
    Typing(TypingState),
    /// A user event (see [`user`]): no dialog.
    User(user::UserEvent),
}

/// Who receives an update of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// Every member of the event's dialog, as current state has them.
    Members,
    /// The current members and this user (who has just left).
    MembersAnd(UserId),
    /// Every member but this user.
    MembersExcept(UserId),
    /// These users.
    Listed(Vec<UserId>),
    /// This user only.
    Only(UserId),
}

impl Recipients {
    /// Whether the dialog's current members are needed to know the recipients.
    pub fn needs_members(&self) -> bool {
        matches!(
            self,
            Recipients::Members | Recipients::MembersAnd(_) | Recipients::MembersExcept(_)
        )
    }

    /// The recipients, given the dialog's current members.
    pub fn resolve(&self, members: &[UserId]) -> Vec<UserId> {
        match self {
            Recipients::Members => members.to_vec(),
            Recipients::MembersAnd(u) => {
                let mut all = members.to_vec();
                if !all.contains(u) {
                    all.push(u.clone());
                }
                all
            }
            Recipients::MembersExcept(u) => members.iter().filter(|m| *m != u).cloned().collect(),
            Recipients::Listed(users) => users.clone(),
            Recipients::Only(u) => vec![u.clone()],
        }
    }
}

/// The event types the worker turns into updates.
pub const HANDLED: [EventType; 15] = [
    EventType::DialogCreate,
    EventType::DialogChanged,
    EventType::DialogDelete,
    EventType::DialogMemberAdd,
    EventType::DialogMemberRemove,
    EventType::DialogMemberChanged,
    EventType::DialogRead,
    EventType::DialogTyping,
    EventType::MessageCreate,
    EventType::MessageChanged,
    EventType::MessageDelete,
    EventType::MessageStatusChanged,
    EventType::MessageReactionChanged,
    EventType::UserAdd,
    EventType::UserChanged,
];

impl Handling {
    /// What `event` means for the fan-out: `None` for types not handled, `Poison` when its
    /// payload lacks what its type needs.
    pub fn of(event: &EventEnvelope) -> Result<Option<Self>, ProcessError> {
        if let Some(t) = typing::of(event)? {
            return Ok(Some(Handling::Typing(t)));
        }
        if let Some(d) = dialog::DialogEvent::of(event)? {
            return Ok(Some(Handling::Dialog(d)));
        }
        if let Some(m) = member::MemberEvent::of(event)? {
            return Ok(Some(Handling::Member(m)));
        }
        if let Some(r) = receipt::ReceiptEvent::of(event)? {
            return Ok(Some(Handling::Receipt(r)));
        }
        if let Some(u) = user::UserEvent::of(event)? {
            return Ok(Some(Handling::User(u)));
        }
        Ok(message::MessageEvent::of(event)?.map(Handling::Message))
    }

    /// Ephemeral: published to its recipients, never stored and without a seq.
    pub fn is_ephemeral(&self) -> bool {
        matches!(self, Handling::Typing(_))
    }

    /// Who receives an update.
    pub fn recipients(&self) -> Recipients {
        match self {
            Handling::Dialog(d) => d.recipients(),
            Handling::Member(m) => m.recipients(),
            Handling::Message(m) => m.recipients(),
            Handling::Receipt(r) => r.recipients(),
            Handling::Typing(t) => typing::recipients(t),
            Handling::User(u) => u.recipients(),
        }
    }

    /// The kind of the updates.
    pub fn update_type(&self) -> UpdateType {
        match self {
            Handling::Dialog(_) | Handling::Member(_) => UpdateType::Dialog,
            Handling::Message(_) | Handling::Receipt(_) => UpdateType::Message,
            Handling::Typing(_) => UpdateType::Typing,
            Handling::User(_) => UpdateType::User,
        }
    }

    /// The kind of `user`'s update.
    pub fn update_type_for(&self, user: &UserId) -> UpdateType {
        match self {
            Handling::Receipt(r) => r.update_type_for(user),
            _ => self.update_type(),
        }
    }

    /// The message whose current state the updates carry, if any.
    pub fn message_id(&self) -> Option<&chat3_sdk::MessageId> {
        match self {
            Handling::Message(m) => Some(&m.message.message_id),
            Handling::Receipt(r) => Some(r.message_id()),
            _ => None,
        }
    }

    /// The dialog the event names in its payload (when the envelope does not).
    pub fn dialog_in_payload(&self) -> Option<&chat3_sdk::DialogId> {
        match self {
            Handling::Message(m) => Some(&m.message.dialog_id),
            Handling::Typing(t) => Some(&t.dialog_id),
            _ => None,
        }
    }

    /// The update's `data` for `member`: the dialog as they see it, plus the family's sections.
    /// `message` is the message's current state, `mine` the reactions `member` set on it.
    pub fn data(
        &self,
        dialog: &DialogDoc,
        member: &MemberDoc,
        message: Option<&chat3_sdk::Message>,
        mine: &HashSet<String>,
    ) -> Value {
        let mut data = Map::new();
        data.insert("dialog".into(), crate::state::dialog_view(dialog, member));
        match self {
            Handling::Dialog(d) => d.sections(&mut data, dialog, member),
            Handling::Member(m) => m.sections(&mut data, dialog, member),
            Handling::Message(m) => m.sections(&mut data, message, mine),
            Handling::Receipt(r) => r.sections(&mut data, dialog, member, message, mine),
            Handling::Typing(t) => {
                data.insert("typing".into(), serde_json::json!(t));
            }
            Handling::User(_) => {}
        }
        Value::Object(data)
    }

    /// Whether the event concerns a dialog (its recipients are read through it).
    pub fn has_dialog(&self) -> bool {
        !matches!(self, Handling::User(_))
    }

    /// What `user` receives without a membership in current state: a former member's update
    /// about the deletion, the removed user's about their removal (from the event), the user's
    /// own update of a user event. Who they are and the data; `None`: nothing (they left
    /// before the event).
    pub fn direct(
        &self,
        event: &EventEnvelope,
        user: &UserId,
    ) -> Option<(UserId, UserType, Value)> {
        let was = |(m, data): (Member, Value)| (m.user_id, m.user_type, data);
        match self {
            Handling::Dialog(d) => d.departed(user).map(was),
            Handling::Member(m) => m.departed(event, user).map(was),
            Handling::User(u) => u.direct(user),
            _ => None,
        }
    }
}

/// A payload error as a poison failure.
fn poison(e: chat3_sdk::events::PayloadError) -> ProcessError {
    ProcessError::Poison(e.to_string())
}
