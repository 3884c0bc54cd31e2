//! Event types (DESIGN §5) and the payloads they carry: the one place an event type is spelled.
//! Producers (the API's writes), consumers (the update worker) and tests use these; the wire
//! form stays the documented string (`message.create`), and a type this build does not know
//! reads as [`EventType::Unknown`] so that consumers can skip it instead of failing.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{DialogId, MessageId, UserId};
use crate::types::{Dialog, EventEnvelope, Member, Message, Meta, Tenant, TypingState, User};

macro_rules! event_types {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, entity $entity:literal; )*) => {
        /// The type of an event; its wire name is the first part of the event's routing key.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $( $(#[$doc])* $variant, )*
            /// A type this build does not know (a newer producer): consumers skip it.
            Unknown(String),
        }

        impl EventType {
            /// Every known type.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The wire name (`message.create`).
            pub fn as_str(&self) -> &str {
                match self {
                    $( EventType::$variant => $name, )*
                    EventType::Unknown(name) => name,
                }
            }

            /// The `entityType` of envelopes of this type (`message`, `dialog`, `dialogMember`,
            /// `user`, `tenant`; empty for unknown types).
            pub fn entity_type(&self) -> &'static str {
                match self {
                    $( EventType::$variant => $entity, )*
                    EventType::Unknown(_) => "",
                }
            }
        }

        impl From<&str> for EventType {
            fn from(name: &str) -> Self {
                match name {
                    $( $name => EventType::$variant, )*
                    other => EventType::Unknown(other.to_owned()),
                }
            }
        }
    };
}

event_types! {
    /// A dialog was created; `data`: [`DialogCreated`].
    DialogCreate = "dialog.create", entity "dialog";
    /// A dialog's name or meta changed.
    DialogChanged = "dialog.changed", entity "dialog";
    /// A dialog was deleted.
    DialogDelete = "dialog.delete", entity "dialog";
    /// Members joined a dialog; `data`: [`MembersAdded`].
    DialogMemberAdd = "dialog.member.add", entity "dialogMember";
    /// A member left or was removed.
    DialogMemberRemove = "dialog.member.remove", entity "dialogMember";
    /// A membership's type or meta changed.
    DialogMemberChanged = "dialog.member.changed", entity "dialogMember";
    /// A member's read watermark moved; `data`: [`DialogRead`].
    DialogRead = "dialog.read", entity "dialog";
    /// A member is typing (ephemeral: published, never stored).
    DialogTyping = "dialog.typing", entity "dialogMember";
    /// A message was created; `data`: [`MessageCreated`].
    MessageCreate = "message.create", entity "message";
    /// A message was edited.
    MessageChanged = "message.changed", entity "message";
    /// A message was deleted.
    MessageDelete = "message.delete", entity "message";
    /// A receipt (delivered, read, custom) was recorded.
    MessageStatusChanged = "message.status.changed", entity "message";
    /// A reaction was set or unset.
    MessageReactionChanged = "message.reaction.changed", entity "message";
    /// A user was created.
    UserAdd = "user.add", entity "user";
    /// A user changed.
    UserChanged = "user.changed", entity "user";
    /// A user was removed.
    UserRemove = "user.remove", entity "user";
    /// A tenant's name or meta changed (no user receives an update).
    TenantChanged = "tenant.changed", entity "tenant";
}

impl EventType {
    /// The family: the wire name up to its first dot (`message`, `dialog`, `user`, `tenant`).
    pub fn family(&self) -> &str {
        let name = self.as_str();
        name.split_once('.').map_or(name, |(family, _)| family)
    }
}

impl FromStr for EventType {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(EventType::from(s))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(EventType::from(name.as_str()))
    }
}

/// A payload of a known event type.
pub trait Payload: Serialize + DeserializeOwned {
    /// The event type that carries it.
    const TYPE: EventType;
}

/// `data` of `dialog.create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialogCreated {
    /// The dialog as created, with its first members.
    pub dialog: Dialog,
}

impl Payload for DialogCreated {
    const TYPE: EventType = EventType::DialogCreate;
}

/// `data` of `dialog.member.add`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembersAdded {
    /// Who joined.
    pub members: Vec<Member>,
}

impl Payload for MembersAdded {
    const TYPE: EventType = EventType::DialogMemberAdd;
}

/// `data` of `message.create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageCreated {
    /// The message as stored.
    pub message: Message,
}

impl Payload for MessageCreated {
    const TYPE: EventType = EventType::MessageCreate;
}

/// `data` of `dialog.read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialogRead {
    /// The reader.
    pub user_id: UserId,
    /// Their watermark now.
    pub last_read_seq: u64,
    /// Their unread count now.
    pub unread_count: u64,
}

impl Payload for DialogRead {
    const TYPE: EventType = EventType::DialogRead;
}

/// `data` of `dialog.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialogChanged {
    /// The dialog's name after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The dialog's meta after the change.
    pub meta: Meta,
    /// What changed: `name`, `meta.<key>`.
    pub changed: Vec<String>,
}

impl Payload for DialogChanged {
    const TYPE: EventType = EventType::DialogChanged;
}

/// `data` of `dialog.delete`: who were members, since the dialog and its memberships are gone
/// when the event is fanned out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialogDeleted {
    /// The dialog.
    pub dialog_id: DialogId,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its members when it was deleted.
    pub members: Vec<Member>,
    /// When.
    pub deleted_at: i64,
}

impl Payload for DialogDeleted {
    const TYPE: EventType = EventType::DialogDelete;
}

/// `data` of `dialog.member.remove`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRemoved {
    /// The membership as it was at removal.
    pub member: Member,
    /// The dialog's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The dialog's newest seq at removal.
    pub last_seq: u64,
    /// When.
    pub removed_at: i64,
    /// Removed because the user was deleted (`DELETE /api/users/{u}`): their own feed goes
    /// with them, so they get no update about it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_deleted: bool,
}

impl Payload for MemberRemoved {
    const TYPE: EventType = EventType::DialogMemberRemove;
}

/// `data` of `dialog.typing` (never stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    /// Who, where, and for how long.
    #[serde(flatten)]
    pub state: TypingState,
}

impl Payload for Typing {
    const TYPE: EventType = EventType::DialogTyping;
}

/// `data` of `message.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageChanged {
    /// The message after the edit.
    pub message: Message,
    /// What changed when the change came through the meta routes (`meta.<key>`); absent for
    /// an edit (`PUT /api/messages/{m}`: content and meta as sent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

impl Payload for MessageChanged {
    const TYPE: EventType = EventType::MessageChanged;
}

/// `data` of `message.delete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDeleted {
    /// The message as deleted (no content, no meta, `deletedAt`).
    pub message: Message,
}

impl Payload for MessageDeleted {
    const TYPE: EventType = EventType::MessageDelete;
}

/// `data` of `message.status.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChanged {
    /// The message.
    pub message_id: MessageId,
    /// Its author (receives the receipt).
    pub sender_id: UserId,
    /// Who recorded the status.
    pub user_id: UserId,
    /// `read`, `delivered` or custom.
    pub status: String,
    /// When.
    pub at: i64,
}

impl Payload for StatusChanged {
    const TYPE: EventType = EventType::MessageStatusChanged;
}

/// `data` of `message.reaction.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionChanged {
    /// The message.
    pub message_id: MessageId,
    /// Who set or unset it.
    pub user_id: UserId,
    /// The reaction.
    pub reaction: String,
    /// `set` or `unset`.
    pub action: String,
}

impl Payload for ReactionChanged {
    const TYPE: EventType = EventType::MessageReactionChanged;
}

/// Why an envelope's payload could not be read as the one asked for.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The envelope is of another type.
    #[error("event {event_id} is {actual}, not {expected}")]
    OtherType {
        /// The envelope.
        event_id: String,
        /// Its type.
        actual: EventType,
        /// The type asked for.
        expected: EventType,
    },
    /// `data` does not have the payload's shape.
    #[error("event {event_id} ({event_type}): malformed data: {source}")]
    Malformed {
        /// The envelope.
        event_id: String,
        /// Its type.
        event_type: EventType,
        /// What serde said.
        source: serde_json::Error,
    },
}

impl EventEnvelope {
    /// The payload, typed (fails on another event type or a malformed `data`).
    pub fn payload<P: Payload>(&self) -> Result<P, PayloadError> {
        if self.event_type != P::TYPE {
            return Err(PayloadError::OtherType {
                event_id: self.event_id.clone(),
                actual: self.event_type.clone(),
                expected: P::TYPE,
            });
        }
        P::deserialize(&self.data).map_err(|source| PayloadError::Malformed {
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            source,
        })
    }
}

/// `data` of a payload, as the envelope carries it.
pub fn to_data<P: Payload>(payload: &P) -> Value {
    serde_json::to_value(payload).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_type_reads_back_from_its_wire_name() {
        for t in EventType::ALL {
            assert_eq!(&EventType::from(t.as_str()), t);
            let json = serde_json::to_string(t).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert!(!t.entity_type().is_empty(), "{t}");
            assert!(t.as_str().starts_with(t.family()), "{t}");
        }
    }

    #[test]
    fn an_unknown_type_is_kept_as_it_came() {
        let t: EventType = serde_json::from_str("\"poll.vote\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t, EventType::Unknown("poll.vote".to_owned()));
        assert_eq!(
            serde_json::to_string(&t).unwrap_or_default(),
            "\"poll.vote\""
        );
    }
}

/// `data` of `user.add`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAdded {
    /// The user as created.
    pub user: User,
}

impl Payload for UserAdded {
    const TYPE: EventType = EventType::UserAdd;
}

/// `data` of `user.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserChanged {
    /// The user after the change.
    pub user: User,
    /// What changed: `type`, `name`, `meta.<key>`.
    pub changed: Vec<String>,
}

impl Payload for UserChanged {
    const TYPE: EventType = EventType::UserChanged;
}

/// `data` of `user.remove`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRemoved {
    /// The user as it was.
    pub user: User,
    /// When it was removed.
    pub removed_at: i64,
}

impl Payload for UserRemoved {
    const TYPE: EventType = EventType::UserRemove;
}

/// `data` of `dialog.member.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberChanged {
    /// The membership after the change.
    pub member: Member,
    /// What changed: `meta.<key>`.
    pub changed: Vec<String>,
}

impl Payload for MemberChanged {
    const TYPE: EventType = EventType::DialogMemberChanged;
}

/// `data` of `tenant.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantChanged {
    /// The tenant after the change.
    pub tenant: Tenant,
    /// What changed: `name`, `meta.<key>`.
    pub changed: Vec<String>,
}

impl Payload for TenantChanged {
    const TYPE: EventType = EventType::TenantChanged;
}
